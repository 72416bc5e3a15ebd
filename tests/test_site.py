"""The runbook library as a static site (``runbook site build``, issue 6 part 1).

Fast tests build small libraries in a temporary folder (no PDFs) and read the files.
Slow tests build the real library once, with every download, and open it in headless
Chromium (Debian's ``chromium``, driven by Playwright for Python), both from the file
system and served by ``python -m http.server`` on 127.0.0.1: the index lists every
runbook, the filter narrows it, tailored pages show the environment's hosts, no console
error, no failed request, nothing from any other host, readable at 375 px.  Screenshots
go to ``tests/artifacts/`` (git-ignored).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from runbook_engine.cli import main
from runbook_engine.lint.check import runbook_files
from runbook_engine.outputs.site import MARKER, build_site, environments_for
from runbook_engine.outputs.site_pages import step_counts
from runbook_engine.source.parser import parse_file
from runbook_engine.tailor.environment import load_environment

try:
    from playwright.sync_api import expect
except ImportError:  # the browser tests skip, or fail under CI: see _playwright()
    expect = None  # type: ignore[assignment]

ROOT = Path(__file__).resolve().parents[1]
RUNBOOKS = ROOT / "runbooks"
SEEDS = RUNBOOKS / "exchange2003"
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
EPOCH = "1700000000"
BROKEN = """---
title: Broken runbook
---
# Broken runbook

```sh {#same}
echo one
```

```sh {#same}
echo two
```
"""
LOCAL_ONLY = """---
id: local-only
title: Local only
summary: Runs on the operator machine.
tags: [local, demo]
---
# Local only

```sh {#prepare}
echo prepare
```

```manual {#look}
Look at the output.
```

```sh {#confirm-state .verify}
echo verified
```
"""


@pytest.fixture(autouse=True)
def _reproducible(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    monkeypatch.delenv("RUNBOOK_TEMPLATES", raising=False)


def run_cli(capsys: pytest.CaptureFixture[str], *args: Any) -> tuple[int, str, str]:
    """Call :func:`main` in-process; return ``(exit status, stdout, stderr)``."""
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    out = capsys.readouterr()
    code = exc.value.code
    return (code if isinstance(code, int) else (0 if code is None else 1)), out.out, out.err


def small_library(base: Path) -> Path:
    """One seed runbook with its fragments and environments, a broken runbook, and a
    runbook in a folder without environments."""
    lib = base / "lib"
    shutil.copytree(SEEDS / "environments", lib / "exchange2003" / "environments")
    shutil.copytree(SEEDS / "_shared", lib / "exchange2003" / "_shared")
    shutil.copy(SEEDS / "mail-contact-forwarding.md", lib / "exchange2003")
    (lib / "exchange2003" / "broken.md").write_text(BROKEN, encoding="utf-8")
    (lib / "other").mkdir()
    (lib / "other" / "local-only.md").write_text(LOCAL_ONLY, encoding="utf-8")
    return lib


class Links(HTMLParser):
    """Collects ids, ``href``/``src`` values and the data attributes of runbook cards."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.links: list[tuple[str, str, str]] = []  # (tag, attribute, value)
        self.cards: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if "id" in values:
            self.ids.add(values["id"])
        for attr in ("href", "src"):
            if attr in values:
                self.links.append((tag, attr, values[attr]))
        if tag == "li" and "runbook" in values.get("class", "").split():
            self.cards.append(values.get("data-id", ""))


def parse_html(path: Path) -> Links:
    parser = Links()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


# --- fast: a small library ------------------------------------------------------------------


