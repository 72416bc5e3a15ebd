"""Team mode from end to end, each "machine" a process with its own HOME, state directory
and folder, and nothing in common but the PostgreSQL store (and the queue in it).

A run is started with ``run --queue`` on one machine, whose folder (runbook, included
file, environment file) is deleted right after; a worker on another machine executes it
to an approval; an approver on a third passes it; the worker finishes the run; a fourth
exports the evidence bundle, which verifies with the pinned team key.

Real PostgreSQL (``RUNBOOK_TEST_PG``, default the local server; a fresh database for the
module, dropped after), real worker processes, real signals.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pg_private
import pytest
from pg_private import PrivatePg

psycopg = pytest.importorskip("psycopg", reason="the team extra (psycopg, procrastinate)")
pytest.importorskip("procrastinate", reason="the team extra (psycopg, procrastinate)")

private_pg = pg_private.private_pg  # the fixture: a private cluster, stopped at will
SERVER = os.environ.get("RUNBOOK_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")

BOOK = """---
id: team-change
title: A change a team shares
approval: required
parameters:
  site: {type: string}
---
# A team's change

<!-- include: _shared/first.md -->

```approval {#cab title="Change board approval"}
required: 1
approvers: [change-board]
```

```sh {#after title="Change after the approval"}
echo "after on {{ site }}"
```
"""
FRAGMENT = """# First

```sh {#before .precheck title="Read before the change"}
echo "before on {{ site }}"
```
"""
ENV = """name: team-site
parameters:
  site: north
approvers:
  change-board: [Bob Board]
