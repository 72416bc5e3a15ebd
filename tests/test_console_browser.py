"""The web console in Debian's Chromium (Playwright): an approver signs in, approves, a
second approver approves in another browser, and the first one's run page follows the
run to its next gate by itself (the page's script polls; no reload).  On the way, a PNG
of each page is saved in ``tests/artifacts/`` (gitignored): login, runs, the run page at
an approval and at a manual gate, the library, the change record.

``runbook serve`` runs for real on loopback, over a real paused run made by the CLI.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette")

from runbook_engine.console.users import UserFile, users_path

FIXTURES = Path(__file__).parent / "fixtures" / "evidence"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
PASSWORD = "correct horse battery"
ARTIFACTS = Path(__file__).parent / "artifacts"
pytestmark = [pytest.mark.slow, pytest.mark.skipif(os.name != "posix", reason="sh steps")]


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


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNBOOK_")}
    env.update(NO_COLOR="1", RUNBOOK_OPERATOR="Olga Operator", RUNBOOK_CONSOLE_SECRET="k" * 40)
    return env


@pytest.fixture
def console(tmp_path: Path) -> Iterator[str]:
    """A paused run needing two approvals, three accounts, and ``runbook serve`` on it."""
    for item in FIXTURES.iterdir():
        if item.is_file():
            shutil.copy2(item, tmp_path / item.name)
    state = tmp_path / "state"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "runbook_engine",
            "run",
            "approved.md",
            "--env",
            "env.yml",
            "--state-dir",
            str(state),
            "--run-id",
            "r1",
            "--no-input",
        ],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert run.returncode == 3, run.stderr
    accounts = UserFile(users_path(state))
    accounts.add("Olga Operator", ("operator", "approver"), PASSWORD)
    accounts.add("Alice Approver", ("approver",), PASSWORD)
    accounts.add("Bob Board", ("approver",), PASSWORD)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "runbook_engine",
            "serve",
            "--port",
            str(port),
            "--library",
            str(tmp_path),
            "--state-dir",
            str(state),
        ],
        cwd=tmp_path,
        env=_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError((tmp_path / "serve.log").read_text()) from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def _shot(page: Any, name: str) -> None:
    """Save a full-page PNG of ``page`` as ``tests/artifacts/console-NAME.png``."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"console-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path


def _sign_in(browser: Any, base: str, name: str, script: bool = True) -> Any:
    page = browser.new_context(java_script_enabled=script).new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on(
        "console",
        lambda m: (
            problems.append(f"{m.text} ({m.location.get('url')})") if m.type == "error" else None
        ),
    )
    page.on(
        "response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None
    )
    page.goto(f"{base}/runs/r1")
    assert page.url.endswith("/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/runs")
    page.problems = problems
    return page


def test_two_approvers_in_the_browser_and_the_page_follows_the_run(console: str) -> None:
    from playwright.sync_api import expect

    with _playwright()() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            login = browser.new_context().new_page()
            login.goto(f"{console}/login")
            _shot(login, "login")
            olga = _sign_in(browser, console, "Olga Operator")
            _shot(olga, "runs")
            olga.goto(f"{console}/library")
            _shot(olga, "library")
            olga.goto(f"{console}/runs/r1")
            _shot(olga, "run-approval")
            olga.fill("#gate-cab input[name=note]", "mine")
            olga.click("#gate-cab button[value=approve]")
            expect(olga.locator(".message")).to_contain_text("separation of duties")
            # The script acted through the API (its 403 shown in the page, no navigation).
            expect(olga.locator(".message")).to_contain_text("(HTTP 403)")
            assert olga.url == f"{console}/runs/r1"

            alice = _sign_in(browser, console, "Alice Approver")
            alice.goto(f"{console}/runs/r1")
            expect(alice.locator("#run-status")).to_have_text("paused")
            alice.fill("#gate-cab input[name=note]", "<img src=x onerror=alert(1)>")
            alice.click("#gate-cab button[value=approve]")
            expect(alice.locator(".message")).to_contain_text("1 of 2 approvals")
            expect(alice.locator(".votes")).to_contain_text("<img src=x onerror=alert(1)>")
            _shot(alice, "approval-voted")

            # Bob's browser runs no script: the page's form posts to the console, which
            # does the act with the API's code and shows its answer after a redirect.
            bob = _sign_in(browser, console, "Bob Board", script=False)
            bob.goto(f"{console}/runs/r1")
            bob.click("#gate-cab button[value=approve]")
            expect(bob.locator(".message")).to_contain_text("2 of 2 approvals")
            assert bob.url == f"{console}/runs/r1"
            expect(bob.locator("#live[data-shown]")).to_have_count(0)

            # Alice's page was not reloaded: its script follows the run to the next gate.
            expect(alice.locator("#gate-export-settings")).to_be_visible(timeout=90_000)
            expect(alice.locator("#gate-cab")).to_have_count(0)
            _shot(alice, "run-gate")
            alice.goto(f"{console}/runs/r1/record")
            expect(alice.locator("body")).to_contain_text("Change board approval")
            _shot(alice, "evidence")
            assert alice.problems == [] and bob.problems == []
            # Signed out in another tab: the page that follows the run says so and stops.
            alice.goto(f"{console}/runs/r1")
            other = alice.context.new_page()
            other.goto(f"{console}/runs/r1")
            other.click("form.who button[type=submit]")
            other.wait_for_url(f"{console}/login")
            expect(alice.locator("#message")).to_contain_text("session has ended")
        finally:
            browser.close()


