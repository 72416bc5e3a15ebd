"""The printable HTML guide (``runbook render --to html``).

The Markdown guide (with each step wrapped in a ``::: rb-step`` container) is
rendered by :data:`runbook_engine.outputs.markdown.MD` and placed in
``templates/guide.html.j2`` with ``templates/guide.css`` inlined: one
self-contained file, no network resources, print CSS for A4 (page numbers and a
running head for WeasyPrint, steps never split from their heading).  The PDF
renderer can print this same HTML.
"""

from __future__ import annotations

from markupsafe import Markup

from runbook_engine.outputs.guide_md import guide_markdown
from runbook_engine.outputs.markdown import to_html
from runbook_engine.outputs.sections import foreign_meta
from runbook_engine.outputs.templating import get_template, read_asset
from runbook_engine.tailor.tailoring import TailoredRunbook

TEMPLATE = "guide.html.j2"
STYLESHEET = "guide.css"


def render_html(tailored: TailoredRunbook, *, change_id: str | None = None) -> bytes:
    """Render the HTML guide as UTF-8 bytes.

    Raises:
        InputError: templates missing, or ``SOURCE_DATE_EPOCH`` malformed.
    """
    return guide_html(tailored, change_id=change_id).encode("utf-8")


def guide_html(tailored: TailoredRunbook, *, change_id: str | None = None) -> str:
    """Return the HTML guide as text (see :func:`render_html`)."""
    body = to_html(guide_markdown(tailored, change_id=change_id, html=True))
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
