"""Workers on procrastinate's PostgreSQL queue: ``run --queue``, ``runbook worker``, gate
decisions that enqueue the resume, a worker killed mid-step, secrets on the worker.

Real PostgreSQL (``RUNBOOK_TEST_PG``, default the local server; one fresh database for
this module, dropped after), real worker processes, real signals.  Skipped, saying why,
only when no PostgreSQL server answers.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from test_runner import FIXTURES, Workspace, alive, cli_env, wait_until

from runbook_engine.evidence.journal import read_journal, verify_journal

psycopg = pytest.importorskip("psycopg", reason="the team extra (psycopg, procrastinate)")
pytest.importorskip("procrastinate", reason="the team extra (psycopg, procrastinate)")

PG = os.environ.get("RUNBOOK_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="Linux /proc")

TOGETHER = """---
id: together
title: Two runs at once
---
# Two runs at once

```sh {#meet title="Wait for the other run"}
touch "arrived-$RUNBOOK_RUN_ID"
i=0
while [ "$(ls arrived-* | wc -l)" -lt 2 ]; do
  i=$((i+1)); [ "$i" -lt 600 ] || exit 1; sleep 0.1
done
echo "met $RUNBOOK_RUN_ID" >> steps.log
```
"""

SECRET_BOOK = """---
id: secret-on-worker
title: A secret the worker resolves
parameters:
  token: {type: string, secret: true}
---
# A secret

