"""Signatures of the journal's chain head, kept beside the journal in ``journal.sig.jsonl``.

The runner signs the head (the hash of the record just written) when a run
starts, at every gate (a gate passed, skipped or aborted, an approval passed,
rejected or bypassed), when it pauses, resumes or is interrupted, and at the end
of the run.  Each signature is one line of canonical JSON (the journal's form)::

    {"event": "gate-passed", "head": "<hash of journal record seq>", "key_id": "<sha256>",
     "prev": "<sha256 of the previous signature line>", "run_id": "...", "seq": 12,
     "sig_seq": 3, "signature": "<base64 Ed25519>", "time": "...Z"}

``signature`` is Ed25519 (RFC 8032) over :data:`CONTEXT` followed by the canonical
JSON of every other field, so a signature names its run, its journal sequence
number and head hash, and its place in the signature file (``sig_seq`` counts
from 1, ``prev`` chains the lines like the journal).  A signature copied from
another run, an edited, deleted, reordered or cut line, or a journal rewritten
under a valid signature all fail :func:`runbook_engine.evidence.verify.verify_run`.

The run's public key is named in the journal's ``run-started`` record (key id and
PEM) and copied to ``signing.pub`` in the run folder.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from runbook_engine.errors import EvidenceError, StateError
from runbook_engine.evidence import PUBLIC_KEY_NAME, SIGNATURES_NAME
from runbook_engine.evidence.journal import GENESIS_HASH, canonical_json
from runbook_engine.evidence.keys import find_signing_key, key_id, load_private_key, public_pem

try:  # POSIX only
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

#: Domain separation: the bytes signed are this prefix plus the canonical JSON.
CONTEXT = b"runbook-engine journal signature v1\n"
#: Journal events after which the runner signs the head.
SIGNED_EVENTS = frozenset(
    {
        "run-started",
        "gate-passed",
        "run-aborted",
        "approval-passed",
        "approval-rejected",
        "approval-bypassed",
        "run-paused",
        "run-resumed",
        "run-interrupted",
        "run-finished",
    }
)


def is_signing_point(record: dict[str, Any]) -> bool:
    """True for a journal record the runner signs right after writing it (gates and run ends)."""
    event = record.get("event")
    return event in SIGNED_EVENTS or (event == "step-skipped" and "gate" in record)


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
        self._count, self._prev = 0, GENESIS_HASH
        if self.path.exists():
            self._count, self._prev = _tail(self.path)

    def describe(self) -> dict[str, Any]:
        """Fields for the ``run-started`` record: algorithm, key id and public key PEM."""
        return {
            "algorithm": "Ed25519",
            "key_id": self.key_id,
            "public_key": public_pem(self._key.public_key()).decode("ascii"),
        }

    def export_public_key(self) -> None:
        """Write the public key to ``signing.pub`` in the run folder."""
        (self.path.parent / PUBLIC_KEY_NAME).write_bytes(public_pem(self._key.public_key()))

    def sign(self, record: dict[str, Any]) -> dict[str, Any]:
        """Sign the chain head ``record`` (as returned by ``Journal.append``) and append it.

        Returns:
            The signature record written.

        Raises:
            EvidenceError: the file cannot be written.
        """
        entry: dict[str, Any] = {
            "event": record["event"],
            "head": record["hash"],
            "key_id": self.key_id,
            "prev": self._prev,
            "run_id": self.run_id,
            "seq": record["seq"],
            "sig_seq": self._count + 1,
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        }
        entry["signature"] = base64.b64encode(self._key.sign(signed_bytes(entry))).decode("ascii")
        line = canonical_json(entry).encode("utf-8")
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                if fcntl is not None:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                os.write(fd, line + b"\n")
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise EvidenceError(f"cannot write signatures {self.path}: {exc}") from exc
        self._count, self._prev = entry["sig_seq"], line_hash(line)
        return entry


def _tail(path: Path) -> tuple[int, str]:
    """Return ``(sig_seq, line hash)`` of the last line of an existing signature file."""
    lines = path.read_bytes().split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    if not lines:
        return 0, GENESIS_HASH
    try:
        last = json.loads(lines[-1])
        count = int(last["sig_seq"])
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
    return count, line_hash(lines[-1])


def signer_for_run(
    state_dir: Path, run_dir: Path, run_id: str, started: dict[str, Any] | None
) -> Signer | None:
    """Return the signer for a run, or ``None`` for an unsigned run.

    Args:
        state_dir: The state directory (its ``keys/`` folder holds the default key).
        run_dir: The run folder.
        run_id: The run.
        started: The journal's ``run-started`` record for an existing run, ``None``
            for a new run (which is signed when a key is found).

    Raises:
        StateError: an existing signed run's key is not available, or a different
            key is configured (a run is signed by one key from start to end).
    """
    if started is not None and not started.get("signing"):
        return None
    path = find_signing_key(state_dir)
    if path is None:
        if started is None:
            return None
        raise StateError(
            f"run {run_id} is signed with key {started['signing']['key_id'][:16]}, "
            "which is not available: set RUNBOOK_SIGNING_KEY or restore "
            f"{state_dir / 'keys' / 'signing.key'}"
        )
    signer = Signer(load_private_key(path), run_dir, run_id)
    if started is not None and signer.key_id != started["signing"].get("key_id"):
        raise StateError(
            f"run {run_id} is signed with key {started['signing']['key_id'][:16]}, "
            f"but {path} is key {signer.key_id[:16]}; use the run's own key"
        )
    return signer


def first_record(journal_path: Path) -> dict[str, Any] | None:
    """Return the journal's first record (``run-started``) without checking the chain, or ``None``.

    Raises:
        StateError: the first line is not JSON.
    """
    try:
        with open(journal_path, "rb") as handle:
            line = handle.readline()
    except FileNotFoundError:
        return None
    if not line.strip():
        return None
    try:
        data = json.loads(line)
    except ValueError:
        raise StateError(f"journal {journal_path}: line 1 is not JSON") from None
    return data if isinstance(data, dict) else None