def test_bad_runbook_is_reported_and_the_rest_built(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lib, out = small_library(tmp_path), tmp_path / "site"
    code, stdout, stderr = run_cli(
        capsys, "site", "build", "--source", lib, "-o", out, "--no-pdf", "-j", "1"
    )
    assert code == 1
    assert re.search(r"broken\.md:\d+(:\d+)?: RB\d{3} .*same", stderr), stderr
    assert "Traceback" not in stderr
    assert "2 runbooks, 4 guide pages" in stdout
    assert "PDF downloads left out: --no-pdf" in stdout
    index = parse_html(out / "index.html")
    assert sorted(index.cards) == ["local-only", "mail-contact-forwarding"]
    text = (out / "index.html").read_text(encoding="utf-8")
    assert "broken.md" in text and "Problems" in text
    assert "_shared" not in text and "mail-contact-create" not in text  # fragments
    page = out / "exchange2003" / "mail-contact-forwarding"
    assert {p.name for p in page.glob("*.html")} == {
        "index.html",
        "env-lab.html",
        "env-single-server.html",
    }
    assert {p.name for p in (out / "other" / "local-only").glob("*.html")} == {"index.html"}
    assert not list(out.rglob("*.pdf"))
    lab_links = [v for _, _, v in parse_html(page / "env-lab.html").links]
    assert "files/mail-contact-forwarding-lab.html" in lab_links
    assert "files/mail-contact-forwarding.md" in lab_links
    assert not any(v.endswith(".pdf") for v in lab_links)
    assert (page / "files" / "mail-contact-forwarding.md").read_bytes() == (
        SEEDS / "mail-contact-forwarding.md"
    ).read_bytes()


def test_clean_library_exits_zero_and_rebuild_replaces(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lib, out = small_library(tmp_path), tmp_path / "site"
    (lib / "exchange2003" / "broken.md").unlink()
    assert (
        run_cli(capsys, "site", "build", "--source", lib, "-o", out, "--no-pdf", "-j", "1")[0] == 0
    )
    # Changed on purpose: a file the build did not write (stale.txt) is no longer deleted;
    # the rebuild refuses, and pages of a runbook removed from the library are replaced.
    stale = out / "stale.txt"
    stale.write_text("not from a build")
    code, _, stderr = run_cli(
        capsys, "site", "build", "--source", lib, "-o", out, "--no-pdf", "-j", "1"
    )
    assert code == 2 and "stale.txt" in stderr and stale.read_text() == "not from a build"
    stale.unlink()
    (lib / "other" / "local-only.md").unlink()
    code, stdout, _ = run_cli(
        capsys, "site", "build", "--source", lib, "-o", out, "--no-pdf", "-j", "1"
    )
    assert code == 0 and "1 runbooks" in stdout
    assert not (out / "other").exists()
    assert (out / MARKER).is_file()
    # no staging or old folder left behind; the page cache stays (also for --no-pdf builds)
    assert [p.name for p in out.parent.iterdir() if p.name.startswith(".")] == [".site.cache"]


def test_refuses_to_overwrite_a_foreign_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lib, out = small_library(tmp_path), tmp_path / "documents"
    out.mkdir()
    (out / "thesis.txt").write_text("precious")
    code, _, stderr = run_cli(capsys, "site", "build", "--source", lib, "-o", out, "--no-pdf")
    assert code == 2 and "not empty" in stderr
    assert (out / "thesis.txt").read_text() == "precious"
    assert [p.name for p in out.iterdir()] == ["thesis.txt"]


def test_step_counts(tmp_path: Path) -> None:
    path = tmp_path / "local-only.md"
    path.write_text(LOCAL_ONLY, encoding="utf-8")
    counts = step_counts(parse_file(path))
    assert (counts.automated, counts.manual, counts.verification, counts.approval) == (2, 1, 1, 0)
    seed = step_counts(parse_file(SEEDS / "rpc-over-https.md"))
    assert seed.automated > 0 and seed.manual > 0 and seed.verification > 0


def test_environments_are_the_nearest_folder(tmp_path: Path) -> None:
    lib = small_library(tmp_path)
    nested = lib / "exchange2003" / "more"
    nested.mkdir()
    (nested / "x.md").write_text(LOCAL_ONLY)
    names = [p.stem for p in environments_for(nested / "x.md", lib)]
    assert names == ["lab", "single-server"]
    assert environments_for(lib / "other" / "local-only.md", lib) == ()


def test_environments_may_end_in_yml(tmp_path: Path) -> None:
    """Found by a new user: the README's examples say prod.yml, and the console's library
    listed no environment for it (only *.yaml was looked for)."""
    lib = small_library(tmp_path)
    envs = lib / "other" / "environments"
    envs.mkdir()
    (envs / "prod.yml").write_text("name: prod\n")
    (envs / "lab.yaml").write_text("name: lab\n")
    (envs / "lab.yml").write_text("name: shadowed\n")  # the .yaml of the same name wins
    found = environments_for(lib / "other" / "local-only.md", lib)
    assert [p.name for p in found] == ["lab.yaml", "prod.yml"]


# --- slow: the real library, in Chromium ------------------------------------------------------


def _playwright() -> Any:
    missing = None
    if not Path(CHROMIUM).is_file():
        missing = f"{CHROMIUM} is missing (Debian package chromium; .ci/run installs it)"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing = "playwright for Python is not installed (test extra)"
    if missing:
        message = f"BROWSER TESTS DID NOT RUN: {missing}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return sync_playwright


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real library, built once with every download this machine can make."""
    out = tmp_path_factory.mktemp("site") / "_build"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SOURCE_DATE_EPOCH", EPOCH)
        report = build_site(RUNBOOKS, out, jobs=2)
    assert report.ok, report.failures
    return out


@pytest.fixture(scope="module")
def server(site: Path) -> Iterator[str]:
    """``python -m http.server`` serving the site on 127.0.0.1; yields its base URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "http.server",
            str(port),
            "--bind",
            "127.0.0.1",
            "--directory",
            str(site),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("http.server did not start") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_playwright = _playwright()
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Watched:
    """A page with every console message, failed request and off-site request recorded."""

    def __init__(self, browser: Any, base: str, width: int = 1280) -> None:
        self.base = base
        self.page = browser.new_page(viewport={"width": width, "height": 900})
        self.problems: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))
        self.page.on(
            "requestfailed", lambda r: self.problems.append(f"failed: {r.url} {r.failure}")
        )
        self.page.on("request", self._request)
        self.page.on(
            "response",
            lambda r: r.status >= 400 and self.problems.append(f"HTTP {r.status}: {r.url}"),
        )

    def _console(self, message: Any) -> None:
        if message.type in ("error", "warning"):
            self.problems.append(f"console {message.type}: {message.text}")

    def _request(self, request: Any) -> None:
        if not (request.url.startswith(self.base) or request.url.startswith("data:")):
            self.problems.append(f"off-site request: {request.url}")

    def goto(self, path: str) -> Any:
        self.page.goto(f"{self.base}/{path}")
        self.page.wait_for_load_state("load")
        return self.page

    def close(self) -> None:
        self.page.close()
        assert self.problems == []


