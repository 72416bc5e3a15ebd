"""Team mode in Debian's Chromium (Playwright): the console on the team's PostgreSQL store
with a job queue and a real ``runbook worker``.

The operator signs in and starts a run from the console; the worker executes it up to
its two-person approval; the operator's own approval is refused; two approvers approve,
each in their own browser context; the worker finishes the run; the operator's page
shows it finished; the evidence bundle downloaded from the page verifies with
``runbook evidence verify`` against the pinned key.  PNGs of the pages go to
``tests/artifacts/`` (``console-queue-*.png``).

Real processes: ``runbook serve`` on loopback and ``runbook worker`` (its own state
folder, as another machine), PostgreSQL (``RUNBOOK_TEST_PG``; a fresh database for the
module, dropped after).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette")
pytest.importorskip("psycopg", reason="the team extra (psycopg, procrastinate)")
pytest.importorskip("procrastinate", reason="the team extra (psycopg, procrastinate)")

from test_console_browser import CHROMIUM, CHROMIUM_ARGS, PASSWORD, _playwright, _shot
from test_console_queue import ENV, TWO_PERSON, team_db  # noqa: F401 (the fixture)

from runbook_engine.console.users import UserFile, users_path

OPERATOR = "Olga Operator"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="Linux /proc"),
]


def _env(root: Path, machine: str, url: str, keys: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNBOOK_", "XDG_"))}
    env.update(
        NO_COLOR="1",
        XDG_CONFIG_HOME=str(root / machine / "config"),
        XDG_STATE_HOME=str(root / machine / "state"),
        RUNBOOK_STORE=url,
        RUNBOOK_SIGNING_KEY=str(keys / "signing.key"),
    )
    return env


def _wait_port(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(log.read_text()) from None
            time.sleep(0.1)


class Team:
    """The console and the worker, and where their logs are."""

    def __init__(self, root: Path, url: str, base: str, keys: Path) -> None:
        self.root, self.url, self.base, self.keys = root, url, base, keys

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')}"
            for p in sorted(self.root.glob("*.log"))
        )

    def cli(self, *args: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "runbook_engine", *map(str, args)],
            cwd=self.root,
            env=_env(self.root, "auditor", self.url, self.keys),
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )


@pytest.fixture
def team(tmp_path: Path, team_db: str) -> Iterator[Team]:  # noqa: F811
    """``runbook serve`` on the team's store and queue, three accounts, one worker."""
    library = tmp_path / "library"
    (library / "environments").mkdir(parents=True)
    (library / "change.md").write_text(TWO_PERSON)
    (library / "environments" / "board.yaml").write_text(ENV)
    keys = tmp_path / "keys"
    made = subprocess.run(
        [sys.executable, "-m", "runbook_engine", "keys", "init", "-o", str(keys)],
        env=_env(tmp_path, "admin", team_db, keys),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    state = tmp_path / "console-state"
    accounts = UserFile(users_path(state))
    accounts.add(OPERATOR, ("operator", "approver"), PASSWORD)
    accounts.add("Alice Approver", ("approver",), PASSWORD)
    accounts.add("Bob Board", ("approver",), PASSWORD)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started: list[subprocess.Popen[bytes]] = []
    logs = []
    try:
        console_env = _env(tmp_path, "console", team_db, keys)
        console_env["RUNBOOK_CONSOLE_SECRET"] = "k" * 40
        serve = [sys.executable, "-m", "runbook_engine", "serve", "--port", str(port)]
        serve += ["--library", str(library), "--state-dir", str(state), "--sweep-seconds", "2"]
        logs.append(open(tmp_path / "serve.log", "wb"))  # noqa: SIM115
        started.append(
            subprocess.Popen(
                serve,
                cwd=library,
                env=console_env,
                stdout=logs[-1],
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        )
        _wait_port(port, started[0], tmp_path / "serve.log")
        logs.append(open(tmp_path / "worker.log", "wb"))  # noqa: SIM115
        started.append(
            subprocess.Popen(
                [sys.executable, "-m", "runbook_engine", "worker", "--queue-url", team_db],
                cwd=tmp_path,
                env=_env(tmp_path, "worker", team_db, keys),
                stdout=logs[-1],
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        )
        yield Team(tmp_path, team_db, f"http://127.0.0.1:{port}", keys)
    finally:
        for proc in started:
            proc.send_signal(signal.SIGTERM)
        for proc in started:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for log in logs:
            log.close()


def _sign_in(browser: Any, base: str, name: str) -> Any:
    page = browser.new_context(accept_downloads=True).new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))

    def said(message: Any) -> None:  # the browser's own favicon.ico request is no problem
        if message.type == "error" and "favicon.ico" not in str(message.location):
            problems.append(f"{message.text} {message.location}")

    page.on("console", said)
    page.goto(f"{base}/runs")
    assert page.url.endswith("/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/runs")
    page.problems = problems
    return page


def _until(page: Any, check: Any, what: str, team: Team, limit: float = 120.0) -> None:
    """Reload ``page`` until ``check(page)`` holds (the worker works in the background)."""
    deadline = time.monotonic() + limit
    while not check(page):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} never happened; logs:\n{team.logs()}")
        time.sleep(1)
        page.reload()


