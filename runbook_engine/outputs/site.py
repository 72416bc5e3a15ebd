"""``runbook site build``: the runbook library as a static site (issue 6, part 1).

Every runbook under the source folder (fragments skipped, as ``runbook lint``
finds them) gets its pages from :mod:`runbook_engine.outputs.site_pages`: the generic
guide and one page per example environment (``<folder>/environments/*.yaml``,
the nearest such folder above the runbook), each linking its printable HTML,
PDF (when WeasyPrint is installed), notebook (when the ``ipynb`` renderer is)
and source Markdown.  ``index.html`` lists them with title, summary, tags and
step counts and filters them by text and tag in the browser (``site/site.js``,
no framework).  Links are relative and nothing comes from the network, so the
site works opened from the file system and served by ``python -m http.server``.

A runbook that fails is reported and skipped; the others are built.  Runbooks
are built in parallel worker processes, and then the PDFs they lack, one PDF per
worker (WeasyPrint is CPU-bound, ~1-3 s a PDF), up to the CPU count.

PDFs are cached (:func:`~runbook_engine.outputs.pdf.cached_pdf`) beside the site
folder, in ``.<site folder name>.cache/pdf/`` (``site/._build.cache/pdf/`` for the
default ``site/_build``), keyed by the SHA-256 of their inputs: a rebuild renders
only the PDFs whose HTML, stylesheet, fonts or tool versions changed and copies the
others.  After a build with PDFs the cache keeps only the PDFs that build used.
Each runbook's pages are cached the same way in ``.<name>.cache/pages/``
(:mod:`runbook_engine.outputs.site_cache`): a rebuild builds only the pages of
changed runbooks, and the index is made anew every time.
"""

from __future__ import annotations

import hashlib
import importlib
import multiprocessing
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from runbook_engine.errors import InputError
from runbook_engine.lint.check import runbook_files
from runbook_engine.outputs import RENDERERS, site_cache
from runbook_engine.outputs.site_pages import (
    PageJob,
    PageResult,
    PdfPrint,
    RunbookEntry,
    build_runbook,
    href,
    print_pending,
)
from runbook_engine.outputs.templating import get_template, read_asset
from runbook_engine.resources import site_assets_dir

INDEX_TEMPLATE = "site-index.html.j2"
ASSETS = "assets"
#: Marker file: a folder holding it was written by this command and may be replaced.
MARKER = ".runbook-site"
ENVIRONMENTS = "environments"
#: The page cache's folder beside the PDF cache (:mod:`runbook_engine.outputs.site_cache`).
PAGES = "pages"
FAVICON = "favicon.ico"


@dataclass(frozen=True, slots=True)
class SiteReport:
    """What a build did.

    Attributes:
        out: The site folder.
        entries: Runbooks built, in index order.
        failures: Runbooks (or their pages) that failed, as formatted problem text.
        notes: What was left out on purpose and why (no WeasyPrint, no notebooks).
        pdf_rendered: PDFs rendered by this build.
        pdf_reused: PDFs copied from the cache (inputs unchanged).
        runbooks_reused: Runbooks whose pages were copied from the page cache.
    """

    out: Path
    entries: tuple[RunbookEntry, ...]
    failures: tuple[str, ...]
    notes: tuple[str, ...]
    pdf_rendered: int = 0
    pdf_reused: int = 0
    runbooks_reused: int = 0

    @property
    def pages(self) -> int:
        """Number of runbook pages written (generic and tailored)."""
        return sum(len(e.variants) for e in self.entries)

    @property
    def ok(self) -> bool:
        """True when every runbook and every page was built."""
        return not self.failures


def environments_for(runbook: Path, source: Path) -> tuple[Path, ...]:
    """Return the example environments of ``runbook``: ``environments/*.yaml`` (or
    ``*.yml``; a ``.yaml`` wins over a ``.yml`` of the same name) in its folder, or else in
    the nearest folder above it, up to ``source``; sorted by name."""
    folder = runbook.parent
    while True:
        where = folder / ENVIRONMENTS
        yaml = {p.stem: p for p in where.glob("*.yaml")}
        yml = {p.stem: p for p in where.glob("*.yml") if p.stem not in yaml}
        found = tuple(sorted([*yaml.values(), *yml.values()], key=lambda p: p.name))
        if found or folder == source or source not in folder.parents:
            return tuple(found)
        folder = folder.parent


