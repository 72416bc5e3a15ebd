"""Bounded capture of a command's output: head and tail kept, everything digested.

A :class:`Capture` takes one output stream in blocks as it arrives.  It keeps the first
``limit // 2`` bytes and the last ``limit // 2`` bytes, counts every byte and computes
the SHA-256 of the whole stream incrementally, so memory stays bounded whatever the
command prints.  :meth:`Capture.text` is what is kept, with a marker line saying what
was dropped in the middle.
"""

from __future__ import annotations

import hashlib
from typing import Any


class Capture:
    """Head and tail of one output stream, with the digest and size of all of it.

    Args:
        limit: Bytes kept at most (half head, half tail); at least 2.
    """

    def __init__(self, limit: int) -> None:
        limit = max(2, int(limit))
        self._head_limit = limit // 2
        self._tail_limit = limit - self._head_limit
        self._head = bytearray()
        self._tail = bytearray()
        self._digest = hashlib.sha256()
        self.total = 0

    def feed(self, data: bytes) -> None:
        """Add the next ``data`` of the stream."""
        if not data:
            return
        self._digest.update(data)
        self.total += len(data)
        room = self._head_limit - len(self._head)
        if room > 0:
            self._head += data[:room]
            data = data[room:]
        if not data:
            return
        if len(data) >= self._tail_limit:
            self._tail[:] = data[-self._tail_limit :]
        else:
            self._tail += data
            excess = len(self._tail) - self._tail_limit
            if excess > 0:
                del self._tail[:excess]

    @property
    def dropped(self) -> int:
        """Bytes of the middle of the stream that were not kept."""
        return self.total - len(self._head) - len(self._tail)

    @property
    def sha256(self) -> str:
        """SHA-256 (hex) of every byte fed so far."""
        return self._digest.hexdigest()

    def text(self) -> str:
        """What was kept, decoded as UTF-8 (errors replaced), with a marker for the gap."""
        if not self.dropped:
            return (bytes(self._head) + bytes(self._tail)).decode("utf-8", errors="replace")
        marker = (
            f"\n[runbook: {self.dropped} bytes of output dropped here; kept the first "
            f"{len(self._head)} and the last {len(self._tail)} of {self.total} bytes "
            f"(sha256 of all of it: {self.sha256})]\n"
        )
        head = bytes(self._head).decode("utf-8", errors="replace")
        return head + marker + bytes(self._tail).decode("utf-8", errors="replace")

    def info(self) -> dict[str, Any]:
        """Size, digest and dropped bytes of the whole stream (for the journal)."""
        return {"bytes": self.total, "sha256": self.sha256, "dropped": self.dropped}