XSS_BOOK = """---
id: xss-change
title: Payloads in a runbook, its output, names and notes
version: "1.0"
approval: required
---
# Payloads

```sh {#emit .precheck title="Print payloads"}
echo '<img src=x onerror="window.__xss=1">'
echo '<script>window.__xss=2</script>'
```

```approval {#board title="Board"}
required: 2
approvers: [board]
```

```manual {#look title="Look"}
Check <svg onload="window.__xss=4"></svg> and <img src=x onerror="window.__xss=5"> by hand.
```
"""
EVE = 'Eve <img src=x onerror="window.__xss=3">'
NOTE = '<img src=x onerror="window.__xss=6"><b>bold</b>'
REASON = "</td><script>window.__xss=7</script>"


@pytest.fixture
def xss_console(console: str, tmp_path: Path) -> tuple[str, str]:
    """The console of :func:`console`, with run ``x1`` of a runbook full of payloads,
    paused at an approval that Eve (a payload in her name) and Alice may give; returns
    the console's URL and Alice's API token."""
    (tmp_path / "xss.md").write_text(XSS_BOOK)
    (tmp_path / "xss-env.yml").write_text(
        f"name: xss\napprovers:\n  board: ['{EVE}', Alice Approver]\n"
    )
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "runbook_engine",
            "run",
            "xss.md",
            "--env",
            "xss-env.yml",
            "--state-dir",
            str(tmp_path / "state"),
            "--run-id",
            "x1",
            "--no-input",
        ],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert run.returncode == 3, run.stdout + run.stderr
    accounts = UserFile(users_path(tmp_path / "state"))
    accounts.add(EVE, ("approver", "operator"), PASSWORD)
    return console, accounts.add("Alice Approver", ("approver",), PASSWORD)[1]


def test_payloads_from_the_api_stay_text_in_the_page(xss_console: tuple[str, str]) -> None:
    """Runbook text, command output, a person's name, a note and a skip's reason, all
    HTML payloads, reach the run page through the script (from /api/v1) as text: no
    element is made from them, nothing runs, and the browser reports no blocked script
    (which it would, under the CSP, for an inline handler that got into the page)."""
    import httpx
    from playwright.sync_api import expect

    console, alice_token = xss_console
    with _playwright()() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            eve = _sign_in(browser, console, EVE)
            eve.goto(f"{console}/runs/x1")
            expect(eve.locator("#live[data-shown=api]")).to_have_count(1)  # drawn by the script
            expect(eve.locator("#outputs")).to_contain_text("<script>window.__xss=2</script>")
            eve.fill("#gate-board input[name=note]", NOTE)
            eve.click("#gate-board button[value=approve]")
            expect(eve.locator("#message")).to_contain_text(f"approval of board by {EVE}")
            expect(eve.locator("#gate-board .votes")).to_contain_text(f"approve by {EVE}: {NOTE}")
            voted = httpx.post(
                f"{console}/api/v1/runs/x1/steps/board/approve",
                headers={"Authorization": f"Bearer {alice_token}"},
                json={"note": "<iframe src=javascript:window.__xss=8>"},
                timeout=30,
            )
            assert voted.status_code == 200, voted.text
            # The page follows the run to the manual gate, whose text is the runbook's.
            look = eve.locator("#gate-look .instructions")
            expect(look).to_contain_text('<svg onload="window.__xss=4"></svg>', timeout=90_000)
            expect(eve.locator("#events")).to_contain_text(f"by {EVE}")
            eve.fill("#gate-look input[name=note]", REASON)
            eve.click("#gate-look button[value=skip]")
            expect(eve.locator("#message")).to_contain_text("Recorded skip of look")
            expect(eve.locator("#run-status")).to_have_text("succeeded", timeout=90_000)
            expect(eve.locator("#steps")).to_contain_text(REASON)
            _shot(eve, "run-payloads")
            made = eve.locator("#live img, #live svg, #live script, #live iframe, #live b")
            assert made.count() == 0, "a payload became an element"
            assert eve.locator("#message *").count() == 0
            assert eve.evaluate("window.__xss") is None
            assert eve.problems == []
        finally:
            browser.close()
