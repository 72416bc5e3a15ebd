"""Where a value reference stands in a POSIX shell body (sh, dash, bash).

The scanner reads a rendered body in which every template expression has become a
placeholder token and reports, for each placeholder, the quoting context it stands in
and the simple command around it.  It is used only to choose a *correct* variable
reference (``"${V}"`` outside quotes, ``${V}`` inside double quotes...) and to refuse
places where even a reference would be read as code by another program; the value
itself never enters the body, whatever the scanner concludes.

Modelled (POSIX Shell Command Language §2.2-2.7, bash manual "Quoting", "Here
Documents"): ``\\`` escapes, ``'...'``, ``"..."``, ``$'...'``, ``$(...)``, backquotes,
``${...}``, ``$((...))`` and ``((...))``, comments (``#`` at the start of a word),
here-documents (``<<WORD``, ``<<-WORD``, quoted delimiters), here-strings (``<<<``),
and command boundaries (``; & | ( ) newline``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_KEYWORDS = frozenset({"if", "then", "else", "elif", "fi", "do", "done", "while", "until", "!"})
_KEYWORDS |= {"{", "}", "case", "esac", "for", "in", "time"}


@dataclass(frozen=True, slots=True)
class ShellSpot:
    """The surroundings of one placeholder.

    Attributes:
        context: ``none``, ``double``, ``single``, ``ansi`` (``$'...'``), ``comment``,
            ``heredoc`` (unquoted delimiter), ``heredoc-quoted`` or ``arith``.
        words: The words of the simple command before the placeholder's word, with
            quotes removed (keywords and variable assignments dropped).
        cooked: The placeholder's own word so far, with quotes removed.
        heredoc_words: For a here-document or here-string, the words of the command
            that reads it.
        herestring: The placeholder stands in a ``<<<`` word.
        after: The rest of the placeholder's line.
    """

    context: str
    words: tuple[str, ...]
    cooked: str
    heredoc_words: tuple[str, ...] = ()
    herestring: bool = False
    after: str = ""


@dataclass
class _Frame:
    kind: str  # code | double | single | ansi | brace | arith
    close: str = ""
    words: list[str] = field(default_factory=list)
    word: list[str] = field(default_factory=list)
    started: bool = False
    herestring: bool = False


def scan_shell(text: str, placeholder: re.Pattern[str]) -> dict[int, ShellSpot]:
    """Return ``{start offset: ShellSpot}`` for every match of ``placeholder`` in ``text``."""
    spots: dict[int, ShellSpot] = {}
    stack = [_Frame("code")]
    pending: list[tuple[str, bool, bool, tuple[str, ...]]] = []
    i, n = 0, len(text)

    def code() -> _Frame:
        for frame in reversed(stack):
            if frame.kind in ("code", "arith"):
                return frame
        return stack[0]

    def end_word() -> None:
        frame = code()
        if frame.started:
            word = "".join(frame.word)
            if not frame.words and (word in _KEYWORDS or re.fullmatch(r"\w+=.*", word, re.S)):
                pass
            else:
                frame.words.append(word)
        frame.word, frame.started = [], False

    def end_command() -> None:
        end_word()
        frame = code()
        frame.words, frame.herestring = [], False

    def cooked(char: str) -> None:
        frame = code()
        frame.word.append(char)
        frame.started = True

    while i < n:
        top = stack[-1]
        match = placeholder.match(text, i)
        if match:
            frame = code()
            context = {"code": "none", "arith": "arith", "brace": "none"}.get(top.kind, top.kind)
            if top.kind == "brace" and any(f.kind == "double" for f in stack):
                context = "double"
            if any(f.kind == "arith" for f in stack):
                context = "arith"
            rest = text[match.end() : text.find("\n", match.end()) % (n + 1)]
            if _bash_arith(frame.words, rest):
                context = "arith"
            spots[i] = ShellSpot(
                context,
                tuple(frame.words),
                "".join(frame.word),
                tuple(frame.words) if frame.herestring else (),
                frame.herestring,
                rest,
            )
            cooked(match.group(0))
            i = match.end()
            continue
        char = text[i]
        two = text[i : i + 2]
        if top.kind == "single":
            if char == "'":
                stack.pop()
            else:
                cooked(char)
            i += 1
            continue
        if top.kind == "ansi":
            if char == "\\" and i + 1 < n:
                cooked(text[i + 1])
                i += 2
            elif char == "'":
                stack.pop()
                i += 1
            else:
                cooked(char)
                i += 1
            continue
        if top.kind in ("double", "brace") and not (top.kind == "brace" and _in_code(stack)):
            if char == "\\" and i + 1 < n:
                cooked(text[i + 1] if text[i + 1] in '$`"\\' else text[i : i + 2])
                i += 2
            elif char == top.close or (top.kind == "double" and char == '"'):
                stack.pop()
                i += 1
            elif text.startswith("$((", i):
                stack.append(_Frame("arith", "))"))
                i += 3
            elif two == "$(":
                stack.append(_Frame("code", ")"))
                i += 2
            elif char == "`":
                stack.append(_Frame("code", "`"))
                i += 1
            elif two == "${":
                stack.append(_Frame("brace", "}"))
                i += 2
            else:
                cooked(char)
                i += 1
            continue
        # code, arith, or a ${...} outside double quotes
        if top.close and text.startswith(top.close, i):
            end_word()
            stack.pop()
            i += len(top.close)
            continue
        if char == "\\" and i + 1 < n:
            if text[i + 1] != "\n":
                cooked(text[i + 1])
            i += 2
        elif char == "#" and not code().started and top.kind == "code":
            end = text.find("\n", i)
            end = n if end < 0 else end
            for found in placeholder.finditer(text, i, end):
                spots[found.start()] = ShellSpot("comment", (), "")
            i = end
        elif char == "'":
            stack.append(_Frame("single"))
            code().started = True
            i += 1
        elif two == "$'":
            stack.append(_Frame("ansi"))
            code().started = True
            i += 2
        elif char == '"':
            stack.append(_Frame("double"))
            code().started = True
            i += 1
        elif text.startswith("$((", i) or (text.startswith("((", i) and not code().started):
            stack.append(_Frame("arith", "))"))
            i += 3 if char == "$" else 2
        elif two == "$(":
            stack.append(_Frame("code", ")"))
            i += 2
        elif char == "`":
            stack.append(_Frame("code", "`"))
            i += 1
        elif two == "${":
            stack.append(_Frame("brace", "}"))
            i += 2
        elif text.startswith("<<<", i):
            end_word()
            code().herestring = True
            i += 3
        elif two == "<<":
            end_word()
            here = re.compile(r"<<(-?)[ \t]*(?:'([^'\n]*)'|\"([^\"\n]*)\"|\\?([^\s;&|<>()]+))")
            found = here.match(text, i)
            if found is None:
                i += 2
                continue
            quoted = found.group(2) is not None or found.group(3) is not None
            delim = found.group(2) or found.group(3) or found.group(4) or ""
            quoted = quoted or text[found.start(4) - 1] == "\\" if found.group(4) else quoted
            pending.append((delim, quoted, bool(found.group(1)), tuple(code().words)))
            i = found.end()
        elif char == "\n":
            end_command()
            i += 1
            for delim, quoted, strip, words in pending:
                i = _heredoc(text, i, delim, quoted, strip, words, placeholder, spots)
            pending.clear()
        elif char in " \t":
            end_word()
            i += 1
        elif char in ";&|()":
            end_command()
            i += 1
        else:
            cooked(char)
            i += 1
    return spots


def _in_code(stack: list[_Frame]) -> bool:
    """True when the innermost quote-like frame under a ``${...}`` is code."""
    for frame in reversed(stack[:-1]):
        if frame.kind in ("double", "single", "ansi"):
            return False
        if frame.kind in ("code", "arith"):
            return True
    return True


def _bash_arith(words: list[str], rest: str) -> bool:
    """``let ...``, ``declare -i``, or a ``[[ a -eq b ]]`` comparison: arithmetic."""
    if not words:
        return False
    if words[0] == "let" or (words[0] in ("declare", "typeset", "local") and "-i" in words):
        return True
    ops = {"-eq", "-ne", "-lt", "-le", "-gt", "-ge"}
    if "[[" not in words:
        return False
    tail = rest.split("]]", 1)[0].split()
    return any(w in ops for w in words[words.index("[[") :]) or any(w in ops for w in tail)


def _heredoc(
    text: str,
    i: int,
    delim: str,
    quoted: bool,
    strip: bool,
    words: tuple[str, ...],
    placeholder: re.Pattern[str],
    spots: dict[int, ShellSpot],
) -> int:
    """Skip one here-document body starting at ``i``; record its placeholders."""
    context = "heredoc-quoted" if quoted else "heredoc"
    while i < len(text):
        end = text.find("\n", i)
        end = len(text) if end < 0 else end
        line = text[i:end]
        if (line.lstrip("\t") if strip else line) == delim:
            return end + 1 if end < len(text) else end
        for found in placeholder.finditer(text, i, end):
            spots[found.start()] = ShellSpot(context, (), "", words)
        i = end + 1
    return i
