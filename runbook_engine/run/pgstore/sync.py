"""A run's journal and files between the PostgreSQL store and a machine's working copy.

In team mode the database holds everything a run has: the journal, one row per record
(``journal``: the canonical line as the file holds it, so a journal rebuilt from the rows
is the same bytes and verifies the same), and every file of the run folder by SHA-256
(``run_files`` naming ``blobs``).  The runner, ``confirm`` and ``evidence`` work on a
working copy of the run folder on the machine they run on (:meth:`PgStore.run_dir`): it is
filled from the database before a command reads it or takes the run's lock, and what a
command wrote goes back to the database in the transaction that acknowledges it (the
journal, with the anchor; a step's files with the transition that ends it or makes it wait
at a gate, so a worker killed later loses none of them) and when the command lets go of
the run (every file).

Records only ever go on the end of the chain: a record must have the next ``seq`` and
name the database's last hash as ``prev``, and the table refuses updates and deletes.
Files the journal vouches for (outputs, attachments, notebooks) never change once stored;
only the signature file grows.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runbook_engine.errors import EvidenceError, StateError
from runbook_engine.evidence import JOURNAL_NAME, SIGNATURES_NAME
from runbook_engine.evidence.canonical import GENESIS_HASH, canonical_json, record_hash
from runbook_engine.evidence.files import inside, sha256_file
from runbook_engine.evidence.head import write_head
from runbook_engine.evidence.safeio import write_atomic

#: Files of a run folder that are not copied as files (the journal goes by records).
_NOT_FILES = frozenset({JOURNAL_NAME, f"{JOURNAL_NAME}.head", "lock"})
#: Files that may grow after they are stored (each version starts with the one before).
_GROWING = frozenset({SIGNATURES_NAME})


@dataclass(frozen=True, slots=True)
class Pushed:
    """How far a working copy's journal has been copied: bytes of the file, last record."""

    offset: int
    seq: int
    hash: str


def db_tail(conn: Any, run_id: str) -> tuple[int, str]:
    """``(seq, hash)`` of the last record the database holds for ``run_id`` (0 and 64 zeros
    when none)."""
    row = conn.execute(
        "SELECT seq, hash FROM journal WHERE run_id=%s ORDER BY seq DESC LIMIT 1", (run_id,)
    ).fetchone()
    return (0, GENESIS_HASH) if row is None else (int(row["seq"]), str(row["hash"]))


def _checked(raw: bytes, path: Path) -> dict[str, Any]:
    """One complete journal line as a record, or :class:`EvidenceError` when it does not verify."""
    try:
        text = raw.decode("utf-8")
        rec = json.loads(text)
        good = canonical_json(rec) == text and record_hash(rec) == rec.get("hash")
    except (UnicodeDecodeError, ValueError, TypeError, AttributeError):
        good, rec = False, {}
    if not good:
        raise EvidenceError(
            f"journal {path}: a line does not verify; it is not copied to the store "
            "(`runbook evidence verify` names it)"
        )
    return rec


def push_journal(conn: Any, run_id: str, path: Path, since: Pushed | None = None) -> Pushed:
    """Copy the records of the working copy's journal the database lacks (within ``conn``'s
    transaction), and keep the database's last record as the run's anchor.

    Args:
        since: What an earlier call returned: the file is read from there on.

    Raises:
        EvidenceError: a line does not verify, or does not continue the database's chain.
    """
    seq, last = db_tail(conn, run_id)
    offset = since.offset if since is not None and since.seq == seq else 0
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            data = handle.read()
    except FileNotFoundError:
        return Pushed(0, seq, last)
    end = data.rfind(b"\n") + 1  # a torn last line waits for the journal to repair it
    rows = []
    for raw in data[:end].split(b"\n")[:-1]:
        rec = _checked(raw, path)
        if rec["seq"] <= seq:  # already stored: it must be the stored record
            stored = conn.execute(
                "SELECT hash FROM journal WHERE run_id=%s AND seq=%s", (run_id, rec["seq"])
            ).fetchone()
            if stored is None or stored["hash"] != rec["hash"]:
                raise _diverged(run_id, path, rec["seq"])
            continue
        if rec["seq"] != seq + 1 or rec["prev"] != last:
            raise _diverged(run_id, path, rec["seq"])
        rows.append((run_id, rec["seq"], rec["hash"], rec["prev"], raw.decode("utf-8")))
        seq, last = rec["seq"], rec["hash"]
    if rows:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO journal (run_id, seq, hash, prev, line) VALUES (%s, %s, %s, %s, %s)",
                rows,
            )
        set_anchor(conn, run_id, (seq, last))
    return Pushed(offset + end, seq, last)


def set_anchor(conn: Any, run_id: str, anchor: tuple[int, str]) -> None:
    """Keep ``anchor`` as the run's journal anchor unless a later one is kept."""
    conn.execute(
        "UPDATE runs SET journal_seq=%s, journal_hash=%s WHERE run_id=%s "
        "AND (journal_seq IS NULL OR journal_seq < %s)",
        (anchor[0], anchor[1], run_id, anchor[0]),
    )


def _diverged(run_id: str, path: Path, seq: int) -> StateError:
    return StateError(
        f"the working copy {path} of run {run_id} differs from the store at record {seq}; "
        "move the run folder away (it is kept, not overwritten) and try again"
    )


