"""The one configured markdown-it-py instance that turns guide Markdown into HTML.

CommonMark plus GFM tables and strikethrough, task lists (mdit-py-plugins) shown
as printable ``☐`` boxes, and ``::: rb-step`` containers (mdit-py-plugins)
that wrap each step in a ``<div>`` so print CSS can keep it on one page.

Raw HTML passes through the allow-list sanitizer of :mod:`.sanitize` (nh3): navigation
(``<a name>``/``<a id>`` anchors, ``<div id>`` tab panes, ``<details>``) is kept, scripts,
event handlers and foreign resources are not.  Every heading gets a stable ``id`` (GitHub's
slug of its text, made unique) unless it holds an anchor of its own.  Images that are not
inline ``data:`` URIs become text, so a guide never loads anything from the network.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.rules_core import StateCore
from markdown_it.token import Token
from mdit_py_plugins.container import container_plugin
from mdit_py_plugins.tasklists import tasklists_plugin

from runbook_engine.outputs.sanitize import sanitize

STEP_CONTAINER = "rb-step"
#: A box inside a step (``::: rb-box writein``): a field to write in by hand.
BOX_CONTAINER = "rb-box"
UNCHECKED, CHECKED = "☐", "☒"
_EXPLICIT_ID = re.compile(r"""<[^>]*?\b(?:id|name)\s*=\s*["']?([^"'\s>]+)""", re.IGNORECASE)
_SLUG_DROP = re.compile(r"[^\w\- ]", re.UNICODE)
_CLASS = re.compile(r"^[A-Za-z][\w-]*$")


def _heading_ids(state: StateCore) -> None:
    """Give every heading without an anchor of its own a unique ``id`` (GitHub's slug)."""
    taken = set(_EXPLICIT_ID.findall("".join(t.content for t in _all(state.tokens))))
    tokens = state.tokens
    for i, token in enumerate(tokens):
        if token.type != "heading_open" or token.attrGet("id"):
            continue
        children = tokens[i + 1].children or []
        if any(c.type == "html_inline" and _EXPLICIT_ID.search(c.content) for c in children):
            continue
        text = "".join(c.content for c in children if c.type in ("text", "code_inline"))
        base = _SLUG_DROP.sub("", text.strip().lower()).replace(" ", "-") or "section"
        slug, n = base, 0
        while slug in taken:
            n += 1
            slug = f"{base}-{n}"
        taken.add(slug)
        token.attrSet("id", slug)


def _all(tokens: Sequence[Token]) -> Any:
    for token in tokens:
        if token.type in ("html_inline", "html_block"):
            yield token
        if token.children:
            yield from _all(token.children)


def plain_text(markdown: str) -> str:
    """The text of one line of inline Markdown without its markup (``**(PREMIUM)**`` ->
    ``(PREMIUM)``; raw HTML dropped)."""
    tokens = MarkdownIt("commonmark").parseInline(markdown)
    children = tokens[0].children or [] if tokens else []
    return "".join(
        c.content if c.type in ("text", "code_inline") else " " if c.type == "softbreak" else ""
        for c in children
    ).strip()


def _image(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    token = tokens[idx]
    src = str(token.attrGet("src") or "")
    if src.startswith("data:image/"):
        return self.image(tokens, idx, options, env)
    alt = self.renderInlineAsText(token.children or [], options, env)
    return f'<span class="image-ref">[image: {escapeHtml(alt)}] ({escapeHtml(src)})</span>'


def _checkbox(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    mark = CHECKED if tokens[idx].meta.get("checked") else UNCHECKED
    return f'<span class="checkbox" aria-hidden="true">{mark}</span>'


def _step_container(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    token = tokens[idx]
    if token.nesting != 1:
        return "</div>\n"
    classes = [c for c in token.info.split()[1:] if _CLASS.match(c)] or ["step"]
    return f'<div class="{" ".join(classes)}">\n'


def _ordered_list(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    """``<ol start=N>`` also as a counter reset: WeasyPrint ignores ``start``."""
    token = tokens[idx]
    start = token.attrGet("start")
    if start is not None and str(start).isdigit():
        token.attrSet("style", f"counter-reset: list-item {int(start) - 1}")
    return self.renderToken(tokens, idx, options, env)


def _checkboxes(state: StateCore) -> None:
    """Turn the task-list plugin's ``<input type=checkbox>`` into ``rb_checkbox`` tokens."""
    for block in state.tokens:
        for i, child in enumerate(block.children or []):
            if child.type == "html_inline" and child.content.startswith(
                '<input class="task-list-item-checkbox"'
            ):
                box = Token("rb_checkbox", "", 0)
                box.meta = {"checked": 'checked="checked"' in child.content}
                block.children[i] = box  # type: ignore[index]


def _build() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": True, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    md.use(tasklists_plugin)
    md.use(container_plugin, name=STEP_CONTAINER, render=_step_container)
    md.use(container_plugin, name=BOX_CONTAINER, render=_step_container)
    md.core.ruler.after("github-tasklists", "rb-checkboxes", _checkboxes)
    md.core.ruler.push("rb-heading-ids", _heading_ids)
    md.add_render_rule("image", _image)
    md.add_render_rule("rb_checkbox", _checkbox)
    md.add_render_rule("ordered_list_open", _ordered_list)
    return md


#: The configured instance (built once; markdown-it instances are reusable).
MD: MarkdownIt = _build()


def to_html(text: str) -> str:
    """Render guide Markdown ``text`` to an HTML fragment (sanitized, no network resources)."""
    return sanitize(MD.render(text))