def download_formats() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Return the download renderers that work here, and notes on those that do not.

    Printable HTML is always there; ``pdf`` needs WeasyPrint and Pango; ``ipynb``
    is used when the ``ipynb`` renderer is registered and its module imports.
    """
    from runbook_engine.outputs.pdf import INSTALL_HINT, pdf_available

    formats, notes = ["html"], []
    if pdf_available():
        formats.append("pdf")
    else:
        notes.append(f"PDF downloads left out: WeasyPrint is not available; {INSTALL_HINT}")
    renderer = RENDERERS.get("ipynb")
    if renderer is None:
        notes.append("notebook downloads left out: no ipynb renderer in this installation")
    else:
        try:
            importlib.import_module(renderer.target.partition(":")[0])
            formats.append("ipynb")
        except ImportError as exc:
            notes.append(f"notebook downloads left out: {exc}")
    return tuple(formats), tuple(notes)


def build_site(
    source: Path,
    out: Path,
    *,
    formats: tuple[str, ...] | None = None,
    notes: tuple[str, ...] = (),
    jobs: int | None = None,
    progress: Callable[[PageResult], None] | None = None,
    cache: Path | bool = True,
) -> SiteReport:
    """Build the site for the runbooks under ``source`` into ``out``.

    Args:
        source: Folder of runbooks (``runbooks/``).
        out: Site folder; replaced whole when it holds an earlier build.
        formats: Download renderers (default: :func:`download_formats`).
        notes: What was left out on purpose, shown on the index (with ``formats``).
        jobs: Worker processes (default: the CPU count; 1 builds in-process).
        progress: Called with each runbook's result as it completes.
        cache: The PDF cache folder (the page cache is ``pages`` beside it); ``True``:
            :func:`cache_folder` of ``out``; ``False``: build every page and PDF.

    Raises:
        InputError: ``source`` is not a folder, ``out`` is a non-empty folder that
            no earlier build wrote, or templates or assets are missing.
    """
    if not source.is_dir():
        raise InputError.single(f"{source}: no such folder of runbooks", code="RB260")
    _check_out(out)
    if formats is None:
        formats, notes = download_formats()
    out.parent.mkdir(parents=True, exist_ok=True)
    pdf_cache = cache_folder(out) if cache is True else (cache or None)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.building-", dir=out.parent))
    try:
        report, used = _build_into(source, staging, formats, jobs, progress, notes, pdf_cache)
        _replace(staging, out)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    if pdf_cache is not None and "pdf" in formats:
        _prune(pdf_cache, used)
    return SiteReport(
        out,
        report.entries,
        report.failures,
        report.notes,
        report.pdf_rendered,
        report.pdf_reused,
        report.runbooks_reused,
    )


def cache_folder(out: Path) -> Path:
    """The PDF cache of the site folder ``out``: ``.<name>.cache/pdf`` beside it."""
    return out.parent / f".{out.name}.cache" / "pdf"


def _prune(cache: Path, used: set[str]) -> None:
    """Delete the cached PDFs the last build did not use (the cache stays one library big)."""
    for path in cache.glob("*.pdf"):
        if path.stem not in used:
            path.unlink(missing_ok=True)


def _build_into(
    source: Path,
    staging: Path,
    formats: tuple[str, ...],
    jobs: int | None,
    progress: Callable[[PageResult], None] | None,
    notes: tuple[str, ...],
    cache: Path | None,
) -> tuple[SiteReport, set[str]]:
    files = runbook_files([source])
    defer = cache is not None and "pdf" in formats  # PDFs printed one per worker
    page_jobs = [
        PageJob(
            path, _rel(path, source), staging, environments_for(path, source), formats, cache, defer
        )
        for path in files
    ]
    pages = cache.parent / PAGES if cache is not None else None
    results = sorted(_run(page_jobs, jobs, progress, pages), key=lambda r: str(r.path))
    entries = sorted(
        (r.entry for r in results if r.entry is not None),
        key=lambda e: (e.rel.rsplit("/", 1)[0], e.title.lower(), e.rel),
    )
    failures = tuple(p for r in results for p in r.problems)
    _copy_assets(staging / ASSETS)
    index = _index_html(entries, failures, notes, len(files))
    (staging / "index.html").write_text(index, encoding="utf-8")
    _write_marker(staging)
    used = {key for r in results for key in r.pdf_keys}
    rendered = sum(r.pdf_rendered for r in results)
    reused = sum(len(r.pdf_keys) for r in results) - rendered
    cached = sum(1 for r in results if r.cached)
    report = SiteReport(staging, tuple(entries), failures, notes, rendered, reused, cached)
    return report, used


def _run(
    page_jobs: list[PageJob],
    jobs: int | None,
    progress: Callable[[PageResult], None] | None,
    pages: Path | None,
) -> list[PageResult]:
    """Build every runbook: unchanged ones from the page cache ``pages``, the others in
    worker processes, then their missing PDFs one per worker (up to ``jobs``)."""
    done: list[PageResult] = []
    keys: dict[Path, str | None] = {}
    todo: dict[Path, PageJob] = {}
    stamp = site_cache.build_stamp(page_jobs[0].formats) if pages and page_jobs else ""
    for job in page_jobs:
        key = keys[job.path] = site_cache.page_key(job, stamp) if pages is not None else None
        hit = site_cache.restore(pages, key, job) if pages is not None and key else None
        if hit is None:
            todo[job.path] = job
        else:
            done.append(_finish(hit, progress))
    for result in _build_all(list(todo.values()), jobs):
        key = keys[result.path]
        if pages is not None and key is not None:
            site_cache.store(pages, key, todo[result.path], result)
        done.append(_finish(result, progress))
    if pages is not None and page_jobs:
        site_cache.prune(pages, {k for k in keys.values() if k}, page_jobs[0].formats)
    return done


def _finish(result: PageResult, progress: Callable[[PageResult], None] | None) -> PageResult:
    if progress:
        progress(result)
    return result


def _build_all(todo: list[PageJob], jobs: int | None) -> Iterator[PageResult]:
    """Build ``todo`` (pages, then deferred PDFs) and yield each runbook's whole result."""
    workers = max(1, min(jobs or os.cpu_count() or 1, 64))
    context = multiprocessing.get_context("spawn")
    if workers == 1 or len(todo) <= 1:  # one runbook changed: its pages here, PDFs in parallel
        for job in todo:
            result = _safe_build(job)
            printing = result.pending
            if workers == 1 or len(printing) <= 1:
                problems = [p for p in map(_safe_print, printing) if p]
            else:
                size = min(workers, len(printing))
                with ProcessPoolExecutor(max_workers=size, mp_context=context) as pool:
                    problems = [p for p in pool.map(_safe_print, printing) if p]
            yield replace(result, problems=result.problems + tuple(problems), pending=())
        return
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        waiting: dict[Future[Any], PageJob | Path] = {
            pool.submit(_safe_build, job): job for job in todo
        }
        partial: dict[Path, tuple[PageResult, list[str], list[int]]] = {}
        while waiting:
            finished, _ = wait(waiting, return_when=FIRST_COMPLETED)
            for future in finished:
                tag = waiting.pop(future)
                if isinstance(tag, PageJob):
                    result = future.result()
                    if not result.pending:
                        yield result
                        continue
                    partial[result.path] = (result, [], [len(result.pending)])
                    for item in result.pending:
                        waiting[pool.submit(_safe_print, item)] = result.path
                    continue
                result, problems, left = partial[tag]
                if problem := future.result():
                    problems.append(problem)
                left[0] -= 1
                if not left[0]:
                    del partial[tag]
                    yield replace(result, problems=result.problems + tuple(problems), pending=())


