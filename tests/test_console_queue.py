"""The web console on the team's PostgreSQL store with a job queue: a run started in the
console is created ``queued`` with its signed-in starter and put on the queue; a real
``runbook worker`` (another "machine": its own state folder) executes it; approvals made
in the console enqueue the resume; the worker records the starter as signed in.

Real PostgreSQL (``RUNBOOK_TEST_PG``, default the local server; one fresh database for
this module holding both the store and the queue, dropped after), a real worker process,
the application driven by Starlette's TestClient.  Skipped, saying why, only when no
PostgreSQL server answers.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

pytest.importorskip("starlette")
pytest.importorskip("argon2")
psycopg = pytest.importorskip("psycopg", reason="the team extra (psycopg, procrastinate)")
pytest.importorskip("procrastinate", reason="the team extra (psycopg, procrastinate)")

from starlette.testclient import TestClient  # noqa: E402
from test_console import PASSWORD, csrf, login  # noqa: E402

from runbook_engine.console.app import create_app  # noqa: E402
from runbook_engine.console.launcher import QueueLauncher  # noqa: E402
from runbook_engine.console.settings import Settings  # noqa: E402
from runbook_engine.console.users import UserFile, users_path  # noqa: E402
from runbook_engine.evidence.journal import read_journal  # noqa: E402

PG = os.environ.get("RUNBOOK_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
OPERATOR = "Olga Operator"
pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="Linux /proc")

#: A change two approvers must pass; the worker runs the rest to its end.
TWO_PERSON = """---
id: two-person-change
title: A change two people approve
approval: required
---
# A change two people approve

```sh {#pre .precheck title="Read the current state"}
echo pre >> steps.log
```

```approval {#cab title="Change board approval"}
required: 2
approvers: [change-board]
expires_hours: 24
```

```sh {#change title="Make the change"}
echo change >> steps.log
```

```sh {#verify-change .verify title="Check the change"}
grep -q change steps.log
```
"""
ENV = """name: board
description: Everything runs on this machine; the change board approves.
approvers:
  change-board: [Alice Approver, Bob Board, Olga Operator]
