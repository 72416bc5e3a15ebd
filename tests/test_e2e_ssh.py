# ruff: noqa: F811
"""Runs over SSH through the CLI against a real sshd: a killed run is resumed."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from ssh_server import SSHServer, sshd  # type: ignore[import-not-found]  # noqa: F401

pytestmark = pytest.mark.timeout(180)

RUNBOOK = """---
id: ssh-slow
title: A slow step over SSH
version: "1.0"
roles:
  web: the host
---

```sh {#slow target=web}
if test -f "$HOME/rbe-go"; then echo resumed-ok; else sleep 600; fi
```
"""


def _journal(state: Path, run_id: str) -> list[dict]:
    path = state / "runs" / run_id / "journal.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line]


def test_killed_run_is_refused_while_the_remote_step_runs_then_resumes(
    sshd: SSHServer, tmp_path: Path
) -> None:
    sshd.run_as_user('rm -f "$HOME/rbe-go"')
    (tmp_path / "slow.md").write_text(RUNBOOK, "utf-8")
    env = {
        "name": "ssh-lab",
        "roles": {
            "web": [
                {"name": "web1", "address": "127.0.0.1", "transport": "ssh", "ssh": sshd.options()}
            ]
        },
    }
    (tmp_path / "env.yaml").write_text(yaml.safe_dump(env), "utf-8")
    state = tmp_path / "state"
    base = [sys.executable, "-m", "runbook_engine"]
    tail = ["--state-dir", str(state)]
    penv = {**os.environ, "RUNBOOK_OPERATOR": "Jane Operator", "NO_COLOR": "1"}
    runner = subprocess.Popen(
        [
            *base,
            "run",
            str(tmp_path / "slow.md"),
            "--env",
            str(tmp_path / "env.yaml"),
            "--no-input",
            "--run-id",
            "ssh-kill",
            *tail,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=penv,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while not [e for e in _journal(state, "ssh-kill") if e["event"] == "process-started"]:
        assert time.monotonic() < deadline and runner.poll() is None, "the step never started"
        time.sleep(0.1)
    marker = next(e for e in _journal(state, "ssh-kill") if e["event"] == "process-started")
    assert marker["transport"] == "ssh"
    time.sleep(1)  # the body reaches the host
    os.killpg(runner.pid, signal.SIGKILL)
    runner.wait(30)

    def resume(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*base, "resume", "ssh-kill", "--no-input", *extra, *tail],
            capture_output=True,
            text=True,
            env=penv,
            timeout=120,
        )

    refused = resume()
    assert refused.returncode == 75, refused.stdout + refused.stderr
    assert "still running on web1" in refused.stderr and marker["marker"] in refused.stderr
    # The refusal says how to stop it on the host: its sessions (pkill -s), not taskkill.
    listing = sshd.run_as_user("ps -e -o sid= -o args=")
    needle = f"rbe-{marker['marker']}."
    sids = sorted({int(ln.split()[0]) for ln in listing.splitlines() if needle in ln})
    hint = "pkill -TERM -s " + ",".join(map(str, sids))
    assert sids and f"({hint})" in refused.stderr, refused.stderr
    assert "taskkill" not in refused.stderr
    sshd.run_as_user(hint)  # what the operator is told to run, run on the host
    gone = sshd.run_as_user("ps -e -o args=")
    assert needle not in gone
    sshd.run_as_user('rm -f "$HOME/rbe-go"')
    sshd.run_as_user('touch "$HOME/rbe-go"')
    asks = resume()  # the step was interrupted: the operator decides whether it ran
    assert asks.returncode == 3 and "--rerun" in asks.stderr, asks.stdout + asks.stderr
    rerun = subprocess.run(
        [*base, "confirm", "ssh-kill", "slow", "--as", "Jane Operator", "--rerun", *tail],
        capture_output=True,
        text=True,
        env=penv,
        timeout=60,
    )
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    done = resume()
    assert done.returncode == 0, done.stdout + done.stderr
    events = _journal(state, "ssh-kill")
    assert "run-resumed" in [e["event"] for e in events]
    finished = [e for e in events if e["event"] == "step-finished"]
    assert finished and "resumed-ok" in finished[-1]["output_excerpt"]
    sshd.run_as_user('rm -f "$HOME/rbe-go"')


LOSS = """---
id: ssh-loss
title: A step whose connection breaks
version: "1.0"
roles:
  web: the host
---

