"""Verify a run's evidence: the journal's chain, its signatures, attachments, outputs, notebooks.

:func:`verify_run` checks a run folder (or an unpacked bundle) and returns an
:class:`EvidenceCheck` whose first problem names the file and the first bad
line: an edited, deleted, inserted, reordered or cut journal line (the chain,
:mod:`runbook_engine.evidence.journal`); a signature line edited, deleted, reordered, cut
or taken from another run (:mod:`.signing`); a gate or run end that no signature
covers; a file whose SHA-256 differs from the journal event that names it.

The verdict (:attr:`EvidenceCheck.verdict`) is one word:

``verified``
    Every record is covered by a signature of the pinned key (``--public-key``),
    and a finished run is sealed (:data:`~runbook_engine.evidence.signing.SEAL_EVENT`).
``verified-unpinned``
    The same, but the key is the one the journal itself names: anyone who can
    write the journal could have made it with a key of their own.
``unsigned``
    The chain is intact but nothing is signed (no key pinned or required).
``incomplete``
    A valid signed prefix, but records after the last signature (a writer without
    the key, a crash between a record and its signature, or records added later)
    or no seal (the run is in progress or paused, or its end was cut off).  The
    change record is built from the signed prefix only.  With a pinned key, an
    unsigned tail or a finished run without its seal is ``failed`` instead.
``failed``
    Anything else: the first problem names the file and line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runbook_engine.errors import EvidenceError
from runbook_engine.evidence import (
    JOURNAL_NAME,
    PUBLIC_KEY_NAME,
    SIGNATURES_NAME,
)
from runbook_engine.evidence.canonical import GENESIS_HASH, canonical_json
from runbook_engine.evidence.files import check_files
from runbook_engine.evidence.journal import check_and_read, verify_journal
from runbook_engine.evidence.keys import key_id, load_public_key
from runbook_engine.evidence.signatures import EVERY_RECORD, line_hash, verify_signature
from runbook_engine.evidence.signing import SEAL_EVENT, is_signing_point

#: Exit status of ``runbook evidence verify`` (and export) per verdict.
EXIT_STATUS = {
    "verified": 0,
    "verified-unpinned": 0,
    "unsigned": 0,
    "incomplete": 3,
    "failed": 1,
}

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
    """The outcome of :func:`verify_run`; ``problems[0]`` is the first bad line.

    ``records`` are the journal's good records before its first bad line, as read
    for the check (callers need not read the journal again).
    """

    run_id: str | None = None
    events: int = 0
    head: str | None = None
    signed: bool = False
    key_id: str | None = None
    signatures: int = 0
    unsigned_tail: int = 0
    files_checked: int = 0
    pinned: bool = False
    sealed: bool = False
    problems: list[Finding] = field(default_factory=list)
    gaps: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list, repr=False)
    #: The journal lines that have a signature of their own (not only through the chain).
    signed_seqs: set[int] = field(default_factory=set, repr=False)

    @property
    def ok(self) -> bool:
        """True when nothing is wrong and nothing is missing (an unsigned run can be ok)."""
        return not self.problems and not self.gaps

    @property
    def covered(self) -> int:
        """Records that count as evidence: all of an unsigned journal, the signed prefix
        of a signed one."""
        return self.events - self.unsigned_tail

    @property
    def verdict(self) -> str:
        """``verified``, ``verified-unpinned``, ``unsigned``, ``incomplete`` or ``failed``."""
        if self.problems:
            return "failed"
        if self.gaps:
            return "incomplete"
        if not self.signed:
            return "unsigned"
        return "verified" if self.pinned else "verified-unpinned"

    @property
    def exit_status(self) -> int:
        """The CLI's exit status for this verdict (:data:`EXIT_STATUS`)."""
        return EXIT_STATUS[self.verdict]

    def add(self, file: str, line: int | None, message: str) -> None:
        """Record a problem."""
        self.problems.append(Finding(file, line, message))

    def summary(self) -> dict[str, Any]:
        """The integrity part of the change record (no paths, no times: reproducible)."""
        return {
            "verdict": self.verdict,
            "key_pinned": self.pinned,
            "sealed": self.sealed,
            "covered_events": self.covered,
            "incomplete": self.gaps[0] if self.gaps else None,
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
        verdict = self.verdict
        if verdict == "failed":
            lines = [f"FAILED: {self.problems[0]}"] + [f"  also: {p}" for p in self.problems[1:5]]
        elif verdict == "incomplete":
            lines = [f"INCOMPLETE: {self.gaps[0]}"] + [f"  also: {g}" for g in self.gaps[1:5]]
            lines.append(
                f"  {self.covered} of {self.events} events are covered by signatures; "
                "only those count as evidence"
            )
        else:
            sig = (
                f"{self.signatures} signatures by key {(self.key_id or '')[:16]} valid, "
                + ("sealed" if self.sealed else "run not finished")
                + (
                    "; key pinned"
                    if self.pinned
                    else "; key NOT PINNED (taken from the journal itself: pass --public-key)"
                )
                if self.signed
                else "NOT SIGNED (no signing key was set up)"
            )
            lines = [
                f"{verdict.upper()}: {self.events} events, chain intact; {sig}; "
                f"{self.files_checked} files match the journal"
            ]
        return "\n".join(lines + [f"  note: {n}" for n in self.notes])


def verify_run(
    run_dir: Path,
    *,
    public_key: bytes | None = None,
    require_signature: bool = False,
    expected_run_id: str | None = None,
    anchor: tuple[int, str] | None = None,
) -> EvidenceCheck:
    """Check everything in a run folder (or an unpacked evidence bundle).

    Args:
        run_dir: Folder holding ``journal.jsonl`` and its companions.
        public_key: PEM of the key the run must be signed with (pins trust);
            ``None`` trusts the key the journal names.
        require_signature: Fail an unsigned journal.
        expected_run_id: The run the folder must hold (a run folder swapped for
            another run's fails).
        anchor: ``(seq, hash)`` the journal must hold besides its head file (the anchor
            kept in the checkpoint store; the later of the two counts).

    Returns:
        The check; never raises for damaged evidence.
    """
    check = EvidenceCheck(pinned=public_key is not None)
    journal = run_dir / JOURNAL_NAME
    chain, records = check_and_read(journal, anchor)  # one read of the journal
    anchored = True
    if not chain.ok and anchor is not None:
        plain, plain_records = check_and_read(journal)
        if plain.ok:  # the store's anchor is another run's? say so below
            chain, records, anchored = plain, plain_records, False
    check.records = records
    if not chain.ok:
        check.add(JOURNAL_NAME, chain.first_bad_line, chain.message)
        return check
    check.events, check.head = len(records), chain.head_hash
    check.run_id = records[0].get("run_id") if records else None
    if not anchored and (expected_run_id is None or check.run_id == expected_run_id):
        bad = verify_journal(journal, expected_head=anchor)
        check.add(JOURNAL_NAME, bad.first_bad_line, bad.message)
        return check
    if expected_run_id is not None and check.run_id != expected_run_id:
        check.add(
            JOURNAL_NAME,
            1,
            f"is the journal of run {check.run_id!r}, not of {expected_run_id!r} "
            "(the run folder was swapped)",
        )
        return check
    _check_signatures(run_dir, records, check, public_key, require_signature)
    if not check.problems and check.signed:
        _check_coverage(records, check)
    check_files(run_dir, records, check)
    return check


def _check_coverage(records: list[dict[str, Any]], check: EvidenceCheck) -> None:
    """Unsigned tail and seal: gaps (``incomplete``), or problems with a pinned key."""
    signing = records[0].get("signing") or {}
    if signing.get("covers") != EVERY_RECORD:
        check.gaps.append(
            "signed by an older version that signed only gates and run ends and did not "
            "seal runs: records between signatures are covered by the chain only"
        )
        return
    covered = records[: check.covered]
    finished = any(r["event"] == "run-finished" for r in covered) or any(
        r["event"] == "run-finished" for r in records
    )
    last = covered[-1] if covered else None
    if last is not None and last["event"] == SEAL_EVENT:
        if last.get("run_id") != check.run_id or last.get("last_seq") != last["seq"]:
            check.add(
                JOURNAL_NAME,
                last["seq"],
                f"the seal names run {last.get('run_id')!r} and record "
                f"{last.get('last_seq')!r}, not this run and this record (rewritten)",
            )
            return
        check.sealed = not check.unsigned_tail
    if check.unsigned_tail:
        first = check.covered + 1
        why = (
            f"{JOURNAL_NAME} lines {first}-{check.events} are not covered by any signature "
            "(a writer without the key, a crash, or records added afterwards)"
        )
        if check.pinned:
            check.add(JOURNAL_NAME, first, why)
        else:
            check.gaps.append(why)
    elif finished and not check.sealed:
        why = f"the run finished but its journal does not end with a signed {SEAL_EVENT} record"
        if check.pinned:
            check.add(JOURNAL_NAME, check.events, why)
        else:
            check.gaps.append(why)
    elif not check.sealed:
        check.gaps.append(
            f"the run is not sealed: it is in progress or paused, or its end was cut off "
            f"(signatures end at line {check.covered})"
        )


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
    every = signing.get("covers") == EVERY_RECORD
    for rec in [] if every else records:
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
    if check.unsigned_tail and not every:
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
        check.signed_seqs.add(int(rec["seq"]))
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


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