def test_an_operator_starts_a_run_two_approve_and_a_worker_carries_it_out(team: Team) -> None:
    from playwright.sync_api import expect

    base = team.base
    with _playwright()() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            olga = _sign_in(browser, base, OPERATOR)
            olga.goto(f"{base}/start?runbook=change.md")
            expect(olga.locator("p.hint")).to_contain_text("queued for `runbook worker`")
            olga.select_option("select[name=environment]", "environments/board.yaml")
            olga.fill("input[name=change]", "CHG-77")
            _shot(olga, "queue-start")
            olga.click("form.start button[type=submit]")
            olga.wait_for_url(f"{base}/runs/two-person-change-*")
            run_id = olga.url.rsplit("/", 1)[-1]
            expect(olga.locator(".message")).to_contain_text("queued for `runbook worker`")

            _until(olga, lambda pg: pg.locator("#gate-cab").count() == 1, "the approval", team)
            expect(olga.locator("#run-status")).to_have_text("paused")
            _shot(olga, "queue-approval")
            olga.fill("#gate-cab input[name=note]", "mine")
            olga.click("#gate-cab button[value=approve]")
            expect(olga.locator(".message")).to_contain_text("separation of duties")
            # the page acts through the API: its refusal is the one failed request (HTTP 403)
            assert len(olga.problems) == 1, olga.problems
            assert "403" in olga.problems[0] and "/approve" in olga.problems[0], olga.problems
            olga.problems.clear()

            for name, said in (("Alice Approver", "1 of 2"), ("Bob Board", "2 of 2")):
                approver = _sign_in(browser, base, name)
                approver.goto(f"{base}/runs/{run_id}")
                approver.fill("#gate-cab input[name=note]", f"approved by {name}")
                approver.click("#gate-cab button[value=approve]")
                expect(approver.locator(".message")).to_contain_text(f"{said} approvals")
                assert approver.problems == [], approver.problems

            olga.goto(f"{base}/runs/{run_id}")
            _until(
                olga,
                lambda pg: pg.locator("#run-status").inner_text() == "succeeded",
                "the worker finishing the run",
                team,
            )
            _shot(olga, "queue-finished")
            with olga.expect_download() as download:
                olga.click("text=Evidence bundle (zip)")
            bundle = team.root / "bundle.zip"
            download.value.save_as(bundle)
            assert olga.problems == [], olga.problems
        finally:
            browser.close()

    verified = team.cli("evidence", "verify", bundle, "--public-key", team.keys / "signing.pub")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.startswith("VERIFIED") and "sealed; key pinned" in verified.stdout
    record = team.cli("evidence", "export", run_id, "--to", "md")
    assert record.returncode == 0, record.stderr
    for name in (OPERATOR, "Alice Approver", "Bob Board"):
        assert name in record.stdout
    assert "claimed, not authenticated" not in record.stdout
    assert "authenticated (password)" in record.stdout
