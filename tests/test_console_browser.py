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


def _sign_in(browser: Any, base: str, name: str) -> Any:
    page = browser.new_context().new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
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

            alice = _sign_in(browser, console, "Alice Approver")
            alice.goto(f"{console}/runs/r1")
            expect(alice.locator("#run-status")).to_have_text("paused")
            alice.fill("#gate-cab input[name=note]", "<img src=x onerror=alert(1)>")
            alice.click("#gate-cab button[value=approve]")
            expect(alice.locator(".message")).to_contain_text("1 of 2 approvals")
            expect(alice.locator(".votes")).to_contain_text("<img src=x onerror=alert(1)>")
            _shot(alice, "approval-voted")

            bob = _sign_in(browser, console, "Bob Board")
            bob.goto(f"{console}/runs/r1")
            bob.click("#gate-cab button[value=approve]")
            expect(bob.locator(".message")).to_contain_text("2 of 2 approvals")

            # Alice's page was not reloaded: its script follows the run to the next gate.
            expect(alice.locator("#gate-export-settings")).to_be_visible(timeout=90_000)
            expect(alice.locator("#gate-cab")).to_have_count(0)
            _shot(alice, "run-gate")
            alice.goto(f"{console}/runs/r1/record")
            expect(alice.locator("body")).to_contain_text("Change board approval")
            _shot(alice, "evidence")
            assert alice.problems == [] and bob.problems == []
        finally:
            browser.close()
