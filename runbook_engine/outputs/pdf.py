"""The PDF guide (``runbook render --to pdf``): the printable HTML guide printed by WeasyPrint.

The page is the HTML guide of :mod:`runbook_engine.outputs.guide_html` (its
print CSS in ``templates/guide.css`` gives A4 pages, a running head with the
runbook title, environment and change id, page numbers, steps kept with their
heading, checkboxes for steps done by hand, the sign-off block kept whole and the
first page's rules, shared with a browser printing the HTML guide), plus
``templates/guide-pdf.css`` for what only a PDF has: its page header and bookmarks
per section (WeasyPrint makes them from ``h1``-``h6``,
https://doc.courtbouillon.org/weasyprint/stable/api_reference.html "bookmark-level")
and per step.  WeasyPrint reads that file as a user stylesheet: a property guide.css
also sets for the same element is guide.css's.

WeasyPrint is an optional dependency (``pip install runbook-engine[pdf]``) and
needs Pango at run time; both are imported only here.  Nothing is fetched: the
URL fetcher refuses every URL but ``data:``.  The bytes are reproducible: with
``SOURCE_DATE_EPOCH`` set (https://reproducible-builds.org/specs/source-date-epoch/)
the document's creation and modification dates are that instant, and nothing
else in the output depends on the clock.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from markupsafe import escape

from runbook_engine.errors import InputError
from runbook_engine.outputs.guide_html import guide_html
from runbook_engine.outputs.templating import read_asset
from runbook_engine.tailor.tailoring import TailoredRunbook

PDF_STYLESHEET = "guide-pdf.css"
INSTALL_HINT = (
    "install the pdf extra: pip install 'runbook-engine[pdf]' (from a checkout of the "
    "source: pip install '.[pdf]')"
)
_RUNNING_HEAD = re.compile(r'<p class="running-head">.*?</p>', re.DOTALL)


def weasyprint_module() -> Any:
    """Import and return :mod:`weasyprint`.

    Raises:
        InputError: WeasyPrint is not installed, or its system libraries (Pango,
            HarfBuzz, fontconfig) cannot be loaded.
    """
    try:
        import weasyprint
    except ImportError:
        raise InputError.single(
            f"PDF output needs WeasyPrint: {INSTALL_HINT}", code="RB254"
        ) from None
    except OSError as exc:  # cffi could not dlopen Pango and friends
        raise InputError.single(
            f"WeasyPrint is installed but its system libraries are missing ({exc}); on Debian: "
            "apt-get install libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0",
            code="RB254",
        ) from None
    return weasyprint


def pdf_available() -> bool:
    """Return True when :func:`render_pdf` can work here (WeasyPrint and Pango load)."""
    try:
        weasyprint_module()
    except InputError:
        return False
    return True


def render_pdf(tailored: TailoredRunbook, *, change_id: str | None = None) -> bytes:
    """Render the guide as PDF bytes.

    Args:
        tailored: The runbook filled in for one environment, or generic.
        change_id: Change ticket printed in the page header and details table.

    Raises:
        InputError: WeasyPrint or its libraries are missing, templates are
            missing, or ``SOURCE_DATE_EPOCH`` is malformed.
    """
    weasyprint = weasyprint_module()
    return _print(weasyprint, pdf_html(tailored, change_id), tailored)


def pdf_html(tailored: TailoredRunbook, change_id: str | None = None) -> str:
    """The HTML page WeasyPrint prints for ``tailored`` (the guide with the PDF's page head)."""
    return _page_head(guide_html(tailored, change_id=change_id), tailored, change_id)


def stamped_guide(
    tailored: TailoredRunbook, change_id: str | None = None
) -> tuple[str, frozenset[str]]:
    """The HTML guide (:func:`~runbook_engine.outputs.guide_html.guide_html`) and the
    "Rendered at" times it may show (the clock may tick while it is made)."""
    from runbook_engine.outputs.views import rendered_at

    before = rendered_at()
    guide = guide_html(tailored, change_id=change_id)
    return guide, frozenset({before, rendered_at()})


def cached_pdf(
    tailored: TailoredRunbook,
    cache: Path,
    *,
    change_id: str | None = None,
    guide: tuple[str, frozenset[str]] | None = None,
) -> tuple[bytes, str, bool]:
    """Render the PDF guide, or reuse the one rendered before from the same inputs.

    The cache key (:func:`pdf_key`) is the SHA-256 of everything the bytes depend
    on but the clock: the HTML printed, the PDF stylesheet, the installed fonts
    (paths and sizes), the versions of runbook-engine and WeasyPrint, the
    document's metadata and ``SOURCE_DATE_EPOCH``.  Without ``SOURCE_DATE_EPOCH``
    a reused PDF keeps the date it was first rendered: the guide's "Rendered at"
    time (now, without ``SOURCE_DATE_EPOCH``) is left out of the key.

    Args:
        tailored: The runbook filled in for one environment, or generic.
        cache: Folder of cached PDFs (``<key>.pdf``), created when missing.
        change_id: Change ticket printed in the page header.
        guide: :func:`stamped_guide` of ``tailored`` when made already (the site's
            printable HTML download is the same page).

    Returns:
        ``(pdf bytes, cache key, True when reused from the cache)``.

    Raises:
        InputError: as :func:`render_pdf`.
    """
    html, key, data = lookup_pdf(tailored, cache, change_id=change_id, guide=guide)
    if data is not None:
        return data, key, True
    return print_to_cache(html, key, tailored, cache), key, False


def lookup_pdf(
    tailored: TailoredRunbook,
    cache: Path,
    *,
    change_id: str | None = None,
    guide: tuple[str, frozenset[str]] | None = None,
) -> tuple[str, str, bytes | None]:
    """The page to print, its cache key and the cached PDF (``None`` when not cached).

    Arguments as :func:`cached_pdf`; nothing is printed (the site prints the
    missing PDFs of a whole library in parallel with :func:`print_to_cache`).
    """
    text, stamps = guide if guide is not None else stamped_guide(tailored, change_id)
    html = _page_head(text, tailored, change_id)
    unstamped = html
    for stamp in stamps:
        unstamped = unstamped.replace(stamp, "\0rendered-at\0")
    key = pdf_key(unstamped, tailored)
    try:
        return html, key, (cache / f"{key}.pdf").read_bytes()
    except OSError:
        return html, key, None


def print_to_cache(html: str, key: str, tailored: TailoredRunbook, cache: Path) -> bytes:
    """Print ``html`` (from :func:`lookup_pdf`) and keep the PDF in ``cache`` as ``<key>.pdf``.

    Raises:
        InputError: as :func:`render_pdf`.
    """
    data = _print(weasyprint_module(), html, tailored)  # imported only to print (~1 s)
    cache.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".pdf-", dir=cache)
    with os.fdopen(fd, "wb") as sink:
        sink.write(data)
    os.replace(tmp, cache / f"{key}.pdf")  # whole or absent, also with builds side by side
    return data


