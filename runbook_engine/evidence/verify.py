"""Verify a run's evidence: the journal's chain, its signatures, attachments, outputs, notebooks.

:func:`verify_run` checks a run folder (or an unpacked bundle) and returns an
:class:`EvidenceCheck` whose first problem names the file and the first bad
line: an edited, deleted, inserted, reordered or cut journal line (the chain,
:mod:`runbook_engine.evidence.journal`); a signature line edited, deleted, reordered, cut
or taken from another run (:mod:`.signing`); a gate or run end that no signature
covers; a file whose SHA-256 differs from the journal event that names it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runbook_engine.errors import EvidenceError
from runbook_engine.evidence import (
    ATTACHMENTS_DIR,
    JOURNAL_NAME,
    NOTEBOOKS_DIR,
    PUBLIC_KEY_NAME,
    SIGNATURES_NAME,
)
from runbook_engine.evidence.journal import (
    GENESIS_HASH,
    canonical_json,
    read_journal,
    verify_journal,
)
from runbook_engine.evidence.keys import key_id, load_public_key
from runbook_engine.evidence.signing import is_signing_point, line_hash, verify_signature

_SIG_FIELDS = (
    ("event", str),
    ("head", str),
    ("key_id", str),
    ("prev", str),
    ("run_id", str),
    ("seq", int),
    ("sig_seq", int),
    ("signature", str),
    ("time", str),
)


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem: the file (relative to the run folder), the 1-based line, what is wrong."""

    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file} line {self.line}" if self.line else self.file
        return f"{where}: {self.message}"


