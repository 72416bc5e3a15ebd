"""Running runbooks end to end: gates, answers, resume after SIGKILL, timeouts, retries, backout.

Every test drives the real ``runbook`` command in a subprocess (``python -m
runbook_engine``) against a real store and real shell steps, in a private
copy of ``tests/fixtures/run`` under ``tmp_path`` (the steps write their
marker files relative to the working directory, which is that copy).  Tests of what a run
does (gates, answers, resume, kills, timeouts, retries, backout, outcomes) run on both
stores (``@both_stores``: the state folder and PostgreSQL); journals are read from
:func:`stores.run_folder` (on PostgreSQL a copy rebuilt from the database).  Tests of step
bodies and of a journal file edited on disk run on the state folder only.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from stores import both_stores, cli_environ, on_pg, run_folder, sqlite_only  # type: ignore[import-not-found]

from runbook_engine.evidence.journal import read_journal, verify_journal

FIXTURES = Path(__file__).parent / "fixtures" / "run"
OPERATOR = "Olga Operator"

posix_only = pytest.mark.skipif(os.name != "posix", reason="sh steps, signals and process groups")
pytestmark = posix_only


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError, IndexError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return True


def wait_until(predicate: Any, limit: float = 20.0) -> bool:
    """Poll ``predicate`` until it holds; the limit bounds a hang, it is no timing assertion."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())


def cli_env() -> dict[str, str]:
    """The environment for the CLI: no inherited RUNBOOK_* settings but the test's store
    (``RUNBOOK_STORE``), a fixed operator."""
    env = cli_environ()
    env.update(RUNBOOK_OPERATOR=OPERATOR, NO_COLOR="1", COLUMNS="200")
    return env


