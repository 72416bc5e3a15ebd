"""The part of cmd.exe the seed runbooks use, for the scripted hosts of tests/e2e_support.py.

:class:`CmdShell` runs batch text: ``%VAR%`` and ``%%v`` expansion (phase 1), ``^``
escapes, ``&``, ``&&``, ``||``, ``|`` (``&`` binds loosest, then ``&&``/``||``, then ``|``),
``>``/``>>`` redirection into :attr:`CmdShell.files`, ``( )`` blocks, ``if [not] exist``,
``if [/i] "a"=="b" (..) else (..)``, ``for %%v in (..)`` (the set split at spaces, ``,``
``;`` and ``=`` after delayed expansion), ``for /f "tokens=..,*
delims=.." %%a in ('..')``, ``for /f "usebackq delims=" %%L in ("file") do ..``,
``setlocal EnableDelayedExpansion`` with ``!NAME!`` and ``!NAME:old=new!``, ``rem``, ``set``, ``echo`` and ``exit /b``.
As in cmd.exe, ``for`` variables and ``!NAME!`` are substituted after the line has been
parsed (phases 4 and 5): their text is never read as operators, quotes or redirections;
only a program's own argument splitting (``CommandLineToArgvW``) sees it.  Everything else is a
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
_FOR_FILE = re.compile(
    r'for /f "([^"]*usebackq[^"]*)" %(\w) in \("([^"]*)"\) do (.*)$', re.I | re.S
)
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
    _uploads: dict[str, bytes]
    _late: list[str]
    _delayed: bool

    def run_script(self, text: str, uploads: dict[str, bytes] | None = None) -> tuple[str, int]:
        """Run ``text`` (a batch file when it has several lines, else one command line).

        Args:
            uploads: Files a ``for /f ... in ("file")`` may read (full path -> bytes).

        Returns:
            The output (stdout and stderr together) and the exit code.
        """
        self._uploads = {k.lower(): v for k, v in (uploads or {}).items()}
        self._late, self._delayed = [], False
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
    # -- text substituted after parsing (for variables, delayed expansion) -------------
    def late(self, text: str) -> str:
        """A token standing for ``text`` until the point of use (no parsing sees it)."""
        self._late.append(text)
        return f"\x00{len(self._late) - 1}\x00"

    def resolve(self, text: str) -> str:
        """Replace late tokens by their text."""
        return re.sub("\x00(\\d+)\x00", lambda m: self._late[int(m.group(1))], text)

    def bang(self, text: str, env: dict[str, str]) -> str:
        """Phase 5, delayed expansion, for text holding ``!``: the caret escapes of phase 2
        (outside quotes) are applied, then every ``^`` escapes the next character and
        ``!NAME!`` becomes the variable's value (undefined: nothing; a lone ``!`` goes)."""
        if not getattr(self, "_delayed", False) or "!" not in text:
            return text
        phase2, quoted, i = [], False, 0
        while i < len(text):
            if text[i] == '"':
                quoted = not quoted
            elif text[i] == "^" and not quoted and i + 1 < len(text):
                phase2.append(text[i + 1])
                i += 2
                continue
            phase2.append(text[i])
            i += 1
        rest, out, i = "".join(phase2), [], 0
        while i < len(rest):
            char = rest[i]
            if char == "^" and i + 1 < len(rest):
                out.append(rest[i + 1])
                i += 2
            elif char == "!":
                end = rest.find("!", i + 1)
                if end > i + 1:
                    out.append(self.late(_substitute(rest[i + 1 : end], env)))
                    i = end + 1
                else:
                    i = end + 1 if end == i + 1 else i + 1
            else:
                out.append(char)
                i += 1
        return "".join(out)

    def _line(self, line: str, env: dict[str, str], stdin: str) -> tuple[str, int]:
        line = line.strip()
        if re.match(r"(?i)@?rem(\s|$)|::", line):  # phase 2 ends at REM: nothing else runs
            return "", 0
        if match := _FOR_FILE.match(line):
            return self._for_file(match, env)
        if match := _FOR_F.match(line):
            return self._for_f(match, env)
        if match := _FOR.match(line):
            # the set is expanded (delayed expansion) and split at cmd's delimiters
            items = re.split(r"[\s,;=]+", self.resolve(self.bang(match.group(2), env)))
            out, code = [], 0
            for item in [i for i in items if i]:
                text, code = self._line(
                    match.group(3).replace("%" + match.group(1), item), env, stdin
                )
                out.append(text)
            return "".join(out), code
        if match := _IF_EXIST.match(line):
            exists = self._exists(self.resolve(self.bang(match.group(2), env)))
            if exists != bool(match.group(1)):
                return self._line(match.group(3), env, stdin)
            return "", 0
        if match := _IF_CMP.match(line):
            left = self.resolve(self.bang(match.group(2), env))
            right = self.resolve(self.bang(match.group(3), env))
            same = left.lower() == right.lower() if match.group(1) else left == right
            return self._line(match.group(4) if same else match.group(5), env, stdin)
        return self._chain(line, env, stdin)

    def _for_f(self, match: re.Match[str], env: dict[str, str]) -> tuple[str, int]:
        inner = re.sub(r"\^(.)", r"\1", match.group(3))
        text, _ = self._line(inner, env, "")
        return self._for_rows(match.group(1), match.group(2), match.group(4), text, env)

    def _for_file(self, match: re.Match[str], env: dict[str, str]) -> tuple[str, int]:
        path = self.resolve(self.bang(match.group(3), env)).lower()
        data = getattr(self, "_uploads", {}).get(path)
        if data is None and path in self.files:
            data = self.files[path].encode("utf-8")
        if data is None:
            return "The system cannot find the file specified.\r\n", 1
        return self._for_rows(
            match.group(1), match.group(2), match.group(4), data.decode("utf-8"), env
        )

    def _for_rows(
        self, options_text: str, letter: str, body: str, text: str, env: dict[str, str]
    ) -> tuple[str, int]:
        """Run ``body`` once per line of ``text`` (``tokens``, ``delims``; lines starting
        with ``;`` and lines without a requested token are skipped); the tokens are
        substituted after parsing (late tokens)."""
        options = dict(re.findall(r"(\w+)=(\S*)", options_text))
        wanted = (options.get("tokens") or "1").split(",")
        delims = options.get("delims", " \t") if "delims" in options else " \t"
        out, code = [], 0
        for row in text.replace("\r\n", "\n").split("\n"):
            if not row or row.startswith(";"):
                continue
            spans = list(re.finditer("[^" + re.escape(delims) + "]+", row)) if delims else []
            if delims and not spans:
                continue
            values: list[str] = []
            after = 0  # index of the token after the highest numbered one
            for token in wanted:
                if not delims:
                    values.append(row)
                    continue
                if token == "*":
                    values.append(row[spans[after].start() :] if after < len(spans) else "")
                    continue
                after = int(token)
                values.append(spans[after - 1].group() if after <= len(spans) else "")
            if not any(values):
                continue
            command = body
            for offset, value in enumerate(values):
                command = command.replace("%" + chr(ord(letter) + offset), self.late(value))
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
        command = self.bang(command, env)
        text, code = self._builtin(command, env, stdin)
        for mode, raw in redirects:
            path = self.resolve(self.bang(raw, env))
            if path.lower() != "nul":
                old = self.files.get(path.lower(), "") if mode == ">>" else ""
                self.files[path.lower()] = old + text
            text = ""
        return text, code

    def _builtin(self, command: str, env: dict[str, str], stdin: str) -> tuple[str, int]:
        verb = command.split(" ", 1)[0].lower().lstrip("@")
        rest = command[len(verb) :].strip() if " " in command else ""
        if verb == "echo":
            return self.resolve(rest) + "\r\n", 0
        if verb == "set":
            rest = self.resolve(rest)
            if rest.startswith('"'):  # set "NAME=value": up to the last quote
                end = rest.rfind('"')
                rest = rest[1:end] if end > 0 else rest[1:]
            name, _, value = rest.partition("=")
            if value:
                env[name.upper()] = value
            else:
                env.pop(name.upper(), None)
            return "", 0
        if verb == "setlocal":
            if "enabledelayedexpansion" in rest.lower():
                self._delayed = True
            return "", 0
        if verb == "endlocal":
            self._delayed = False
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


def _substitute(inner: str, env: dict[str, str]) -> str:
    """``NAME`` or ``NAME:old=new`` of ``!...!``: the value, with every ``old`` (any case)
    replaced by ``new`` (``set /?``: environment variable substitution)."""
    name, colon, spec = inner.partition(":")
    value = env.get(name.upper(), "")
    old, equals, new = spec.partition("=")
    if not colon or not equals or not old:
        return env.get(inner.upper(), "")
    return re.sub(re.escape(old), lambda _: new, value, flags=re.I)


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
