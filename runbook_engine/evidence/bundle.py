"""The evidence bundle: one zip that an auditor verifies offline with ``runbook evidence verify``.

Members (paths inside the zip)::

    journal.jsonl, journal.jsonl.head    the hash-chained journal and its anchor
    journal.sig.jsonl, signing.pub       signatures and the public key (signed runs)
    attachments/...                      files attached to gates
    output/...                           full (redacted) command output
    notebooks/*.ipynb                    executed notebooks
    change-record.html, change-record.json
    MANIFEST.sha256                      "<sha256>  <path>" per member, after a "#" header

The zip is written in one canonical form (members sorted, ``MANIFEST.sha256``
last, stored without compression, every timestamp 1980-01-01, mode 0644), so
:func:`verify_bundle` can rebuild it from its members and compare byte for byte:
besides each member's hash (manifest), its journal digest and the signatures, a
changed byte in the zip's own headers is caught too.  The change record JSON (and
the HTML, when made by the same version) is rebuilt from the bundle's journal and
compared, so the record cannot say what the journal does not.
"""

from __future__ import annotations

import hashlib
import io
import tempfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from runbook_engine import __version__
from runbook_engine.errors import InputError
from runbook_engine.evidence import (
    ATTACHMENTS_DIR,
    JOURNAL_NAME,
    NOTEBOOKS_DIR,
    PUBLIC_KEY_NAME,
    SIGNATURES_NAME,
)
from runbook_engine.evidence.export import record_of, render_record
from runbook_engine.evidence.verify import EvidenceCheck

MANIFEST = "MANIFEST.sha256"
RECORD_JSON, RECORD_HTML = "change-record.json", "change-record.html"
_HEADER = "# runbook-engine evidence bundle; run {run}; version {version}"
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def _run_files(run_dir: Path) -> dict[str, bytes]:
    """The evidence files of a run folder, by bundle path."""
    files: dict[str, bytes] = {}
    for name in (JOURNAL_NAME, JOURNAL_NAME + ".head", SIGNATURES_NAME, PUBLIC_KEY_NAME):
        if (run_dir / name).is_file():
            files[name] = (run_dir / name).read_bytes()
    for folder, pattern in ((ATTACHMENTS_DIR, "*"), ("output", "*"), (NOTEBOOKS_DIR, "*.ipynb")):
        base = run_dir / folder
        for path in sorted(base.rglob(pattern)) if base.is_dir() else []:
            if path.is_file():
                files[path.relative_to(run_dir).as_posix()] = path.read_bytes()
    return files


def canonical_zip(members: dict[str, bytes]) -> bytes:
    """Return the canonical zip of ``members`` (sorted, ``MANIFEST.sha256`` last)."""
    buffer = io.BytesIO()
    names = sorted(n for n in members if n != MANIFEST)
    names += [MANIFEST] if MANIFEST in members else []
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name in names:
            info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
            info.create_system = 3
            info.external_attr = 0o100644 << 16
            info.compress_type = zipfile.ZIP_STORED
            archive.writestr(info, members[name])
    return buffer.getvalue()


def build_bundle(run_dir: Path, public_key: bytes | None = None) -> tuple[bytes, EvidenceCheck]:
    """Snapshot a run folder and return the bundle's bytes and the evidence check.

    Raises:
        InputError: the folder holds no journal.
    """
    if not (run_dir / JOURNAL_NAME).is_file():
        raise InputError(f"{run_dir} holds no {JOURNAL_NAME}")
    with tempfile.TemporaryDirectory(prefix="rbe-bundle-") as tmp:
        snapshot = Path(tmp)
        files = _run_files(run_dir)
        _unpack(files, snapshot)
        record, check = record_of(snapshot, public_key)
    files[RECORD_JSON] = render_record(record, "json")
    files[RECORD_HTML] = render_record(record, "html")
    lines = [_HEADER.format(run=record.get("run_id"), version=__version__)]
    lines += [f"{hashlib.sha256(data).hexdigest()}  {name}" for name, data in sorted(files.items())]
    files[MANIFEST] = ("\n".join(lines) + "\n").encode("utf-8")
    return canonical_zip(files), check


