"""Values in prose are text: each ``{{ expression }}`` of a prose stretch (or of a
``manual`` step's instructions) is put into the Markdown so that it reads as written and
never becomes markup.

The template is rendered with a placeholder for every expression output
(:class:`~runbook_engine.tailor.slots.Slots`); the result is parsed with markdown-it-py
(CommonMark) to learn where each placeholder stands, then each is replaced by its value:

* in a code span, a fenced or an indented code block: the value as it is (backslashes
  would show there; code keeps values raw, as before);
* in raw HTML (``<b>{{ v }}</b>`` written by the runbook's author): HTML-escaped;
* anywhere else: Markdown-escaped (CommonMark §2.4: a backslash before any ASCII
  punctuation makes it literal): ``\\ ` * _ [ ] < > | ~`` and ``&`` of an entity, plus a
  ``#``, ``>``, ``-``, ``+``, ``=`` or ``1.`` that would start a heading, quote, list or
  setext underline where the value begins a line.  Line breaks become spaces.

So ``[x](http://evil)`` shows as that text (no link), ``**b**`` with its asterisks, and
``<script>`` as text.
"""

from __future__ import annotations

import html
import re
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token

from runbook_engine.tailor.slots import Slots

_MD = MarkdownIt("commonmark")
_INLINE_SPECIAL = re.compile(r"([\\`*_\[\]<>|~])")
_ENTITY_LIKE = re.compile(r"&(?=#?\w+;)")
_LINE_START = re.compile(r"^(\s*)([#>+=-]|\d+(?=[.)]))")
#: What may stand before a value that begins a line: indentation, quote and list markers.
_LEAD = re.compile(r"[ \t>]*(?:(?:[-*+]|\d+[.)])[ \t]+)?[ \t>]*")
_CODE = ("code_inline", "fence", "code_block")
_HTML = ("html_inline", "html_block")


def markdown_text(value: str, *, line_start: bool = False) -> str:
    """Return ``value`` as literal inline Markdown, on one line.

    Args:
        value: The text.
        line_start: The value begins a line, where ``#``, ``>``, ``-``, ``+``, ``=`` or
            ``1.`` would start a block: that character is escaped too.
    """
    text = " ".join(str(value).split("\n"))
    text = _ENTITY_LIKE.sub("&amp;", _INLINE_SPECIAL.sub(r"\\\1", text))
    if line_start:
        m = _LINE_START.match(text)
        if m:
            mark = m.group(2)
            escaped = mark + "\\" if mark.isdigit() else "\\" + mark
            text = m.group(1) + escaped + text[m.end() :]
    return text


def insert_as_text(rendered: str, slots: Slots) -> str:
    """Replace the placeholders of ``slots`` in ``rendered`` (Markdown) by their values,
    each escaped for where it stands (see the module doc)."""
    if not slots.items:
        return rendered
    pattern = slots.pattern
    places: dict[int, str] = {}
    for token in _walk(_MD.parse(rendered)):
        where = "code" if token.type in _CODE else "html" if token.type in _HTML else None
        if where:
            for m in pattern.finditer(token.content):
                places.setdefault(int(m.group(1)), where)

    def value(m: re.Match[str]) -> str:
        text = _text(slots.items[int(m.group(1))].value)
        where = places.get(int(m.group(1)))
        if where == "code":
            return text
        if where == "html":
            return html.escape(text)
        before = rendered[rendered.rfind("\n", 0, m.start()) + 1 : m.start()]
        return markdown_text(text, line_start=bool(_LEAD.fullmatch(before)))

    return pattern.sub(value, rendered)


def _walk(tokens: list[Token]) -> Any:
    for token in tokens:
        yield token
        if token.children:
            yield from _walk(token.children)


def _text(value: Any) -> str:
    """A value's text as jinja would print it."""
    return str(value)
