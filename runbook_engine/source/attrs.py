r"""The attribute list of a fenced block's info string.

Grammar (Pandoc's fenced-code attributes, with quoting)::

    info     := [LANG] [ "{" attr* "}" ]
    attr     := "#" ID | "." CLASS | KEY "=" VALUE
    VALUE    := BARE | '"' (char | '\\"')* '"' | "'" (char | "\\'")* "'"

A backslash escapes only the quote character, so Windows paths keep their
backslashes (``cwd="\\\\server\\share"`` is ``\\server\share``).

``BARE`` runs to the next space or ``}``; quoted values may hold spaces and
braces.  Nothing may follow the closing brace.  The attribute list never
becomes part of the language: ``{#a}`` has no language.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]*")
_LANG = re.compile(r"[^\s{]+")


class AttrSyntaxError(ValueError):
    """An attribute list is malformed.

    Attributes:
        message: What is wrong.
        col: 0-based column in the info string where it went wrong.
    """

    def __init__(self, message: str, col: int) -> None:
        super().__init__(message)
        self.message = message
        self.col = col


@dataclass(frozen=True, slots=True)
class InfoString:
    """A parsed info string.

    Attributes:
        lang: The language (step kind), ``None`` when absent.
        id: The ``#id``, ``None`` when absent.
        classes: ``.class`` names in order.
        attrs: ``key=value`` pairs (values unquoted).
        has_attrs: Whether a ``{...}`` list was present at all.
    """

    lang: str | None
    id: str | None = None
    classes: tuple[str, ...] = ()
    attrs: dict[str, str] = field(default_factory=dict)
    has_attrs: bool = False


def parse_info(info: str) -> InfoString:
    """Parse a fence info string such as ``cmd {#step-1 target=dc title="A b"}``.

    Args:
        info: The info string, without the fence characters.

    Returns:
        The language and the attributes.

    Raises:
        AttrSyntaxError: unterminated quote or list, bad key, two ids, duplicate
            key, or text after the closing brace.
    """
    pos = _skip_ws(info, 0)
    lang = None
    m = _LANG.match(info, pos)
    if m:
        lang = m.group(0)
        pos = _skip_ws(info, m.end())
    if pos >= len(info):
        return InfoString(lang)
    if info[pos] != "{":
        raise AttrSyntaxError(
            f"unexpected text {info[pos:]!r} after the language; attributes go in {{...}}", pos
        )
    ident, classes, attrs, pos = _parse_list(info, pos + 1)
    rest = info[pos:].strip()
    if rest:
        raise AttrSyntaxError(f"unexpected text {rest!r} after the closing '}}'", pos)
    return InfoString(lang, ident, tuple(classes), attrs, True)


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t":
        pos += 1
    return pos


def _parse_list(info: str, pos: int) -> tuple[str | None, list[str], dict[str, str], int]:
    ident: str | None = None
    classes: list[str] = []
    attrs: dict[str, str] = {}
    while True:
        pos = _skip_ws(info, pos)
        if pos >= len(info):
            raise AttrSyntaxError("attribute list is not closed: missing '}'", pos)
        ch = info[pos]
        if ch == "}":
            return ident, classes, attrs, pos + 1
        if ch in "#.":
            m = _NAME.match(info, pos + 1)
            if not m:
                raise AttrSyntaxError(f"expected a name after {ch!r}", pos)
            if ch == "#":
                if ident is not None:
                    raise AttrSyntaxError(
                        f"a block has one id; found #{ident} and #{m.group(0)}", pos
                    )
                ident = m.group(0)
            else:
                classes.append(m.group(0))
            pos = m.end()
            continue
        m = _NAME.match(info, pos)
        if not m:
            raise AttrSyntaxError(f"expected '#id', '.class' or key=value, found {ch!r}", pos)
        key = m.group(0)
        pos = m.end()
        if pos >= len(info) or info[pos] != "=":
            raise AttrSyntaxError(f"attribute {key!r} needs a value: {key}=VALUE", pos)
        value, pos = _parse_value(info, pos + 1)
        if key in attrs:
            raise AttrSyntaxError(f"attribute {key!r} is given twice", m.start())
        attrs[key] = value
        if pos < len(info) and info[pos] not in " \t}":
            raise AttrSyntaxError("expected a space or '}' after a value", pos)


def _parse_value(info: str, pos: int) -> tuple[str, int]:
    if pos < len(info) and info[pos] in "\"'":
        quote = info[pos]
        out: list[str] = []
        i = pos + 1
        while i < len(info):
            c = info[i]
            if c == "\\" and i + 1 < len(info) and info[i + 1] == quote:
                out.append(info[i + 1])
                i += 2
                continue
            if c == quote:
                return "".join(out), i + 1
            out.append(c)
            i += 1
        raise AttrSyntaxError(f"unterminated {quote} quote", pos)
    start = pos
    while pos < len(info) and info[pos] not in " \t}":
        if info[pos] in "\"'":
            raise AttrSyntaxError("a quote inside an unquoted value; quote the whole value", pos)
        pos += 1
    if pos == start:
        raise AttrSyntaxError('empty value; write key="" for an empty string', pos)
    return info[start:pos], pos


_DURATION = re.compile(r"(?:(\d{1,3})h)?(?:(\d{1,4})m)?(?:(\d{1,5})s)?")
#: The longest estimate a step may give (a change window is shorter than a day).
MAX_ESTIMATE = 24 * 3600


def parse_estimate(value: str) -> int:
    """Parse an ``estimate=`` attribute (``5m``, ``90s``, ``1h30m``) into whole seconds.

    Units ``h``, ``m``, ``s`` in that order, each at most once, whole numbers, no
    spaces; the total is more than 0 and at most 24 hours.

    Raises:
        ValueError: the value does not follow that form (the message says what does).
    """
    m = _DURATION.fullmatch(value)
    if value and m:
        hours, minutes, seconds = (int(g) if g else 0 for g in m.groups())
        total = hours * 3600 + minutes * 60 + seconds
        if 0 < total <= MAX_ESTIMATE:
            return total
    raise ValueError(
        f"estimate={value!r} must be a duration such as 5m, 90s or 1h30m "
        "(whole hours, minutes, seconds in that order; more than 0, at most 24h)"
    )