@dataclass
class EvidenceCheck:
    """The outcome of :func:`verify_run`; ``problems[0]`` is the first bad line."""

    run_id: str | None = None
    events: int = 0
    head: str | None = None
    signed: bool = False
    key_id: str | None = None
    signatures: int = 0
    unsigned_tail: int = 0
    files_checked: int = 0
    problems: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing is wrong."""
        return not self.problems

    def add(self, file: str, line: int | None, message: str) -> None:
        """Record a problem."""
        self.problems.append(Finding(file, line, message))

    def summary(self) -> dict[str, Any]:
        """The integrity part of the change record (no paths, no times: reproducible)."""
        return {
            "verified": self.ok,
            "events": self.events,
            "head": self.head,
            "signed": self.signed,
            "key_id": self.key_id,
            "signatures": self.signatures,
            "unsigned_after_last_signature": self.unsigned_tail,
            "files_checked": self.files_checked,
            "first_problem": str(self.problems[0]) if self.problems else None,
        }

    def text(self) -> str:
        """Lines for the terminal: the verdict, then problems and notes."""
        if self.ok:
            sig = (
                f"{self.signatures} signatures by key {self.key_id[:16]} valid"
                if self.signed and self.key_id
                else "NOT SIGNED (no signing key was set up)"
            )
            lines = [
                f"OK: {self.events} events, chain intact; {sig}; "
                f"{self.files_checked} files match the journal"
            ]
        else:
            lines = [f"FAILED: {self.problems[0]}"] + [f"  also: {p}" for p in self.problems[1:5]]
        return "\n".join(lines + [f"  note: {n}" for n in self.notes])


def verify_run(
    run_dir: Path, *, public_key: bytes | None = None, require_signature: bool = False
) -> EvidenceCheck:
    """Check everything in a run folder (or an unpacked evidence bundle).

    Args:
        run_dir: Folder holding ``journal.jsonl`` and its companions.
        public_key: PEM of the key the run must be signed with (pins trust);
            ``None`` trusts the key the journal names.
        require_signature: Fail an unsigned journal.

    Returns:
        The check; never raises for damaged evidence.
    """
    check = EvidenceCheck()
    journal = run_dir / JOURNAL_NAME
    chain = verify_journal(journal)
    if not chain.ok:
        check.add(JOURNAL_NAME, chain.first_bad_line, chain.message)
        return check
    records = read_journal(journal)
    check.events, check.head = len(records), chain.head_hash
    check.run_id = records[0].get("run_id") if records else None
    _check_signatures(run_dir, records, check, public_key, require_signature)
    _check_files(run_dir, records, check)
    return check


def _check_signatures(
    run_dir: Path,
    records: list[dict[str, Any]],
    check: EvidenceCheck,
    pinned: bytes | None,
    required: bool,
) -> None:
    signing = records[0].get("signing") if records else None
    sig_path = run_dir / SIGNATURES_NAME
    if not signing:
        if required or pinned is not None:
            check.add(
                JOURNAL_NAME,
                1,
                "the journal is not signed (its run-started record names no signing key)",
            )
        elif sig_path.exists():
            check.add(
                SIGNATURES_NAME,
                None,
                "signatures exist but the journal's run-started "
                "record names no key (rewritten journal)",
            )
        else:
            check.notes.append("the journal is not signed: run `runbook keys init` before runs")
        return
    try:
        key = load_public_key(
            str(signing.get("public_key", "")).encode("ascii"),
            "the run-started record's public key",
        )
    except EvidenceError as exc:
        check.add(JOURNAL_NAME, 1, exc.message)
        return
    check.signed, check.key_id = True, key_id(key)
    if check.key_id != signing.get("key_id"):
        check.add(JOURNAL_NAME, 1, "the key id does not match the public key named with it")
        return
    if not _same_key(check, pinned, "--public-key", JOURNAL_NAME, 1):
        return
    if not _same_key(
        check, _read(run_dir / PUBLIC_KEY_NAME), PUBLIC_KEY_NAME, PUBLIC_KEY_NAME, None
    ):
        return
    if not sig_path.exists():
        check.add(
            SIGNATURES_NAME,
            None,
            "missing: the journal names a signing key but no signatures are present",
        )
        return
    last_seq = _scan_signatures(sig_path.read_bytes(), records, key, check)
    if check.problems:
        return
    for rec in records:
        if is_signing_point(rec) and rec["seq"] > last_seq:
            check.add(
                JOURNAL_NAME,
                rec["seq"],
                f"{rec['event']} is not covered by any signature "
                f"(signatures end at line {last_seq}: {SIGNATURES_NAME} was cut, or the "
                "record was added later)",
            )
            return
    check.unsigned_tail = len(records) - last_seq
    if check.unsigned_tail:
        events = sorted({r["event"] for r in records[last_seq:]})
        check.notes.append(
            f"{check.unsigned_tail} record(s) after the last signature are chained "
            f"but not signed ({', '.join(events)})"
        )


def _same_key(
    check: EvidenceCheck, data: bytes | None, name: str, file: str, line: int | None
) -> bool:
    """True when ``data`` (a PEM public key, or ``None``: nothing to compare) is the run's key."""
    if data is None:
        return True
    try:
        other = key_id(load_public_key(data, name))
    except EvidenceError as exc:
        check.add(file, line, exc.message)
        return False
    if other != check.key_id:
        check.add(
            file,
            line,
            f"the run is signed by key {(check.key_id or '')[:16]}, not by "
            f"{name}'s key {other[:16]}",
        )
        return False
    return True


def _scan_signatures(
    data: bytes, records: list[dict[str, Any]], key: Any, check: EvidenceCheck
) -> int:
    """Check every signature line; return the journal seq of the last good one."""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    elif lines:
        check.add(SIGNATURES_NAME, len(lines), "truncated (no final newline: the file was cut)")
        return 0
    prev, last_seq = GENESIS_HASH, 0
    for n, raw in enumerate(lines, start=1):
        why = _signature_problem(raw, n, prev, last_seq, records, key, check.run_id)
        if why:
            file, line = why[0], why[1]
            check.add(file, line, why[2])
            return last_seq
        rec = json.loads(raw)
        prev, last_seq = line_hash(raw), rec["seq"]
        check.signatures += 1
    return last_seq