def _safe_print(item: PdfPrint) -> str | None:
    """:func:`print_pending`, with an unexpected error reported for that PDF alone."""
    try:
        return print_pending(item)
    except Exception as exc:  # one PDF's failure must not stop the site
        return f"{item.runbook}: internal error while printing its {item.label} PDF: {exc}"


def _safe_build(job: PageJob) -> PageResult:
    """:func:`build_runbook`, with an unexpected error reported for that runbook alone."""
    try:
        return build_runbook(job)
    except Exception as exc:  # one runbook's failure must not stop the site
        return PageResult(
            job.path,
            None,
            (f"{job.path}: internal error while building its pages: {type(exc).__name__}: {exc}",),
        )


def _rel(path: Path, source: Path) -> str:
    """The runbook's folder in the site: its path under ``source`` without ``.md``."""
    from runbook_engine.outputs.site_pages import slug

    parts = path.resolve().relative_to(source.resolve()).with_suffix("").parts
    return "/".join(slug(p) for p in parts)


_MARKER_HEADER = "# written by runbook site build; replaced by the next build; files:"


def _write_marker(folder: Path) -> None:
    """List every file the build wrote, with its SHA-256, in the marker (the files a later
    build may delete)."""
    lines = [_MARKER_HEADER]
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink():
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            lines.append(f"{digest}  {path.relative_to(folder).as_posix()}")
    (folder / MARKER).write_text("\n".join(lines) + "\n", encoding="utf-8")