"""


def _admin() -> Any:
    try:
        return psycopg.connect(SERVER, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL at {SERVER} (set RUNBOOK_TEST_PG): {exc}".strip())


@pytest.fixture(scope="module")
def store_db() -> Iterator[str]:
    """A fresh database for the module's store and queue; dropped after."""
    name = f"rbe_e2e_{secrets.token_hex(5)}"
    with _admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield SERVER.rsplit("/", 1)[0] + "/" + name
    finally:
        with _admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Team:
    """Machines sharing one store URL; each its own HOME, state directory and folder."""

    def __init__(self, root: Path, url: str) -> None:
        self.root, self.url = root, url
        self.workers: list[tuple[subprocess.Popen[bytes], Path]] = []

    def home(self, name: str) -> Path:
        home = self.root / name
        (home / "work").mkdir(parents=True, exist_ok=True)
        return home

    def env(self, name: str, key: Path | None = None) -> dict[str, str]:
        home = self.home(name)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNBOOK_", "XDG_"))}
        env.update(
            HOME=str(home),
            XDG_CONFIG_HOME=str(home / ".config"),
            XDG_STATE_HOME=str(home / ".local" / "state"),
            RUNBOOK_STATE_DIR=str(home / "state"),
            RUNBOOK_STORE=self.url,
            RUNBOOK_OPERATOR=f"operator on {name}",
            NO_COLOR="1",
            COLUMNS="200",
        )
        if key is not None:
            env["RUNBOOK_SIGNING_KEY"] = str(key)
        return env

    def runbook(
        self, name: str, *args: Any, key: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        """``runbook ARGS`` on machine ``name``, in its own folder."""
        return subprocess.run(
            [sys.executable, "-m", "runbook_engine", *(str(a) for a in args)],
            cwd=self.home(name) / "work",
            env=self.env(name, key),
            capture_output=True,
            text=True,
            timeout=180,
            stdin=subprocess.DEVNULL,
        )

    def worker(self, name: str, key: Path | None) -> subprocess.Popen[bytes]:
        """``runbook worker`` on machine ``name`` (a session of its own: it can be killed
        with everything it started)."""
        log = self.root / f"{name}.log"
        proc = subprocess.Popen(
            [sys.executable, "-m", "runbook_engine", "worker", "--stalled-after", "2"],
            cwd=self.home(name) / "work",
            env=self.env(name, key),
            stdin=subprocess.DEVNULL,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.workers.append((proc, log))
        return proc

    def logs(self) -> str:
        return "\n".join(log.read_text(errors="replace") for _, log in self.workers)

    def row(self, sql: str, *args: Any) -> Any:
        with psycopg.connect(self.url) as db:
            found = db.execute(sql, args).fetchone()
        return found[0] if found else None

    def status(self, run_id: str) -> str | None:
        return self.row("SELECT status FROM runs WHERE run_id=%s", run_id)

    def step_status(self, run_id: str, step: str) -> str | None:
        sql = "SELECT status FROM steps WHERE run_id=%s AND step_id=%s"
        return self.row(sql, run_id, step)

    def journal(self, run_id: str) -> list[dict[str, Any]]:
        with psycopg.connect(self.url) as db:
            rows = db.execute(
                "SELECT line FROM journal WHERE run_id=%s ORDER BY seq", (run_id,)
            ).fetchall()
        return [json.loads(r[0]) for r in rows]

    def wait(self, what: Callable[[], bool], limit: float = 120.0, why: str = "") -> None:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if what():
                return
            time.sleep(0.2)
        raise AssertionError(f"{why or 'timed out'}; workers said:\n{self.logs()}")

    def stop(self) -> None:
        for proc, _ in self.workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc, _ in self.workers:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def ok(proc: subprocess.CompletedProcess[str], status: int = 0) -> str:
    assert proc.returncode == status, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.stdout


@pytest.fixture
def team(tmp_path: Path, store_db: str) -> Iterator[Team]:
    """The store at this runbook-engine's schema (``runbook store upgrade``), the queue's
    tables (``runbook queue migrate``), both empty."""
    t = Team(tmp_path, store_db)
    ok(t.runbook("admin", "store", "upgrade"))
    ok(t.runbook("admin", "queue", "migrate", "--queue-url", store_db))
    with psycopg.connect(store_db, autocommit=True) as db:
        db.execute("TRUNCATE procrastinate_jobs, procrastinate_workers CASCADE")
    try:
        yield t
    finally:
        t.stop()


@pytest.fixture
def team_key(team: Team) -> tuple[Path, Path]:
    """The team's signing key pair (``runbook keys init``): ``(private, public)``."""
    keys = team.root / "team-keys"
    ok(team.runbook("admin", "keys", "init", "-o", keys))
    return keys / "signing.key", keys / "signing.pub"


def _private_copy(team: Team, machine: str, key: Path) -> Path:
    """The team key as machine ``machine`` holds it (in its own HOME)."""
    target = team.home(machine) / ".config" / "runbook-engine" / "keys" / "signing.key"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(key, target)
    target.chmod(0o600)
    return target


def start_in_a_folder_then_delete_it(team: Team, key: Path, book: str, run_id: str) -> str:
    """``run --queue`` on machine "starter", from its folder; the machine's folder, state
    directory and HOME are deleted right after.  Returns the runbook's path there."""
    work = team.home("starter") / "work"
    (work / "_shared").mkdir()
    (work / "book.md").write_text(book)
    (work / "_shared" / "first.md").write_text(FRAGMENT)
    (work / "site.yml").write_text(ENV)
    queued = team.runbook(
        "starter", "run", "book.md", "--env", "site.yml", "--queue", "--store", team.url,
        "--run-id", run_id, "--json", key=_private_copy(team, "starter", key),
    )  # fmt: skip
    said = json.loads(ok(queued))
    assert said["status"] == "queued" and said["state_dir"] == team.url
    shutil.rmtree(team.home("starter"))
    return str(work / "book.md")


def test_done_when_started_here_approved_there_finished_by_a_worker_verified_elsewhere(
    team: Team, team_key: tuple[Path, Path]
) -> None:
    key, public = team_key
    path = start_in_a_folder_then_delete_it(team, key, BOOK, "t1")
    assert team.status("t1") == "queued"

    team.worker("worker", _private_copy(team, "worker", key))
    team.wait(lambda: team.status("t1") == "paused", why="the run never paused at the approval")
    assert team.step_status("t1", "cab") == "awaiting"
    assert team.step_status("t1", "before") == "succeeded"

    # The approver: its own folder and state directory; only the store URL in common.
    approved = team.runbook(
        "approver", "approve", "t1", "cab", "--as", "Bob Board", "--state-dir",
        team.home("approver") / "state",
    )  # fmt: skip
    ok(approved)
    assert "queued for a worker to resume" in approved.stderr
    team.wait(lambda: team.status("t1") == "succeeded", why="the worker did not finish the run")

    # The evidence, exported by a third machine, verifies with the pinned team key.
    bundle = team.home("auditor") / "t1.zip"
    state = team.home("auditor") / "state"
    ok(team.runbook("auditor", "evidence", "bundle", "t1", "-o", bundle, "--state-dir", state))
    verdict = json.loads(
        ok(team.runbook("auditor", "evidence", "verify", bundle, "--public-key", public, "--json"))
    )
    assert verdict["verdict"] == "verified", verdict
    with zipfile.ZipFile(bundle) as archive:
        outputs = [n for n in archive.namelist() if n.startswith("output/")]
        texts = b"".join(archive.read(n) for n in outputs)
    assert b"before on north" in texts and b"after on north" in texts

    events = team.journal("t1")
    names = [e["event"] for e in events]
    commands = [e["step"] for e in events if e["event"] == "process-started"]
    assert commands == ["before", "after"], names  # each once, by the worker
    copied = [e for e in events if e["event"] == "source-copy-read"]
    assert {c["what"] for c in copied} == {"runbook", "environment"}
    assert all(c["path"].startswith(str(team.root / "starter")) for c in copied)
    assert any(c["path"] == path for c in copied)
    started = events[0]
    assert started["event"] == "run-started" and started["queued"] is True
    assert started["preflight"] == {"on_worker": True}  # not checked where it was queued
    (checked,) = [e for e in events if e["event"] == "preflight"]  # but where it runs
    assert checked["ok"] is True and checked["failures"] == [] and checked["checks"] >= 2
    assert names.index("preflight") < names.index("step-started")
    assert (
        next(c for c in copied if c["what"] == "runbook")["sha256"]
        == (started["runbook"]["sha256"])
    )
    assert not (team.root / "starter").exists()


KILLED = """---
id: killed-worker
title: A worker killed in the middle
parameters:
  marks: {type: string}
---
# A worker killed in the middle

```sh {#one title="First"}
echo "one done"
```

```sh {#slow title="Slow change" check=slow-check}
echo "slow started"
if [ ! -e "{{ marks }}/marker" ]; then
  echo $$ > "{{ marks }}/child.pid"
  touch "{{ marks }}/marker"
  exec sleep 120
fi
```

```sh {#last title="Last"}
echo "last done"
```

## Helpers

```sh {#slow-check}
test -e "{{ marks }}/marker"
```
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_a_worker_killed_mid_run_loses_no_finished_step_files(
    team: Team, team_key: tuple[Path, Path]
) -> None:
    """SIGKILL to the worker and everything it started (no chance to store anything on
    the way out), its working copies wiped; a second worker on a fresh machine finishes
    the run, and every finished step's output is in the verified bundle."""
    key, public = team_key
    marks = team.root / "marks"
    marks.mkdir()
    work = team.home("starter") / "work"
    (work / "killed.md").write_text(KILLED)
    (work / "site.yml").write_text(f"name: site\nparameters:\n  marks: {marks}\n")
    queued = team.runbook(
        "starter", "run", "killed.md", "--env", "site.yml", "--queue", "--run-id", "k1",
        "--json", key=_private_copy(team, "starter", key),
    )  # fmt: skip
    ok(queued)
    shutil.rmtree(team.home("starter"))

    first = team.worker("worker-1", _private_copy(team, "worker-1", key))
    team.wait(lambda: (marks / "child.pid").exists(), why="the slow step never started")
    assert team.step_status("k1", "one") == "succeeded"
    step_pid = int((marks / "child.pid").read_text())
    os.killpg(first.pid, signal.SIGKILL)  # the worker and its run's process, at once
    first.wait(timeout=30)
    os.kill(step_pid, signal.SIGKILL)  # the machine is gone: so is the step's process
    team.wait(lambda: not _alive(step_pid), 30, why="the step's process outlived the kill")
    assert team.status("k1") == "running"  # nobody said anything: the worker had no time
    shutil.rmtree(team.home("worker-1"))  # its working copies with it

    team.worker("worker-2", _private_copy(team, "worker-2", key))
    team.wait(
        lambda: team.status("k1") in ("succeeded", "unverified"),
        why="the second worker did not finish the run",
    )
    events = team.journal("k1")
    started = [e["step"] for e in events if e["event"] == "process-started"]
    assert started.count("one") == 1 and started.count("last") == 1  # nothing twice
    assert any(e["event"] == "step-interrupted" and e["step"] == "slow" for e in events)

    bundle = team.home("auditor") / "k1.zip"
    state = team.home("auditor") / "state"
    ok(team.runbook("auditor", "evidence", "bundle", "k1", "-o", bundle, "--state-dir", state))
    verdict = json.loads(
        ok(team.runbook("auditor", "evidence", "verify", bundle, "--public-key", public, "--json"))
    )
    assert verdict["verdict"] == "verified", verdict
    with zipfile.ZipFile(bundle) as archive:
        texts = b"".join(archive.read(n) for n in archive.namelist() if n.startswith("output/"))
    assert b"one done" in texts and b"last done" in texts


RACE = """---
id: race
title: One run, two workers
parameters:
  marks: {type: string}
---
# One run, two workers

```sh {#one title="First"}
echo one >> "{{ marks }}/steps.log"
```

```sh {#slow title="Slow"}
sleep 3
echo slow >> "{{ marks }}/steps.log"
```

```sh {#last title="Last"}
echo last >> "{{ marks }}/steps.log"
```
"""


def test_two_workers_racing_for_one_run_execute_each_step_once(
    team: Team, team_key: tuple[Path, Path]
) -> None:
    """Two jobs of one run (the second without the run's queue lock, as a stale or hand-made
    job would be) taken by two workers at once: the store's run lock lets one execute;
    the other's job waits, then finds the run finished; every step ran once."""
    import procrastinate

    key, _ = team_key
    marks = team.root / "marks"
    marks.mkdir()
    work = team.home("starter") / "work"
    (work / "race.md").write_text(RACE)
    (work / "site.yml").write_text(f"name: site\nparameters:\n  marks: {marks}\n")
    queued = team.runbook(
        "starter", "run", "race.md", "--env", "site.yml", "--queue", "--run-id", "race1",
        "--json", key=_private_copy(team, "starter", key),
    )  # fmt: skip
    ok(queued)
    app = procrastinate.App(connector=procrastinate.SyncPsycopgConnector(conninfo=team.url))
    with app.open():
        second = app.configure_task("runbook:resume_run", queue="runbook", lock="elsewhere")
        second.defer(run_id="race1", store=team.url, operator="operator on starter")
    team.worker("worker-a", _private_copy(team, "worker-a", key))
    team.worker("worker-b", _private_copy(team, "worker-b", key))

    # While it runs, an operator on a third machine cannot resume it either.
    team.wait(lambda: (marks / "steps.log").exists(), why="the run never started")
    held = team.runbook("operator", "resume", "race1", "--no-input", key=key)
    assert held.returncode == 2, held.stdout + held.stderr
    assert "race1 is being run by runbook" in held.stderr and "Traceback" not in held.stderr

    team.wait(lambda: team.status("race1") == "succeeded", why="the run did not finish")
    team.wait(
        lambda: team.row(
            "SELECT count(*) FROM procrastinate_jobs WHERE status <> 'succeeded'"
        ) == 0,
        why="a job of the run did not end well",
    )  # fmt: skip
    assert (marks / "steps.log").read_text().split() == ["one", "slow", "last"]
    events = team.journal("race1")
    started = [e["step"] for e in events if e["event"] == "process-started"]
    assert sorted(started) == ["last", "one", "slow"], started
    assert [e["event"] for e in events].count("run-resumed") == 1
    logs = team.logs()
    assert "is being run by" in logs, logs  # the loser was held off, then found it finished


RESTART = """---
id: restart
title: The database restarts in the middle
parameters:
  marks: {type: string}
---
# The database restarts in the middle

```sh {#one title="First"}
echo one >> "{{ marks }}/steps.log"
```

```sh {#wait title="Waits for the test"}
touch "{{ marks }}/waiting"
while [ ! -e "{{ marks }}/go" ]; do sleep 0.1; done
echo wait >> "{{ marks }}/steps.log"
```

```sh {#last title="Last"}
echo last >> "{{ marks }}/steps.log"
```
"""


@pytest.mark.parametrize("how", ["server stops", "lock session cut"])
def test_a_database_restart_mid_run_stops_it_clearly_and_it_resumes_with_nothing_lost(
    tmp_path: Path, private_pg: PrivatePg, how: str
) -> None:
    """The store's server (a private cluster: the shared one is left alone) stops while a
    step runs, or only the session holding the run's lock is cut (as a restart does to
    every session): the run stops with one clear message when it next writes to the
    store, before another process could take the run behind its back; once the server
    is back, `runbook resume` finishes it, every step once, and the evidence verifies
    with the pinned key."""
    team = Team(tmp_path, private_pg.url)
    ok(team.runbook("admin", "store", "upgrade"))
    keys = tmp_path / "team-keys"
    ok(team.runbook("admin", "keys", "init", "-o", keys))
    key = _private_copy(team, "alice", keys / "signing.key")
    marks = tmp_path / "marks"
    marks.mkdir()
    work = team.home("alice") / "work"
    (work / "restart.md").write_text(RESTART)
    (work / "site.yml").write_text(f"name: site\nparameters:\n  marks: {marks}\n")
    run = subprocess.Popen(
        [sys.executable, "-m", "runbook_engine", "run", "restart.md", "--env", "site.yml",
         "--run-id", "d1", "--no-input"],
        cwd=work, env=team.env("alice", key), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        team.wait(lambda: (marks / "waiting").exists() or run.poll() is not None, 120)
        assert run.poll() is None, run.communicate()
        if how == "server stops":
            private_pg.stop("fast")  # every session cut, the run's lock with it
        else:
            with psycopg.connect(private_pg.url, autocommit=True) as db:
                cut = db.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name LIKE 'runbook %%'"
                ).fetchall()
            assert cut == [(True,)]  # the lock's session, nothing else
        (marks / "go").touch()
        out, err = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 74, out + err  # the store refused the write: EX_IOERR
    assert len(err.strip().splitlines()) == 1, err  # one message, no traceback, no noise
    assert f"127.0.0.1:{private_pg.port}" in err and "runbook resume" in err, err
    assert ("cannot be reached" if how == "server stops" else "its lock") in err, err
    assert (marks / "steps.log").read_text().split() == ["one", "wait"]

    if how == "server stops":
        private_pg.start()
    resumed = team.runbook("alice", "resume", "d1", "--no-input", key=key)
    ok(resumed)
    assert team.status("d1") == "succeeded"
    assert (marks / "steps.log").read_text().split() == ["one", "wait", "last"]
    events = team.journal("d1")
    started = [e["step"] for e in events if e["event"] == "process-started"]
    assert started == ["one", "wait", "last"], started  # nothing lost, nothing twice

    bundle = team.home("auditor") / "d1.zip"
    state = team.home("auditor") / "state"
    ok(team.runbook("auditor", "evidence", "bundle", "d1", "-o", bundle, "--state-dir", state))
    verdict = json.loads(
        ok(
            team.runbook(
                "auditor", "evidence", "verify", bundle, "--public-key", keys / "signing.pub",
                "--json",
            )
        )
    )  # fmt: skip
    assert verdict["verdict"] == "verified", verdict


SECRET = """---
id: secret-preflight
title: A secret only the right worker has
parameters:
  token: {type: string, secret: true}
---
# A secret

```sh {#use title="Use the token"}
printf %s "{{ token }}" | wc -c
```
"""


def test_a_queued_run_is_preflighted_on_the_worker_and_a_failure_is_journaled(
    team: Team, team_key: tuple[Path, Path]
) -> None:
    """The worker lacks the secret's source: its preflight fails, the failure is in the
    journal (naming the source, never a value), nothing runs, the run stays queued."""
    key, _ = team_key
    work = team.home("starter") / "work"
    (work / "secret.md").write_text(SECRET)
    (work / "site.yml").write_text("name: site\nsecrets:\n  token: {env: RBE_E2E_TOKEN}\n")
    queued = team.runbook(
        "starter", "run", "secret.md", "--env", "site.yml", "--queue", "--run-id", "p1",
        "--json", key=_private_copy(team, "starter", key),
    )  # fmt: skip
    ok(queued)
    team.worker("worker", _private_copy(team, "worker", key))
    team.wait(
        lambda: team.row("SELECT status FROM procrastinate_jobs") == "failed",
        why="the job did not fail",
    )
    assert "RBE_E2E_TOKEN" in team.logs()  # the worker's log names what to fix
    events = team.journal("p1")
    (checked,) = [e for e in events if e["event"] == "preflight"]
    assert checked["ok"] is False
    assert any("RBE_E2E_TOKEN" in f["detail"] for f in checked["failures"]), checked
    assert not [e for e in events if e["event"] == "step-started"]
    assert team.status("p1") == "queued"


def test_a_password_in_the_store_url_never_travels_in_a_job(
    team: Team, team_key: tuple[Path, Path]
) -> None:
    """Each machine's URL holds a password (the test server trusts, so any will do): the
    jobs carry the URL without it, and the worker, whose own RUNBOOK_STORE names the same
    database, executes the run with that."""
    canary = "pw-" + secrets.token_hex(6)
    with_password = team.url.replace("postgres@", f"postgres:{canary}@", 1)
    assert canary in with_password
    key, _ = team_key
    team.url = with_password  # every machine's RUNBOOK_STORE from here on
    work = team.home("starter") / "work"
    (work / "one.md").write_text("# One\n\n```sh {#one}\necho one\n```\n")
    ok(
        team.runbook(
            "starter", "run", "one.md", "--queue", "--run-id", "pw1", "--json",
            key=_private_copy(team, "starter", key),
        )
    )  # fmt: skip
    team.worker("worker", _private_copy(team, "worker", key))
    team.wait(lambda: team.status("pw1") == "succeeded", why="the run did not finish")
    with psycopg.connect(team.url) as db:
        args = [r[0] for r in db.execute("SELECT args::text FROM procrastinate_jobs")]
    assert args and all(canary not in a for a in args), args
    assert canary not in team.logs()


def test_a_database_restart_under_a_worker_is_retried_until_the_run_ends(
    tmp_path: Path, private_pg: PrivatePg
) -> None:
    """The database restarts while a worker's run waits in a step: the run's process stops
    (exit 74), the worker keeps going, and the retried job finishes the run, every step
    once."""
    team = Team(tmp_path, private_pg.url)
    ok(team.runbook("admin", "store", "upgrade"))
    ok(team.runbook("admin", "queue", "migrate"))
    marks = tmp_path / "marks"
    marks.mkdir()
    work = team.home("starter") / "work"
    (work / "restart.md").write_text(RESTART)
    (work / "site.yml").write_text(f"name: site\nparameters:\n  marks: {marks}\n")
    ok(team.runbook("starter", "run", "restart.md", "--env", "site.yml", "--queue",
                    "--run-id", "w1"))  # fmt: skip
    worker = team.worker("worker", None)
    try:
        team.wait(lambda: (marks / "waiting").exists(), why="the step never started")
        private_pg.stop("fast")
        (marks / "go").touch()
        time.sleep(3)
        private_pg.start()
        team.wait(lambda: team.status("w1") == "succeeded", 180, why="the run did not finish")
        assert worker.poll() is None, team.logs()  # the worker outlived the restart
    finally:
        team.stop()
    assert (marks / "steps.log").read_text().split() == ["one", "wait", "last"]
    started = [e["step"] for e in team.journal("w1") if e["event"] == "process-started"]
    assert started == ["one", "wait", "last"], started
    assert "cannot be reached" in team.logs() or "was lost" in team.logs(), team.logs()
