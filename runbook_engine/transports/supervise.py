"""The step supervisor: a tiny process between the runner and a step's command.

Run as ``python -I supervise.py RUNNER_PID GRACE -- ARGV...`` by the local transport,
in a new session whose process group it leads.  It forks the command into that group
and waits for it.  When the runner dies (SIGKILL included), the supervisor learns it
at once through Linux's parent-death signal (``PR_SET_PDEATHSIG``), or within a
quarter of a second by polling its parent pid elsewhere, and kills the whole group:
SIGTERM, then SIGKILL after ``GRACE`` seconds.  So a step never outlives its runner.

The supervisor exits with the command's exit status, or, when the command died of a
signal, of the same signal; it imports nothing but the standard library (it is run by
path with ``-I``, without the package on ``sys.path``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time

#: Signals the supervisor waits for (SIGCHLD: the command ended; the others: stop).
_WATCHED = (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP, signal.SIGINT)
_POLL_SECONDS = 0.25


def _set_parent_death_signal(signum: int) -> None:
    """Ask Linux to send ``signum`` when our parent dies (a no-op elsewhere)."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signum, 0, 0, 0)  # PR_SET_PDEATHSIG = 1


def _kill_group(grace: float, child: int) -> int | None:
    """SIGTERM our process group (but not us), wait ``grace`` seconds, then SIGKILL it.

    Returns the command's wait status when it was reaped meanwhile.
    """
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(0, signal.SIGTERM)
    status = None
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            pid, st = os.waitpid(child, os.WNOHANG)
            if pid:
                status = st
                break
        time.sleep(0.02)
    # Grandchildren may ignore SIGTERM or outlive the command: kill the whole group,
    # ourselves included (nothing is left to do).
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(0, signal.SIGKILL)
    return status


def _exit_like(status: int) -> None:
    """Exit with the command's status, or die of the signal that killed it."""
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        signal.pthread_sigmask(signal.SIG_SETMASK, set())
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        os._exit(128 + signum)
    os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1)


def supervise(parent: int, grace: float, argv: list[str]) -> None:
    """Run ``argv`` in our process group; kill the group when ``parent`` dies."""
    _set_parent_death_signal(signal.SIGTERM)
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, _WATCHED)
    if os.getppid() != parent:  # the runner died before the death signal was armed
        os._exit(137)
    child = os.fork()
    if child == 0:  # the command: default signal state, then exec
        try:
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
            os.execvp(argv[0], argv)
        except OSError as exc:
            os.write(2, f"cannot start {argv[0]!r}: {exc.strerror}\n".encode())
        os._exit(127)
    while True:
        info = signal.sigtimedwait(_WATCHED, _POLL_SECONDS)
        with contextlib.suppress(ChildProcessError):
            pid, status = os.waitpid(child, os.WNOHANG)
            if pid:
                _exit_like(status)
        stop = info is not None and info.si_signo != signal.SIGCHLD
        if stop or os.getppid() != parent:
            reaped = _kill_group(grace, child)
            _exit_like(reaped if reaped is not None else signal.SIGKILL)


def main(args: list[str]) -> None:
    """``RUNNER_PID GRACE -- ARGV...``."""
    if len(args) < 4 or args[2] != "--":
        os.write(2, b"usage: supervise.py RUNNER_PID GRACE -- ARGV...\n")
        os._exit(2)
    supervise(int(args[0]), float(args[1]), args[3:])


if __name__ == "__main__":
    main(sys.argv[1:])