```sh {#use title="Use the token"}
printf %s "{{ token }}" | sha256sum | cut -c1-16 >> steps.log
```
"""


@pytest.fixture(scope="module")
def queue_db() -> Iterator[str]:
    """A fresh database on the test server for this module's queue; dropped after."""
    try:
        admin = psycopg.connect(PG, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL server answers at {PG} (set RUNBOOK_TEST_PG): {exc}")
    name = f"rbe_q_{secrets.token_hex(4)}"
    admin.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(PG)
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def queue_url(queue_db: str) -> str:
    """The module's queue, its tables created (by ``runbook queue migrate``) and empty."""
    made = subprocess.run(
        [sys.executable, "-m", "runbook_engine", "queue", "migrate", "--queue-url", queue_db],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=120,
    )
    assert made.returncode == 0, made.stderr
    with psycopg.connect(queue_db, autocommit=True) as db:
        db.execute("TRUNCATE procrastinate_jobs, procrastinate_workers CASCADE")
    return queue_db


class Team(Workspace):
    """A workspace whose runs go through the queue at ``url``."""

    url: str = ""
    workers: list[tuple[subprocess.Popen[bytes], Path]]

    def queue(self, book: str, *args: Any, run_id: str = "r1") -> subprocess.CompletedProcess[str]:
        return self.runbook(
            "run", book, "--state-dir", self.state, "--run-id", run_id, "--queue",
            "--queue-url", self.url, "--json", *args,
        )  # fmt: skip

    def worker(self, *args: Any, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = self.root / f"worker-{len(self.workers)}.log"
        proc = subprocess.Popen(
            self.cmd("worker", "--queue-url", self.url, "--stalled-after", "2", *args),
            cwd=self.root,
            env={**cli_env(), **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        self.workers.append((proc, log))
        return proc

    def worker_log(self, index: int = -1) -> str:
        return self.workers[index][1].read_text(errors="replace")

    def run_status(self, run_id: str = "r1") -> str | None:
        with contextlib.closing(sqlite3.connect(self.state / "state.db")) as db:
            row = db.execute("SELECT status FROM runs WHERE run_id=?", (run_id,)).fetchone()
        return row[0] if row else None

    def wait_status(self, *statuses: str, run_id: str = "r1", limit: float = 90.0) -> str:
        assert wait_until(lambda: self.run_status(run_id) in statuses, limit), (
            f"run {run_id} is {self.run_status(run_id)}, not {statuses}; worker said:\n"
            + "\n".join(self.worker_log(i) for i in range(len(self.workers)))
        )
        return str(self.run_status(run_id))

    def jobs(self) -> list[dict[str, Any]]:
        with psycopg.connect(self.url) as db, db.cursor(row_factory=psycopg.rows.dict_row) as cur:
            cur.execute(
                "SELECT id, task_name, status, attempts, args::text AS args, lock "
                "FROM procrastinate_jobs ORDER BY id"
            )
            return cur.fetchall()


@pytest.fixture
def team(tmp_path: Path, queue_url: str) -> Iterator[Team]:
    for item in FIXTURES.iterdir():
        if item.is_file():
            shutil.copy2(item, tmp_path / item.name)
    ws = Team(tmp_path)
    ws.url, ws.workers = queue_url, []
    yield ws
    for proc, _ in ws.workers:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc, _ in ws.workers:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_run_queue_creates_a_queued_run_that_a_worker_runs_to_the_end(team: Team) -> None:
    (team.root / "together.md").write_text(TOGETHER.replace("-lt 2", "-lt 1"))
    queued = team.queue("together.md")
    assert queued.returncode == 0, queued.stderr
    said = json.loads(queued.stdout)
    assert said["run_id"] == "r1" and said["status"] == "queued" and said["job"]
    assert team.status()["status"] == "queued"  # `status` shows it before any worker runs
    (job,) = team.jobs()
    assert job["task_name"] == "runbook:start_run" and job["status"] == "todo"
    assert job["lock"] == "runbook-run:r1"
    team.worker()
    assert team.wait_status("succeeded") == "succeeded"
    assert team.log() == ["met r1"]
    events = [r["event"] for r in read_journal(team.journal_path())]
    assert events[0] == "run-started" and read_journal(team.journal_path())[0]["queued"] is True
    assert "run-resumed" in events and "run-finished" in events
    assert verify_journal(team.journal_path()).ok
    assert wait_until(lambda: team.jobs()[0]["status"] == "succeeded")
    assert "run r1: succeeded" in team.worker_log()


def test_run_queue_without_a_queue_is_bad_input_and_creates_nothing(team: Team) -> None:
    proc = team.runbook("run", "interrupt.md", "--state-dir", team.state, "--queue")
    assert proc.returncode == 2
    assert "RUNBOOK_QUEUE" in proc.stderr and "--queue-url" in proc.stderr
    assert not (team.state / "state.db").exists()


def test_a_confirmed_gate_is_resumed_by_the_worker(team: Team) -> None:
    assert team.queue("gate.md", "--env", "env-manual.yml").returncode == 0
    team.worker()
    team.wait_status("paused")
    assert team.step("by-hand")["status"] == "awaiting"
    confirmed = team.confirm("by-hand", "--as", "Ann Admin", "--queue-url", team.url)
    assert confirmed.returncode == 0, confirmed.stderr
    assert "queued for a worker to resume" in confirmed.stderr
    assert "a worker resumes the run" in confirmed.stdout
    assert wait_until(lambda: team.step("on-web")["status"] == "awaiting", 90), team.worker_log()
    assert team.step("by-hand")["status"] == "succeeded"
    # The worker's log says what to do at a queued run's gate: decide it; nobody resumes.
    paused = [line for line in team.worker_log().splitlines() if ": paused: " in line]
    assert paused and all("runbook resume" not in line for line in paused), paused
    assert "`runbook confirm r1 by-hand --as NAME" in paused[0], paused
    assert paused[0].endswith("; the decision queues its resume for a worker"), paused
    confirmed = team.confirm("on-web", "--as", "Ann Admin", "--queue-url", team.url)
    assert confirmed.returncode == 0, confirmed.stderr
    assert team.wait_status("succeeded") == "succeeded"
    assert team.log() == ["first", "last"]
    tasks = [j["task_name"] for j in team.jobs()]
    assert tasks == ["runbook:start_run", "runbook:resume_run", "runbook:resume_run"]
    assert verify_journal(team.journal_path()).ok


def test_an_approval_reaching_its_quorum_is_resumed_by_the_worker(team: Team) -> None:
    for item in (FIXTURES.parent / "evidence").iterdir():
        if item.is_file():
            shutil.copy2(item, team.root / item.name)
    assert team.queue("approved.md", "--env", "env.yml").returncode == 0
    team.worker()
    team.wait_status("paused")
    vote = ("approve", "r1", "cab", "--state-dir", team.state, "--queue-url", team.url, "--as")
    first = team.runbook(*vote, "Alice Approver")
    assert first.returncode == 0, first.stderr
    assert "1 more needed" in first.stdout and "queued" not in first.stderr
    assert len(team.jobs()) == 1  # no resume before the quorum
    second = team.runbook(*vote, "Dana Lead")
    assert second.returncode == 0, second.stderr
    assert "queued for a worker to resume" in second.stderr
    # The terminal says what happens next: the worker resumes it, nobody runs `resume`.
    assert "a worker resumes the run" in second.stdout
    assert "runbook resume" not in second.stdout
    assert wait_until(lambda: team.step("export-settings")["status"] == "awaiting", 90)
    assert [r["event"] for r in team.events(name="approval-passed")] == ["approval-passed"]
    assert team.log() == ["pre"]


def test_concurrency_two_runs_execute_at_once(team: Team) -> None:
    """Each run's step waits until both runs have arrived: they finish only together."""
    (team.root / "together.md").write_text(TOGETHER)
    assert team.queue("together.md", run_id="a").returncode == 0
    assert team.queue("together.md", run_id="b").returncode == 0
    team.worker("--concurrency", "2")
    assert team.wait_status("succeeded", run_id="a") == "succeeded"
    assert team.wait_status("succeeded", run_id="b") == "succeeded"
    assert sorted(team.log()) == ["met a", "met b"]


@pytest.mark.parametrize(
    ("book", "decides"), [("interrupt.md", "a person"), ("interrupt-check.md", "its check")]
)
def test_a_worker_killed_mid_step_is_retried_and_the_checkpoint_rules_decide(
    team: Team, book: str, decides: str
) -> None:
    assert team.queue(book).returncode == 0
    first = team.worker()
    assert wait_until(lambda: (team.root / "child.pid").exists(), 90), team.worker_log()
    assert wait_until(lambda: bool(team.events(name="process-started", step="slow")))
    step_pid = int((team.root / "child.pid").read_text())
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    # The run's process got SIGTERM as its worker died: the step is stopped and journaled.
    assert wait_until(lambda: not alive(step_pid), 30), "the step outlived its worker"
    assert team.wait_status("interrupted") == "interrupted"
    assert team.events(name="run-interrupted")[-1]["signal"] == "SIGTERM"
    assert team.jobs()[0]["status"] == "doing"  # the queue still thinks the dead worker has it
    team.worker()
    if decides == "a person":
        team.wait_status("paused")
        assert team.log() == ["before", "slow"]  # not run a second time behind anyone's back
        gate = team.events(name="gate-awaiting", step="slow")
        assert gate and gate[-1]["gate"] == "interrupted"
        assert team.events(name="step-interrupted", step="slow")
        rerun = team.confirm("slow", "--rerun", "--as", "Ann Admin", "--queue-url", team.url)
        assert rerun.returncode == 0, rerun.stderr
        team.wait_status("succeeded", "unverified")
        assert team.log() == ["before", "slow", "slow", "after"]  # the second, decided
    else:
        team.wait_status("succeeded", "unverified")
        assert team.log() == ["before", "slow", "after"]  # its check said it was done
        assert team.events(name="step-interrupted", step="slow")
        assert not team.events(name="step-rerun", step="slow")
    assert "its worker went silent; retried" in team.worker_log()
    assert team.jobs()[0]["attempts"] >= 1
    assert verify_journal(team.journal_path()).ok


def test_secrets_resolve_on_the_worker_and_never_travel_in_the_job(team: Team) -> None:
    token = "canary-" + secrets.token_hex(8)
    (team.root / "secret.md").write_text(SECRET_BOOK)
    (team.root / "secret-env.yml").write_text("name: here\nsecrets:\n  token: {env: RBE_Q_TOKEN}\n")
    assert "RBE_Q_TOKEN" not in cli_env()  # the queueing command does not have it
    queued = team.queue("secret.md", "--env", "secret-env.yml")
    assert queued.returncode == 0, queued.stderr
    team.worker(env={"RBE_Q_TOKEN": token})
    assert team.wait_status("succeeded") == "succeeded"
    assert team.log() == [hashlib.sha256(token.encode()).hexdigest()[:16]]
    assert all(token not in job["args"] for job in team.jobs())
    assert token not in team.journal_path().read_text()


def test_a_job_naming_another_database_is_refused_and_never_connects(team: Team) -> None:
    """A job whose store is a database that is neither the worker's nor its queue's (a
    forged job): the worker would connect there with its credentials and execute what
    that database holds.  It refuses the job (failed, not retried) and never connects."""
    from runbook_engine.run.queue import START_TASK, JobArgs, enqueue

    with socket.socket() as elsewhere:  # a "database" on another address: never spoken to
        elsewhere.bind(("127.0.0.2", 0))
        elsewhere.listen(1)
        elsewhere.settimeout(0.2)
        port = elsewhere.getsockname()[1]
        store = f"postgresql://postgres@127.0.0.2:{port}/theirs"
        enqueue(team.url, START_TASK, JobArgs(run_id="r1", store=store, operator="Olga"))
        team.worker(env={"PGPASSWORD": "worker-secret"})
        connected = False
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                conn, _ = elsewhere.accept()
                conn.close()
                connected = True
                break
            if team.jobs()[0]["status"] == "failed":
                break
        assert not connected, team.worker_log()
    assert team.jobs()[0]["status"] == "failed" and team.jobs()[0]["attempts"] == 1
    assert "neither this worker's" in team.worker_log()
    assert "worker-secret" not in team.worker_log()


def test_status_shows_the_job_a_worker_refused(team: Team) -> None:
    """A worker refuses a queued run (here its runbook changed after queueing): the run
    stays ``queued`` in the store, and ``runbook status`` says the job failed and what to
    do, from procrastinate's tables, never showing the queue's password."""
    (team.root / "together.md").write_text(TOGETHER.replace("-lt 2", "-lt 1"))
    assert team.queue("together.md").returncode == 0
    (team.root / "together.md").write_text(TOGETHER.replace("-lt 2", "-lt 1") + "\nChanged.\n")
    waiting = team.runbook("status", "r1", "--state-dir", team.state, "--queue-url", team.url)
    assert waiting.returncode == 0, waiting.stderr
    assert "Worker: job" in waiting.stdout and "waits for a worker" in waiting.stdout
    team.worker()
    assert wait_until(lambda: team.jobs()[0]["status"] == "failed", 90), team.worker_log()
    assert "changed since the run started" in team.worker_log()
    job = team.jobs()[0]
    shown = team.runbook("status", "r1", "--state-dir", team.state, "--queue-url", team.url)
    assert shown.returncode == 0, shown.stderr
    assert "status=queued" in shown.stdout
    text = " ".join(shown.stdout.split())
    assert f"Worker: job {job['id']} failed at " in text and "after 1 attempt " in text, text
    assert "the worker's log says why" in text and "runbook resume r1" in text
    proc = team.runbook(
        "status", "r1", "--state-dir", team.state, "--queue-url", team.url, "--json"
    )
    assert proc.returncode == 0, proc.stderr
    queue = json.loads(proc.stdout)["queue"]
    assert queue["job"] == job["id"] and queue["status"] == "failed"
    assert queue["attempts"] == 1 and queue["task"] == "runbook:start_run"
    assert queue["at"].endswith("+00:00") and queue["url"] == team.url
    # A password in the queue's URL is never shown; an unreachable queue is one line.
    parts = urlsplit(team.url)
    wrong = urlunsplit(parts._replace(netloc="postgres:hunter2@127.0.0.1:1"))
    proc = team.runbook("status", "r1", "--state-dir", team.state, "--queue-url", wrong)
    assert proc.returncode == 0, proc.stderr
    assert "Worker: cannot read the queue" in proc.stdout and "hunter2" not in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr
    assert team.status()["queue"] is None  # no queue known: nothing said