def pdf_key(html: str, tailored: TailoredRunbook) -> str:
    """The cache key of the PDF printed from ``html`` (see :func:`cached_pdf`)."""
    from importlib.metadata import PackageNotFoundError, version

    from runbook_engine import __version__

    try:
        weasyprint_version = version("weasyprint")
    except PackageNotFoundError:
        weasyprint_version = ""

    rb = tailored.runbook
    digest = hashlib.sha256()
    for part in (
        "runbook-engine pdf cache 1",
        __version__,
        weasyprint_version,
        os.environ.get("SOURCE_DATE_EPOCH", "").strip(),
        json.dumps([list(rb.tags), " ".join(rb.summary.split())]),
        read_asset(PDF_STYLESHEET),
        _fonts(),
        html,
    ):
        digest.update(part.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()


def print_environment() -> str:
    """What every PDF is printed with besides its page (part of :func:`pdf_key`): the
    versions of runbook-engine and WeasyPrint, ``SOURCE_DATE_EPOCH``, the PDF
    stylesheet and the installed fonts."""
    from importlib.metadata import PackageNotFoundError, version

    from runbook_engine import __version__

    try:
        weasyprint_version = version("weasyprint")
    except PackageNotFoundError:
        weasyprint_version = ""
    return "\0".join(
        (
            __version__,
            weasyprint_version,
            os.environ.get("SOURCE_DATE_EPOCH", "").strip(),
            read_asset(PDF_STYLESHEET),
            _fonts(),
        )
    )


@functools.lru_cache(maxsize=1)
def _fonts() -> str:
    """The font files fontconfig may hand WeasyPrint (path and size), one a line."""
    home = Path.home()
    roots = [Path("/usr/share/fonts"), Path("/usr/local/share/fonts")]
    roots += [home / ".fonts", home / ".local" / "share" / "fonts"]
    lines = []
    for root in roots:
        for folder, _dirs, names in os.walk(root):
            for name in names:
                path = os.path.join(folder, name)
                with contextlib.suppress(OSError):
                    lines.append(f"{path} {os.stat(path).st_size}")
    return "\n".join(sorted(lines))


def _print(weasyprint: Any, html: str, tailored: TailoredRunbook) -> bytes:
    """Print ``html`` with WeasyPrint; the document's metadata from ``tailored``."""
    stamp = _document_date()
    fetcher = _data_only_fetcher(weasyprint)
    document = weasyprint.HTML(string=html, base_url=None, url_fetcher=fetcher).render(
        stylesheets=[weasyprint.CSS(string=read_asset(PDF_STYLESHEET), url_fetcher=fetcher)]
    )
    meta = document.metadata
    meta.created = stamp
    meta.modified = stamp
    meta.keywords = list(tailored.runbook.tags)
    meta.description = " ".join(tailored.runbook.summary.split()) or None
    meta.generator = "runbook-engine"
    return bytes(document.write_pdf())


def _page_head(html: str, tailored: TailoredRunbook, change_id: str | None) -> str:
    """Split the guide's one-line running head into the two parts of the PDF's page header.

    The title goes to the top left (it may wrap); environment and change id go to
    the top right and never wrap, so the change id is always whole on every page.
    """
    env = tailored.environment
    meta = f"Environment: {env.name if env else 'generic'}"
    if change_id:
        meta += f" · Change: {change_id}"
    head = (
        f'<div class="pdf-head"><p class="pdf-head-title">{escape(tailored.runbook.title)}'
        f'</p><p class="pdf-head-meta">{escape(meta)}</p></div>'
    )
    return _RUNNING_HEAD.sub(lambda _: head, html, count=1)


def _document_date() -> str:
    """ISO 8601 date for the PDF's info dictionary: ``SOURCE_DATE_EPOCH`` or now (UTC).

    Raises:
        InputError: ``SOURCE_DATE_EPOCH`` is not a whole number of seconds.
    """
    raw = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not raw:
        when = datetime.now(UTC)
    else:
        try:
            when = datetime.fromtimestamp(int(raw), UTC)
        except (ValueError, OverflowError, OSError):
            raise InputError.single(
                f"SOURCE_DATE_EPOCH={raw!r} must be a whole number of seconds since 1970-01-01 UTC",
                code="RB253",
            ) from None
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _data_only_fetcher(weasyprint: Any) -> Any:
    """A URL fetcher that allows ``data:`` URLs only: a guide never loads from the network.

    WeasyPrint 66+ takes a ``URLFetcher`` object; older versions a function.
    """
    if hasattr(weasyprint, "URLFetcher"):
        return weasyprint.URLFetcher(allowed_protocols={"data"})

    def fetch(url: str, *args: Any, **kwargs: Any) -> Any:
        if url.startswith("data:"):
            return weasyprint.default_url_fetcher(url, *args, **kwargs)
        raise ValueError(f"refusing to fetch {url!r}: guides load nothing from outside")

    return fetch
