"""Several hosts per role: --forks runs them at once, --max-failures stops starting new ones."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

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
    tmp_path: Path, body: str, *args: str, on_failure: str = "stop"
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
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _journal(tmp_path: Path) -> list[dict]:
    lines = (tmp_path / "state" / "runs" / "r1" / "journal.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


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
