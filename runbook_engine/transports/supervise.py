"""The step reaper: one small process per local transport that kills steps when the runner dies.

Run as ``python -I supervise.py --reaper RUNNER_PID GRACE`` by the local transport, once
per transport (so once per run), in a session of its own.  The transport starts each step
itself, in a new session whose process group the step leads, and tells the reaper that
group on its standard input: ``add PGID`` right after the step started, ``del PGID`` once
it ended; it reads those lines four times a second, not as they come (two wake-ups per
step cost more than the step's own bookkeeping).  When the runner dies (SIGKILL
included), the reaper learns it at once, through Linux's parent-death signal
(``PR_SET_PDEATHSIG``), or within a quarter of a second by polling its parent pid and
reading its input, reads the lines left in the pipe and kills every group registered:
SIGTERM, then SIGKILL after ``GRACE`` seconds to those not gone by then.  So a step never
outlives its runner.  When the input ends with no group registered (the transport was
closed) the reaper exits 0; when it ends with groups registered (the runner is dying, or
closed the transport while steps ran) it kills them as above and exits 1.  The
parent-death signal is also sent when the *thread* that started the reaper ends, so it
only makes the reaper look at its parent pid.

The script imports nothing but the standard library (it is run by path with
``-I``, without the package on ``sys.path``).
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import time

_POLL_SECONDS = 0.25


def _set_parent_death_signal(signum: int) -> None:
    """Ask Linux to send ``signum`` when our parent dies (a no-op elsewhere)."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signum, 0, 0, 0)  # PR_SET_PDEATHSIG = 1


def _group_exists(pgid: int) -> bool:
    """True while any process (a zombie included) is left in group ``pgid``."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _kill_groups(groups: set[int], grace: float) -> None:
    """SIGTERM every group, wait up to ``grace`` seconds, then SIGKILL those left.

    A group found empty is dropped at once, so its id is never signalled after the
    kernel could have handed it out again.
    """
    for pgid in sorted(groups):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGTERM)
    left = set(groups)
    deadline = time.monotonic() + grace
    while left and time.monotonic() < deadline:
        left = {pgid for pgid in left if _group_exists(pgid)}
        if left:
            time.sleep(0.02)
    for pgid in sorted(left):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)


def _take_lines(buffer: bytes, groups: set[int]) -> bytes:
    """Apply the complete ``add PGID`` / ``del PGID`` lines in ``buffer``; return the rest."""
    *lines, rest = buffer.split(b"\n")
    for line in lines:
        verb, _, arg = line.strip().partition(b" ")
        if not arg.strip().isdigit() or int(arg) <= 1:
            continue  # never signal group 0 (ours) or 1, whatever we are told
        if verb == b"add":
            groups.add(int(arg))
        elif verb == b"del":
            groups.discard(int(arg))
    return rest


def _drain(buffer: bytes, groups: set[int]) -> tuple[bytes, bool]:
    """Read what standard input holds now, without blocking; return the rest of an
    unfinished line and whether the input ended."""
    os.set_blocking(0, False)
    while True:
        try:
            chunk = os.read(0, 65536)
        except (BlockingIOError, OSError):
            return buffer, False
        if not chunk:
            return buffer, True
        buffer = _take_lines(buffer + chunk, groups)


def reap(parent: int, grace: float) -> None:
    """Watch the groups named on standard input; kill them when ``parent`` dies."""
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(signum, lambda *_: None)  # wake up and look at the parent pid
    _set_parent_death_signal(signal.SIGTERM)
    groups: set[int] = set()
    buffer = b""
    ended = False
    while os.getppid() == parent and not ended:  # checked after arming: it may be gone
        # Standard input is read on each tick, not when written to: a step's add and del
        # lines wait in the pipe (a few bytes of its 64 KiB) instead of waking us twice a
        # step; a signal (the parent's death) ends the wait at once.
        ready, _, _ = select.select([wake_r], [], [], _POLL_SECONDS)
        if ready:
            with contextlib.suppress(OSError):
                os.read(wake_r, 512)
        buffer, ended = _drain(buffer, groups)
    if not ended:  # the runner died: what it wrote before dying is still in the pipe
        buffer, _ = _drain(buffer, groups)
    _take_lines(buffer + b"\n", groups)
    if not groups:
        os._exit(0)
    _kill_groups(groups, grace)
    os._exit(1)


def main(args: list[str]) -> None:
    """``--reaper RUNNER_PID GRACE``."""
    if len(args) != 3 or args[0] != "--reaper":
        os.write(2, b"usage: supervise.py --reaper RUNNER_PID GRACE\n")
        os._exit(2)
    reap(int(args[1]), float(args[2]))


if __name__ == "__main__":
    main(sys.argv[1:])