"""


def wait_until(check: Callable[[], Any], limit: float = 90.0) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return bool(check())


@pytest.fixture(scope="module")
def team_db() -> Iterator[str]:
    """A fresh database for this module: the runbook store's schema and (made by the
    first enqueue) procrastinate's tables; dropped after."""
    try:
        admin = psycopg.connect(PG, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL server answers at {PG} (set RUNBOOK_TEST_PG): {exc}")
    name = f"rbe_cq_{secrets.token_hex(4)}"
    admin.execute(f'CREATE DATABASE "{name}"')
    url = urlunsplit(urlsplit(PG)._replace(path=f"/{name}"))
    try:
        from runbook_engine.run.pgstore import schema

        schema.upgrade(url, name)
        yield url
    finally:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.close()


def cli_env(home: Path, **more: str) -> dict[str, str]:
    """A "machine": its own configuration and state homes (the signing key is the team's,
    given by ``RUNBOOK_SIGNING_KEY``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNBOOK_", "XDG_"))}
    env.update(
        XDG_CONFIG_HOME=str(home / "config"),
        XDG_STATE_HOME=str(home / "state"),
        NO_COLOR="1",
        **more,
    )
    return env


class Team:
    """A library with the two-person change, accounts, the console on the team's store
    with its queue, and worker processes."""

    def __init__(self, root: Path, url: str) -> None:
        self.root, self.url = root, url
        self.library = root / "library"
        self.library.mkdir()
        (self.library / "change.md").write_text(TWO_PERSON)
        (self.library / "board.yml").write_text(ENV)
        self.state = root / "console-state"
        self.keys = root / "keys"
        made = subprocess.run(
            [sys.executable, "-m", "runbook_engine", "keys", "init", "-o", str(self.keys)],
            env=cli_env(root / "admin"),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert made.returncode == 0, made.stderr
        self.settings = Settings(
            self.state,
            self.library,
            "test-key-" + "x" * 32,
            store_url=url,
            queue_url=url,
            sweep_seconds=0,
        )
        self.app = create_app(self.settings)
        accounts = UserFile(users_path(self.state))
        accounts.add(OPERATOR, ("operator", "approver"), PASSWORD)
        accounts.add("Alice Approver", ("approver",), PASSWORD)
        accounts.add("Bob Board", ("approver",), PASSWORD)
        self.workers: list[tuple[subprocess.Popen[bytes], Path]] = []

    def env(self, machine: str) -> dict[str, str]:
        return cli_env(self.root / machine, RUNBOOK_SIGNING_KEY=str(self.keys / "signing.key"))

    def client(self, name: str) -> TestClient:
        client = TestClient(self.app)
        response = login(client, name, PASSWORD)
        assert response.status_code == 200 and response.url.path == "/runs", response.text
        return client

    def worker(self) -> None:
        log = self.root / f"worker-{len(self.workers)}.log"
        proc = subprocess.Popen(
            [sys.executable, "-m", "runbook_engine", "worker", "--queue-url", self.url],
            cwd=self.root,
            env=self.env("worker"),
            stdin=subprocess.DEVNULL,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        self.workers.append((proc, log))

    def worker_log(self) -> str:
        return "\n".join(log.read_text(errors="replace") for _, log in self.workers)

    def cli(self, machine: str, *args: Any) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, "-m", "runbook_engine", *map(str, args)],
            cwd=self.root,
            env={**self.env(machine), "RUNBOOK_STORE": self.url},
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
        assert "Traceback" not in proc.stderr, proc.stderr
        return proc

    def run_of(self, run_id: str) -> Any:
        with self.app.state.data._store(run_id) as store:
            return store.get_run(run_id), {s.step_id: s.status for s in store.steps(run_id)}

    def journal(self, run_id: str) -> list[dict[str, Any]]:
        return read_journal(self.app.state.data._run_dir(run_id) / "journal.jsonl")

    def jobs(self) -> list[tuple[str, str]]:
        with psycopg.connect(self.url) as db:
            rows = db.execute("SELECT task_name, status FROM procrastinate_jobs ORDER BY id")
            return [(r[0], r[1]) for r in rows.fetchall()]


@pytest.fixture
def team(tmp_path: Path, team_db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Team]:
    here = Team(tmp_path, team_db)
    monkeypatch.setenv("RUNBOOK_SIGNING_KEY", str(here.keys / "signing.key"))  # the console's
    yield here
    for proc, _ in here.workers:
        proc.send_signal(signal.SIGTERM)
    for proc, _ in here.workers:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def start(client: TestClient) -> Any:
    return client.post(
        "/start",
        data={
            "runbook": "change.md",
            "environment": "board.yml",
            "change": "CHG-42",
            "csrf": csrf(client, "/start"),
        },
    )


def test_a_console_run_is_queued_executed_by_a_worker_and_approved_by_two(team: Team) -> None:
    olga = team.client(OPERATOR)
    started = start(olga)
    assert started.status_code == 200, started.text
    assert "queued for `runbook worker`" in started.text
    run_id = started.url.path.rsplit("/", 1)[-1]
    record, _ = team.run_of(run_id)
    assert (record.status, record.operator, record.change_id) == ("queued", OPERATOR, "CHG-42")
    assert team.jobs() == [("runbook:start_run", "todo")]
    first = team.journal(run_id)[0]
    assert first["queued"] is True and first["operator_authenticated"] is True
    assert first["operator_auth_method"] == "password"

    team.worker()
    assert wait_until(lambda: team.run_of(run_id)[1]["cab"] == "awaiting"), team.worker_log()
    assert wait_until(lambda: team.run_of(run_id)[0].status == "paused"), team.worker_log()
    token = csrf(olga, f"/runs/{run_id}")
    own = olga.post(f"/runs/{run_id}/steps/cab/vote", data={"decision": "approve", "csrf": token})
    assert "separation of duties" in own.text
    for name, said in (("Alice Approver", "1 of 2"), ("Bob Board", "2 of 2")):
        person = team.client(name)
        token = csrf(person, f"/runs/{run_id}")
        voted = person.post(
            f"/runs/{run_id}/steps/cab/vote", data={"decision": "approve", "csrf": token}
        )
        assert said in voted.text, voted.text
        if said == "1 of 2":
            assert [t for t, _ in team.jobs()] == ["runbook:start_run"]  # no resume yet
    assert wait_until(lambda: team.run_of(run_id)[0].status == "succeeded"), team.worker_log()
    assert [t for t, _ in team.jobs()] == ["runbook:start_run", "runbook:resume_run"]

    records = team.journal(run_id)
    resumed = [r for r in records if r["event"] == "run-resumed"]
    assert len(resumed) == 2  # the start job's and the resume job's
    assert all(r["authenticated"] is True and r["auth_method"] == "password" for r in resumed)
    voters = [(r["by"], r["authenticated"]) for r in records if r["event"] == "approval-recorded"]
    assert voters == [("Alice Approver", True), ("Bob Board", True)]

    bundle = olga.get(f"/runs/{run_id}/bundle")
    assert bundle.status_code == 200
    (team.root / "bundle.zip").write_bytes(bundle.content)
    verified = team.cli(
        "auditor", "evidence", "verify", team.root / "bundle.zip",
        "--public-key", team.keys / "signing.pub",
    )  # fmt: skip
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.startswith("VERIFIED:") and "key pinned" in verified.stdout
    shown = team.cli("auditor", "evidence", "export", run_id, "--to", "md")
    assert shown.returncode == 0, shown.stderr
    assert "Olga Operator" in shown.stdout and "claimed, not authenticated" not in shown.stdout


def test_without_a_queue_the_console_keeps_its_background_processes(
    team: Team, tmp_path: Path
) -> None:
    settings = Settings(tmp_path / "alone", team.library, "k" * 40, sweep_seconds=0)
    app = create_app(settings)
    assert not isinstance(app.state.launcher, QueueLauncher)
    assert "background process" in app.state.launcher.description


EXPIRING = """---
id: expiring-on-team
title: An approval that counts for about a second
approval: required
---
# Expiring approval

```approval {#cab title="Change board approval"}
required: 2
approvers: [change-board]
expires_hours: 0.0003
```

```sh {#change}
echo change >> steps.log
```
"""


def test_a_worker_sweeps_the_team_store_for_expired_approvals(team: Team) -> None:
    """Nobody looks at the run: the worker finds the approval expired, journals it once
    in the team's store and the mail arrives (a real SMTP server, aiosmtpd)."""
    pytest.importorskip("apprise")
    pytest.importorskip("aiosmtpd")
    import yaml
    from aiosmtpd.controller import Controller
    from test_notify import Mailbox, free_port, mail_channel

    (team.root / "expiring.md").write_text(EXPIRING)
    (team.root / "board.yml").write_text(ENV)
    box, port = Mailbox(), free_port()
    smtp = Controller(box, hostname="127.0.0.1", port=port)
    smtp.start()
    try:
        config = team.root / "notifications.yaml"
        settings = {"public_url": "https://console.example.test", "channels": [mail_channel(port)]}
        config.write_text(yaml.safe_dump({**settings, "events": ["approval-expired"]}))
        run = ("run", "expiring.md", "--env", "board.yml", "--run-id", "x1", "--no-input")
        assert team.cli("alice", *run, "--operator", OPERATOR).returncode == 3
        voted = team.cli("bob", "approve", "x1", "cab", "--as", "Bob Board")
        assert voted.returncode == 0, voted.stderr
        log = team.root / "sweeper.log"
        worker = subprocess.Popen(
            [sys.executable, "-m", "runbook_engine", "worker", "--sweep-seconds", "0.5"],
            cwd=team.root,
            env={
                **team.env("sweeper"),
                "RUNBOOK_STORE": team.url,
                "RUNBOOK_NOTIFY_CONFIG": str(config),
            },
            stdin=subprocess.DEVNULL,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        team.workers.append((worker, log))
        assert wait_until(lambda: len(box.messages) == 1, 60), team.worker_log()
        said = "run x1: an approval of cab by Bob Board expired"
        assert wait_until(lambda: said in team.worker_log(), 30), team.worker_log()
        time.sleep(1.5)  # more sweeps: nothing new
        assert len(box.messages) == 1
        ((subject, text),) = box.texts()
        assert subject == "An approval of step cab in run x1 expired" and "Bob Board" in text
        records = team.journal("x1")
        assert [r["by"] for r in records if r["event"] == "approval-expired"] == ["Bob Board"]
        sent = [r for r in records if r["event"] == "notification-sent"]
        assert [(r["about"], r["channel"]) for r in sent] == [("approval-expired", "ops-mail")]
        assert team.run_of("x1")[0].status == "paused"
    finally:
        smtp.stop()


MANUAL = """---
id: by-hand-on-team
title: A manual step, then a command
---
# By hand

```manual {#by-hand title="Export the settings"}
Export the settings.
```

```sh {#after title="Write after"}
echo after >> steps.log
```
"""


def test_a_confirmation_in_the_console_queues_the_resume(team: Team) -> None:
    (team.library / "manual.md").write_text(MANUAL)
    olga = team.client(OPERATOR)
    started = olga.post(
        "/start",
        data={"runbook": "manual.md", "environment": "board.yml", "csrf": csrf(olga, "/start")},
    )
    run_id = started.url.path.rsplit("/", 1)[-1]
    team.worker()
    assert wait_until(lambda: team.run_of(run_id)[0].status == "paused"), team.worker_log()
    token = csrf(olga, f"/runs/{run_id}")
    done = olga.post(
        f"/runs/{run_id}/steps/by-hand/decide",
        data={"decision": "confirm", "note": "exported", "csrf": token},
    )
    assert "the run continues" in done.text, done.text
    assert wait_until(lambda: team.run_of(run_id)[0].status == "succeeded"), team.worker_log()
    assert [t for t, _ in team.jobs()][-2:] == ["runbook:start_run", "runbook:resume_run"]
    passed = [r for r in team.journal(run_id) if r["event"] == "gate-passed"]
    assert [(r["by"], r["authenticated"]) for r in passed] == [(OPERATOR, True)]