def pull_journal(conn: Any, run_id: str, path: Path) -> None:
    """Make the working copy's journal (and its head file) the database's, when the database
    holds more (the working copy must be a beginning of it: push first).  A working copy
    that holds more, going on from the database's last record, is left as it is (a process
    holding the run is writing it and stores it).

    Raises:
        StateError: the working copy holds a record the database does not have in its place.
    """
    seq, last = db_tail(conn, run_id)
    if seq == 0:
        return
    try:
        local = path.read_bytes()
    except FileNotFoundError:
        local = b""
    lines = local[: local.rfind(b"\n") + 1].split(b"\n")[:-1]
    if len(lines) == seq and _hash_of(lines[-1]) == last:
        return
    if len(lines) > seq:
        if _hash_of(lines[seq - 1]) == last:
            return  # it goes on from the database's last record: the run's holder writes it
        raise _diverged(run_id, path, seq + 1)
    rows = conn.execute(
        "SELECT line FROM journal WHERE run_id=%s ORDER BY seq", (run_id,)
    ).fetchall()
    data = "".join(f"{r['line']}\n" for r in rows).encode("utf-8")
    if not data.startswith(b"".join(line + b"\n" for line in lines)):
        raise _diverged(run_id, path, len(lines))
    write_atomic(path, data)
    write_head(path, seq, last)


def _hash_of(line: bytes) -> str | None:
    try:
        return str(json.loads(line).get("hash"))
    except (ValueError, AttributeError):
        return None


def _local_files(run_dir: Path) -> dict[str, Path]:
    """The files of a working copy that are stored as files, by run-folder path."""
    found: dict[str, Path] = {}
    for path in sorted(run_dir.rglob("*")) if run_dir.is_dir() else []:
        rel = path.relative_to(run_dir)
        if not path.is_file() or rel.as_posix() in _NOT_FILES:
            continue
        if any(part.startswith(".") for part in rel.parts):  # staging, temporary files
            continue
        found[rel.as_posix()] = path
    return found


#: A file's size and modification time: unchanged since it was stored when they are equal.
Stamp = tuple[int, int]


def _stamp(path: Path) -> Stamp:
    info = path.stat()
    return info.st_size, info.st_mtime_ns


def push_files(
    conn: Any,
    run_id: str,
    run_dir: Path,
    seen: dict[str, Stamp] | None = None,
    stamps: dict[str, Stamp] | None = None,
) -> int:
    """Store the working copy's files the database lacks (content-addressed); return how many.

    A stored file is never replaced, except a growing one (the signature file) by a
    longer version that starts with it.

    Args:
        seen: The stamps of files known to be stored (committed): those files are not
            read again while their stamp is the same.
        stamps: Receives the stamp of every file stored or found stored here, for the
            caller to add to ``seen`` once the transaction has committed.
    """
    local = _local_files(run_dir)
    if seen:
        local = {rel: path for rel, path in local.items() if seen.get(rel) != _stamp(path)}
    if not local:
        return 0
    rows = conn.execute("SELECT path, sha256 FROM run_files WHERE run_id=%s", (run_id,))
    stored = {r["path"]: r["sha256"] for r in rows.fetchall()}
    count = 0
    for rel, path in local.items():
        if stamps is not None:
            stamps[rel] = _stamp(path)  # before reading: a later change is read next time
        if rel in stored and rel not in _GROWING:
            continue
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if stored.get(rel) == digest:
            continue
        if rel in stored and not data.startswith(_blob(conn, stored[rel])):
            continue  # not a continuation: the stored version stays (verification judges)
        conn.execute(
            "INSERT INTO blobs (sha256, size, data) VALUES (%s, %s, %s) "
            "ON CONFLICT (sha256) DO NOTHING",
            (digest, len(data), data),
        )
        conn.execute(
            "INSERT INTO run_files (run_id, path, sha256) VALUES (%s, %s, %s) "
            "ON CONFLICT (run_id, path) DO UPDATE SET sha256=EXCLUDED.sha256",
            (run_id, rel, digest),
        )
        count += 1
    return count


def _blob(conn: Any, digest: str) -> bytes:
    row = conn.execute("SELECT data FROM blobs WHERE sha256=%s", (digest,)).fetchone()
    return bytes(row["data"]) if row else b""


def pull_files(conn: Any, run_id: str, run_dir: Path) -> int:
    """Write the stored files the working copy lacks or holds otherwise; return how many.
    A growing file (the signature file) whose working copy goes on from the stored version
    is left as it is.  Never written: a name the store keeps otherwise (the journal, its
    head, the lock file: a row naming one was not written by :func:`push_files`), a hidden
    name, a name leading out of the run folder, and a blob whose bytes are not its SHA-256
    (altered in the database; ``evidence verify`` then names the file)."""
    rows = conn.execute(
        "SELECT path, sha256 FROM run_files WHERE run_id=%s ORDER BY path", (run_id,)
    ).fetchall()
    root = run_dir.resolve() if run_dir.exists() else None
    count = 0
    for row in rows:
        if root is None:
            run_dir.mkdir(parents=True, exist_ok=True)
            root = run_dir.resolve()
        rel = str(row["path"])
        if rel in _NOT_FILES or any(part.startswith(".") for part in rel.split("/")):
            continue
        target = inside(root, rel)
        if target is None:
            continue  # a name leading out of the run folder is never written
        if target.is_file() and sha256_file(target) == row["sha256"]:
            continue
        data = _blob(conn, row["sha256"])
        if hashlib.sha256(data).hexdigest() != row["sha256"]:
            continue
        if row["path"] in _GROWING and target.is_file() and target.read_bytes().startswith(data):
            continue  # the working copy's goes on from the stored one (the holder writes it)
        write_atomic(target, data)
        count += 1
    return count