@dataclass
class Workspace:
    """A copy of the run fixtures in ``root``, the CLI's working directory."""

    root: Path

    @property
    def state(self) -> Path:
        return self.root / "state"

    def cmd(self, *args: Any) -> list[str]:
        return [sys.executable, "-m", "runbook_engine", *(str(a) for a in args)]

    def runbook(self, *args: Any) -> subprocess.CompletedProcess[str]:
        """Run ``runbook ARGS`` to its end and return the completed process."""
        proc = subprocess.run(
            self.cmd(*args),
            cwd=self.root,
            env=cli_env(),
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
        assert "Traceback" not in proc.stderr, proc.stderr
        return proc

    def run(self, book: str, *args: Any, run_id: str = "r1") -> subprocess.CompletedProcess[str]:
        return self.runbook(
            "run", book, "--state-dir", self.state, "--run-id", run_id, "--no-input", *args
        )

    def resume(self, run_id: str = "r1", *args: Any) -> subprocess.CompletedProcess[str]:
        return self.runbook("resume", run_id, "--state-dir", self.state, "--no-input", *args)

    def confirm(
        self, step: str, *args: Any, run_id: str = "r1"
    ) -> subprocess.CompletedProcess[str]:
        return self.runbook("confirm", run_id, step, "--state-dir", self.state, *args)

    def status(self, run_id: str = "r1") -> dict[str, Any]:
        proc = self.runbook("status", run_id, "--state-dir", self.state, "--json")
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    def step(self, step_id: str, run_id: str = "r1") -> dict[str, Any]:
        found = [s for s in self.status(run_id)["steps"] if s["step_id"] == step_id]
        assert len(found) == 1, found
        return found[0]

    def journal_path(self, run_id: str = "r1") -> Path:
        return run_folder(self.state, run_id) / "journal.jsonl"

    def events(
        self, run_id: str = "r1", name: str | None = None, step: str | None = None
    ) -> list[dict[str, Any]]:
        """Journal records (the chain is verified on reading), filtered by event and step."""
        records = read_journal(self.journal_path(run_id))
        return [
            r
            for r in records
            if (name is None or r["event"] == name) and (step is None or r.get("step") == step)
        ]

    def log(self) -> list[str]:
        path = self.root / "steps.log"
        return path.read_text().splitlines() if path.exists() else []

    def verify(self, run_id: str = "r1") -> subprocess.CompletedProcess[str]:
        """``evidence verify``: of the run folder, or on PostgreSQL of the run in the store."""
        if on_pg():
            return self.runbook("evidence", "verify", run_id, "--state-dir", self.state)
        return self.runbook("evidence", "verify", self.state / "runs" / run_id)


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    for item in FIXTURES.iterdir():
        if item.is_file():
            shutil.copy2(item, tmp_path / item.name)
    return Workspace(tmp_path)


# -- gates: pause, confirm, resume --------------------------------------------------------------
@both_stores
def test_pause_confirm_resume_runs_each_step_once(ws: Workspace) -> None:
    first = ws.run("gate.md", "--env", "env-manual.yml")
    assert first.returncode == 3, first.stderr
    assert "runbook confirm r1 by-hand" in first.stderr
    status = ws.status()
    assert status["status"] == "paused"
    assert ws.step("by-hand")["status"] == "awaiting"
    assert ws.step("first")["status"] == "succeeded"

    done = ws.confirm("by-hand", "--as", "Carla Confirmer", "--note", "lamp green")
    assert done.returncode == 0, done.stderr
    second = ws.resume()
    assert second.returncode == 3, second.stderr  # next gate: the command on the manual host
    assert ws.step("on-web")["status"] == "awaiting"
    assert ws.confirm("on-web", "--as", "Carla Confirmer").returncode == 0
    third = ws.resume()
    assert third.returncode == 0, third.stderr
    assert ws.status()["status"] == "succeeded"

    passed = ws.events(name="gate-passed", step="by-hand")
    assert len(passed) == 1
    assert passed[0]["by"] == "Carla Confirmer"
    assert passed[0]["source"] == "cli"
    assert passed[0]["decision"] == "confirm"
    by_hand = ws.events(name="gate-passed", step="on-web")
    assert by_hand[0]["gate"] == "command-by-hand"
    assert "systemctl restart web" in by_hand[0]["command_shown"]  # shown, not run by the tool
    for step in ("first", "last"):
        assert len(ws.events(name="step-started", step=step)) == 1, step
    assert ws.log() == ["first", "last"]
    assert verify_journal(ws.journal_path()).ok


@both_stores
def test_resume_of_a_finished_run_is_refused(ws: Workspace) -> None:
    assert (
        ws.run("gate.md", "--env", "env-manual.yml", "--answers", "answers-confirm.yml").returncode
        == 0
    )
    again = ws.resume()
    assert again.returncode == 2
    assert "finished" in again.stderr
    assert ws.log() == ["first", "last"]


# -- answers files ------------------------------------------------------------------------------
@both_stores
def test_answers_file_passes_gates_and_is_recorded(ws: Workspace) -> None:
    proc = ws.run("gate.md", "--env", "env-manual.yml", "--answers", "answers-confirm.yml")
    assert proc.returncode == 0, proc.stderr
    assert ws.status()["status"] == "succeeded"
    answers = ws.root / "answers-confirm.yml"
    digest = hashlib.sha256(answers.read_bytes()).hexdigest()
    for step in ("by-hand", "on-web"):
        passed = ws.events(name="gate-passed", step=step)
        assert len(passed) == 1, step
        assert passed[0]["source"] == "answers-file"
        assert passed[0]["by"] == "Ann Answers"
        assert Path(passed[0]["answers_path"]) == answers.resolve()
        assert passed[0]["answers_sha256"] == digest
    assert ws.events(name="gate-passed", step="by-hand")[0]["note"] == "lamp is green"
    started = ws.events(name="run-started")[0]
    assert started["answers"]["sha256"] == digest


@both_stores
def test_answers_file_skip_records_the_reason(ws: Workspace) -> None:
    proc = ws.run("gate.md", "--env", "env-manual.yml", "--answers", "answers-skip.yml")
    assert proc.returncode == 0, proc.stderr
    step = ws.step("by-hand")
    assert step["status"] == "skipped"
    assert step["reason"] == "no console in the lab"
    skipped = ws.events(name="step-skipped", step="by-hand")
    assert len(skipped) == 1
    assert skipped[0]["reason"] == "no console in the lab"
    assert skipped[0]["source"] == "answers-file"


@both_stores
def test_answers_file_abort_stops_the_run(ws: Workspace) -> None:
    proc = ws.run("gate.md", "--env", "env-manual.yml", "--answers", "answers-abort.yml")
    assert proc.returncode == 1, proc.stderr
    assert ws.status()["status"] == "aborted"
    assert ws.events(name="run-aborted", step="by-hand")
    assert ws.step("last")["status"] == "pending"
    assert ws.log() == ["first"]


@both_stores
def test_answers_rerun_at_an_ordinary_gate_does_not_pass_it(ws: Workspace) -> None:
    """``rerun`` is for an interrupted step; at a manual gate it must not let the flow go on.

    Found: the runner's ``_apply`` returns "rerun" for a gate, ``_flow`` treats
    that like done, the manual step stays pending and the run "succeeds".
    """
    proc = ws.run("gate.md", "--env", "env-manual.yml", "--answers", "answers-rerun-gate.yml")
    if proc.returncode == 2:  # refusing the answers file as bad input is also right
        return
    by_hand = ws.step("by-hand")["status"]
    assert by_hand in ("succeeded", "skipped") or "last" not in ws.log(), (
        f"step 'last' ran while by-hand is {by_hand!r}"
    )
    assert by_hand in ("succeeded", "skipped") or ws.status()["status"] != "succeeded"


@both_stores
def test_confirm_rerun_at_an_ordinary_gate_does_not_pass_it(ws: Workspace) -> None:
    """``runbook confirm --rerun`` on a manual gate must not let later steps run past it."""
    assert ws.run("gate.md", "--env", "env-manual.yml").returncode == 3
    rerun = ws.confirm("by-hand", "--as", "Carla", "--rerun")
    if rerun.returncode == 2:  # refused: --rerun is only for an interrupted step
        return
    (ws.root / "only-web.yml").write_text("operator: Ann\nanswers:\n  on-web: confirm\n")
    ws.resume("r1", "--answers", "only-web.yml")
    by_hand = ws.step("by-hand")["status"]
    assert by_hand in ("succeeded", "skipped") or "last" not in ws.log(), (
        f"step 'last' ran while by-hand is {by_hand!r}"
    )


# -- a step killed in the middle ------------------------------------------------------------------
def _kill_mid_step(ws: Workspace, book: str) -> None:
    """Start a run, wait until step ``slow`` is sleeping, SIGKILL the runner, then its child."""
    proc = subprocess.Popen(
        ws.cmd("run", book, "--state-dir", ws.state, "--run-id", "r1", "--no-input"),
        cwd=ws.root,
        env=cli_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert wait_until(lambda: (ws.root / "marker").exists() or proc.poll() is not None)
        assert proc.poll() is None, "the run ended before step 'slow' started sleeping"
        # The running checkpoint is committed with the step's process, just after it starts
        # (on the team store a network round trip later): killed before, the store lags the
        # journal and the resume reconciles; this test is about a checkpoint that says running.
        assert wait_until(lambda: ws.step("slow")["status"] == "running")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    child = int((ws.root / "child.pid").read_text())
    with contextlib.suppress(ProcessLookupError):  # the step runs in its own session
        os.killpg(child, signal.SIGKILL)
    assert wait_until(lambda: not alive(child))
    assert ws.step("slow")["status"] == "running"
    assert verify_journal(ws.journal_path()).ok


@both_stores
@pytest.mark.slow
def test_killed_step_with_passing_check_is_already_done(ws: Workspace) -> None:
    _kill_mid_step(ws, "interrupt-check.md")
    proc = ws.resume()
    assert proc.returncode == 0, proc.stderr
    assert ws.step("slow")["status"] == "already-done"
    assert ws.log() == ["before", "slow", "after"]
    assert len(ws.events(name="step-started", step="slow")) == 1
    assert ws.events(name="step-interrupted", step="slow")
    assert ws.events(name="step-already-done", step="slow")
    assert ws.verify().returncode == 0


@both_stores
@pytest.mark.slow
def test_killed_step_without_check_waits_for_a_person_then_reruns(ws: Workspace) -> None:
    _kill_mid_step(ws, "interrupt.md")
    paused = ws.resume()
    assert paused.returncode == 3, paused.stderr
    assert ws.status()["status"] == "paused"
    awaiting = ws.events(name="gate-awaiting", step="slow")
    assert [e["gate"] for e in awaiting] == ["interrupted"]
    assert ws.log() == ["before", "slow"]  # not silently re-run

    assert ws.confirm("slow", "--as", "Xavier", "--rerun").returncode == 0
    proc = ws.resume()
    assert proc.returncode == 0, proc.stderr
    assert ws.log() == ["before", "slow", "slow", "after"]
    assert len(ws.events(name="step-started", step="slow")) == 2
    assert len(ws.events(name="step-started", step="before")) == 1
    assert ws.step("slow")["status"] == "succeeded"
    assert ws.verify().returncode == 0


@both_stores
@pytest.mark.slow
def test_killed_step_confirmed_done_is_not_rerun(ws: Workspace) -> None:
    _kill_mid_step(ws, "interrupt.md")
    assert ws.resume().returncode == 3
    assert ws.confirm("slow", "--as", "Xavier", "--note", "finished by hand").returncode == 0
    proc = ws.resume()
    assert proc.returncode == 0, proc.stderr
    assert ws.log() == ["before", "slow", "after"]
    assert len(ws.events(name="step-started", step="slow")) == 1
    passed = ws.events(name="gate-passed", step="slow")
    assert passed and passed[-1]["gate"] == "interrupted" and passed[-1]["by"] == "Xavier"
    assert passed[-1]["decision"] == "done"
    assert ws.step("slow")["status"] == "succeeded"
    assert ws.verify().returncode == 0


@both_stores
def test_ctrl_c_stops_the_step_and_marks_the_run_interrupted(ws: Workspace) -> None:
    """SIGINT (Ctrl-C reaches only the runner: the step has its own session) must not leave the
    step's command running on after the run says it was interrupted."""
    proc = subprocess.Popen(
        ws.cmd("run", "interrupt.md", "--state-dir", ws.state, "--run-id", "r1", "--no-input"),
        cwd=ws.root,
        env=cli_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    child = None
    try:
        assert wait_until(lambda: (ws.root / "marker").exists() or proc.poll() is not None)
        assert proc.poll() is None
        child = int((ws.root / "child.pid").read_text())
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert "Traceback" not in err
        assert ws.status()["status"] == "interrupted"
        assert ws.events(name="run-interrupted")
        assert wait_until(lambda: not alive(child), 10), (
            "the step's process outlived the interrupted run"
        )
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if child is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child, signal.SIGKILL)


# -- content-hash lock --------------------------------------------------------------------------
@both_stores
def test_changed_runbook_refuses_to_resume_unless_accepted(ws: Workspace) -> None:
    assert ws.run("gate.md", "--env", "env-manual.yml").returncode == 3
    book = ws.root / "gate.md"
    book.write_text(book.read_text() + "\nA note added after the run started.\n")
    assert ws.confirm("by-hand", "--as", "Carla").returncode == 0
    # on-web has not been reached: deciding it now is explicit (recorded as in advance)
    assert ws.confirm("on-web", "--as", "Carla").returncode == 2
    assert ws.confirm("on-web", "--as", "Carla", "--in-advance").returncode == 0

    refused = ws.resume()
    assert refused.returncode == 2
    assert "changed" in refused.stderr
    assert "--accept-changed" in refused.stderr
    assert ws.log() == ["first"]
    assert not ws.events(name="change-accepted")

    accepted = ws.resume("r1", "--accept-changed")
    assert accepted.returncode == 0, accepted.stderr
    changes = ws.events(name="change-accepted")
    assert len(changes) == 1 and changes[0]["what"] == "runbook"
    assert changes[0]["by"] == OPERATOR
    assert ws.log() == ["first", "last"]
    assert ws.verify().returncode == 0


# -- timeouts, retries, on-failure, backout -----------------------------------------------------
@both_stores
def test_timed_out_step_fails_and_its_process_group_dies(ws: Workspace) -> None:
    proc = ws.run("timeout.md")
    assert proc.returncode == 1, proc.stderr
    step = ws.step("hang")
    assert step["status"] == "failed"
    assert step["reason"] == "timed out"
    assert ws.status()["status"] == "failed"
    grandchild = int((ws.root / "grandchild.pid").read_text())
    assert wait_until(lambda: not alive(grandchild)), "the background child survived the timeout"
    assert ws.log() == []  # the run stopped at the failed step
    finished = ws.events(name="step-finished", step="hang")
    assert finished[-1]["timed_out"] is True


@both_stores
def test_retries_until_success(ws: Workspace) -> None:
    proc = ws.run("retry.md")
    assert proc.returncode == 0, proc.stderr
    step = ws.step("flaky")
    assert step["status"] == "succeeded"
    assert step["attempts"] == 3
    assert (ws.root / "counter").read_text().strip() == "3"
    retries = ws.events(name="step-retry", step="flaky")
    assert [e["attempt"] for e in retries] == [1, 2]
    assert len(ws.events(name="step-started", step="flaky")) == 3


@both_stores
def test_on_failure_continue_runs_on_and_fails_the_run(ws: Workspace) -> None:
    proc = ws.run("continue.md")
    assert proc.returncode == 1, proc.stderr
    assert ws.status()["status"] == "failed"
    assert ws.step("fails")["status"] == "failed"
    assert ws.step("fails")["exit_code"] == 4
    assert ws.step("next")["status"] == "succeeded"
    assert ws.log() == ["fails", "next"]


@both_stores
def test_backout_runs_when_the_answers_say_so(ws: Workspace) -> None:
    proc = ws.run("backout.md", "--answers", "answers-backout.yml")
    assert proc.returncode == 1, proc.stderr
    assert (ws.root / "backout.marker").exists()
    assert ws.log() == ["change", "undo"]
    offered = ws.events(name="backout-offered", step="change")
    assert len(offered) == 1 and offered[0]["decision"] == "run" and offered[0]["backout"] == "undo"
    finished = ws.events(name="backout-finished", step="change")
    assert len(finished) == 1 and finished[0]["status"] == "succeeded"
    assert ws.step("not-reached")["status"] == "pending"


@both_stores
def test_backout_is_offered_but_not_run_without_an_answer(ws: Workspace) -> None:
    proc = ws.run("backout.md")
    assert proc.returncode == 1, proc.stderr
    assert not (ws.root / "backout.marker").exists()
    offered = ws.events(name="backout-offered", step="change")
    assert len(offered) == 1 and offered[0]["decision"] == "not-answered"
    assert not ws.events(name="backout-started")


# -- conditions and verification ------------------------------------------------------------------
@both_stores
def test_false_condition_skips_a_verification_that_does_not_apply(ws: Workspace) -> None:
    # A verification whose when= is false does not apply in this environment: it is skipped
    # with the reason and does not count against the outcome.
    proc = ws.run("when.md")
    assert proc.returncode == 0, proc.stderr
    step = ws.step("verify-it")
    assert step["status"] == "skipped"
    assert "do_verify" in step["reason"]
    assert ws.events(name="step-skipped", step="verify-it")[0]["reason"] == step["reason"]
    assert ws.status()["status"] == "succeeded"


@both_stores
def test_verification_skipped_by_a_person_leaves_the_run_unverified(ws: Workspace) -> None:
    proc = ws.run("verify-gate.md", "--answers", "answers-skip-verify.yml")
    assert proc.returncode == 0, proc.stderr
    assert ws.step("look")["status"] == "skipped"
    assert ws.status()["status"] == "unverified"
    assert ws.events(name="run-finished")[0]["status"] == "unverified"


@both_stores
def test_passed_verification_makes_the_run_succeed(ws: Workspace) -> None:
    proc = ws.run("when.md", "--set", "do_verify=true")
    assert proc.returncode == 0, proc.stderr
    assert ws.step("verify-it")["status"] == "succeeded"
    assert ws.status()["status"] == "succeeded"


# -- the journal --------------------------------------------------------------------------------
@sqlite_only  # edits the journal file in the state folder (the database's table is append-only)
@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_journal_verifies_and_a_one_byte_edit_is_detected(ws: Workspace, where: str) -> None:
    assert (
        ws.run("gate.md", "--env", "env-manual.yml", "--answers", "answers-confirm.yml").returncode
        == 0
    )
    ok = ws.verify()
    assert ok.returncode == 0, ok.stdout + ok.stderr
    journal = ws.journal_path()
    data = bytearray(journal.read_bytes())
    lines = data.split(b"\n")[:-1]
    index = {"first": 0, "middle": len(lines) // 2, "last": len(lines) - 1}[where]
    offset = sum(len(line) + 1 for line in lines[:index])
    pos = offset + lines[index].index(b'"event":"') + len(b'"event":"')
    data[pos] = ord("X") if data[pos] != ord("X") else ord("Y")
    journal.write_bytes(bytes(data))
    bad = ws.verify()
    assert bad.returncode == 1
    assert f"line {index + 1}" in bad.stdout + bad.stderr


# -- step bodies --------------------------------------------------------------------------------
def test_python_step_in_a_list_item_keeps_its_indentation(ws: Workspace) -> None:
    proc = ws.run("python.md")
    assert proc.returncode == 0, proc.stderr
    assert (ws.root / "py.out").read_text() == "even 0\neven 2\n"


def test_relative_cwd_is_the_runbooks_folder(ws: Workspace) -> None:
    book = ws.root / "books"
    (book / "my dir").mkdir(parents=True)
    shutil.copy2(FIXTURES / "cwd.md", book / "cwd.md")
    elsewhere = ws.root / "elsewhere"
    (elsewhere / "my dir").mkdir(parents=True)  # a decoy next to the process's cwd
    proc = subprocess.run(
        ws.cmd("run", book / "cwd.md", "--state-dir", ws.state, "--run-id", "r1", "--no-input"),
        cwd=elsewhere,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    here = book / "my dir" / "here.txt"
    assert here.exists(), "relative cwd was not taken from the runbook's folder"
    assert Path(here.read_text().strip()).resolve() == (book / "my dir").resolve()
    assert not (elsewhere / "my dir" / "here.txt").exists()


def test_relative_cwd_with_a_relative_runbook_path(ws: Workspace) -> None:
    """The runbook named relative to the process's cwd: ``books/cwd.md``."""
    book = ws.root / "books"
    (book / "my dir").mkdir(parents=True)
    shutil.copy2(FIXTURES / "cwd.md", book / "cwd.md")
    proc = ws.run("books/cwd.md")
    assert proc.returncode == 0, proc.stderr
    assert (book / "my dir" / "here.txt").exists()


def test_missing_cwd_fails_the_step_cleanly(ws: Workspace) -> None:
    proc = ws.run("cwd.md")  # no "my dir" next to the runbook
    assert proc.returncode == 1
    step = ws.step("where")
    assert step["status"] == "failed"
    errors = [e for e in ws.events(name="step-finished", step="where") if e["status"] == "error"]
    assert errors and "my dir" in errors[0]["error"]


ERREXIT_BOOK = """\
# Errexit

```sh {#strict}
false
echo strict-after
```

```bash {#lenient errexit=false}
false | cat
echo lenient-after
```
"""


def test_a_failing_first_line_fails_the_step_unless_errexit_is_off(ws: Workspace) -> None:
    (ws.root / "errexit.md").write_text(ERREXIT_BOOK, encoding="utf-8")
    plan = ws.runbook("plan", "errexit.md")
    assert plan.returncode == 0, plan.stderr
    assert "stops at the first error (set -e)" in plan.stdout
    assert "errexit off" in plan.stdout
    data = json.loads(ws.runbook("plan", "errexit.md", "--json").stdout)
    assert [s["errexit"] for s in data["steps"]] == ["set -e", ""]
    guide = ws.runbook("render", "errexit.md", "--to", "md").stdout
    assert "Stops at the first error (`set -e`)" in guide and "Errexit: off" in guide
    run = ws.run("errexit.md")
    assert run.returncode == 1
    assert "strict-after" not in run.stdout
    (ws.root / "errexit.md").write_text(
        ERREXIT_BOOK.replace("{#strict}", "{#strict errexit=false}"), encoding="utf-8"
    )
    again = ws.run("errexit.md", run_id="r2")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "strict-after" in again.stdout and "lenient-after" in again.stdout


def test_errexit_attribute_is_checked(ws: Workspace) -> None:
    (ws.root / "bad.md").write_text(
        "# B\n\n```python {#p errexit=false}\nprint(1)\n```\n\n"
        "```sh {#s errexit=maybe}\ntrue\n```\n",
        encoding="utf-8",
    )
    proc = ws.runbook("lint", "bad.md")
    assert proc.returncode != 0
    assert "errexit= applies to sh, bash, powershell steps, not python" in proc.stdout
    assert "errexit='maybe' must be 'true' or 'false'" in proc.stdout
