"""Several hosts per role: --forks runs them at once, --max-failures stops starting new ones.

Every test runs on both stores (``@both_stores``: the state folder and PostgreSQL): the
journal is read from :func:`stores.run_folder` (on PostgreSQL a copy rebuilt from the
database), the steps' rows and the journal's anchor through the Store interface.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from stores import run_folder, store  # type: ignore[import-not-found]

from runbook_engine.run.store_api import open_store

pytestmark = pytest.mark.usefixtures("store_kind")

RUNBOOK = """---
id: fan
roles:
  web: web servers
---
# Fan-out

```sh {{#step target=web on-failure={on_failure} timeout=60}}
{body}
```
"""

ENV = """name: fan
roles:
  web:
    - {name: w1, address: localhost, transport: local}
    - {name: w2, address: localhost, transport: local}
    - {name: w3, address: localhost, transport: local}
    - {name: w4, address: localhost, transport: local}
"""

# Each host announces itself, then waits until all four have arrived: one host at a time
# can never get there (the wait gives up and fails), so success proves they ran together.
BARRIER = """touch "arrived-$RUNBOOK_HOST"
i=0
while [ "$(ls arrived-* | wc -l)" -lt 4 ]; do
  i=$((i+1)); [ $i -gt 200 ] && exit 7
  sleep 0.05
done
echo "$RUNBOOK_HOST done"
"""

FAIL_ON_W1 = """[ "$RUNBOOK_HOST" = w1 ] && exit 5
echo "$RUNBOOK_HOST ran" >> ran.log
"""


def _run(
    tmp_path: Path,
    body: str,
    *args: str,
    on_failure: str = "stop",
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    (tmp_path / "fan.md").write_text(RUNBOOK.format(body=body, on_failure=on_failure))
    (tmp_path / "env.yaml").write_text(ENV)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "runbook_engine",
            "run",
            "fan.md",
            "--env",
            "env.yaml",
            "--state-dir",
            "state",
            "--run-id",
            "r1",
            "--no-input",
            *args,
        ],
        env={**os.environ, **(env or {})},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _journal(tmp_path: Path) -> list[dict]:
    lines = (run_folder(tmp_path / "state", "r1") / "journal.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def _stored(tmp_path: Path) -> tuple[list[tuple], tuple[int, str] | None]:
    """The steps of run r1 as stored ``(host, status, exit_code, output_digest)`` and the
    journal's anchor the store keeps."""
    with contextlib.closing(open_store(tmp_path / "state", store())) as db:  # type: ignore[type-var]
        rows = [(s.host, s.status, s.exit_code, s.output_digest) for s in db.steps("r1")]
        return rows, db.anchor("r1")


def test_forks_run_hosts_at_the_same_time(tmp_path: Path) -> None:
    proc = _run(tmp_path, BARRIER, "--forks", "4")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    finished = [e for e in _journal(tmp_path) if e["event"] == "step-finished"]
    assert sorted(e["host"] for e in finished) == ["w1", "w2", "w3", "w4"]
    assert all(e["status"] == "succeeded" for e in finished)


def test_one_host_at_a_time_by_default(tmp_path: Path) -> None:
    proc = _run(tmp_path, BARRIER)
    assert proc.returncode == 1
    # w1 waited for the others in vain and failed; the step stops on failure, so no other
    # host was started.
    events = _journal(tmp_path)
    assert [e["host"] for e in events if e["event"] == "step-started"] == ["w1"]
    assert sorted(e["host"] for e in events if e["event"] == "step-not-started") == [
        "w2",
        "w3",
        "w4",
    ]


