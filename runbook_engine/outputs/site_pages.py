"""The pages of one runbook in the static site (``runbook site build``).

For one runbook file this writes, under ``<site>/<rel>/``:

- ``index.html``: the generic guide inside the site's frame;
- ``env-<name>.html``: the guide tailored to each example environment;
- ``files/``: each variant's downloads (printable HTML, PDF, notebook, as the
  renderers allow) and a copy of the source Markdown.

It runs in a worker process (see :mod:`runbook_engine.outputs.site`), so its job
and result are plain picklable values, and any problem of the runbook is
returned as text instead of raised: one bad runbook never stops the site.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from markupsafe import Markup

from runbook_engine.errors import InputError
from runbook_engine.outputs import RENDERERS
from runbook_engine.outputs.guide_md import guide_markdown
from runbook_engine.outputs.markdown import to_html
from runbook_engine.outputs.sections import foreign_meta
from runbook_engine.outputs.templating import get_template
from runbook_engine.source.model import Runbook
from runbook_engine.tailor.loading import load
from runbook_engine.tailor.tailoring import TailoredRunbook

PAGE_TEMPLATE = "site-runbook.html.j2"
FILES = "files"
#: Download label by renderer name, in the order the links are shown.
DOWNLOAD_LABELS: dict[str, str] = {
    "html": "Printable HTML",
    "pdf": "PDF",
    "ipynb": "Notebook (.ipynb)",
}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_STEP_ANCHOR = re.compile(r'<a id="([A-Za-z][\w-]*)"></a>')


@dataclass(frozen=True, slots=True)
class StepCounts:
    """Steps of a runbook's normal flow by what they ask of people and machines.

    Attributes:
        automated: Steps the engine executes (command kinds, probes and other
            declarative kinds except approvals).
        manual: ``manual`` steps (a person follows instructions).
        verification: Steps in the ``.verify`` phase, whatever their kind.
        approval: ``approval`` steps.
    """

    automated: int
    manual: int
    verification: int
    approval: int


@dataclass(frozen=True, slots=True)
class PageJob:
    """What to build for one runbook.

    Attributes:
        path: The runbook file.
        rel: Its folder in the site, ``/``-separated (``exchange2003/rpc-over-https``).
        out: The site's root folder being written.
        environments: Example environment files to tailor to, in order.
        formats: Download renderers to use (names in :data:`RENDERERS`).
        cache: Folder of cached PDFs (:func:`~runbook_engine.outputs.pdf.cached_pdf`),
            ``None`` to render every PDF.
        defer_pdf: Leave the PDFs the cache lacks to the caller (:attr:`PageResult.pending`),
            which prints them in parallel, one worker per PDF.
    """

    path: Path
    rel: str
    out: Path
    environments: tuple[Path, ...]
    formats: tuple[str, ...]
    cache: Path | None = None
    defer_pdf: bool = False


@dataclass(frozen=True, slots=True)
class PdfPrint:
    """A PDF a page links to that is still to be printed (:func:`print_pending`).

    Attributes:
        runbook: The runbook file (for problems).
        label: The variant (``generic`` or the environment's name).
        html: The page to print.
        key: Its cache key.
        tailored: The tailored runbook (the PDF's metadata).
        cache: The PDF cache folder.
        target: Where the PDF goes in the site.
    """

    runbook: Path
    label: str
    html: str
    key: str
    tailored: TailoredRunbook
    cache: Path
    target: Path


@dataclass(frozen=True, slots=True)
class Variant:
    """One page of a runbook: generic or tailored.

    Attributes:
        label: ``generic`` or the environment's name.
        slug: File-name form of the label.
        page: The page's file name in the runbook's folder.
        description: The environment's description (``""`` when generic).
    """

    label: str
    slug: str
    page: str
    description: str = ""


@dataclass(frozen=True, slots=True)
class RunbookEntry:
    """A built runbook, as the index lists it.

    Attributes:
        rel: Its folder in the site (``/``-separated, not URL-quoted).
        id: Runbook id.
        title: Title.
        version: Version, ``""`` if none.
        summary: Summary text.
        tags: Tags.
        counts: Step counts of the normal flow.
        variants: The pages built, generic first.
    """

    rel: str
    id: str
    title: str
    version: str
    summary: str
    tags: tuple[str, ...]
    counts: StepCounts
    variants: tuple[Variant, ...]


@dataclass(frozen=True, slots=True)
class PageResult:
    """What building one runbook gave.

    Attributes:
        path: The runbook file.
        entry: The index entry, ``None`` when the runbook itself could not be read.
        problems: What went wrong (formatted ``file:line: code message`` text);
            empty when everything was built.
        pdf_keys: Cache keys of the PDFs written (their file names without a cache).
        pdf_rendered: How many of those were rendered (the others came from the cache).
        pending: PDFs still to print (with :attr:`PageJob.defer_pdf`), counted as rendered.
        cached: True when the pages came from the page cache (nothing was built).
    """

    path: Path
    entry: RunbookEntry | None
    problems: tuple[str, ...]
    pdf_keys: tuple[str, ...] = ()
    pdf_rendered: int = 0
    pending: tuple[PdfPrint, ...] = ()
    cached: bool = False


def slug(text: str) -> str:
    """Return ``text`` as a safe file-name part (letters, digits, ``.``, ``_``, ``-``)."""
    return _UNSAFE.sub("-", text).strip("-.") or "x"


def href(path: str) -> str:
    """URL-quote a relative ``/``-separated path for an ``href``."""
    return quote(path, safe="/")


def step_counts(runbook: Runbook) -> StepCounts:
    """Count the normal-flow steps of ``runbook`` (see :class:`StepCounts`)."""
    flow = runbook.flow
    return StepCounts(
        automated=sum(1 for s in flow if not s.is_manual and s.kind != "approval"),
        manual=sum(1 for s in flow if s.is_manual),
        verification=sum(1 for s in flow if s.phase == "verify"),
        approval=sum(1 for s in flow if s.kind == "approval"),
    )


def build_runbook(job: PageJob) -> PageResult:
    """Build every page and download of one runbook; never raises for bad input.

    Returns:
        The index entry and the problems met (a variant or download that failed
        is left out and reported; a runbook that cannot be read gives no entry).
    """
    problems: list[str] = []
    try:
        generic = load(job.path, None)
    except InputError as exc:
        return PageResult(job.path, None, (exc.format(),))
    variants: list[tuple[Variant, TailoredRunbook]] = [
        (Variant("generic", "generic", "index.html"), generic.tailored)
    ]
    for env_path in job.environments:
        try:
            loaded = load(job.path, env_path)
        except InputError as exc:
            problems.append(f"{job.path}: not tailored to {env_path}:\n{exc.format()}")
            continue
        env = loaded.environment
        name = env.name if env else env_path.stem
        variants.append(
            (
                Variant(
                    name,
                    slug(env_path.stem),
                    f"env-{slug(env_path.stem)}.html",
                    " ".join((env.description if env else "").split()),
                ),
                loaded.tailored,
            )
        )
    folder = job.out / job.rel
    (folder / FILES).mkdir(parents=True, exist_ok=True)
    source_name = job.path.name
    shutil.copyfile(job.path, folder / FILES / source_name)
    rb = generic.runbook
    shown = tuple(v for v, _ in variants)
    pdfs: dict[str, bool] = {}
    pending: list[PdfPrint] = []
    for variant, tailored in variants:
        downloads = _write_downloads(job, folder, rb.id, variant, tailored, problems, pdfs, pending)
        downloads.append(("Source Markdown", f"{FILES}/{source_name}"))
        page = _page_html(job, rb, variant, tailored, shown, downloads)
        (folder / variant.page).write_text(page, encoding="utf-8")
    entry = RunbookEntry(
        job.rel,
        rb.id,
        rb.title,
        rb.version,
        " ".join(rb.summary.split()),
        rb.tags,
        step_counts(rb),
        shown,
    )
    rendered = sum(1 for reused in pdfs.values() if not reused)
    return PageResult(job.path, entry, tuple(problems), tuple(pdfs), rendered, tuple(pending))


def print_pending(job: PdfPrint) -> str | None:
    """Print one deferred PDF into the cache and the site; return the problem, or ``None``."""
    from runbook_engine.outputs.pdf import print_to_cache

    try:
        job.target.write_bytes(print_to_cache(job.html, job.key, job.tailored, job.cache))
    except InputError as exc:
        return f"{job.runbook}: no pdf download for {job.label}:\n{exc.format()}"
    return None


def _write_downloads(
    job: PageJob,
    folder: Path,
    runbook_id: str,
    variant: Variant,
    tailored: TailoredRunbook,
    problems: list[str],
    pdfs: dict[str, bool],
    pending: list[PdfPrint],
) -> list[tuple[str, str]]:
    """Render each download format of one variant; return (label, relative href) pairs.

    With a cache, a PDF comes from it when its inputs are unchanged; ``pdfs``
    gets each PDF's cache key (its file name without a cache), ``True`` when reused.
    With :attr:`PageJob.defer_pdf` a PDF not in the cache goes to ``pending``.
    """
    links: list[tuple[str, str]] = []
    guide: tuple[str, frozenset[str]] | None = None  # printable HTML = the page PDF prints
    for fmt in job.formats:
        renderer = RENDERERS[fmt]
        name = f"{slug(runbook_id)}-{variant.slug}{renderer.suffix}"
        try:
            if fmt in ("html", "pdf") and job.cache is not None and "pdf" in job.formats:
                from runbook_engine.outputs.pdf import cached_pdf, lookup_pdf, stamped_guide

                guide = guide or stamped_guide(tailored)
                if fmt == "html":
                    data = guide[0].encode("utf-8")
                elif job.defer_pdf:
                    html, key, cached = lookup_pdf(tailored, job.cache, guide=guide)
                    pdfs[key] = pdfs.get(key, True) and cached is not None
                    if cached is None:
                        target, label = folder / FILES / name, variant.label
                        pending.append(
                            PdfPrint(job.path, label, html, key, tailored, job.cache, target)
                        )
                        links.append((DOWNLOAD_LABELS.get(fmt, fmt), f"{FILES}/{name}"))
                        continue
                    data = cached
                else:
                    data, key, reused = cached_pdf(tailored, job.cache, guide=guide)
                    pdfs[key] = pdfs.get(key, True) and reused
            else:
                data = renderer.render(tailored)
                if fmt == "pdf":
                    pdfs[name] = False  # rendered, no cache key
        except InputError as exc:
            problems.append(f"{job.path}: no {fmt} download for {variant.label}:\n{exc.format()}")
            continue
        (folder / FILES / name).write_bytes(data)
        links.append((DOWNLOAD_LABELS.get(fmt, fmt), f"{FILES}/{name}"))
    return links


def _page_html(
    job: PageJob,
    rb: Runbook,
    current: Variant,
    tailored: TailoredRunbook,
    variants: tuple[Variant, ...],
    downloads: list[tuple[str, str]],
) -> str:
    """The site page of one variant: site frame, step index and the guide itself."""
    depth = len(job.rel.split("/"))
    body = to_html(guide_markdown(tailored, html=True))
    body = _STEP_ANCHOR.sub(
        r'<a id="\1" class="anchor" href="#\1" title="Link to this step">#</a>', body
    )
    steps = [
        {
            "number": ts.number,
            "id": ts.id,
            "title": ts.step.display_title(),
            "manual": ts.step.is_manual,
            "verify": ts.step.phase == "verify",
            "skipped": ts.skip_reason is not None,
        }
        for ts in tailored.steps
    ]
    return get_template(PAGE_TEMPLATE).render(
        root="../" * depth,
        title=rb.title,
        runbook_id=rb.id,
        version=rb.version,
        tags=rb.tags,
        meta=foreign_meta(tailored),
        current=current,
        variants=variants,
        downloads=[(label, href(link)) for label, link in downloads],
        steps=steps,
        body=Markup(body),
    )