```sh {#long target=web retries=2}
echo begun; sleep 30; echo finished
```
"""


def _tree(root: int) -> list[tuple[int, str]]:
    """The descendants of ``root``: (pid, command name)."""
    rows = [
        line.split(None, 2)
        for line in subprocess.run(
            ["ps", "-e", "-o", "pid=,ppid=,comm="], capture_output=True, text=True, check=True
        ).stdout.splitlines()
    ]
    found = [root]
    for pid in found:
        found += [int(p) for p, pp, _ in rows if int(pp) == pid and int(p) not in found]
    names = {int(p): c for p, _, c in rows}
    return [(p, names[p]) for p in found[1:] if p in names]


def _master(known_hosts: Path) -> int:
    """The pid of the newest ControlMaster (``ssh -N -f -o ControlMaster=yes``) for the
    test server (the run's; an earlier test's may persist), found by its command line."""
    masters = []
    for entry in Path("/proc").iterdir():
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
            started = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[19])
        except (OSError, IndexError, ValueError):
            continue
        if b"ControlMaster=yes" in args and f"UserKnownHostsFile={known_hosts}".encode() in args:
            masters.append((started, int(entry.name)))
    assert masters, "no ControlMaster found"
    return max(masters)[1]


@pytest.mark.parametrize("cut", ["control-master", "sshd-child"])
def test_connection_lost_mid_step_is_one_message_and_an_interrupted_step(
    sshd: SSHServer, tmp_path: Path, cut: str
) -> None:
    (tmp_path / "loss.md").write_text(LOSS, "utf-8")
    env = {
        "name": "ssh-lab",
        "roles": {
            "web": [
                {"name": "web1", "address": "127.0.0.1", "transport": "ssh", "ssh": sshd.options()}
            ]
        },
    }
    (tmp_path / "env.yaml").write_text(yaml.safe_dump(env), "utf-8")
    state = tmp_path / "state"
    base = [sys.executable, "-m", "runbook_engine"]
    penv = {**os.environ, "RUNBOOK_OPERATOR": "Jane Operator", "NO_COLOR": "1"}
    runner = subprocess.Popen(
        [
            *base,
            "run",
            str(tmp_path / "loss.md"),
            "--env",
            str(tmp_path / "env.yaml"),
            "--no-input",
            "--run-id",
            "loss",
            "--state-dir",
            str(state),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=penv,
    )
    deadline = time.monotonic() + 60
    while not [e for e in _journal(state, "loss") if e["event"] == "process-started"]:
        ended = runner.poll() is not None  # then say why (a preflight refusal, exit 2)
        assert time.monotonic() < deadline and not ended, (
            runner.communicate() if ended else "the step never started"
        )
        time.sleep(0.1)
    marker = next(e for e in _journal(state, "loss") if e["event"] == "process-started")["marker"]
    while f"rbe-{marker}." not in sshd.run_as_user("ps -e -o args="):
        assert time.monotonic() < deadline, "the step never reached the host"
        time.sleep(0.1)
    if cut == "control-master":
        os.kill(_master(sshd.known_hosts), signal.SIGKILL)
    else:  # the server's processes for the connection (not the step's own)
        for pid, name in _tree(sshd.proc.pid):
            if name.startswith("sshd"):
                with contextlib.suppress(ProcessLookupError):  # gone with its parent
                    os.kill(pid, signal.SIGKILL)
    out, err = runner.communicate(timeout=60)
    assert runner.returncode == 75, out + err
    assert err.count("connection lost while the step ran") == 1, err
    assert "Traceback" not in err and marker in err and "runbook resume loss" in err
    events = _journal(state, "loss")
    names = [e["event"] for e in events]
    assert "step-lost" in names and "run-interrupted" in names
    assert "step-finished" not in names and "step-retry" not in names  # never run twice
    status = subprocess.run(
        [*base, "status", "loss", "--json", "--state-dir", str(state)],
        capture_output=True,
        text=True,
        env=penv,
        check=True,
    )
    shown = json.loads(status.stdout)
    assert shown["status"] == "interrupted", shown
    assert [s["status"] for s in shown["steps"]] == ["running"], shown
    # The step may still run on the host: a resume looks and refuses, naming the session.
    refused = subprocess.run(
        [*base, "resume", "loss", "--no-input", "--state-dir", str(state)],
        capture_output=True,
        text=True,
        env=penv,
        timeout=120,
    )
    assert refused.returncode == 75 and "pkill -TERM -s " in refused.stderr, refused.stderr
    hint = refused.stderr.split("(pkill", 1)[1].split(")", 1)[0]
    sshd.run_as_user("pkill" + hint)
