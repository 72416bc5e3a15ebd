"""The evidence journal: append-only, hash-chained JSON lines (DESIGN.md §5).

Each event is one line holding the canonical JSON of a record::

    {"event": ..., "hash": ..., "prev": ..., "seq": n, "time": "...Z", ...fields}

``seq`` counts from 1; ``time`` is UTC ISO-8601 with microseconds and ``Z``;
``prev`` is the previous record's ``hash`` (64 zeros for the first record);
``hash`` is the SHA-256 (hex) of the canonical JSON of the record without
``hash``.  Canonical JSON is ``json.dumps(sort_keys=True, separators=(",", ":"),
ensure_ascii=False)`` encoded as UTF-8, so any edited byte, deleted, inserted or
moved line breaks either a hash or the chain.

A hash chain cannot show that whole records were cut from its end, so every
journal has an anchor: ``(seq, hash)`` of a record it must hold.  By default
(:class:`HeadFile`) it is the *head file* ``<journal>.head`` beside it, holding the
canonical JSON ``{"hash": ..., "seq": n}`` of the last record, written (atomically)
before the first line and after every append.  A run's journal keeps its anchor in
the checkpoint store instead, in the transaction that acknowledges the record (see
:class:`JournalAnchor` and ``runbook_engine.run.anchor``), and writes the head file
only when the run stops.  When both exist the later one counts.  A journal longer
than its anchor (a crash between the two writes) is accepted, a shorter one or a
different record at the anchor's ``seq`` is not.

Secrets are redacted (:class:`~runbook_engine.evidence.redact.Redactor`) before a record
is hashed or written.  Writers append with ``O_APPEND``, ``fsync`` every line
and hold an exclusive ``flock`` while appending (POSIX; on Windows one writer
per journal is assumed).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runbook_engine.errors import EvidenceError, storage_error
from runbook_engine.evidence.canonical import GENESIS_HASH, canonical_json, record_hash
from runbook_engine.evidence.head import (
    HeadFile,
    JournalAnchor,
    head_path,
    later_anchor,
    read_head,
    write_head,
)
from runbook_engine.evidence.redact import Redactor
from runbook_engine.evidence.safeio import fsync_dir, utc_now, write_all
from runbook_engine.evidence.shield import shielded

try:  # POSIX only
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

#: Keys the journal sets itself; event fields may not use them.
RESERVED_KEYS = frozenset({"seq", "time", "event", "prev", "hash"})
_REQUIRED_TYPES: tuple[tuple[str, type], ...] = (
    ("seq", int),
    ("time", str),
    ("event", str),
    ("prev", str),
    ("hash", str),
)


@dataclass(frozen=True, slots=True)
class JournalCheck:
    """The result of :func:`verify_journal`.

    Attributes:
        ok: True when every line and the head file check out.
        events: Number of good records before the first bad line (all of them when ok).
        first_bad_line: 1-based line of the first problem; ``None`` when ok or when
            the problem is not about a line (missing file, damaged head file).
        message: What is wrong at which line, or a summary when ok.
        head_hash: Hash of the last good record (``None`` when there is none).
    """

    ok: bool
    events: int
    first_bad_line: int | None
    message: str
    head_hash: str | None


@dataclass(frozen=True, slots=True)
class _Scan:
    records: list[dict[str, Any]]
    check: JournalCheck
    size: int  # bytes of the file when read


def _check_line(raw: bytes, n: int, prev_hash: str) -> tuple[dict[str, Any] | None, str]:
    """Check line ``n`` (without its newline); return ``(record, "")`` or ``(None, why)``."""
    if not raw:
        return None, f"line {n} is empty"
    try:
        text = raw.decode("utf-8")
        rec = json.loads(text)
    except (UnicodeDecodeError, ValueError):
        return None, f"line {n} is not valid JSON (edited or cut)"
    if not isinstance(rec, dict):
        return None, f"line {n} is not a JSON object"
    for key, typ in _REQUIRED_TYPES:
        if not isinstance(rec.get(key), typ) or isinstance(rec.get(key), bool):
            return None, f"line {n} lacks a valid {key!r} field"
    try:
        canonical = canonical_json(rec)
    except ValueError:  # NaN or Infinity
        canonical = None
    if canonical != text:
        return None, f"line {n} is not in canonical form (edited)"
    if record_hash(rec) != rec["hash"]:
        return None, f"line {n}: hash does not match the record's content (edited)"
    if rec["seq"] != n:
        return None, (
            f"line {n} has seq {rec['seq']}, expected {n} (a line was deleted, inserted or moved)"
        )
    if rec["prev"] != prev_hash:
        if n == 1:
            return None, "line 1: prev is not 64 zeros (the start of the journal is missing)"
        return None, (
            f"line {n}: prev does not match the hash of line {n - 1} (a line was deleted or moved)"
        )
    return rec, ""


def _scan_lines(data: bytes) -> tuple[list[dict[str, Any]], int | None, str]:
    """Check every line of ``data``; return good records, first bad line and why."""
    lines = data.split(b"\n")
    complete = data.endswith(b"\n") or not data
    if complete:
        lines.pop()  # the empty text after the final newline
    records: list[dict[str, Any]] = []
    prev = GENESIS_HASH
    for n, raw in enumerate(lines, start=1):
        if n == len(lines) and not complete:
            return records, n, f"line {n} is truncated (no final newline: the file was cut)"
        rec, why = _check_line(raw, n, prev)
        if rec is None:
            return records, n, why
        records.append(rec)
        prev = rec["hash"]
    return records, None, ""


def _check_anchor(records: list[dict[str, Any]], anchor: tuple[int, str]) -> tuple[int | None, str]:
    seq, digest = anchor
    if seq > len(records):
        return len(records) + 1, (
            f"line {len(records) + 1} is missing: the head says the "
            f"journal holds {seq} records, it holds {len(records)} "
            "(the end was cut off)"
        )
    if seq and records[seq - 1]["hash"] != digest:
        return seq, f"line {seq} is not the record the head file names (rewritten)"
    return None, ""


def _scan(
    path: Path, expected_head: tuple[int, str] | None = None, require_head: bool = True
) -> _Scan:
    """Read and check the journal at ``path`` and its anchor (the later of the head file
    and ``expected_head``)."""
    anchor, problem = read_head(path)
    if expected_head is not None:
        anchor, problem = later_anchor(anchor, expected_head), ""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        data = None
        if anchor and anchor[0] > 0:
            problem = f"journal {path} is missing but its head names record {anchor[0]}"
        elif not problem:
            problem = f"no journal at {path}"
    except OSError as exc:
        return _Scan([], JournalCheck(False, 0, None, f"cannot read {path}: {exc}", None), 0)
    records, bad, why = _scan_lines(data or b"")
    if anchor is not None:
        abad, awhy = _check_anchor(records, anchor)
        if abad is not None and (bad is None or abad < bad):
            bad, why = abad, awhy
    if bad is None and not problem and anchor is None and records and require_head:
        problem = (
            f"head file {head_path(path)} is missing: cannot prove that no records "
            "were cut from the end"
        )
    message = why or problem or f"{len(records)} events, chain intact"
    check = JournalCheck(
        ok=bad is None and not problem,
        events=len(records),
        first_bad_line=bad,
        message=message,
        head_hash=records[-1]["hash"] if records else None,
    )
    return _Scan(records, check, len(data or b""))


def verify_journal(
    path: Path,
    *,
    expected_head: tuple[int, str] | None = None,
    require_head: bool = True,
) -> JournalCheck:
    """Check a journal for any edit, deletion, reordering or truncation.

    Args:
        path: The journal file.
        expected_head: ``(seq, hash)`` of a record the journal must hold (the anchor
            kept in the checkpoint store); the later of it and the head file counts,
            and a damaged or missing head file is then not a problem.
        require_head: When false, a missing head file is accepted (whole records
            cut from the end then go unnoticed).

    Returns:
        A :class:`JournalCheck`; never raises for a damaged or missing file.
    """
    return _scan(Path(path), expected_head, require_head).check


def check_and_read(
    path: Path, expected_head: tuple[int, str] | None = None
) -> tuple[JournalCheck, list[dict[str, Any]]]:
    """Check a journal and return its records from one read of the file.

    Args:
        path: The journal file.
        expected_head: ``(seq, hash)`` the journal must hold besides its head file
            (the anchor kept in the checkpoint store), as for :func:`verify_journal`.

    Returns:
        ``(check, records)``: the check of :func:`verify_journal` and the good
        records before the first bad line (all of them when ``check.ok``).
    """
    scan = _scan(Path(path), expected_head)
    return scan.check, scan.records


def read_journal(path: Path, *, verify: bool = True) -> list[dict[str, Any]]:
    """Return the records of a journal, in order.

    Args:
        path: The journal file.
        verify: Check the journal first (as :func:`verify_journal`).  When false,
            return the good records before the first bad line.

    Raises:
        EvidenceError: ``verify`` is true and the journal is missing or damaged.
    """
    scan = _scan(Path(path))
    if verify and not scan.check.ok:
        raise EvidenceError(f"journal {path}: {scan.check.message}")
    return scan.records


class Journal:
    """Appends events to a hash-chained journal file.

    Opening an existing journal reads and checks it (and its head file) to find
    the next ``seq`` and the last hash.

    Args:
        path: The journal file; it and its parent directories are created on the
            first append.
        redactor: Applied to every event's fields before hashing and writing.
        anchor: Where the anchor goes after each synced append (default: the head file).

    Raises:
        EvidenceError: the existing journal is damaged (the message names the first
            bad line); nothing can be appended to it.
    """

    def __init__(
        self, path: Path, redactor: Redactor | None = None, anchor: JournalAnchor | None = None
    ) -> None:
        self.path = Path(path)
        self._anchor: JournalAnchor = anchor if anchor is not None else HeadFile(self.path)
        self._redactor = redactor if redactor is not None else Redactor.empty()
        self._seq, self._hash, self._size = 0, GENESIS_HASH, 0
        self._repaired: dict[str, Any] = {}
        #: Called with each record once it is written (notifications); they must not raise.
        self.listeners: list[Callable[[dict[str, Any]], None]] = []
        self._load()

    @property
    def head(self) -> tuple[int, str]:
        """``(seq, hash)`` of the last record; ``(0, 64 zeros)`` for an empty journal."""
        return self._seq, self._hash

    def _load(self) -> None:
        if not self.path.exists():
            anchor, problem = read_head(self.path)
            anchor = later_anchor(anchor, self._anchor.expected())
            if problem or (anchor is not None and anchor[0] > 0):
                raise EvidenceError(
                    f"journal {self.path} is missing or its head file is damaged; "
                    "refusing to append"
                )
            return
        scan = _scan(self.path, self._anchor.expected())
        if not scan.check.ok and self._repair_torn_tail(scan):
            scan = _scan(self.path, self._anchor.expected())
            self._adopt(scan)
            self.append("journal-repaired", **self._repaired)
            return
        if not scan.check.ok:
            where = f"line {scan.check.first_bad_line}: " if scan.check.first_bad_line else ""
            raise EvidenceError(
                f"journal {self.path} is damaged ({where}{scan.check.message}); refusing to append"
            )
        self._adopt(scan)

    def _repair_torn_tail(self, scan: _Scan) -> bool:
        """Cut a torn last line that was never acknowledged; True when it was cut.

        A line is torn when the writer stopped inside it (a crash, a full disk): it has no
        final newline, or is not even UTF-8 JSON.  It was never acknowledged when no
        anchor covers it (the head file names an earlier record).  A whole line that
        parses but does not verify is an edit, never repaired.
        """
        bad = scan.check.first_bad_line
        if bad is None or bad != len(scan.records) + 1:
            return False
        data = self.path.read_bytes()
        start = sum(len(canonical_json(r).encode("utf-8")) + 1 for r in scan.records)
        tail = data[start:]
        if b"\n" in tail[:-1]:
            return False  # more than one line after the good records
        torn = not tail.endswith(b"\n")
        if not torn:
            try:
                json.loads(tail.decode("utf-8"))
                return False  # a whole JSON line that fails its checks: an edit
            except (UnicodeDecodeError, ValueError):
                pass
        anchor, problem = read_head(self.path)
        expected = self._anchor.expected()
        if expected is not None:
            anchor, problem = later_anchor(anchor, expected), ""
        good = len(scan.records)
        if problem or (anchor is not None and anchor[0] > good):
            return False
        if anchor is not None and anchor[0] and scan.records[anchor[0] - 1]["hash"] != anchor[1]:
            return False
        with open(self.path, "r+b") as fh:
            fh.truncate(start)
            fh.flush()
            os.fsync(fh.fileno())
        self._repaired = {
            "line": bad,
            "dropped_bytes": len(tail),
            "dropped_sha256": hashlib.sha256(tail).hexdigest(),
            "reason": "torn last line (the writer stopped inside it); it was never "
            "acknowledged, so it was cut",
        }
        return True

    def _adopt(self, scan: _Scan) -> None:
        if scan.records:
            self._seq, self._hash = scan.records[-1]["seq"], scan.records[-1]["hash"]
        self._size = scan.size

    def _resync(self) -> None:
        """Another writer appended since we last looked: re-read and check the chain."""
        scan = _scan(self.path, self._anchor.expected())
        mine = self._seq
        if not scan.check.ok or (mine and scan.records[mine - 1]["hash"] != self._hash):
            raise EvidenceError(
                f"journal {self.path} changed under this writer ({scan.check.message}); "
                "refusing to append"
            )
        self._adopt(scan)

    @contextmanager
    def _open_locked(self) -> Iterator[int]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.path.exists()
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0)
        fd = os.open(self.path, flags, 0o644)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            if new:
                fsync_dir(self.path.parent)
            yield fd
        finally:
            os.close(fd)  # closing releases the lock

    def _build(self, event: str, fields: dict[str, Any]) -> dict[str, Any]:
        clash = RESERVED_KEYS & fields.keys()
        if clash:
            raise ValueError(f"event fields may not use reserved keys: {sorted(clash)}")
        record = {
            "seq": self._seq + 1,
            "time": utc_now(),
            "event": event,
            **self._redactor.redact_obj(fields),
            "prev": self._hash,
        }
        try:  # normalise (paths, dates -> str) so the returned record equals what is read back
            record = json.loads(json.dumps(record, default=str, allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise EvidenceError(f"event {event!r} cannot be written as JSON: {exc}") from exc
        record["hash"] = record_hash(record)
        return record

    def sync(self) -> None:
        """``fsync`` the records appended without it and move the anchor to the last one.

        Raises:
            StorageError: (exit 74) the file cannot be synced.
        """
        if self._seq == 0:
            return
        try:
            fd = os.open(self.path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise storage_error(f"journal {self.path}", exc) from exc
        self._anchor.write(self._seq, self._hash)

    def append(self, event: str, **fields: Any) -> dict[str, Any]:
        """Append one event and make it durable (``fsync``) before returning.

        Args:
            event: Event name (``run-started``, ``step-finished`` ...).
            **fields: JSON-able event data; secrets are redacted; values JSON cannot
                hold natively (paths, dates) are written as strings.

        Returns:
            The record as written, ``hash`` included.

        Raises:
            ValueError: a field uses a reserved key (seq, time, event, prev, hash).
            EvidenceError: the journal changed under this writer, a field cannot be
                written as JSON, or the file cannot be written.
        """
        return self.append_record(event, fields)

    def append_record(
        self, event: str, fields: dict[str, Any], *, sync: bool = True
    ) -> dict[str, Any]:
        """:meth:`append` (``fields`` as its keyword arguments), the ``fsync`` optional: an
        unsynced line (a kill of this process loses nothing) reaches the disk with the next
        synced append or the write-back (a power loss may cut it, and a torn last line is
        repaired on the next open); the anchor stays at the last synced record."""
        try:
            with shielded(), self._open_locked() as fd:
                size = os.fstat(fd).st_size
                if size != self._size:
                    self._resync()
                if size == 0 and not head_path(self.path).exists():
                    write_head(self.path, 0, GENESIS_HASH)
                record = self._build(event, fields)
                data = (canonical_json(record) + "\n").encode("utf-8")
                try:
                    write_all(fd, data)
                    if sync:
                        os.fsync(fd)
                except OSError:
                    with suppress(OSError):  # never leave half a line behind
                        os.ftruncate(fd, size)
                        os.fsync(fd)
                    raise
                self._seq, self._hash = record["seq"], record["hash"]
                self._size = size + len(data)
                if sync:
                    self._anchor.write(record["seq"], record["hash"])
        except OSError as exc:
            raise storage_error(f"journal {self.path}", exc) from exc
        for listen in self.listeners:
            listen(record)
        return record
