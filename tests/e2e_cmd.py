"""The part of cmd.exe the seed runbooks use, for the scripted hosts of tests/e2e_support.py.

:class:`CmdShell` runs batch text: ``%VAR%`` and ``%%v`` expansion (phase 1), ``^``
escapes, ``&``, ``&&``, ``||``, ``|`` (``&`` binds loosest, then ``&&``/``||``, then ``|``),
``>``/``>>`` redirection into :attr:`CmdShell.files`, ``( )`` blocks, ``if [not] exist``,
``if [/i] "a"=="b" (..) else (..)``, ``for %%v in (..)``, ``for /f "tokens=..,*
delims=.." %%a in ('..')``, ``set``, ``echo`` and ``exit /b``.  Everything else is a
program, handed to :meth:`CmdShell.program` (a subclass implements it).  Facts: cmd.exe's
parsing phases and ``for /f`` tokens as documented by ``cmd /?``, ``for /?`` and ``set /?``.
"""

from __future__ import annotations

import re
from typing import Any

BASE_ENV = {
    "SYSTEMDRIVE": "C:",
    "SYSTEMROOT": "C:\\WINDOWS",
    "WINDIR": "C:\\WINDOWS",
    "TEMP": "C:\\TEMP",
    "COMSPEC": "C:\\WINDOWS\\system32\\cmd.exe",
}
_FOR_F = re.compile(r'for /f "([^"]*)" %(\w) in \(\'(.*)\'\) do (.*)$', re.I | re.S)
_FOR = re.compile(r"for %(\w) in \(([^)]*)\) do (.*)$", re.I | re.S)
_IF_EXIST = re.compile(r'if (not )?exist "([^"]*)" (.*)$', re.I | re.S)
_IF_CMP = re.compile(r'if (/i )?"([^"]*)"=="([^"]*)" \((.*)\) else \((.*)\)$', re.I | re.S)
_REDIRECT = re.compile(r'(\d?)(>>?)\s*("[^"]*"|[^\s"]+)')


