"""Reading a command's output in the calling thread while waiting for it (the local and
the SSH transports).

One :class:`StreamReader` per pipe (standard output, standard error) keeps the bytes in a
bounded :class:`~runbook_engine.transports.capture.Capture`, cut in blocks of whole lines
(a line longer than :data:`BLOCK` is cut in pieces), each block passed through the
redaction filter before it is kept and digested, and its lines streamed to the
transport's ``on_output``.  :func:`follow` waits on both pipes and on the process itself
with one :mod:`selectors` loop: the process's exit is a file descriptor too (Linux's
``pidfd_open``; elsewhere the loop looks at the process every 50 ms), so no reader
thread is started or joined per command (two thread starts and joins were most of a
no-op step's cost in the transport).

What a command reads on standard input (the SSH transport's script) is written by the
same loop, as the pipe takes it, so a command that writes before it has read all of it
never waits on us.

The deadline and the kill are the caller's (:meth:`LocalTransport._kill_group`):
:func:`follow` calls ``kill`` once when the deadline passes, then reads what the dying
group still writes.  Once the process has exited, pipes a background child keeps open
are read for at most ``grace`` seconds more, then left.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import subprocess
import threading
import time
from collections.abc import Callable
from typing import IO

from runbook_engine.transports.capture import Capture

#: Longest piece of output handled at once (a longer line is cut in pieces).
BLOCK = 64 * 1024
#: Seconds between two looks at the process where its exit cannot be waited on (no pidfd).
_POLL_SECONDS = 0.05


class StreamReader:
    """One output pipe of a command: blocks of whole lines into a bounded capture.

    Args:
        stream: The pipe (closed by :meth:`end`).
        capture: Where the (filtered) bytes are kept and digested.
        emit: Called with each line as it arrives (``None``: not streamed).
        filter: Applied to each decoded block before it is kept (redaction).
    """

    def __init__(
        self,
        stream: IO[bytes],
        capture: Capture,
        emit: Callable[[str], None] | None = None,
        filter: Callable[[str], str] | None = None,
    ) -> None:
        self.stream = stream
        self.fd = stream.fileno()
        self.capture = capture
        self._emit = emit
        self._filter = filter
        self._carry = b""
        self.ended = False

    def feed(self, chunk: bytes) -> None:
        """Take the next ``chunk`` read from the pipe (the end of a line may follow)."""
        data = self._carry + chunk
        start = 0
        while len(data) - start >= BLOCK:  # a full block: cut at its last line break, or whole
            end = data.rfind(b"\n", start, start + BLOCK) + 1
            end = end if end > start else start + BLOCK
            self._take(data[start:end])
            start = end
        cut = data.rfind(b"\n", start) + 1
        if cut > start:
            self._take(data[start:cut])
            start = cut
        self._carry = data[start:]  # the start of a line whose end is still to come

    def end(self) -> None:
        """The pipe is closed (or left): keep the unfinished last line and close it."""
        if self.ended:
            return
        self.ended = True
        if self._carry:
            self._take(self._carry)
            self._carry = b""
        with contextlib.suppress(OSError):
            self.stream.close()

    def _take(self, block: bytes) -> None:
        text = None
        if self._filter is not None or self._emit is not None:
            text = block.decode("utf-8", errors="replace")
        if self._filter is not None and text is not None:
            text = self._filter(text)
            block = text.encode("utf-8")
        self.capture.feed(block)
        if self._emit is not None and text is not None:
            for line in text.splitlines():
                self._emit(line)

    def text(self) -> str:
        """What was kept, decoded as UTF-8 (errors replaced)."""
        return self.capture.text()


class _Feeder:
    """Standard input of a command: ``data`` written as the pipe takes it, then closed."""

    def __init__(self, stream: IO[bytes], data: bytes) -> None:
        self.stream, self.fd, self.data = stream, stream.fileno(), memoryview(data)
        os.set_blocking(self.fd, False)

    def write(self) -> bool:
        """Write what the pipe takes now; True once everything is written (or the reader
        is gone: a broken pipe ends the feeding, the command's exit says the rest)."""
        try:
            self.data = self.data[os.write(self.fd, self.data[:BLOCK]) :]
        except BlockingIOError:
            return False
        except OSError:
            self.data = self.data[:0]
        return not self.data

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.stream.close()


def _pidfd(pid: int) -> int | None:
    """A file descriptor that becomes readable when ``pid`` exits (Linux ≥ 5.3), or ``None``."""
    opener = getattr(os, "pidfd_open", None)
    if opener is None:
        return None
    try:
        return int(opener(pid))
    except OSError:  # an old kernel, or a seccomp filter that refuses it
        return None


def follow(
    proc: subprocess.Popen[bytes],
    readers: list[StreamReader],
    timeout: float | None,
    grace: float,
    kill: Callable[[subprocess.Popen[bytes]], None],
    stdin: bytes | None = None,
    idle: tuple[float, Callable[[], None]] | None = None,
) -> bool:
    """Read ``readers``' pipes until they close while waiting for ``proc``, in this thread.

    Args:
        proc: The started command (its leader is reaped here, or by ``kill``).
        readers: Its output pipes.
        timeout: Seconds from now until ``kill(proc)`` is called; ``None`` for no deadline.
        grace: Seconds the pipes are read after the process exited (a background child
            may keep them open), at most.
        kill: Ends the process and its group and reaps it (called at most once).
        stdin: Written to ``proc.stdin`` as the pipe takes it, which is then closed
            (``None``: ``proc.stdin`` is not touched).
        idle: ``(seconds, call)``: ``call()`` once, here, when the command still runs
            after ``seconds`` (the run acknowledges the previous step then).

    Returns:
        True when the deadline killed the process.

    Raises:
        BaseException: whatever interrupts the wait (Ctrl-C); the caller kills the group.
        Every reader is ended (its pipe closed) on return and on error.
    """
    if os.name == "nt":  # pragma: no cover - select() takes no pipes on Windows
        return _follow_threads(proc, readers, timeout, grace, kill, stdin)
    deadline = None if timeout is None else time.monotonic() + timeout
    pidfd = _pidfd(proc.pid)
    sel = selectors.DefaultSelector()
    feeder = None
    try:
        if stdin is not None and proc.stdin is not None:
            feeder = _Feeder(proc.stdin, stdin)
            if feeder.write():  # most scripts fit in the pipe at once
                feeder.close()
            else:
                sel.register(feeder.fd, selectors.EVENT_WRITE, feeder)
        for reader in readers:
            sel.register(reader.fd, selectors.EVENT_READ, reader)
        if pidfd is not None:
            sel.register(pidfd, selectors.EVENT_READ, None)
        return _loop(proc, sel, pidfd is not None, deadline, grace, kill, idle)
    finally:
        sel.close()
        if feeder is not None:
            feeder.close()
        if pidfd is not None:
            os.close(pidfd)
        for reader in readers:
            reader.end()


def _loop(
    proc: subprocess.Popen[bytes],
    sel: selectors.BaseSelector,
    watched: bool,
    deadline: float | None,
    grace: float,
    kill: Callable[[subprocess.Popen[bytes]], None],
    idle: tuple[float, Callable[[], None]] | None = None,
) -> bool:
    timed_out = False
    drain_until: float | None = None  # set once the process is gone
    idle_at = None if idle is None else time.monotonic() + idle[0]
    pipes = sum(1 for key in sel.get_map().values() if isinstance(key.data, StreamReader))
    while True:
        now = time.monotonic()
        if drain_until is None and proc.poll() is not None:
            drain_until = now + grace
        if drain_until is None and deadline is not None and now >= deadline:
            timed_out = True
            kill(proc)
            drain_until = time.monotonic() + grace
            continue
        if drain_until is not None and (pipes == 0 or now >= drain_until):
            return timed_out
        if idle_at is not None and idle is not None and now >= idle_at:
            idle_at = None
            idle[1]()
            continue
        soon = deadline if idle_at is None else min(idle_at, deadline or idle_at)
        if pipes == 0:  # the pipes closed, the process runs on: wait for it alone
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(None if soon is None else max(0.0, soon - now))
            continue
        wait = drain_until - now if drain_until is not None else None
        if wait is None and soon is not None:
            wait = max(0.0, soon - now)
        if drain_until is None and not watched:
            wait = _POLL_SECONDS if wait is None else min(wait, _POLL_SECONDS)
        for key, _ in sel.select(wait):
            if key.data is None:  # the process exited (its pidfd): poll() reaps it above
                sel.unregister(key.fd)
                continue
            if isinstance(key.data, _Feeder):
                if key.data.write():
                    sel.unregister(key.fd)
                    key.data.close()
                continue
            reader: StreamReader = key.data
            chunk = os.read(key.fd, BLOCK)
            if chunk:
                reader.feed(chunk)
            else:
                sel.unregister(key.fd)
                reader.end()
                pipes -= 1


def _follow_threads(
    proc: subprocess.Popen[bytes],
    readers: list[StreamReader],
    timeout: float | None,
    grace: float,
    kill: Callable[[subprocess.Popen[bytes]], None],
    stdin: bytes | None = None,
) -> bool:  # pragma: no cover - Windows only
    """:func:`follow` with one thread per pipe (Windows, where pipes cannot be selected)."""
    lock = threading.Lock()
    if stdin is not None and proc.stdin is not None:
        with contextlib.suppress(OSError):
            proc.stdin.write(stdin)
        with contextlib.suppress(OSError):
            proc.stdin.close()

    def pump(reader: StreamReader) -> None:
        for chunk in iter(lambda: os.read(reader.fd, BLOCK), b""):
            with lock:
                reader.feed(chunk)

    threads = [threading.Thread(target=pump, args=(r,), daemon=True) for r in readers]
    for thread in threads:
        thread.start()
    timed_out = False
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        kill(proc)
    for thread in threads:
        thread.join(grace)
    with lock:
        for reader in readers:
            reader.end()
    return timed_out
