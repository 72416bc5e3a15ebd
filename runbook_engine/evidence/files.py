"""The files a journal vouches for: attachments, command outputs and executed notebooks.

:func:`check_files` compares each file with the SHA-256 in the journal record that
names it.  A name comes from the journal, which :mod:`.verify` checks but an
attacker may have written with a key of their own, so a name that is absolute,
holds ``..``, or leads (through a symbolic link) out of the run folder is
reported and never opened: verification reads nothing outside the run folder.
"""

from __future__ import annotations

import hashlib
from pathlib import Path, PurePosixPath
from typing import Any

from runbook_engine.evidence import ATTACHMENTS_DIR, NOTEBOOKS_DIR

#: Bytes read at a time when hashing a file.
_CHUNK = 1 << 20


def check_files(run_dir: Path, records: list[dict[str, Any]], check: Any) -> None:
    """Attachments, command outputs and notebooks against the digests the journal holds
    (``check`` is the :class:`~runbook_engine.evidence.verify.EvidenceCheck` to add to).

    A file the journal names that is missing (deleted) is a problem, and so is an
    attachment no journal record names (added afterwards).
    """
    expected = expected_files(records)
    guessed = _guessed_names(records)
    root = run_dir.resolve()
    for rel, (digest, seq) in sorted(expected.items(), key=lambda kv: kv[1][1]):
        path = inside(root, rel)
        if path is None:
            check.add(rel, None, f"journal line {seq} names a file outside the run folder")
            continue
        if not path.is_file():
            if rel in guessed and _other_attempt(root, rel):
                continue  # an older journal: the name is a guess; another attempt's file is there
            check.add(rel, None, f"missing (journal line {seq} names it; deleted)")
            continue
        if sha256_file(path) != digest:
            check.add(rel, None, f"SHA-256 differs from journal line {seq} (the file was edited)")
        check.files_checked += 1
    folder = run_dir / ATTACHMENTS_DIR
    for path in sorted(folder.rglob("*")) if folder.is_dir() else []:
        rel = path.relative_to(run_dir).as_posix()
        if path.is_file() and rel not in expected:
            check.add(rel, None, "is not named by any journal event (added afterwards)")


def expected_files(records: list[dict[str, Any]]) -> dict[str, tuple[str, int]]:
    """``{path in the run folder: (sha256, journal seq)}`` for every file the journal names."""
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
            name = rec.get("output_file")
            if not isinstance(name, str):  # journals written before output_file existed
                name = _output_name(rec, attempts.get(key, 1))
            expected[name] = (rec["output_sha256"], rec["seq"])
        elif rec["event"] == "notebook-executed" and rec.get("sha256"):
            name = f"{NOTEBOOKS_DIR}/{PurePosixPath(str(rec.get('path'))).name}"
            expected[name] = (str(rec["sha256"]), rec["seq"])
    return expected


def _guessed_names(records: list[dict[str, Any]]) -> set[str]:
    """Output names :func:`expected_files` had to guess (records without ``output_file``)."""
    attempts: dict[tuple[Any, ...], int] = {}
    found: set[str] = set()
    for rec in records:
        event = rec["event"]
        key = (event.rsplit("-", 1)[0], rec.get("step"), rec.get("id"), rec.get("host"))
        if event.endswith("-started") and "attempt" in rec:
            attempts[key] = rec["attempt"]
        elif (
            rec.get("output_sha256")
            and event.endswith("-finished")
            and not isinstance(rec.get("output_file"), str)
        ):
            found.add(_output_name(rec, attempts.get(key, 1)))
    return found


def inside(root: Path, rel: str) -> Path | None:
    """``root / rel`` when it stays inside ``root`` (a resolved folder), else ``None``."""
    pure = PurePosixPath(rel)
    if not rel or pure.is_absolute() or ".." in pure.parts or "\\" in rel or ":" in rel:
        return None
    path = root / pure
    try:
        path.resolve().relative_to(root)
    except (ValueError, OSError):
        return None
    return path


def _other_attempt(root: Path, rel: str) -> bool:
    """True when another output file of the same step exists (the file name is a guess:
    declarative steps and retries name theirs differently), so a step whose outputs
    are all gone is reported, one of several is not."""
    pure = PurePosixPath(rel)
    folder = root / pure.parent
    name = pure.name.split(".", 1)[0] + "."
    return folder.is_dir() and any(p.name.startswith(name) for p in folder.iterdir())


def sha256_file(path: Path) -> str:
    """The SHA-256 (hex) of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _output_name(rec: dict[str, Any], attempt: int) -> str:
    """The file the runner saved a command's output to (runner._save_output's naming)."""
    purpose = rec["event"].removesuffix("-finished")
    return f"output/{rec.get('step')}.{purpose}-{rec.get('id')}@{rec.get('host')}.{attempt}.txt"
