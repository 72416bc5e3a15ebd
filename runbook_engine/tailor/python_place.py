"""Put variable references for values into a Python body, found with :mod:`tokenize`.

A placeholder that is a whole name in code becomes an expression that reads the
value from the environment; one inside a string literal (any prefix and quote
except bytes) splits the literal into adjacent literals around an f-string that
reads the variable, so the string still holds the value exactly; one in a comment
becomes the variable's name.  Everything else is refused: the value never becomes
Python source text.
"""

from __future__ import annotations

import io
import re
import tokenize
from collections.abc import Callable

_STRING = re.compile(r"(?is)([a-z]*)('''|\"\"\"|'|\")(.*)\2$")


class PlacementError(ValueError):
    """A value cannot be referred to safely and correctly at this place.

    Attributes:
        index: The placeholder's number (its slot).
    """

    def __init__(self, message: str, index: int) -> None:
        super().__init__(message)
        self.index = index


def place_python(
    text: str,
    placeholder: re.Pattern[str],
    code_ref: Callable[[int], str],
    text_ref: Callable[[int], str],
) -> str:
    """Return ``text`` with every placeholder replaced by a reference.

    Args:
        text: The rendered body holding placeholders (group 1: slot number).
        placeholder: The placeholder pattern.
        code_ref: Slot number -> a Python expression for the value (code position).
        text_ref: Slot number -> the environment variable holding the value as text.

    Raises:
        PlacementError: a placeholder stands where no reference can be correct, or
            the body does not tokenize.
    """
    found = list(placeholder.finditer(text))
    if not found:
        return text
    starts = [0]
    for line in io.StringIO(text):
        starts.append(starts[-1] + len(line))
    edits: list[tuple[int, int, str]] = []
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError) as exc:
        raise PlacementError(
            f"the body is not valid Python ({exc}); values can only be placed in valid code",
            int(found[0].group(1)),
        ) from None
    for tok in tokens:
        if not placeholder.search(tok.string):
            continue
        start = starts[tok.start[0] - 1] + tok.start[1]
        end = starts[tok.end[0] - 1] + tok.end[1]
        first = int(placeholder.search(tok.string).group(1))  # type: ignore[union-attr]
        if tok.type == tokenize.NAME and placeholder.fullmatch(tok.string):
            edits.append((start, end, code_ref(first)))
        elif tok.type == tokenize.COMMENT:
            new = placeholder.sub(lambda m: text_ref(int(m.group(1))), tok.string)
            edits.append((start, end, new))
        elif tok.type == tokenize.STRING:
            edits.append((start, end, _split_string(tok.string, placeholder, text_ref)))
        else:
            raise PlacementError(
                "a value cannot be part of a Python name or number; write it on its own "
                "(x = {{ v }}) or inside a string literal",
                first,
            )
    out, pos = [], 0
    for start, end, new in sorted(edits):
        out += [text[pos:start], new]
        pos = end
    out.append(text[pos:])
    return "".join(out)


def _split_string(literal: str, placeholder: re.Pattern[str], env_of: Callable[[int], str]) -> str:
    match = _STRING.match(literal)
    first = int(placeholder.search(literal).group(1))  # type: ignore[union-attr]
    if match is None:
        raise PlacementError("cannot read this Python string literal", first)
    prefix, quote, content = match.groups()
    lower = prefix.lower()
    if "b" in lower:
        raise PlacementError(
            "a value cannot go into a bytes literal; use a str literal and .encode()", first
        )
    pieces: list[str] = []
    pos = 0
    for found in placeholder.finditer(content):
        before = content[pos : found.start()]
        index = int(found.group(1))
        if "f" in lower and _open_fields(content[: found.start()]):
            raise PlacementError(
                "a value cannot stand inside an f-string's {...} field; write it as "
                "a plain {{ v }} in the string text or in code",
                index,
            )
        pieces += _literal(prefix, quote, before, index)
        var = env_of(index)
        pieces.append(f"f\"{{__import__('os').environ['{var}']}}\"")
        pos = found.end()
    pieces += _literal(prefix, quote, content[pos:], first)
    return " ".join(pieces)


def _literal(prefix: str, quote: str, text: str, index: int) -> list[str]:
    if not text:
        return []
    trailing = len(text) - len(text.rstrip("\\"))
    if trailing % 2:
        raise PlacementError(
            "a value cannot follow a backslash in a Python string (it would change "
            "what the backslash escapes)",
            index,
        )
    if text.endswith(quote[0]) and len(quote) == 3:
        raise PlacementError(
            "a value cannot directly follow a quote inside a triple-quoted string", index
        )
    return [f"{prefix}{quote}{text}{quote}"]


def _open_fields(text: str) -> bool:
    """True when an f-string's text ends inside an unclosed ``{...}`` field."""
    depth = 0
    cleaned = text.replace("{{", "").replace("}}", "")
    for char in cleaned:
        if char == "{":
            depth += 1
        elif char == "}" and depth:
            depth -= 1
    return depth > 0
