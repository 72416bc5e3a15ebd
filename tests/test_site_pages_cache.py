"""The site build's page cache (``runbook site build``, issue 12 part 3).

An unchanged runbook's pages come from the cache, a changed runbook rebuilds only
its own pages, and a change of a template, a stylesheet or the tool rebuilds them
all; the index always lists the library as it is.  The build's counts say which,
never timings.  Printable HTML only (no WeasyPrint needed).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import runbook_engine
from runbook_engine.outputs.site import SiteReport, _foreign, build_site, cache_folder

ROOT = Path(__file__).resolve().parents[1]
FORMATS = ("html",)

RUNBOOK = """---
id: {id}
title: {title}
summary: A small runbook for the page cache tests.
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


def library(base: Path, names: tuple[str, ...] = ("alpha", "beta")) -> Path:
    lib = base / "lib"
    lib.mkdir(exist_ok=True)
    for name in names:
        (lib / f"{name}.md").write_text(
            RUNBOOK.format(id=name, title=name.title()), encoding="utf-8"
        )
    return lib


def build(lib: Path, out: Path, **kwargs: object) -> SiteReport:
    report = build_site(lib, out, formats=FORMATS, jobs=1, **kwargs)  # type: ignore[arg-type]
    assert _foreign(out) is None  # the marker lists every file, cached ones too
    return report


def files(out: Path, folder: str) -> dict[str, bytes]:
    root = out / folder
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_unchanged_rebuild_copies_every_page_unchanged(tmp_path: Path) -> None:
    lib, out = library(tmp_path), tmp_path / "site"
    first = build(lib, out)
    assert first.ok and first.runbooks_reused == 0
    before = {name: files(out, name) for name in ("alpha", "beta")}
    assert set(before["alpha"]) == {"index.html", "files/alpha-generic.html", "files/alpha.md"}
    again = build(lib, out)
    assert again.ok and again.runbooks_reused == 2
    assert {name: files(out, name) for name in ("alpha", "beta")} == before
    assert [e.id for e in again.entries] == [e.id for e in first.entries]
    assert (out / "index.html").read_bytes() == (tmp_path / "site" / "index.html").read_bytes()


def test_changed_runbook_rebuilds_only_its_pages(tmp_path: Path) -> None:
    lib, out = library(tmp_path), tmp_path / "site"
    build(lib, out)
    alpha, beta = files(out, "alpha"), files(out, "beta")
    text = (lib / "beta.md").read_text(encoding="utf-8")
    (lib / "beta.md").write_text(text.replace("echo prepare", "echo changed"), encoding="utf-8")
    report = build(lib, out)
    assert report.ok and report.runbooks_reused == 1
    assert files(out, "alpha") == alpha
    assert files(out, "beta") != beta
    assert "echo changed" in (out / "beta" / "index.html").read_text(encoding="utf-8")
    # the stale pages of the old beta were pruned; one entry per runbook remains
    entries = [p for p in (cache_folder(out).parent / "pages").iterdir()]
    assert len(entries) == 2


def test_changed_fragment_rebuilds_the_runbooks_that_include_it(tmp_path: Path) -> None:
    lib, out = library(tmp_path, ("alpha",)), tmp_path / "site"
    (lib / "_shared").mkdir()
    (lib / "_shared" / "note.md").write_text("A shared note.\n", encoding="utf-8")
    text = (lib / "alpha.md").read_text(encoding="utf-8")
    (lib / "alpha.md").write_text(text + "\n<!-- include: _shared/note.md -->\n", "utf-8")
    library(tmp_path, ("beta",))
    build(lib, out)
    (lib / "_shared" / "note.md").write_text("A changed note.\n", encoding="utf-8")
    report = build(lib, out)
    assert report.runbooks_reused == 1  # beta; alpha includes the fragment
    assert "A changed note." in (out / "alpha" / "index.html").read_text(encoding="utf-8")


def test_changed_stylesheet_or_template_rebuilds_every_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lib, out = library(tmp_path), tmp_path / "site"
    build(lib, out)
    templates = tmp_path / "templates"
    shutil.copytree(ROOT / "templates", templates)
    monkeypatch.setenv("RUNBOOK_TEMPLATES", str(templates))
    assert build(lib, out).runbooks_reused == 0  # another templates folder
    assert build(lib, out).runbooks_reused == 2
    css = templates / "guide.css"
    css.write_text(css.read_text(encoding="utf-8") + "\nh1 { color: black; }\n", "utf-8")
    assert build(lib, out).runbooks_reused == 0
    page = templates / "site-runbook.html.j2"
    page.write_text(page.read_text(encoding="utf-8") + "\n<!-- changed -->\n", "utf-8")
    assert build(lib, out).runbooks_reused == 0


def test_other_tool_version_rebuilds_every_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lib, out = library(tmp_path), tmp_path / "site"
    build(lib, out)
    monkeypatch.setattr(runbook_engine, "__version__", runbook_engine.__version__ + ".post1")
    assert build(lib, out).runbooks_reused == 0


def test_index_lists_the_library_as_it_is(tmp_path: Path) -> None:
    lib, out = library(tmp_path), tmp_path / "site"
    build(lib, out)
    (lib / "beta.md").unlink()
    library(tmp_path, ("gamma",))
    report = build(lib, out)
    assert report.runbooks_reused == 1
    assert [e.id for e in report.entries] == ["alpha", "gamma"]
    index = (out / "index.html").read_text(encoding="utf-8")
    assert "Gamma" in index and "Beta" not in index
    assert not (out / "beta").exists()


def test_a_runbook_with_problems_is_never_cached(tmp_path: Path) -> None:
    lib, out = library(tmp_path), tmp_path / "site"
    (lib / "broken.md").write_text(
        "---\nid: broken\nparameters:\n  x: {type: string}\n---\n# B\n\n"
        "```sh {#a}\necho {{ x }} {{ nope }}\n```\n",
        encoding="utf-8",
    )
    first = build(lib, out)
    assert not first.ok and first.runbooks_reused == 0
    again = build(lib, out)
    assert again.runbooks_reused == 2 and again.failures == first.failures


def test_no_cache_builds_every_page(tmp_path: Path) -> None:
    lib, out = library(tmp_path), tmp_path / "site"
    build(lib, out)
    assert build(lib, out, cache=False).runbooks_reused == 0
