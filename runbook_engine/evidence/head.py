"""A journal's anchor: the head file beside it, or another keeper (the checkpoint store).

See :mod:`runbook_engine.evidence.journal` for what an anchor proves.  The head file
``<journal>.head`` holds the canonical JSON ``{"hash": ..., "seq": n}`` of a record the
journal must hold.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Protocol


def head_path(path: Path) -> Path:
    """Return the head (anchor) file of journal ``path``: ``<path>.head``."""
    return Path(path).with_name(Path(path).name + ".head")


class JournalAnchor(Protocol):
    """Where a journal keeps its anchor besides (or instead of) its head file."""

    def expected(self) -> tuple[int, str] | None:
        """The anchor ``(seq, hash)`` kept elsewhere than the head file, or ``None``."""
        ...

    def write(self, seq: int, digest: str) -> None:
        """Record that the journal's last record, written and ``fsync``'d, is ``(seq, digest)``."""
        ...


class HeadFile:
    """The default anchor: the head file, rewritten (atomically, ``fsync``'d) after
    every append."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def expected(self) -> tuple[int, str] | None:
        """Nothing but the head file (read by the journal itself)."""
        return None

    def write(self, seq: int, digest: str) -> None:
        """Replace the head file with ``(seq, digest)``."""
        write_head(self.path, seq, digest)


def write_head(path: Path, seq: int, digest: str) -> None:
    """Write the head file of journal ``path`` atomically (temporary file, ``fsync``, rename).

    Raises:
        OSError: the file cannot be written.
    """
    hp = head_path(path)
    tmp = hp.with_name(hp.name + ".tmp")
    data = (
        json.dumps({"hash": digest, "seq": seq}, sort_keys=True, separators=(",", ":")) + "\n"
    ).encode("utf-8")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, hp)


def later_anchor(
    head: tuple[int, str] | None, expected: tuple[int, str] | None
) -> tuple[int, str] | None:
    """The later of two anchors of one journal (both name records of one chain)."""
    if expected is None:
        return head
    if head is None or expected[0] >= head[0]:
        return expected
    return head


def read_head(path: Path) -> tuple[tuple[int, str] | None, str]:
    """Return ``((seq, hash), "")`` from the head file, ``(None, "")`` if absent, or an error."""
    hp = head_path(path)
    try:
        data = json.loads(hp.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, ""
    except (OSError, UnicodeDecodeError, ValueError):
        return None, f"head file {hp} is damaged"
    seq, digest = (data.get("seq"), data.get("hash")) if isinstance(data, dict) else (None, None)
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0 or not isinstance(digest, str):
        return None, f"head file {hp} is damaged"
    return (seq, digest), ""
