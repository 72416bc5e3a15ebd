"""Variable references for PowerShell (``$env:V``) and cmd (``!V!``) bodies (see
:mod:`binding` for the rules)."""

from __future__ import annotations

import re
from typing import Any

from runbook_engine.tailor.slots import BindingError, Env, Slot, refuse, value_text


# -- powershell ---------------------------------------------------------------------------
def powershell_body(text: str, pattern: re.Pattern[str], env: Env, fixed: Any) -> str:
    """``text`` with every placeholder replaced by a PowerShell reference."""
    pieces = pattern.split(text)
    state = _PsState()
    out: list[str] = []
    for n, piece in enumerate(pieces):
        if n % 2 == 0:
            state.feed(piece)
            out.append(piece)
            continue
        index = int(piece)
        ref = _ps_ref(env, index, fixed(index), state, env.slots.items[index])
        out.append(ref)
        state.line += ref
    return "".join(out)


class _PsState:
    """Quoting state of a PowerShell body: none, single, double, here-single, here-double,
    comment, block-comment; ``line`` is the statement text so far."""

    SINGLE = "'\u2018\u2019\u201a\u201b"
    DOUBLE = '"\u201c\u201d\u201e'

    def __init__(self) -> None:
        self.context = "none"
        self.line = ""

    def feed(self, text: str) -> None:
        i, ctx = 0, self.context
        while i < len(text):
            c = text[i]
            self.line = "" if c == "\n" and ctx == "none" else self.line + c
            if ctx == "none":
                if c == "`":
                    i += 1
                elif text.startswith("<#", i):
                    ctx = "block-comment"
                elif c == "#":
                    ctx = "comment"
                elif text.startswith("@'", i) and text[i + 2 : i + 3] in ("\n", "\r"):
                    ctx, i = "here-single", i + 1
                elif text.startswith('@"', i) and text[i + 2 : i + 3] in ("\n", "\r"):
                    ctx, i = "here-double", i + 1
                elif c in self.SINGLE:
                    ctx = "single"
                elif c in self.DOUBLE:
                    ctx = "double"
            elif ctx == "comment":
                if c == "\n":
                    ctx = "none"
            elif ctx == "block-comment":
                if text.startswith("#>", i):
                    ctx, i = "none", i + 1
            elif ctx == "single":
                if c in self.SINGLE:
                    if text[i + 1 : i + 2] and text[i + 1] in self.SINGLE:
                        i += 1
                    else:
                        ctx = "none"
            elif ctx == "double":
                if c == "`":
                    i += 1
                elif c in self.DOUBLE:
                    if text[i + 1 : i + 2] and text[i + 1] in self.DOUBLE:
                        i += 1
                    else:
                        ctx = "none"
            elif ctx in ("here-single", "here-double"):
                close = "'@" if ctx == "here-single" else '"@'
                if c == "\n" and text[i + 1 :].startswith(close):
                    ctx, i = "none", i + 2
            i += 1
        self.context = ctx


_PS_CODE = re.compile(
    r"(?i)\b(invoke-expression|iex|scriptblock\]::create|add-type|invoke-command)\b|"
    r"(?i:-command\b|-encodedcommand\b|\bcmd(\.exe)?\s+/[ck]\b|\bpowershell(\.exe)?\b)"
)


def _ps_ref(env: Env, index: int, known: str | None, state: _PsState, slot: Slot) -> str:
    ctx = state.context
    value = slot.value
    var = known or env.var(index, value_text(value))
    if ctx in ("comment", "block-comment"):
        return "$env:" + var
    if ctx in ("single", "here-single"):
        raise refuse(
            "a value cannot go inside a single-quoted PowerShell string (nothing expands "
            'there); use double quotes: "...{{ v }}..."',
            slot,
        )
    if _PS_CODE.search(state.line):
        raise refuse(
            "a value cannot be part of a command that PowerShell or cmd parses again "
            "(Invoke-Expression, -Command, cmd /c...); pass $env:NAME to the command instead",
            slot,
        )
    if ctx in ("double", "here-double"):
        return "$($env:" + var + ")"
    if isinstance(value, bool) and known is None:
        return f"($env:{var} -eq 'true')"
    if isinstance(value, int) and known is None:
        return f"([long]$env:{var})"
    if isinstance(value, (list, tuple)) and known is None:
        return f"@(($env:{var} -split ' ') | Where-Object {{ $_ -ne '' }})"
    return "$($env:" + var + ")"


