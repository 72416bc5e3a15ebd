"""The printable HTML guide (``runbook render --to html``).

The Markdown guide (with each step wrapped in a ``::: rb-step`` container) is
rendered by :data:`runbook_engine.outputs.markdown.MD` and placed in
``templates/guide.html.j2`` with ``templates/guide.css`` inlined: one
self-contained file, no network resources, print CSS for A4 (page numbers and a
running head for WeasyPrint, steps never split from their heading).  The PDF
renderer can print this same HTML.
"""

from __future__ import annotations

import re

from markupsafe import Markup

from runbook_engine.outputs.guide_md import guide_markdown
from runbook_engine.outputs.markdown import to_html
from runbook_engine.outputs.sections import foreign_meta
from runbook_engine.outputs.templating import get_template, read_asset
from runbook_engine.tailor.tailoring import TailoredRunbook

TEMPLATE = "guide.html.j2"
STYLESHEET = "guide.css"
#: A rendered code block: its opening tags, its (escaped) text, its closing tags.
_CODE = re.compile(r'(<pre><code(?: class="language-([\w+-]+)")?>)(.*?)(</code></pre>)', re.S)


def number_lines(html: str) -> str:
    """Wrap each line of every code block in ``<span class="ln">`` so the print CSS can
    number it: on paper a wrapped line then shows as the continuation of the line above
    (no number), not as a line of its own.  A ``text`` block (the "values to copy" box,
    which has offsets of its own) is left as it is."""

    def one(m: re.Match[str]) -> str:
        if m.group(2) == "text":
            return m.group(0)
        lines = m.group(3).removesuffix("\n").split("\n")
        spans = "".join(f'<span class="ln">{line}</span>' for line in lines)
        return f"{m.group(1)}{spans}{m.group(4)}"

    return _CODE.sub(one, html)


def render_html(tailored: TailoredRunbook, *, change_id: str | None = None) -> bytes:
    """Render the HTML guide as UTF-8 bytes.

    Raises:
        InputError: templates missing, or ``SOURCE_DATE_EPOCH`` malformed.
    """
    return guide_html(tailored, change_id=change_id).encode("utf-8")


def guide_html(tailored: TailoredRunbook, *, change_id: str | None = None) -> str:
    """Return the HTML guide as text (see :func:`render_html`)."""
    body = number_lines(to_html(guide_markdown(tailored, change_id=change_id, html=True)))
    css = read_asset(STYLESHEET)
    if "</style" in css.lower():
        css = css.replace("</", "<\\/")
    env = tailored.environment
    return get_template(TEMPLATE).render(
        title=tailored.runbook.title,
        runbook_id=tailored.runbook.id,
        version=tailored.runbook.version,
        environment=env.name if env else None,
        change_id=change_id,
        css=Markup(css),
        meta=foreign_meta(tailored),
        body=Markup(body),
    )
