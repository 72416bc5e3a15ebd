"""Console transcripts: ``console``/``shell-session`` blocks as people paste them.

A transcript is commands after prompts and the output they printed::

    $ kubectl get pods
    NAME    READY
    PS> Get-Service W3SVC

A line starting with ``$ `` (a POSIX shell) or ``PS>`` / ``PS C:\\path>`` (PowerShell) is a
command: the text after the prompt.  A command whose line ends in ``\\`` (sh) or a backtick
(PowerShell) goes on with the next line.  Every other line is the expected output of the
command before it.  One transcript uses one shell.  Source of the prompt forms: the
``console``/``shell-session`` lexers of Pygments and GitHub Linguist.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Step kinds whose body is a transcript.
CONSOLE_KINDS: frozenset[str] = frozenset({"console", "shell-session"})
_SH = re.compile(r"^\$ ?(?=\S|$)")
_PS = re.compile(r"^PS(?: [^>\n]*)?> ?")


@dataclass(frozen=True, slots=True)
class Command:
    """One command of a transcript.

    Attributes:
        text: The command as typed (continuation lines included, prompts removed).
        line: 0-based body line of its prompt.
        output: The lines shown after it (its expected output).
    """

    text: str
    line: int
    output: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Transcript:
    """A parsed transcript.

    Attributes:
        shell: ``sh`` or ``powershell``.
        commands: The commands in order.
    """

    shell: str
    commands: tuple[Command, ...]

    @property
    def script(self) -> str:
        """The commands as one script for :attr:`shell`, one command a line."""
        return "".join(c.text + "\n" for c in self.commands)

    @property
    def expected(self) -> str:
        """All expected output, in order, one line each."""
        return "".join(line + "\n" for c in self.commands for line in c.output)


class TranscriptError(ValueError):
    """A transcript without a command or mixing shells; ``line`` is 0-based in the body."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


def parse_transcript(body: str) -> Transcript:
    """Split a transcript ``body`` into commands and expected output (module doc).

    Raises:
        TranscriptError: no prompt line, or ``$`` and ``PS>`` prompts in one block.
    """
    shell = ""
    commands: list[Command] = []
    text: list[str] = []
    start = 0
    output: list[str] = []
    going_on = False
    for index, line in enumerate(
        body.split("\n")[:-1] if body.endswith("\n") else body.split("\n")
    ):
        if going_on:
            text.append(line)
            going_on = line.endswith("\\" if shell == "sh" else "`")
            continue
        sh, ps = _SH.match(line), _PS.match(line)
        prompt = sh or ps
        if prompt is None:
            if commands or text:
                output.append(line)
            continue
        kind = "sh" if sh else "powershell"
        if shell and kind != shell:
            raise TranscriptError(
                "one transcript uses one shell: this block has both '$ ' and 'PS>' prompts; "
                "split it into two steps",
                index,
            )
        shell = kind
        if text:
            commands.append(Command("\n".join(text), start, tuple(output)))
        text, output, start = [line[prompt.end() :]], [], index
        going_on = line.endswith("\\" if shell == "sh" else "`")
    if text:
        commands.append(Command("\n".join(text), start, tuple(output)))
    if not commands:
        raise TranscriptError(
            "a console step needs at least one command after a prompt ('$ ' for sh, 'PS> ' "
            "for PowerShell); the other lines are its expected output",
            0,
        )
    return Transcript(shell, tuple(commands))


def output_matches(expected: str, actual: str, mode: str) -> bool:
    """Compare a command's output with the transcript's (``expect=`` of the step).

    ``exact``: the same lines, trailing blanks of each line and blank lines at the end
    ignored (terminals pad and paste adds them).  ``lines``: every expected line, stripped,
    appears in the output in the same order (other lines may come between).
    """
    want = [line.rstrip() for line in expected.rstrip("\n").split("\n")] if expected else []
    got = [line.rstrip() for line in actual.replace("\r\n", "\n").rstrip("\n").split("\n")]
    if mode == "exact":
        return want == (got if actual.strip() else [])
    it = iter(line.strip() for line in got)
    return all(any(w.strip() == g for g in it) for w in want if w.strip())
