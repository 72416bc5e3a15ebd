"""Shielded sections: a stop signal is held back until a write is whole.

A run's stop signals (Ctrl-C, SIGTERM, SIGHUP) raise in the main thread wherever it is;
raised in the middle of a journal append they would leave half a line, or a record
without its signature.  Code that must finish once started runs inside
:func:`shielded`; a stop delivered through :func:`deliver` meanwhile is raised when the
outermost shielded section on the main thread ends.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

_state = {"depth": 0}
_pending: list[BaseException] = []


def _on_main() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def shielded() -> Iterator[None]:
    """Hold back stops delivered on the main thread until the block ends."""
    if not _on_main():
        yield
        return
    _state["depth"] += 1
    try:
        yield
    finally:
        _state["depth"] -= 1
        if _state["depth"] == 0 and _pending:
            exc = _pending.pop()
            _pending.clear()
            raise exc


def deliver(exc: BaseException) -> None:
    """Raise ``exc`` now, or when the current shielded section ends (signal handlers)."""
    if _state["depth"] > 0:
        _pending.append(exc)
        return
    raise exc
