"""Small helpers that write Markdown text safely (CommonMark 0.31 escaping rules).

Everything the guide takes from a runbook or an environment and puts into
Markdown goes through one of these, so a value holding ``*``, ``|``, ``<`` or
backticks shows as written and cannot change the document's structure.
"""

from __future__ import annotations

import re

_INLINE_SPECIAL = re.compile(r"([\\`*_\[\]<>|~])")
_ENTITY_LIKE = re.compile(r"&(?=#?\w+;)")
_BACKTICKS = re.compile(r"`+")
_LIST_MARKERS = str.maketrans("0123456789.)-*+", " " * 15)


def escape(text: str) -> str:
    """Return ``text`` as literal inline Markdown (one line; newlines become spaces)."""
    text = " ".join(str(text).split("\n"))
    return _ENTITY_LIKE.sub("&amp;", _INLINE_SPECIAL.sub(r"\\\1", text))


def code(text: str) -> str:
    """Return ``text`` as an inline code span (CommonMark §6.1), on one line."""
    text = " ".join(str(text).split("\n"))
    longest = max((len(m) for m in _BACKTICKS.findall(text)), default=0)
    ticks = "`" * (longest + 1)
    if text.startswith(("`", " ")) or text.endswith(("`", " ")):
        text = f" {text} "
    return f"{ticks}{text}{ticks}"


def cell(markdown: str) -> str:
    """Make Markdown fit in one GFM table cell: one line, pipes escaped, never empty."""
    text = " ".join(markdown.split("\n")).strip()
    text = re.sub(r"(?<!\\)\|", r"\\|", text)
    return text or " "


def fence_for(body: str, char: str = "`") -> str:
    """Return a code fence longer than any run of ``char`` in ``body`` (at least 3)."""
    longest = max((len(m) for m in re.findall(re.escape(char) + "+", body)), default=0)
    return char * max(3, longest + 1)


def continuation(prefix: str) -> str:
    """Return the prefix for the lines after the first one of a block in a container.

    List markers become spaces (the list item's content indent) and ``>`` stays,
    so ``"1. "`` gives ``"   "`` and ``"> 1. "`` gives ``">    "``.
    """
    cont = prefix.translate(_LIST_MARKERS)
    if cont.endswith(">"):
        cont += " "
    return cont


def prefix_lines(text: str, first: str, rest: str | None = None) -> str:
    """Prefix every line of ``text``: ``first`` on line 1, ``rest`` on the others.

    Empty lines get the prefix without trailing blanks (``">"`` in a blockquote,
    ``""`` in a list item), so no line ends in spaces that could mean a hard break.
    """
    rest = first if rest is None else rest
    out = []
    for i, line in enumerate(text.split("\n")[:-1] if text.endswith("\n") else text.split("\n")):
        prefix = first if i == 0 else rest
        out.append(prefix + line if line else prefix.rstrip())
    return "\n".join(out) + "\n"


def is_blank_line(line: str) -> bool:
    """True when a Markdown line is blank once container markers (``>``) are removed."""
    return line.strip(" \t>") == ""