def _foreign(out: Path) -> str | None:
    """A file in ``out`` an earlier build did not write (or that changed since), or ``None``."""
    try:
        lines = (out / MARKER).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        lines = []
    if not lines or lines[0] != _MARKER_HEADER:
        return MARKER if (out / MARKER).exists() else "(no earlier site build)"
    written = dict(reversed(line.split("  ", 1)) for line in lines[1:] if "  " in line)
    for path in sorted(out.rglob("*")):
        rel = path.relative_to(out).as_posix()
        if path.is_symlink() or (path.is_file() and rel != MARKER and rel not in written):
            return rel
        if (
            path.is_file()
            and rel != MARKER
            and hashlib.sha256(path.read_bytes()).hexdigest() != written[rel]
        ):
            return rel
    return None


def _check_out(out: Path) -> None:
    """Refuse an ``out`` holding anything an earlier build did not write (it would be deleted)."""
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise InputError.single(f"-o {out}: exists and is not a folder", code="RB261")
    if out.is_dir() and any(out.iterdir()):
        foreign = _foreign(out)
        if foreign is not None:
            raise InputError.single(
                f"-o {out}: the folder is not empty: it holds {foreign}, which no earlier "
                "site build wrote (or which changed since); a build replaces the folder "
                "whole, so choose an empty or new folder",
                code="RB261",
            )


def _replace(staging: Path, out: Path) -> None:
    """Put the finished build in place of ``out`` (an earlier build, or nothing)."""
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    if out.exists():
        _check_out(out)  # still only what a build wrote
        out.replace(old)
    staging.rename(out)
    shutil.rmtree(old)


def _copy_assets(target: Path) -> None:
    """Copy the site's stylesheets and script (the files at the top of ``site/``; names
    starting with ``_`` or ``.``, such as the default build folder, are skipped), the
    guide stylesheet, and the icon at the site's top."""
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(site_assets_dir().iterdir()):
        if path.is_file() and not path.name.startswith(("_", ".")):
            shutil.copyfile(path, target / path.name)
    (target / "guide.css").write_text(read_asset("guide.css"), encoding="utf-8")
    icon = target / FAVICON
    if icon.is_file():  # at the top too: browsers ask the server for /favicon.ico
        shutil.copyfile(icon, target.parent / FAVICON)


def _index_html(
    entries: list[RunbookEntry], failures: tuple[str, ...], notes: tuple[str, ...], found: int
) -> str:
    tags = Counter(tag for entry in entries for tag in entry.tags)
    cards = [
        {
            "entry": e,
            "folder": href(e.rel) + "/",
            "text": " ".join([e.id, e.title, e.summary, *e.tags]).lower(),
        }
        for e in entries
    ]
    return get_template(INDEX_TEMPLATE).render(
        root="", cards=cards, tags=sorted(tags.items()), failures=failures, notes=notes, found=found
    )
