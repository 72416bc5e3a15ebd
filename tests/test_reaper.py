"""The step reaper (transports/supervise.py) with real processes: it reads its add and del
lines when it looks (not as they are written) and, when its runner dies, kills the groups
still registered and only those."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="process groups and /proc")

RUNNER = """
import os, subprocess, sys, time
from runbook_engine.transports.local import _Reaper
reaper = _Reaper(0.5)
reaper.start()
kept = subprocess.Popen(["sleep", "300"], start_new_session=True)
left = subprocess.Popen(["sleep", "300"], start_new_session=True)
reaper.add(kept.pid)
reaper.add(left.pid)
reaper.remove(left.pid)  # as for a step that ended: no longer the reaper's
print(kept.pid, left.pid, reaper._proc.pid, flush=True)
time.sleep(300)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_gone(pid: int, limit: float = 10.0) -> bool:
    """Poll until ``pid`` is gone; a bound against hanging, not a timing assertion."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def test_a_dead_runner_s_registered_groups_die_and_removed_ones_do_not() -> None:
    runner = subprocess.Popen([sys.executable, "-c", RUNNER], stdout=subprocess.PIPE, text=True)
    kept, left, reaper = (int(n) for n in runner.stdout.readline().split())  # type: ignore[union-attr]
    try:
        runner.kill()  # SIGKILL: the lines are still in the reaper's pipe, unread
        runner.wait()
        assert _wait_gone(kept), "the registered step outlived its runner"
        assert _wait_gone(reaper), "the reaper did not exit"
        assert _alive(left), "a group removed from the reaper was killed"
    finally:
        for pid in (kept, left):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