@pytest.mark.parametrize("forks", ["1", "2"])
def test_max_failures_stops_starting_new_hosts(tmp_path: Path, forks: str) -> None:
    proc = _run(
        tmp_path, FAIL_ON_W1, "--forks", forks, "--max-failures", "1", on_failure="continue"
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    events = _journal(tmp_path)
    not_started = {e["host"] for e in events if e["event"] == "step-not-started"}
    started = {e["host"] for e in events if e["event"] == "step-started"}
    assert "w1" in started and not_started and not (started & not_started)
    assert started | not_started == {"w1", "w2", "w3", "w4"}


def test_continue_runs_every_host_and_the_run_fails(tmp_path: Path) -> None:
    proc = _run(tmp_path, FAIL_ON_W1, "--forks", "2", on_failure="continue")
    assert proc.returncode == 1
    assert sorted((tmp_path / "ran.log").read_text().split("\n")[:-1]) == [
        "w2 ran",
        "w3 ran",
        "w4 ran",
    ]
    status = subprocess.run(
        [sys.executable, "-m", "runbook_engine", "status", "r1", "--state-dir", "state", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    steps = {s["host"]: s["status"] for s in json.loads(status.stdout)["steps"]}
    assert steps == {"w1": "failed", "w2": "succeeded", "w3": "succeeded", "w4": "succeeded"}


def test_max_failures_above_one_lets_further_hosts_start_one_at_a_time(tmp_path: Path) -> None:
    # on-failure=stop with --max-failures 2: w1 fails, w2..w4 still start (found by a new user).
    proc = _run(tmp_path, FAIL_ON_W1, "--max-failures", "2")
    assert proc.returncode == 1
    events = _journal(tmp_path)
    assert [e["host"] for e in events if e["event"] == "step-started"] == ["w1", "w2", "w3", "w4"]
    assert "runbook resume r1" in proc.stderr


def _cli(tmp_path: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "runbook_engine", *args, "--state-dir", "state"]
    env = {**os.environ, "RUNBOOK_OPERATOR": "Ann Operator", **env}
    return subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def _signing(tmp_path: Path) -> dict[str, str]:
    env = {"RUNBOOK_SIGNING_KEY": str(tmp_path / "keys" / "signing.key")}
    assert _cli(tmp_path, "keys", "init", "-o", "keys", env=env).returncode == 0
    return env


def test_a_fanned_out_step_is_durable_signed_and_stored_by_group_commits(tmp_path: Path) -> None:
    env = _signing(tmp_path)
    proc = _run(tmp_path, BARRIER, "--forks", "4", env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    events = _journal(tmp_path)
    run_dir = run_folder(tmp_path / "state", "r1")
    sigs = [json.loads(line) for line in (run_dir / "journal.sig.jsonl").read_text().splitlines()]
    # Each host's step-started was on the disk and signed before its command started: a
    # signature of it (or of a later record, covering it through the chain) was written
    # before the host's process-started.
    for started in (e for e in events if e["event"] == "step-started"):
        process = next(
            e for e in events if e["event"] == "process-started" and e["host"] == started["host"]
        )
        assert any(s["seq"] >= started["seq"] and s["time"] <= process["time"] for s in sigs)
    assert all(
        not any(s["seq"] == e["seq"] for s in sigs)
        for e in events
        if e["event"] == "process-started"
    )  # never signed before it is on the disk
    verified = _cli(
        tmp_path,
        "evidence",
        "verify",
        "r1",
        "--public-key",
        "keys/signing.pub",
        "--require-signature",
        env=env,
    )
    assert verified.returncode == 0 and verified.stdout.startswith("VERIFIED:"), verified.stdout
    rows, anchor = _stored(tmp_path)
    assert sorted(rows) == [  # the hosts' ends, committed in the group's transaction
        (
            host,
            "succeeded",
            0,
            next(
                e["output_sha256"]
                for e in events
                if e["event"] == "step-finished" and e["host"] == host
            ),
        )
        for host in ("w1", "w2", "w3", "w4")
    ]
    assert anchor == (events[-1]["seq"], events[-1]["hash"])


def test_a_fan_out_killed_while_its_hosts_run_resumes_and_verifies(tmp_path: Path) -> None:
    env = _signing(tmp_path)
    killed = _run(
        tmp_path, BARRIER, "--forks", "4", env={**env, "RUNBOOK_FAULT": "after-process-started"}
    )
    assert killed.returncode == -signal.SIGKILL
    events = _journal(tmp_path)
    anchor = _stored(tmp_path)[1]
    assert anchor is not None
    seq, digest = anchor
    assert events[seq - 1]["hash"] == digest  # the anchor names a record on the disk
    paused = _cli(tmp_path, "resume", "r1", "--no-input", env=env)
    assert paused.returncode == 3, paused.stdout + paused.stderr  # the hosts' steps may have run
    confirm = ["confirm", "r1", "step", "--as", "Ann Operator", "--rerun"]
    assert _cli(tmp_path, *confirm, env=env).returncode == 0
    for marker in tmp_path.glob("arrived-*"):
        marker.unlink()
    done = _cli(tmp_path, "resume", "r1", "--no-input", "--forks", "4", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    pub = ["--public-key", "keys/signing.pub", "--require-signature"]
    verified = _cli(tmp_path, "evidence", "verify", "r1", *pub, env=env)
    assert verified.returncode == 0 and verified.stdout.startswith("VERIFIED:"), verified.stdout
