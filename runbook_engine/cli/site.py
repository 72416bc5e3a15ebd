"""``runbook site build``: the runbook library as a static site."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from runbook_engine.cli.common import json_option


@click.group()
def site() -> None:
    """The runbook library as a static site."""


@site.command("build")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("site/_build"),
    show_default=True,
    help="Site folder (replaced when it holds an earlier build).",
)
@click.option(
    "--source",
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    default=Path("runbooks"),
    show_default=True,
    help="Folder of runbooks.",
)
@click.option("--no-pdf", is_flag=True, help="Leave out the PDF downloads (faster).")
@click.option(
    "--no-cache",
    is_flag=True,
    help="Build every page and PDF again (by default the pages and PDFs of unchanged "
    "runbooks come from .<output>.cache/).",
)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    help="Worker processes (one runbook or one PDF each) [default: CPU count].",
)
@json_option
def site_build(
    output: Path, source: Path, no_pdf: bool, no_cache: bool, jobs: int | None, as_json: bool
) -> None:
    """Build the site: an index of every runbook, and per runbook the generic and tailored
    guides with their printable, PDF, notebook and source downloads.  A runbook that fails
    is reported and left out; the exit status is then 1."""
    from runbook_engine.outputs.site import build_site, download_formats

    formats, notes = download_formats()
    if no_pdf and "pdf" in formats:
        formats = tuple(f for f in formats if f != "pdf")
        notes = (*notes, "PDF downloads left out: --no-pdf")

    def progress(result: Any) -> None:
        mark = "ok  " if not result.problems else ("FAIL" if result.entry is None else "some")
        click.echo(f"{mark} {result.path}{' (unchanged)' if result.cached else ''}", err=True)

    report = build_site(
        source,
        output,
        formats=formats,
        notes=notes,
        jobs=jobs,
        progress=progress,
        cache=not no_cache,
    )
    if as_json:
        click.echo(
            json.dumps(
                {
                    "site": str((report.out / "index.html").resolve()),
                    "runbooks": len(report.entries),
                    "pages": report.pages,
                    "downloads": list(formats),
                    "pdf_rendered": report.pdf_rendered if "pdf" in formats else 0,
                    "pdf_reused": report.pdf_reused if "pdf" in formats else 0,
                    "notes": list(report.notes),
                    "problems": [str(p) for p in report.failures],
                },
                indent=2,
            )
        )
        sys.exit(1 if report.failures else 0)
    click.echo(f"Site: {(report.out / 'index.html').resolve()}")
    click.echo(
        f"{len(report.entries)} runbooks, {report.pages} guide pages; downloads: "
        f"{', '.join(formats)}"
    )
    built = len(report.entries) - report.runbooks_reused
    reused = report.runbooks_reused
    click.echo(f"Pages: {built} runbook(s) built, {reused} from the cache")
    if "pdf" in formats:
        click.echo(f"PDFs: {report.pdf_rendered} rendered, {report.pdf_reused} from the cache")
    for note in report.notes:
        click.echo(f"Note: {note}")
    if report.failures:
        click.echo(f"{len(report.failures)} problems (the pages affected are left out):", err=True)
        for problem in report.failures:
            click.echo(problem, err=True)
        sys.exit(1)