def _base(kind: str, site: Path, request: pytest.FixtureRequest) -> str:
    return site.as_uri() if kind == "file" else request.getfixturevalue("server")


def _library() -> list[Any]:
    return [parse_file(p) for p in runbook_files([RUNBOOKS])]


def _env_names(rb: Any) -> list[str]:
    """The environments the site offers for ``rb``: those in its folder's environments/."""
    import yaml

    folder = rb.path.parent / "environments"
    return sorted(yaml.safe_load(p.read_text())["name"] for p in folder.glob("*.yaml"))


def _matching(library: list[Any], *words: str, tag: str | None = None) -> list[str]:
    """Ids the filter must show: every word in id, title, summary or tags; the tag if any."""

    def text(rb: Any) -> str:
        return " ".join([rb.id, rb.title, " ".join(rb.summary.split()), *rb.tags]).lower()

    return sorted(
        rb.id
        for rb in library
        if all(w in text(rb) for w in words) and (tag is None or tag in rb.tags)
    )


CARDS = "#runbooks > li.runbook"


def _visible(page: Any) -> list[str]:
    return sorted(
        page.eval_on_selector_all(CARDS, "els => els.filter(e => !e.hidden).map(e => e.dataset.id)")
    )


def _expect_shown(page: Any, ids: list[str]) -> None:
    """Wait until the filter shows exactly the cards ``ids``, then check them by ``data-id``.

    site.js filters on ``input`` and ``hashchange`` events, which may run after the action
    that fires them returns: first wait (Playwright's retrying ``expect``) for the shown
    cards' ids, in page order, then read them once the page has settled."""
    order = page.locator(CARDS).evaluate_all("els => els.map(e => e.dataset.id)")
    expect(page.locator(f"{CARDS}:not([hidden]) > .meta > code")).to_have_text(
        [i for i in order if i in ids]
    )
    assert _visible(page) == sorted(ids)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["file", "http"])
