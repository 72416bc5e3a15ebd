"""The site build's PDF cache (``runbook site build``, incremental builds).

A rebuild of an unchanged library copies every PDF from the cache, a changed
runbook re-renders only its own PDFs, a changed PDF stylesheet invalidates them
all; the build's counts say which, never timings.  Needs WeasyPrint.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from runbook_engine.outputs.pdf import pdf_available
from runbook_engine.outputs.site import _foreign, build_site, cache_folder

pytestmark = pytest.mark.skipif(not pdf_available(), reason="WeasyPrint is not available")

ROOT = Path(__file__).resolve().parents[1]
FORMATS = ("html", "pdf")

RUNBOOK = """---
id: {id}
title: {title}
summary: A small runbook for the cache tests.
tags: [demo]
---
# {title}

```sh {{#prepare}}
echo prepare
```

```manual {{#look}}
Look at the output.
```
"""


@pytest.fixture(autouse=True)
def _reproducible(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    monkeypatch.delenv("RUNBOOK_TEMPLATES", raising=False)


def library(base: Path) -> Path:
    """Two one-page runbooks (no environments): two PDFs."""
    lib = base / "lib"
    lib.mkdir()
    for name in ("alpha", "beta"):
        (lib / f"{name}.md").write_text(
            RUNBOOK.format(id=name, title=name.title()), encoding="utf-8"
        )
    return lib


def pdfs(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*.pdf"))}


def build(lib: Path, out: Path, **kwargs: object) -> tuple[int, int]:
    report = build_site(lib, out, formats=FORMATS, jobs=1, **kwargs)  # type: ignore[arg-type]
    assert report.ok, report.failures
    assert _foreign(out) is None  # the marker lists every file the build wrote, as written
    return report.pdf_rendered, report.pdf_reused


def test_unchanged_rebuild_reuses_every_pdf(tmp_path: Path) -> None:
    lib, out = library(tmp_path), tmp_path / "site"
    assert build(lib, out) == (2, 0)
    first = pdfs(out)
    assert len(first) == 2
    assert build(lib, out) == (0, 2)
    assert pdfs(out) == first
    assert len(list(cache_folder(out).glob("*.pdf"))) == 2


def test_changed_runbook_renders_only_its_pdfs(tmp_path: Path) -> None:
    lib, out = library(tmp_path), tmp_path / "site"
    build(lib, out)
    before = pdfs(out)
    text = (lib / "beta.md").read_text(encoding="utf-8")
    (lib / "beta.md").write_text(text.replace("echo prepare", "echo changed"), encoding="utf-8")
    assert build(lib, out) == (1, 1)
    after = pdfs(out)
    alpha = [k for k in after if k.startswith("alpha/")]
    beta = [k for k in after if k.startswith("beta/")]
    assert [after[k] for k in alpha] == [before[k] for k in alpha]
    assert [after[k] for k in beta] != [before[k] for k in beta]
    assert len(list(cache_folder(out).glob("*.pdf"))) == 2  # the stale PDF was pruned


def test_changed_stylesheet_invalidates_every_pdf(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lib, out = library(tmp_path), tmp_path / "site"
    build(lib, out)
    templates = tmp_path / "templates"
    shutil.copytree(ROOT / "templates", templates)
    css = templates / "guide-pdf.css"
    css.write_text(css.read_text(encoding="utf-8") + "\nh1 { color: black; }\n", "utf-8")
    monkeypatch.setenv("RUNBOOK_TEMPLATES", str(templates))
    assert build(lib, out) == (2, 0)


def test_without_cache_every_pdf_is_rendered(tmp_path: Path) -> None:
    lib, out = library(tmp_path), tmp_path / "site"
    assert build(lib, out, cache=False) == (2, 0)
    assert build(lib, out, cache=False) == (2, 0)
    assert not cache_folder(out).exists()


def test_reused_without_source_date_epoch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The guide's "Rendered at" time (now) is no input: the PDFs are still reused."""
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    lib, out = library(tmp_path), tmp_path / "site"
    assert build(lib, out) == (2, 0)
    time.sleep(1.1)  # the second build's "Rendered at" differs from the first's
    shutil.rmtree(cache_folder(out).parent / "pages")  # pages built again, PDFs looked up
    assert build(lib, out) == (0, 2)


def test_pdfs_printed_in_parallel_match_a_serial_build(tmp_path: Path) -> None:
    """jobs=2: the missing PDFs are printed one per worker, into the site and the cache."""
    lib = library(tmp_path)
    serial, parallel = tmp_path / "serial", tmp_path / "parallel"
    assert build(lib, serial) == (2, 0)
    report = build_site(lib, parallel, formats=FORMATS, jobs=2)
    assert report.ok, report.failures
    assert (report.pdf_rendered, report.pdf_reused) == (2, 0)
    assert pdfs(parallel) == pdfs(serial)
    assert len(list(cache_folder(parallel).glob("*.pdf"))) == 2
    assert _foreign(parallel) is None


def test_one_changed_runbook_prints_its_pdfs_in_parallel(tmp_path: Path) -> None:
    """One runbook to build: its pages in this process, its two PDFs one per worker."""
    lib, out = library(tmp_path), tmp_path / "site"
    (lib / "environments").mkdir()
    (lib / "environments" / "lab.yaml").write_text("name: lab\n", encoding="utf-8")
    report = build_site(lib, out, formats=FORMATS, jobs=2)
    assert report.ok, report.failures
    assert (report.pdf_rendered, report.pdf_reused, report.runbooks_reused) == (4, 0, 0)
    text = (lib / "beta.md").read_text(encoding="utf-8")
    (lib / "beta.md").write_text(text.replace("echo prepare", "echo changed"), encoding="utf-8")
    report = build_site(lib, out, formats=FORMATS, jobs=2)
    assert report.ok, report.failures
    assert (report.pdf_rendered, report.pdf_reused, report.runbooks_reused) == (2, 2, 1)
    beta = sorted(p.name for p in (out / "beta" / "files").glob("*.pdf"))
    assert beta == ["beta-generic.pdf", "beta-lab.pdf"]
    assert all((out / "beta" / "files" / name).read_bytes().startswith(b"%PDF") for name in beta)
    assert _foreign(out) is None
