"""The lock of a fanned-out step's hosts, which a worker lets go of while its command runs."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator


class HeldLock:
    """A lock for host fan-out that a worker can let go of while its command runs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._local = threading.local()

    def __enter__(self) -> None:
        self._lock.acquire()
        self._local.held = True

    def __exit__(self, *exc: object) -> None:
        self._local.held = False
        self._lock.release()

    @contextlib.contextmanager
    def released(self) -> Iterator[None]:
        """Release the lock for the duration of the block, if this thread holds it."""
        if not getattr(self._local, "held", False):
            yield
            return
        self.__exit__()
        try:
            yield
        finally:
            self.__enter__()