def test_index_lists_every_runbook(
    kind: str, site: Path, browser: Any, request: pytest.FixtureRequest
) -> None:
    watched = Watched(browser, _base(kind, site, request))
    page = watched.goto("index.html")
    library = _library()
    assert len(library) >= 10
    _expect_shown(page, sorted(rb.id for rb in library))
    for rb in library:
        card = page.locator(f'li.runbook[data-id="{rb.id}"]')
        assert card.locator("h2").inner_text() == rb.title
        counts = step_counts(rb)
        text = card.locator(".counts").inner_text()
        for number, label in (
            (counts.automated, "automated"),
            (counts.manual, "manual"),
            (counts.verification, "verification"),
            (counts.approval, "approval"),
        ):
            assert re.search(rf"\b{number}\s+{label}", text), (rb.id, text)
        assert card.locator(".guides a").all_inner_texts() == ["generic", *_env_names(rb)]
    expect(page.locator("#filter")).to_be_visible()
    if kind == "http":
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "site-index.png"), full_page=True)
    watched.close()


@pytest.mark.slow
def test_filter_by_text_and_tag(server: str, browser: Any) -> None:
    watched = Watched(browser, server)
    page = watched.goto("index.html")
    library = _library()
    every = sorted(rb.id for rb in library)

    page.fill("#filter-text", "storage group")
    expected = _matching(library, "storage", "group")
    assert 0 < len(expected) < len(every)
    _expect_shown(page, expected)
    expect(page.locator("#filter-status")).to_have_text(
        f"Showing {len(expected)} of {len(every)} runbooks", use_inner_text=True
    )

    page.click("#filter-clear")
    _expect_shown(page, every)
    tag = "mailbox-manager"
    tagged = _matching(library, tag=tag)
    assert 0 < len(tagged) < len(every)
    button = page.locator(f'.tag-bar button[data-tag="{tag}"]')
    button.click()
    _expect_shown(page, tagged)
    expect(button).to_have_attribute("aria-pressed", "true")
    expect(page).to_have_url(re.compile(re.escape(f"tag={tag}")))
    page.fill("#filter-text", "schedule")
    both = _matching(library, "schedule", tag=tag)
    assert 0 < len(both) < len(tagged)
    _expect_shown(page, both)
    page.fill("#filter-text", "no runbook says zyzzyva")
    _expect_shown(page, [])
    expect(page.locator("#no-match")).to_be_visible()
    button.click()
    page.fill("#filter-text", "")
    _expect_shown(page, every)
    expect(page.locator("#no-match")).to_be_hidden()

    # A tag link in a card, and a tag link on a runbook page, open the filtered index.
    page.click('li.runbook[data-id="rpc-over-https"] .tags a[data-tag="iis"]')
    _expect_shown(page, _matching(library, tag="iis"))
    page = watched.goto("exchange2003/rpc-over-https/index.html")
    page.click('.runbook-bar a.tag:text-is("outlook2003")')
    page.wait_for_url("**/index.html#tag=outlook2003")
    _expect_shown(page, _matching(library, tag="outlook2003"))
    watched.close()


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["file", "http"])
@pytest.mark.parametrize("env_name", ["lab", "single-server"])
def test_tailored_page_shows_the_environment(
    kind: str, env_name: str, site: Path, browser: Any, request: pytest.FixtureRequest
) -> None:
    base = _base(kind, site, request)
    watched = Watched(browser, base)
    page = watched.goto(f"exchange2003/rpc-over-https/env-{env_name}.html")
    env = load_environment(SEEDS / "environments" / f"{env_name}.yaml")
    runbook = parse_file(SEEDS / "rpc-over-https.md")
    text = page.inner_text("main.guide")
    hosts = [h for role in runbook.roles for h in env.roles.get(role, ())]
    assert hosts
    for host in hosts:
        assert host.name in text and host.address in text, host
    assert page.inner_text('.variants a[aria-current="page"]') == env.name
    other = "single-server" if env_name == "lab" else "lab"
    other_env = load_environment(SEEDS / "environments" / f"{other}.yaml")
    assert not any(
        h.address in text
        for r in other_env.roles.values()
        for h in r
        if h.address not in {x.address for x in hosts}
    )
    downloads = dict(
        zip(
            page.locator(".downloads a").all_inner_texts(),
            page.eval_on_selector_all(".downloads a", "els => els.map(e => e.href)"),
            strict=True,
        )
    )
    expected = {"Printable HTML", "Source Markdown"}
    expected |= {"PDF"} if any(site.rglob("*.pdf")) else set()
    expected |= {"Notebook (.ipynb)"} if any(site.rglob("*.ipynb")) else set()
    assert set(downloads) == expected
    if kind == "http":
        for label, url in downloads.items():
            response = page.request.get(url)
            assert response.status == 200, (label, url)
            if label == "PDF":
                assert response.body().startswith(b"%PDF-")
        printable = watched.goto(
            f"exchange2003/rpc-over-https/files/rpc-over-https-{env_name}.html"
        )
        assert env.name in printable.inner_text(".running-head")
    watched.close()