# -- cmd ----------------------------------------------------------------------------------
_CMD_REPARSE = re.compile(
    r"(?i)(^|[\s&|(])(call|cmd(\.exe)?\s+/[ck]|start|powershell(\.exe)?)\b|for\s+/f\b[^\n]*"
    r"\bin\s*\(\s*['`]"
)


def cmd_body(text: str, pattern: re.Pattern[str], env: Env, fixed: Any) -> str:
    """``text`` with every placeholder replaced by ``!NAME!`` (delayed expansion)."""
    pieces = pattern.split(text)
    out: list[str] = []
    uses = False
    for n, piece in enumerate(pieces):
        if n % 2 == 0:
            out.append(piece)
            continue
        index = int(piece)
        slot = env.slots.items[index]
        known = fixed(index)
        done = "".join(out)
        line = done[done.rfind("\n") + 1 :]
        if _CMD_REPARSE.search(line):
            raise refuse(
                "a value cannot go into a command that cmd.exe parses a second time "
                "(call, cmd /c, start, powershell, for /f ('...')); its characters would "
                "be read as cmd syntax",
                slot,
            )
        var = known or env.var(index, value_text(slot.value))
        if "\n" in env.env.get(var, "") or "\r" in env.env.get(var, ""):
            raise refuse("a value with a line break cannot be passed to a cmd step", slot)
        splits = re.search(r"[\s,;=]", env.env.get(var, "")) is not None
        out.append(f'"!{var}!"' if splits and not _cmd_bare(line) else f"!{var}!")
        uses = True
    body = "".join(out)
    if uses:
        for number, line in enumerate(body.split("\n"), 1):
            if re.search(r"(?<!\^)!", _strip_refs(line)):
                raise BindingError(
                    "this cmd body reads values with delayed expansion (!NAME!), which "
                    "removes a literal '!': write it as ^^! (outside quotes) or ^! (inside)",
                    number,
                )
        body = "@setlocal EnableDelayedExpansion\n" + body
    return body


#: Built-in commands that take the rest of the line as text (no argument splitting).
_CMD_TEXT_VERBS = frozenset({"echo", "set", "title", "rem", "echo."})


def _cmd_bare(line: str) -> bool:
    """True when a reference at the end of ``line`` needs no quotes: it is inside double
    quotes already, or an argument of ``echo``/``set``/``title``, which take the rest of
    the line as text.  Elsewhere a value holding a space, comma, semicolon or ``=`` is
    quoted, because built-in commands (``rmdir``, ``del``, ``copy``...) split their
    arguments there after delayed expansion: ``C:\\a,C:\\b`` would be two paths."""
    quoted = False
    start = 0
    i = 0
    while i < len(line):
        char = line[i]
        if char == '"':
            quoted = not quoted
        elif char == "^" and not quoted:
            i += 1
        elif not quoted and char in "&|(":
            start = i + 1
        i += 1
    if quoted:
        return True
    segment = line[start:]
    segment = re.sub(r'^\s*(?:\d?>>?\s*(?:"[^"]*"|\S+)\s*)*', "", segment)
    segment = re.sub(r"(?i)^.*\bdo\s+", "", segment)
    words = segment.lstrip("@ ").split(maxsplit=1)
    return bool(words) and words[0].lower() in _CMD_TEXT_VERBS


def _strip_refs(line: str) -> str:
    """``line`` without its delayed-expansion references: ``!NAME!``, ``!NAME:old=new!``
    (substitution) and ``!NAME:~n,m!`` (substring), which are not literal ``!``."""
    return re.sub(r"!\w+(?::[^!\n]*)?!", "", line)


#: What guides, plans and gates say next to a body whose values are shown inline.