def _signature_problem(
    raw: bytes,
    n: int,
    prev: str,
    last_seq: int,
    records: list[dict[str, Any]],
    key: Any,
    run_id: str | None,
) -> tuple[str, int, str] | None:
    here = (SIGNATURES_NAME, n)
    try:
        rec = json.loads(raw)
    except ValueError:
        return (*here, "not valid JSON (edited or cut)")
    if not isinstance(rec, dict) or any(
        not isinstance(rec.get(k), t) or isinstance(rec.get(k), bool) for k, t in _SIG_FIELDS
    ):
        return (*here, "lacks a valid field (edited)")
    if canonical_json(rec).encode("utf-8") != raw:
        return (*here, "not in canonical form (edited)")
    if rec["run_id"] != run_id:
        return (
            *here,
            f"is a signature of run {rec['run_id']!r}, not of {run_id!r} (taken from another run)",
        )
    if not verify_signature(key, rec):
        return (*here, "the signature does not verify (edited, or made with another key)")
    if rec["sig_seq"] != n:
        return (
            *here,
            f"has sig_seq {rec['sig_seq']}, expected {n} (a signature line was "
            "deleted, inserted or moved)",
        )
    if rec["prev"] != prev:
        return (*here, f"prev does not match line {n - 1} (a signature line was deleted or moved)")
    if rec["seq"] <= last_seq:
        return (*here, f"signs journal line {rec['seq']}, not after line {last_seq} (reordered)")
    seq = rec["seq"]
    if seq > len(records):
        return (
            JOURNAL_NAME,
            len(records) + 1,
            f"line {len(records) + 1} is missing: signature "
            f"{n} signs line {seq} (the journal was cut)",
        )
    if records[seq - 1]["hash"] != rec["head"] or records[seq - 1]["event"] != rec["event"]:
        first = last_seq + 1  # the earliest line no valid signature vouches for
        span = f"lines {first}-{seq}" if first < seq else f"line {seq}"
        return (
            JOURNAL_NAME,
            first,
            f"{span}: not what signature {n} signed (the journal was "
            "rewritten at or after this line)",
        )
    return None


def _check_files(run_dir: Path, records: list[dict[str, Any]], check: EvidenceCheck) -> None:
    """Attachments, command outputs and notebooks against the digests the journal holds."""
    expected: dict[str, tuple[str, int]] = {}
    attempts: dict[tuple[Any, ...], int] = {}
    for rec in records:
        event = rec["event"]
        key = (event.rsplit("-", 1)[0], rec.get("step"), rec.get("id"), rec.get("host"))
        if event.endswith("-started") and "attempt" in rec:
            attempts[key] = rec["attempt"]
        if event == "attachment-added" and isinstance(rec.get("path"), str):
            expected[rec["path"]] = (str(rec.get("sha256")), rec["seq"])
        elif rec.get("output_sha256") and event.endswith("-finished"):
            expected[_output_name(rec, attempts.get(key, 1))] = (rec["output_sha256"], rec["seq"])
        elif rec["event"] == "notebook-executed" and rec.get("sha256"):
            name = f"{NOTEBOOKS_DIR}/{Path(str(rec.get('path'))).name}"
            expected[name] = (str(rec["sha256"]), rec["seq"])
    for rel, (digest, seq) in sorted(expected.items(), key=lambda kv: kv[1][1]):
        path = run_dir / rel
        if not path.is_file():
            if rel.startswith(ATTACHMENTS_DIR + "/"):
                check.add(rel, None, f"missing (journal line {seq} names it)")
            continue
        if hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            check.add(rel, None, f"SHA-256 differs from journal line {seq} (the file was edited)")
        check.files_checked += 1
    folder = run_dir / ATTACHMENTS_DIR
    for path in sorted(folder.rglob("*")) if folder.is_dir() else []:
        rel = path.relative_to(run_dir).as_posix()
        if path.is_file() and rel not in expected:
            check.add(rel, None, "is not named by any journal event (added afterwards)")


def _output_name(rec: dict[str, Any], attempt: int) -> str:
    """The file the runner saved a command's output to (runner._save_output's naming)."""
    purpose = rec["event"].removesuffix("-finished")
    return f"output/{rec.get('step')}.{purpose}-{rec.get('id')}@{rec.get('host')}.{attempt}.txt"


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