@pytest.mark.slow
def test_step_anchors_and_index(server: str, browser: Any) -> None:
    watched = Watched(browser, server)
    page = watched.goto("exchange2003/rpc-over-https/env-lab.html")
    flow = parse_file(SEEDS / "rpc-over-https.md").flow
    toc = page.eval_on_selector_all("#step-index a", "els => els.map(e => e.getAttribute('href'))")
    assert toc == [f"#{s.id}" for s in flow]
    for step in flow:
        assert page.locator(f"main.guide a.anchor#{step.id}").count() == 1
    step = flow[len(flow) // 2]
    page.click(f'#step-index a[href="#{step.id}"]')
    expect(page).to_have_url(re.compile(re.escape(f"#{step.id}") + "$"))
    expect(page.locator(f"a.anchor#{step.id}")).to_be_visible()
    watched.close()


@pytest.mark.slow
def test_readable_at_phone_width(server: str, browser: Any) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    watched = Watched(browser, server, width=375)
    for path, shot in (
        ("index.html", "site-index-phone.png"),
        ("exchange2003/rpc-over-https/env-lab.html", "site-runbook-phone.png"),
    ):
        page = watched.goto(path)
        assert page.evaluate("document.documentElement.scrollWidth") <= 375, path
        page.screenshot(path=str(ARTIFACTS / shot))
    expect(page.locator("#step-index")).to_have_js_property("open", False)
    wide = Watched(browser, server)
    wide.goto("exchange2003/rpc-over-https/env-lab.html").screenshot(
        path=str(ARTIFACTS / "site-runbook.png")
    )
    expect(wide.page.locator("#step-index")).to_have_js_property("open", True)
    wide.close()
    watched.close()


@pytest.mark.slow
def test_every_link_resolves_and_nothing_is_remote(site: Path) -> None:
    pages = sorted(p for p in site.rglob("*.html") if p.parent.name != "files")
    assert len(pages) == 1 + sum(1 + len(_env_names(rb)) for rb in _library())
    ids: dict[Path, set[str]] = {}
    for page in pages:
        parsed = parse_html(page)
        for tag, attr, value in parsed.links:
            url = urlsplit(value)
            if url.scheme in ("http", "https") or value.startswith("//"):
                assert tag == "a" and attr == "href", (page, value)  # links, never resources
                continue
            if url.scheme in ("data", "mailto"):
                continue
            assert not url.scheme, (page, value)
            target = (page.parent / unquote(url.path)).resolve() if url.path else page
            assert target.is_file(), (page, value)
            assert site.resolve() in target.parents
            if url.fragment and target.suffix == ".html" and not url.fragment.startswith("tag="):
                if target not in ids:
                    ids[target] = parse_html(target).ids
                assert url.fragment in ids[target], (page, value)


def test_site_notebooks_hold_library_paths_never_absolute_ones(tmp_path: Path) -> None:
    out = tmp_path / "_build"
    report = build_site(RUNBOOKS, out, formats=("html", "ipynb"), jobs=1, cache=False)
    assert report.ok, report.failures
    notebooks = sorted(out.rglob("*.ipynb"))
    assert notebooks
    for path in notebooks:
        text = path.read_text(encoding="utf-8")
        assert str(ROOT) not in text and str(RUNBOOKS.resolve()) not in text, path
        meta = json.loads(text)["metadata"]["runbook_engine"]
        assert not Path(meta["runbook"]["path"]).is_absolute()
        if meta["environment"]:
            assert meta["environment"]["path"].startswith("environments/")