class Exit(Exception):
    """``exit /b N`` (or the host killing the script)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class CmdShell:
    """Runs batch text; subclasses provide :meth:`program` and the ``files``/``dirs`` state.

    Attributes (set by the subclass):
        files: Path (lower case) -> text; ``dirs``: folders (lower case, no trailing ``\\``).
    """

    files: dict[str, str]
    dirs: set[str]

    def run_script(self, text: str) -> tuple[str, int]:
        """Run ``text`` (a batch file when it has several lines, else one command line).

        Returns:
            The output (stdout and stderr together) and the exit code.
        """
        batch = "\n" in text.strip()
        env = dict(BASE_ENV)
        out: list[str] = []
        code = 0
        try:
            for raw in text.replace("\r\n", "\n").split("\n"):
                line = raw.strip()
                if not line or line.lower() == "@echo off":
                    continue
                text_out, code = self._line(self._expand(line, env, batch), env, "")
                out.append(text_out)
        except Exit as done:
            code = done.code
        return "".join(out), code

    @staticmethod
    def _expand(line: str, env: dict[str, str], batch: bool) -> str:
        """Phase 1 of cmd.exe: ``%NAME%`` (undefined: empty in a batch file) and ``%%``."""

        def one(match: re.Match[str]) -> str:
            if match.group(0) == "%%":
                return "%" if batch else "%%"
            name = match.group(1)
            if name.upper() in env:
                return env[name.upper()]
            return "" if batch else match.group(0)

        return re.sub(r"%%|%([A-Za-z_][A-Za-z0-9_]*)%", one, line)

    # -- statements ---------------------------------------------------------------------
    def _line(self, line: str, env: dict[str, str], stdin: str) -> tuple[str, int]:
        line = line.strip()
        if match := _FOR_F.match(line):
            return self._for_f(match, env)
        if match := _FOR.match(line):
            out, code = [], 0
            for item in match.group(2).split():
                text, code = self._line(
                    match.group(3).replace("%" + match.group(1), item), env, stdin
                )
                out.append(text)
            return "".join(out), code
        if match := _IF_EXIST.match(line):
            exists = self._exists(match.group(2))
            if exists != bool(match.group(1)):
                return self._line(match.group(3), env, stdin)
            return "", 0
        if match := _IF_CMP.match(line):
            left, right = match.group(2), match.group(3)
            same = left.lower() == right.lower() if match.group(1) else left == right
            return self._line(match.group(4) if same else match.group(5), env, stdin)
        return self._chain(line, env, stdin)

    def _for_f(self, match: re.Match[str], env: dict[str, str]) -> tuple[str, int]:
        options = dict(re.findall(r"(\w+)=(\S+)", match.group(1)))
        inner = re.sub(r"\^(.)", r"\1", match.group(3))
        text, _ = self._line(inner, env, "")
        letter, body = match.group(2), match.group(4)
        wanted = options.get("tokens", "1").split(",")
        delims = options.get("delims", " \t")
        out, code = [], 0
        for row in text.replace("\r\n", "\n").split("\n"):
            spans = list(re.finditer("[^" + re.escape(delims) + "]+", row))
            if not spans:
                continue
            values: list[str] = []
            after = 0  # index of the token after the highest numbered one
            for token in wanted:
                if token == "*":
                    values.append(row[spans[after].start() :] if after < len(spans) else "")
                    continue
                after = int(token)
                values.append(spans[after - 1].group() if after <= len(spans) else "")
            command = body
            for offset, value in enumerate(values):
                command = command.replace("%" + chr(ord(letter) + offset), value)
            result, code = self._line(command, env, "")
            out.append(result)
        return "".join(out), code

    def _chain(self, line: str, env: dict[str, str], stdin: str) -> tuple[str, int]:
        """``a | b && c || d & e``: ``&`` lowest, then ``&&``/``||``, then ``|``."""
        pieces = _split(line, ("&&", "||", "&", "|"))
        out, code = [], 0
        pipeline: list[str] = []
        op_before = "&"
        for piece in [*pieces, "&"]:
            if piece not in ("&&", "||", "&", "|"):
                pipeline.append(piece)
                continue
            if piece == "|":
                continue
            # a skipped element keeps the errorlevel of the last one that ran
            if op_before == "&" or (op_before == "&&") == (code == 0):
                text, code = self._pipeline(pipeline, env, stdin)
                out.append(text)
            pipeline, op_before = [], piece
        return "".join(out), code

    def _pipeline(self, parts: list[str], env: dict[str, str], stdin: str) -> tuple[str, int]:
        text, code = stdin, 0
        for part in parts:
            text, code = self._simple(part.strip(), env, text)
        return text, code

    def _simple(self, command: str, env: dict[str, str], stdin: str) -> tuple[str, int]:
        if command.startswith("(") and command.endswith(")"):
            return self._line(command[1:-1], env, stdin)
        redirects: list[tuple[str, str]] = []

        def cut(match: re.Match[str]) -> str:
            if match.group(1) in ("", "1"):
                redirects.append((match.group(2), match.group(3).strip('"')))
            return " "

        command = _outside_quotes(command, _REDIRECT, cut).strip()
        text, code = self._builtin(command, env, stdin)
        for mode, path in redirects:
            if path.lower() != "nul":
                old = self.files.get(path.lower(), "") if mode == ">>" else ""
                self.files[path.lower()] = old + text
            text = ""
        return text, code

    def _builtin(self, command: str, env: dict[str, str], stdin: str) -> tuple[str, int]:
        verb = command.split(" ", 1)[0].lower().lstrip("@")
        rest = command[len(verb) :].strip() if " " in command else ""
        if verb == "echo":
            return rest + "\r\n", 0
        if verb == "set":
            name, _, value = rest.strip('"').partition("=")
            env[name.upper()] = value
            return "", 0
        if verb == "exit":
            numbers = re.findall(r"\d+", rest)
            raise Exit(int(numbers[0]) if numbers else 0)
        return self.program(command, env, stdin)

    def program(self, command: str, env: dict[str, str], stdin: str) -> tuple[str, int]:
        """Run one program (``echo``, ``set`` and ``exit`` are handled before): return its
        output and exit code."""
        raise NotImplementedError

    def _exists(self, path: str) -> bool:
        return path.lower().rstrip("\\") in self.dirs or path.lower() in self.files


def _split(line: str, operators: tuple[str, ...]) -> list[str]:
    """Split ``line`` at the operators that stand outside quotes and parentheses and are
    not escaped with ``^``; the operators are kept as items."""
    items: list[str] = []
    current: list[str] = []
    quoted, depth, i = False, 0, 0
    while i < len(line):
        char = line[i]
        if char == "^" and not quoted and i + 1 < len(line):
            current.append(line[i : i + 2])
            i += 2
            continue
        if char == '"':
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
        elif not quoted and depth == 0:
            op = next((o for o in operators if line.startswith(o, i)), None)
            if op is not None:
                items += ["".join(current), op]
                current = []
                i += len(op)
                continue
        current.append(char)
        i += 1
    items.append("".join(current))
    return items


def _outside_quotes(text: str, pattern: re.Pattern[str], repl: Any) -> str:
    """Apply ``pattern.sub(repl)`` to the stretches of ``text`` outside double quotes
    (a match may end in a quoted redirection target)."""
    out, i = [], 0
    while i < len(text):
        if text[i] == '"':
            end = text.find('"', i + 1)
            end = len(text) if end < 0 else end + 1
            out.append(text[i:end])
            i = end
            continue
        if text[i] in "0123456789>" and (match := pattern.match(text, i)):
            if text[i] != ">" and (i > 0 and text[i - 1] not in " \t"):
                out.append(text[i])
                i += 1
                continue
            out.append(repl(match))
            i = match.end()
            continue
        out.append(text[i])
        i += 1
    return "".join(out)
