"""The run lock: one process at a time writes a run (``resume``, ``confirm``, ``approve``).

``runs/RUN_ID/lock`` is held with an exclusive ``flock`` (POSIX; on Windows one
writer per run is assumed) from before the first record a command writes until
it is done: ``runbook resume`` holds it from its ``run-resumed`` record to the
end of the run, so two resumes, or a resume and a confirmation, cannot interleave
their records or signatures.  The lock is re-entrant within one process (the
runner takes it again while ``resume`` holds it).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from runbook_engine.errors import StateError

try:  # POSIX only
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

#: Seconds ``confirm`` and ``approve`` wait for a run another process holds.
WAIT_SECONDS = 10.0
_held: dict[str, list[int]] = {}  # resolved lock path -> [fd, depth]
_guard = threading.Lock()


@contextlib.contextmanager
def run_lock(run_dir: Path, run_id: str, *, wait: float = 0.0) -> Iterator[None]:
    """Hold run ``run_id``'s lock; wait up to ``wait`` seconds for another process.

    Raises:
        StateError: another process holds the run (it is being executed or changed).
    """
    if fcntl is None:  # pragma: no cover - Windows
        yield
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    key = str((run_dir / "lock").resolve())
    with _guard:
        entry = _held.get(key)
        if entry is not None:
            entry[1] += 1
    if entry is None:
        entry = [_acquire(Path(key), run_id, wait), 1]
        with _guard:
            _held[key] = entry
    try:
        yield
    finally:
        with _guard:
            entry[1] -= 1
            if entry[1] == 0:
                del _held[key]
                os.close(entry[0])  # closing releases the lock


def _acquire(path: Path, run_id: str, wait: float) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except OSError:
            if time.monotonic() >= deadline:
                os.close(fd)
                raise StateError(
                    f"run {run_id} is being executed by another process (or changed by "
                    "one); try again when it has paused or finished"
                ) from None
            time.sleep(0.05)
