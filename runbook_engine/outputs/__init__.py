"""Renderers: one per output format, behind one small interface.

A :class:`Renderer` turns a :class:`~runbook_engine.tailor.tailoring.TailoredRunbook`
into the bytes of one file.  :data:`RENDERERS` maps the ``--to`` name to its
renderer.  The implementing module is imported on the first call only, so
importing this package stays cheap (heavy libraries such as WeasyPrint load
only in the command that needs them, DESIGN.md §6).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from runbook_engine.errors import InputError

if TYPE_CHECKING:
    from runbook_engine.tailor.tailoring import TailoredRunbook


@dataclass(frozen=True, slots=True)
class Renderer:
    """One output format.

    Attributes:
        name: The ``--to`` name (``md``, ``html``).
        suffix: File suffix with the dot (``.md``), for default output names.
        media_type: IANA media type of the output (RFC 6838), e.g. ``text/html``.
        target: ``"module:function"`` that implements :meth:`render`.
    """

    name: str
    suffix: str
    media_type: str
    target: str

    def render(self, tailored: TailoredRunbook, *, change_id: str | None = None) -> bytes:
        """Render ``tailored`` (UTF-8 bytes for text formats).

        Args:
            tailored: The runbook filled in for one environment, or generic.
            change_id: The change ticket this guide is for, shown in the guide.

        Raises:
            InputError: the templates cannot be found or a setting
                (``SOURCE_DATE_EPOCH``) is malformed.
        """
        module, _, function = self.target.partition(":")
        implementation = getattr(importlib.import_module(module), function)
        return implementation(tailored, change_id=change_id)


RENDERERS: dict[str, Renderer] = {
    r.name: r
    for r in (
        Renderer(
            "md",
            ".md",
            "text/markdown; charset=utf-8",
            "runbook_engine.outputs.guide_md:render_markdown",
        ),
        Renderer(
            "html",
            ".html",
            "text/html; charset=utf-8",
            "runbook_engine.outputs.guide_html:render_html",
        ),
        Renderer("pdf", ".pdf", "application/pdf", "runbook_engine.outputs.pdf:render_pdf"),
        Renderer(
            "ipynb",
            ".ipynb",
            "application/x-ipynb+json",
            "runbook_engine.outputs.notebook:render_ipynb",
        ),
    )
}


def get_renderer(name: str) -> Renderer:
    """Return the renderer for ``--to name``.

    Raises:
        InputError: no renderer of that name (the message lists the known ones).
    """
    try:
        return RENDERERS[name]
    except KeyError:
        known = ", ".join(sorted(RENDERERS))
        raise InputError.single(
            f"unknown output format {name!r}; use one of: {known}", code="RB250"
        ) from None


__all__ = ["RENDERERS", "Renderer", "get_renderer"]