def verify_bundle(path: Path, public_key: bytes | None = None) -> EvidenceCheck:
    """Verify a bundle offline: container, manifest, journal, signatures, files, record.

    Returns:
        The check; its first problem names the member and line.
    """
    outer = EvidenceCheck()
    try:
        data = path.read_bytes()
    except OSError as exc:
        outer.add(path.name, None, f"cannot be read ({exc.strerror})")
        return outer
    members = _read_members(data, outer)
    if members is None:
        return outer
    version = _check_manifest(members, outer)
    with tempfile.TemporaryDirectory(prefix="rbe-verify-") as tmp:
        folder = Path(tmp)
        _unpack({k: v for k, v in members.items() if k != MANIFEST}, folder)
        record, check = record_of(folder, public_key)
    check.problems.extend(outer.problems)  # line-level journal findings first
    if check.problems:
        return check
    if render_record(record, "json") != members.get(RECORD_JSON):
        check.add(
            RECORD_JSON,
            None,
            "does not match the record rebuilt from the bundle's journal (edited)",
        )
    elif version == __version__ and render_record(record, "html") != members.get(RECORD_HTML):
        check.add(
            RECORD_HTML,
            None,
            "does not match the record rebuilt from the bundle's journal (edited)",
        )
    elif version != __version__:
        check.notes.append(f"{RECORD_HTML} was made by version {version}; not re-rendered")
    canonical = canonical_zip(members)
    if not check.problems and canonical != data:
        at = next(
            (i for i, (a, b) in enumerate(zip(canonical, data, strict=False)) if a != b),
            min(len(data), len(canonical)),
        )
        check.add(
            path.name,
            None,
            f"the zip container differs from its canonical form at byte "
            f"{at} (edited outside the member files)",
        )
    return check


def _read_members(data: bytes, check: EvidenceCheck) -> dict[str, bytes] | None:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, zlib.error) as exc:
        check.add("bundle", None, f"not a readable zip file ({exc})")
        return None
    members: dict[str, bytes] = {}
    for name in names:
        pure = PurePosixPath(name)
        if pure.is_absolute() or ".." in pure.parts or name in members or name.endswith("/"):
            check.add(name, None, "unsafe or duplicate member name")
            return None
        try:
            members[name] = archive.read(name)
        except (
            zipfile.BadZipFile,
            OSError,
            ValueError,
            NotImplementedError,
            EOFError,
            zlib.error,
        ) as exc:  # a damaged member: reported, never raised (any byte may have been edited)
            check.add(name, None, f"cannot be read from the zip ({type(exc).__name__}: edited)")
            return None
    return members


def _check_manifest(members: dict[str, bytes], check: EvidenceCheck) -> str | None:
    """Compare every member with ``MANIFEST.sha256``; return the version in its header."""
    raw = members.get(MANIFEST)
    if raw is None:
        check.add(MANIFEST, None, "missing")
        return None
    try:
        lines = raw.decode("utf-8").split("\n")
    except UnicodeDecodeError:
        check.add(MANIFEST, None, "is not UTF-8 (edited)")
        return None
    if lines[-1] != "" or not lines[0].startswith("# runbook-engine evidence bundle;"):
        check.add(MANIFEST, 1, "is not a bundle manifest (edited or cut)")
        return None
    listed: dict[str, str] = {}
    for n, line in enumerate(lines[1:-1], start=2):
        digest, sep, name = line.partition("  ")
        if not sep or len(digest) != 64 or name in listed:
            check.add(MANIFEST, n, "malformed line (edited)")
            return None
        listed[name] = digest
        if name not in members:
            check.add(MANIFEST, n, f"{name} is missing from the bundle")
        elif hashlib.sha256(members[name]).hexdigest() != digest:
            check.add(name, None, f"SHA-256 differs from {MANIFEST} line {n} (edited)")
    for name in sorted(set(members) - set(listed) - {MANIFEST}):
        check.add(name, None, f"is not listed in {MANIFEST} (added)")
    return lines[0].rpartition("version ")[2]


def _unpack(files: dict[str, bytes], folder: Path) -> None:
    for name, data in files.items():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def write_bundle(run_dir: Path, out: Path, public_key: bytes | None = None) -> EvidenceCheck:
    """Write the bundle of ``run_dir`` to ``out`` (atomically) and return the evidence check.

    Raises:
        InputError: no journal, or ``out`` cannot be written.
    """
    data, check = build_bundle(run_dir, public_key)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp")
        tmp.write_bytes(data)
        tmp.replace(out)
    except OSError as exc:
        raise InputError(f"cannot write {out}: {exc.strerror}") from None
    return check


__all__ = ["build_bundle", "canonical_zip", "verify_bundle", "write_bundle"]
