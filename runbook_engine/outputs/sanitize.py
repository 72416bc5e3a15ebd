"""Raw HTML in guides: navigation kept, everything else through an allow-list sanitizer.

Runbooks adopted from wikis and vendor docs hold raw HTML: ``<a name='install'></a>``
anchors in headings, ``<div id="tab-linux">`` tab panes, ``<details>``.  The guide's HTML
is rendered with raw HTML passed through, then the whole fragment goes through nh3
(ammonia, the html5ever parser; https://nh3.readthedocs.io) with an allow-list:

* tags: nh3's defaults (text, lists, tables, ``div``, ``span``, ``details``...) — never
  ``script``, ``style``, ``iframe``, ``form``, ``input``, event handlers or ``style=``
  (but ``counter-reset``/``text-align`` that the renderer itself writes);
* attributes: ``id``, ``class``, ``title``, ``lang``, ``dir`` on every tag, ``name`` on
  ``a``; links only ``http``, ``https``, ``mailto`` or in-page (``#x``); images only inline
  ``data:image/`` (a guide never loads anything from the network);
* ``<a name="x">`` also gets ``id="x"``, so old-style anchors are link targets.

Values never reach this as markup: prose values are escaped as text before Markdown is
rendered (:mod:`runbook_engine.tailor.prose`); the sanitizer is the second wall.
"""

from __future__ import annotations

import re

import nh3

_TAGS = set(nh3.ALLOWED_TAGS)
_ATTRIBUTES: dict[str, set[str]] = {
    tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()
}
_ATTRIBUTES["*"] = {"id", "class", "title", "lang", "dir", "aria-hidden"}
_ATTRIBUTES.setdefault("a", set()).add("name")
for _tag in ("ol", "td", "th"):
    _ATTRIBUTES.setdefault(_tag, set()).add("style")
_STYLES = {"counter-reset", "text-align"}
_SCHEMES = {"http", "https", "mailto", "data"}
_NAME_ANCHOR = re.compile(r"<a\b[^>]*>", re.IGNORECASE)
_NAME = re.compile(r"""\bname\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>"']+))""", re.IGNORECASE)
_NO_SRC_IMAGE = re.compile(r"<img(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
_HAS_ID = re.compile(r"\bid\s*=", re.IGNORECASE)


def _filter(tag: str, attribute: str, value: str) -> str | None:
    if attribute == "src" and tag == "img" and not value.startswith("data:image/"):
        return None
    if attribute == "href" and value.lower().startswith("data:"):
        return None
    return value


def name_anchors(html: str) -> str:
    """Give every ``<a name="x">`` of ``html`` an ``id="x"`` too (an in-page link target)."""

    def fix(m: re.Match[str]) -> str:
        tag = m.group(0)
        found = _NAME.search(tag)
        if found is None or _HAS_ID.search(tag):
            return tag
        name = next(g for g in found.groups() if g is not None)
        quoted = name.replace("&", "&amp;").replace('"', "&quot;")
        return tag[:2] + f' id="{quoted}"' + tag[2:]

    return _NAME_ANCHOR.sub(fix, html)


def sanitize(html: str) -> str:
    """Return the HTML fragment ``html`` with only allowed tags and attributes (module doc)."""
    cleaned = nh3.clean(
        name_anchors(html),
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        attribute_filter=_filter,
        url_schemes=_SCHEMES,
        link_rel=None,
        filter_style_properties=_STYLES,
        strip_comments=True,
    )
    return _NO_SRC_IMAGE.sub("", cleaned)  # an image whose source was refused is no image
