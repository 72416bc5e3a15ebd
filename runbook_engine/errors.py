"""Error types of runbook-engine.

One root, :class:`RunbookError`, and one subclass per layer.  Every error that
comes from user input carries a :class:`Problem` list: each problem names the
file and the 1-based line it is about, so the CLI can print ``file:line:col:
code message`` and exit with status 2 instead of a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with an input file.

    Attributes:
        message: What is wrong and, where it helps, what to do about it.
        path: The file the problem is in (``None`` for command-line input).
        line: 1-based line in ``path``; 0 when the problem is about the whole file.
        col: 1-based column, 0 when unknown.
        code: Short stable code (``RB101`` ...), used by ``runbook lint``.
        severity: ``"error"`` or ``"warning"``.
        source_line: The offending line of the file, shown under the message.
        origin: Where input that is no file came from (``--set NAME``), shown in place of
            the file; ``<command line>`` when neither is known.
    """

    message: str
    path: Path | None = None
    line: int = 0
    col: int = 0
    code: str = "RB000"
    severity: str = "error"
    source_line: str | None = None
    origin: str | None = None

    def location(self) -> str:
        """Return ``file:line:col`` (parts that are unknown are left out)."""
        parts = [str(self.path) if self.path else self.origin or "<command line>"]
        if self.line:
            parts.append(str(self.line))
            if self.col:
                parts.append(str(self.col))
        return ":".join(parts)

    def format(self) -> str:
        """Return the one-line form ``file:line:col: code message`` plus the source line."""
        text = f"{self.location()}: {self.code} {self.message}"
        if self.source_line is not None:
            text += f"\n    {self.source_line.rstrip()}"
        return text


class RunbookError(Exception):
    """Root of every error runbook-engine raises on purpose.

    Attributes:
        problems: The problems behind the error, possibly several (all problems
            of a file are collected before failing).
        exit_status: The CLI exit status this error maps to (DESIGN.md §6).
    """

    exit_status = 1

    def __init__(self, message: str, problems: list[Problem] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.problems: list[Problem] = list(problems or [])

    def format(self) -> str:
        """Return the text a user sees: the problems, one per line, or the message."""
        if self.problems:
            return "\n".join(p.format() for p in self.problems)
        return self.message


class InputError(RunbookError):
    """Bad input: a runbook, an environment, an answers file or a flag (exit 2)."""

    exit_status = 2

    @classmethod
    def single(
        cls,
        message: str,
        path: Path | None = None,
        line: int = 0,
        *,
        code: str = "RB000",
        source_line: str | None = None,
    ) -> InputError:
        """Build an error holding one :class:`Problem`."""
        problem = Problem(message, path, line, code=code, source_line=source_line)
        return cls(problem.format(), [problem])


class RunbookSyntaxError(InputError):
    """The runbook's Markdown, front matter or attribute lists are malformed."""


class TemplateProblem(InputError):
    """Tailoring failed: an undefined parameter, a jinja syntax error, a bad condition."""


class EnvironmentFileError(InputError):
    """The environment file is malformed or a value has the wrong type."""


class ExecutionError(RunbookError):
    """A transport could not run a command (exit 1)."""


class ConnectionLost(ExecutionError):
    """The connection to a host broke while a step's command ran there: whether the
    command ran to its end is unknown, and it may still run (exit 75, try again later).

    Attributes:
        marker: The marker the command carries on the host (a resume looks for it).
    """

    exit_status = 75

    def __init__(self, message: str, marker: str) -> None:
        super().__init__(message)
        self.marker = marker


class StateError(RunbookError):
    """The checkpoint store refuses an operation (unknown run, changed runbook, lock)."""

    exit_status = 2


class EvidenceError(RunbookError):
    """The journal or an evidence file failed verification (exit 1)."""


class RunPaused(RunbookError):
    """The run stopped at a gate that needs a person (exit 3); ``run_id`` names the run
    (set by the runner that paused it)."""

    exit_status = 3
    run_id: str | None = None


class RunInterrupted(RunbookError):
    """The operator interrupted the run (exit 130)."""

    exit_status = 130


class StepStillRunning(StateError):
    """Resume refused: the process of an interrupted step is still alive (exit 75)."""

    exit_status = 75


class StorageError(RunbookError):
    """The disk refused a write (full, read-only, I/O error): nothing was lost that
    had been acknowledged (exit 74, EX_IOERR)."""

    exit_status = 74


#: errno values meaning "the disk refused the write" rather than "bad input".
_DISK_ERRNOS = frozenset({28, 5, 122, 30})  # ENOSPC, EIO, EDQUOT, EROFS


def storage_error(what: str, exc: OSError) -> RunbookError:
    """The error for a failed write of ``what``: :class:`StorageError` (exit 74) for a
    full, failing or read-only disk, else :class:`EvidenceError`."""
    reason = exc.strerror or str(exc)
    if exc.errno in _DISK_ERRNOS:
        return StorageError(
            f"cannot write {what}: {reason}. Nothing acknowledged was lost; free space "
            "(or fix the disk), then `runbook resume` the run"
        )
    return EvidenceError(f"cannot write {what}: {reason}")
