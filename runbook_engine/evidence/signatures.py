"""Signatures of the journal's chain head, kept beside the journal in ``journal.sig.jsonl``:
their form, the :class:`Signer` that appends them, and the check of one signature
(:func:`verify_signature`).  A run's journal signs through them
(:class:`~runbook_engine.evidence.signing.SignedJournal`).

Each signature is one line of canonical JSON (the journal's form)::

    {"event": "gate-passed", "head": "<hash of journal record seq>", "key_id": "<sha256>",
     "prev": "<sha256 of the previous signature line>", "run_id": "...", "seq": 12,
     "sig_seq": 3, "signature": "<base64 Ed25519>", "time": "...Z"}

``signature`` is Ed25519 (RFC 8032, section 5.1) over :data:`CONTEXT` followed by
the canonical JSON of every other field, so a signature names its run, its journal
sequence number and head hash, and its place in the signature file (``sig_seq``
counts from 1, ``prev`` chains the lines like the journal).  A signature covers
its record and, through the hash chain, every record before it.  A signature
copied from another run, an edited, deleted, reordered or cut line, or a journal
rewritten under a valid signature all fail
:func:`runbook_engine.evidence.verify.verify_run`.

Several processes may write one run's journal (``resume``, ``confirm``,
``approve``): the signer takes an exclusive ``flock`` on the signature file and
re-reads its last line whenever the file changed since it last wrote, and it
skips a record a later signature already covers, so signatures stay in order.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from runbook_engine.errors import EvidenceError, storage_error
from runbook_engine.evidence import PUBLIC_KEY_NAME, SIGNATURES_NAME
from runbook_engine.evidence.canonical import GENESIS_HASH, canonical_json
from runbook_engine.evidence.keys import key_id, public_pem
from runbook_engine.evidence.safeio import utc_now

try:  # POSIX only
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

#: Domain separation: the bytes signed are this prefix plus the canonical JSON.
CONTEXT = b"runbook-engine journal signature v1\n"
#: ``run-started.signing.covers`` of runs whose every record is signed (older runs
#: signed only :data:`~runbook_engine.evidence.signing.SIGNED_EVENTS` and were never sealed).
EVERY_RECORD = "every-record"


def signed_bytes(record: dict[str, Any]) -> bytes:
    """Return the bytes an Ed25519 signature of ``record`` covers (``signature`` left out)."""
    body = {k: v for k, v in record.items() if k != "signature"}
    return CONTEXT + canonical_json(body).encode("utf-8")


def line_hash(line: bytes) -> str:
    """Return the SHA-256 (hex) of one signature line, newline excluded (the next ``prev``)."""
    return hashlib.sha256(line).hexdigest()


def verify_signature(public_key: Ed25519PublicKey, record: dict[str, Any]) -> bool:
    """True when ``record["signature"]`` is a valid signature of ``record`` by ``public_key``."""
    from cryptography.exceptions import InvalidSignature

    try:
        raw = base64.b64decode(str(record.get("signature", "")), validate=True)
        public_key.verify(raw, signed_bytes(record))
    except (InvalidSignature, ValueError):
        return False
    return True


class Signer:
    """Appends signatures of one run's chain head to ``journal.sig.jsonl``.

    Args:
        key: The private key.
        run_dir: The run folder (``journal.sig.jsonl`` and ``signing.pub`` go there).
        run_id: The run (named in every signature).

    Raises:
        EvidenceError: the existing signature file is damaged; nothing is appended.
    """

    def __init__(self, key: Ed25519PrivateKey, run_dir: Path, run_id: str) -> None:
        self._key = key
        self.run_id = run_id
        self.path = run_dir / SIGNATURES_NAME
        self.key_id = key_id(key.public_key())
        self._count, self._prev, self._last_seq, self._size = 0, GENESIS_HASH, 0, 0
        if self.path.exists():
            data = self.path.read_bytes()
            self._count, self._prev, self._last_seq = _tail(self.path, data)
            self._size = len(data)
        self._unsynced = False  # a line written here is not fsync'd yet

    def describe(self) -> dict[str, Any]:
        """Fields for the ``run-started`` record: algorithm, key id, public key PEM, coverage."""
        return {
            "algorithm": "Ed25519",
            "covers": EVERY_RECORD,
            "key_id": self.key_id,
            "public_key": public_pem(self._key.public_key()).decode("ascii"),
        }

    @property
    def last_seq(self) -> int:
        """The journal line the last signature (as last read or written) signs; 0 for none."""
        return self._last_seq

    def export_public_key(self) -> None:
        """Write the public key to ``signing.pub`` in the run folder."""
        (self.path.parent / PUBLIC_KEY_NAME).write_bytes(public_pem(self._key.public_key()))

    def sign(self, record: dict[str, Any], *, sync: bool = True) -> dict[str, Any] | None:
        """Sign the chain head ``record`` (as returned by ``Journal.append``) and append it.

        The signature file is locked and, when another process wrote to it since,
        its last line is read again first.  With ``sync`` false the line is written but
        not ``fsync``'d: it reaches the disk with the next synced signature (which
        covers this record through the chain anyway) or the system's write-back.

        Returns:
            The signature record written, or ``None`` when a signature of a later
            record (which covers this one through the chain) is there already.

        Raises:
            StorageError: (exit 74) a full, failing or read-only disk; the file keeps
                whole lines only.
            EvidenceError: the file cannot be written otherwise, or it is damaged.
        """
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                if fcntl is not None:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                size = os.fstat(fd).st_size
                if size != self._size:
                    data = os.pread(fd, size, 0)
                    self._count, self._prev, self._last_seq = _tail(self.path, data)
                    self._size = size
                if record["seq"] <= self._last_seq:
                    return None
                entry = self._entry(record)
                line = canonical_json(entry).encode("utf-8") + b"\n"
                try:
                    if os.write(fd, line) != len(line):
                        raise OSError(errno.ENOSPC, "short write (disk full?)")
                    if sync:
                        os.fsync(fd)
                    self._unsynced = not sync
                except OSError:
                    with contextlib.suppress(OSError):
                        os.ftruncate(fd, size)  # never leave half a signature line
                    raise
            finally:
                os.close(fd)
        except OSError as exc:
            raise storage_error(f"signatures {self.path}", exc) from exc
        self._count, self._prev, self._last_seq = (
            entry["sig_seq"],
            line_hash(line[:-1]),
            entry["seq"],
        )
        self._size = size + len(line)
        return entry

    def flush(self) -> None:
        """``fsync`` the signature lines written here without it (a no-op when none).

        Raises:
            StorageError: the file cannot be synced (exit 74).
        """
        if not self._unsynced:
            return
        try:
            fd = os.open(self.path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise storage_error(f"signatures {self.path}", exc) from exc
        self._unsynced = False

    def _entry(self, record: dict[str, Any]) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "event": record["event"],
            "head": record["hash"],
            "key_id": self.key_id,
            "prev": self._prev,
            "run_id": self.run_id,
            "seq": record["seq"],
            "sig_seq": self._count + 1,
            "time": utc_now(),
        }
        entry["signature"] = base64.b64encode(self._key.sign(signed_bytes(entry))).decode("ascii")
        return entry


def _tail(path: Path, data: bytes) -> tuple[int, str, int]:
    """Return ``(sig_seq, line hash, journal seq)`` of the last line of a signature file."""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    if not lines:
        return 0, GENESIS_HASH, 0
    try:
        last = json.loads(lines[-1])
        count, seq = int(last["sig_seq"]), int(last["seq"])
    except (ValueError, KeyError, TypeError):
        raise EvidenceError(
            f"signature file {path} is damaged (last line); refusing to append "
            "(`runbook evidence verify` shows where)"
        ) from None
    if count != len(lines):
        raise EvidenceError(
            f"signature file {path} is damaged (line {len(lines)} has sig_seq "
            f"{count}); refusing to append"
        )
    return count, line_hash(lines[-1]), seq
