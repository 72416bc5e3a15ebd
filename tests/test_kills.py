"""Kill safety: a step dies with its runner, stop signals are journaled, and a resume
refuses to rerun a step whose process is still alive.

Real processes and real signals: the CLI runs in a subprocess, is killed with SIGKILL,
SIGTERM or SIGHUP while its step sleeps, and the step's own process is watched.  Every
run test runs on both stores (``@both_stores``: the state folder and PostgreSQL, where the
run's lock is an advisory lock and the journal is read from a copy rebuilt from the
database).
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
from stores import both_stores, on_pg, store  # type: ignore[import-not-found]
from test_runner import FIXTURES, Workspace, alive, cli_env, wait_until

from runbook_engine.evidence.journal import verify_journal
from runbook_engine.run.store_api import open_store
from runbook_engine.transports.process import ProcessIdentity, identify, is_alive

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="Linux /proc")


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    """A private copy of the run fixtures (as in test_runner)."""
    for item in FIXTURES.iterdir():
        if item.is_file():
            shutil.copy2(item, tmp_path / item.name)
    return Workspace(tmp_path)


def _start_and_wait(ws: Workspace, book: str = "interrupt.md") -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        ws.cmd("run", book, "--state-dir", ws.state, "--run-id", "r1", "--no-input"),
        cwd=ws.root,
        env=cli_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert wait_until(lambda: (ws.root / "child.pid").exists() or proc.poll() is not None)
    assert proc.poll() is None, "the run ended before step 'slow' started sleeping"
    assert wait_until(lambda: bool(ws.events(name="process-started", step="slow")))
    return proc


@both_stores
def test_sigkill_of_the_runner_kills_the_step(ws: Workspace) -> None:
    proc = _start_and_wait(ws)
    child = int((ws.root / "child.pid").read_text())
    assert alive(child)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert wait_until(lambda: not alive(child), 10), "the step outlived its runner"
    started = ws.events(name="process-started", step="slow")[0]
    assert started["pid"] > 0 and started["pid_start"] and started["pgid"] == started["pid"]
    assert ws.step("slow")["status"] == "running"
    assert verify_journal(ws.journal_path()).ok
    paused = ws.resume()  # no check: a person decides whether it was done
    assert paused.returncode == 3, paused.stderr
    assert "interrupted while running" in paused.stderr


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
@both_stores
def test_sigterm_and_sighup_stop_the_run_like_ctrl_c(
    ws: Workspace, signum: signal.Signals, status: int
) -> None:
    proc = _start_and_wait(ws)
    child = int((ws.root / "child.pid").read_text())
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == status, err
    assert b"Traceback" not in err
    assert not alive(child), "the step outlived its runner"
    stopped = ws.events(name="run-interrupted")
    assert stopped and stopped[-1]["signal"] == signum.name
    assert ws.status()["status"] == "interrupted"
    assert ws.verify().returncode == 0


def _status(ws: Workspace, step: str) -> str | None:
    with contextlib.closing(open_store(ws.state, store())) as db:  # type: ignore[type-var]
        if not db.has_run("r1"):
            return None
        states = db.steps_of("r1", step)
    return states[0].status if states else None


@both_stores
def test_resume_refuses_while_the_interrupted_step_still_runs(ws: Workspace) -> None:
    proc = _start_and_wait(ws)
    # Step 'before' is acknowledged while 'slow' runs (its idle call): the resume has
    # nothing to reconcile, so a refusal writes nothing at all.
    assert wait_until(lambda: _status(ws, "before") == "succeeded")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    # Stand-in for a step process that survived (as on a host the runner cannot reach):
    survivor = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        ident = identify(survivor.pid)
        with contextlib.closing(open_store(ws.state, store())) as db:  # type: ignore[type-var]
            (slow,) = db.steps_of("r1", "slow")
            found = {"pid": ident.pid, "pid_start": ident.start, "pgid": ident.pgid}
            db.transition("r1", "slow", slow.host, slow.status, **found)
        before = len(ws.events())
        refused = ws.resume()
        assert refused.returncode == 75, refused.stderr
        assert "still running" in refused.stderr
        assert f"(pkill -TERM -g {ident.pgid})" in refused.stderr
        assert "taskkill" not in refused.stderr
        assert len(ws.events()) == before, "a refused resume must write nothing"
    finally:
        survivor.kill()
        survivor.wait()
    assert not is_alive(ident)
    again = ws.resume()
    assert again.returncode == 3, again.stderr


def test_process_identity_survives_pid_reuse() -> None:
    sleeper = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        ident = identify(sleeper.pid)
        assert is_alive(ident)
        assert ident.start is not None
        assert not is_alive(ProcessIdentity(ident.pid, ident.start + 1, ident.pgid))
    finally:
        sleeper.kill()
        sleeper.wait()
    assert not is_alive(ident)


@both_stores
def test_two_runners_of_one_run_never_both_run_it(ws: Workspace) -> None:
    proc = _start_and_wait(ws)
    try:
        before = len(ws.events())
        second = ws.resume()
        assert second.returncode == 2, second.stderr
        if on_pg():  # the advisory lock's holder, named by its session
            assert "run r1 is being run by runbook " in second.stderr
        else:
            assert "another process" in second.stderr
        assert len(ws.events()) == before
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
