"""Stop signals during a run: SIGTERM and SIGHUP are handled like Ctrl-C.

:func:`stop_signals` installs handlers (main thread only) that raise
:class:`Terminated`, a :class:`KeyboardInterrupt`, so the runner kills the running
step, journals ``run-interrupted`` with the signal's name and exits ``128 + signal``
(130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP).  A signal arriving during a journal
write is held back until the write is whole (:mod:`runbook_engine.evidence.shield`).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from runbook_engine.evidence.shield import deliver

#: The signals a run treats as "stop now".
STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


class Terminated(KeyboardInterrupt):
    """A stop signal arrived (``signum``); raised in the main thread like Ctrl-C."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def signal_of(exc: BaseException) -> int:
    """The signal behind an interrupt (SIGINT for a plain Ctrl-C)."""
    return getattr(exc, "signum", signal.SIGINT)


def _raise(signum: int, frame: FrameType | None) -> None:
    deliver(Terminated(signum))


@contextmanager
def stop_signals() -> Iterator[None]:
    """Within the block, SIGINT, SIGTERM and SIGHUP raise :class:`Terminated`."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _raise) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
