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

Reading a bundle is bounded by its size: before anything is extracted every
member must be stored (a canonical bundle compresses nothing, so a zip bomb is
refused unread), declare the same size compressed and uncompressed, fit in the
file, carry a plain relative name under a known folder (``""``, ``.``,
``output/.``, ``..``, absolute or backslashed names are refused with a message),
and appear in ``MANIFEST.sha256``; members are then copied to disk in chunks,
hashed on the way and cut off at their declared size.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tempfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import BinaryIO

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
from runbook_engine.evidence.files import sha256_file
from runbook_engine.evidence.safeio import write_atomic
from runbook_engine.evidence.verify import EvidenceCheck

MANIFEST = "MANIFEST.sha256"
RECORD_JSON, RECORD_HTML = "change-record.json", "change-record.html"
_HEADER = "# runbook-engine evidence bundle; run {run}; version {version}"
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)
_TOP_FILES = frozenset(
    {
        JOURNAL_NAME,
        JOURNAL_NAME + ".head",
        SIGNATURES_NAME,
        PUBLIC_KEY_NAME,
        "change-record.json",
        "change-record.html",
        "MANIFEST.sha256",
    }
)
_FOLDERS = frozenset({ATTACHMENTS_DIR, "output", NOTEBOOKS_DIR})
_CHUNK = 1 << 20
#: The largest manifest read (a manifest line is about 100 bytes).
_MANIFEST_LIMIT = 16 << 20
_READ_ERRORS = (
    zipfile.BadZipFile,
    OSError,
    ValueError,
    NotImplementedError,
    EOFError,
    zlib.error,
    RuntimeError,
)


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
            archive.writestr(_canonical_info(name), members[name])
    return buffer.getvalue()


def build_bundle(
    run_dir: Path, public_key: bytes | None = None, expected_run_id: str | None = None
) -> tuple[bytes, EvidenceCheck]:
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
        record, check = record_of(snapshot, public_key, expected_run_id)
    files[RECORD_JSON] = render_record(record, "json")
    files[RECORD_HTML] = render_record(record, "html")
    lines = [_HEADER.format(run=record.get("run_id"), version=__version__)]
    lines += [f"{hashlib.sha256(data).hexdigest()}  {name}" for name, data in sorted(files.items())]
    files[MANIFEST] = ("\n".join(lines) + "\n").encode("utf-8")
    return canonical_zip(files), check


def verify_bundle(
    path: Path, public_key: bytes | None = None, expected_run_id: str | None = None
) -> EvidenceCheck:
    """Verify a bundle offline: container, manifest, journal, signatures, files, record.

    Args:
        path: The zip.
        public_key: The pinned public key (PEM), or ``None``.
        expected_run_id: The run the bundle must hold, or ``None``.

    Returns:
        The check; its first problem names the member and line.
    """
    outer = EvidenceCheck()
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        outer.add(path.name, None, f"cannot be read ({exc.strerror})")
        return outer
    with handle, tempfile.TemporaryDirectory(prefix="rbe-verify-") as tmp:
        folder = Path(tmp) / "bundle"
        extracted = _extract(handle, folder, outer)
        if extracted is None:
            return outer
        infos, manifest = extracted
        version, run = _check_manifest(manifest, infos, folder, outer)
        record, check = record_of(folder, public_key, expected_run_id)
        check.problems.extend(outer.problems)  # line-level journal findings first
        if not check.problems and run != str(check.run_id):
            check.add(MANIFEST, 1, f"names run {run!r}, the journal run {check.run_id!r}")
        if check.problems:
            return check
        stored_pin = _stored_pinning(folder)
        if stored_pin is not None and stored_pin != check.pinned:
            record = _record_pinned_as(folder, stored_pin, check, expected_run_id)
        _check_record(folder, record, version, check)
        if not check.problems:
            _check_container(handle, folder, sorted(infos), path.name, check)
    return check


def _stored_pinning(folder: Path) -> bool | None:
    """Whether the stored change record was made with a pinned key (``None``: unknown)."""
    try:
        stored = json.loads(_member(folder, RECORD_JSON) or b"")
        pinned = stored["summary"]["evidence"]["key_pinned"]
    except (ValueError, TypeError, KeyError):
        return None
    return pinned if isinstance(pinned, bool) else None


def _record_pinned_as(
    folder: Path, pinned: bool, check: EvidenceCheck, expected_run_id: str | None
) -> dict[str, object]:
    """Rebuild the change record under the pinning the stored record was made with.

    The bundle has already passed this verification, so only the pinning-dependent
    fields (verdict, ``key_pinned``) differ; everything else the journal determines
    is compared as usual.  A record made pinned is rebuilt pinned to the journal's
    own key (the one this verification found valid).
    """
    key = None
    if pinned:
        signing = (check.records[0].get("signing") if check.records else None) or {}
        key = str(signing.get("public_key", "")).encode("ascii") or None
    record, _ = record_of(folder, key, expected_run_id)
    return record


def _check_record(
    folder: Path, record: dict[str, object], version: str | None, check: EvidenceCheck
) -> None:
    """The change record in the bundle must be the one rebuilt from its journal."""
    if render_record(record, "json") != _member(folder, RECORD_JSON):
        check.add(
            RECORD_JSON,
            None,
            "does not match the record rebuilt from the bundle's journal (edited)",
        )
    elif version == __version__ and render_record(record, "html") != _member(folder, RECORD_HTML):
        check.add(
            RECORD_HTML,
            None,
            "does not match the record rebuilt from the bundle's journal (edited)",
        )
    elif version != __version__:
        check.notes.append(f"{RECORD_HTML} was made by version {version}; not re-rendered")


def _member(folder: Path, name: str) -> bytes | None:
    try:
        return (folder / name).read_bytes()
    except OSError:
        return None


def _check_container(
    handle: BinaryIO, folder: Path, names: list[str], label: str, check: EvidenceCheck
) -> None:
    """Rebuild the canonical zip on disk from the extracted members and compare byte by byte."""
    with tempfile.TemporaryFile() as canonical:
        order = [n for n in names if n != MANIFEST] + ([MANIFEST] if MANIFEST in names else [])
        with zipfile.ZipFile(canonical, "w", zipfile.ZIP_STORED) as archive:
            for name in order:
                info = _canonical_info(name)
                info.file_size = (folder / name).stat().st_size
                with open(folder / name, "rb") as src, archive.open(info, "w") as dst:
                    shutil.copyfileobj(src, dst, _CHUNK)
        canonical.seek(0)
        handle.seek(0)
        offset = 0
        while True:
            a, b = canonical.read(_CHUNK), handle.read(_CHUNK)
            if a != b:
                at = next(
                    (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y),
                    min(len(a), len(b)),
                )
                check.add(
                    label,
                    None,
                    f"the zip container differs from its canonical form at byte "
                    f"{offset + at} (edited outside the member files)",
                )
                return
            if not a:
                return
            offset += len(a)


def _canonical_info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
    info.create_system = 3
    info.external_attr = 0o100644 << 16
    info.compress_type = zipfile.ZIP_STORED
    return info


def _name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a member of a bundle, or ``None``."""
    pure = PurePosixPath(name)
    if not name or "\\" in name or "\x00" in name or name.startswith("/") or ":" in name:
        return "is not a plain relative name"
    if pure.as_posix() != name or any(p in ("", ".", "..") for p in name.split("/")):
        return "is not a plain relative name ('.', '..', an empty part or a trailing '/')"
    if len(pure.parts) == 1 and name not in _TOP_FILES:
        return "is not a file of an evidence bundle"
    if len(pure.parts) > 1 and pure.parts[0] not in _FOLDERS:
        return "is not in a folder of an evidence bundle (attachments, output, notebooks)"
    return None


def _extract(
    handle: BinaryIO, folder: Path, check: EvidenceCheck
) -> tuple[dict[str, zipfile.ZipInfo], bytes] | None:
    """Check every member's name and size, then copy the members into ``folder``.

    Returns:
        ``(members by name, manifest bytes)``, or ``None`` after adding a problem.
    """
    try:
        handle.seek(0, 2)
        total = handle.tell()
        handle.seek(0)
        archive = zipfile.ZipFile(handle)
        infos = archive.infolist()
    except _READ_ERRORS as exc:
        check.add("bundle", None, f"not a readable zip file ({exc})")
        return None
    members: dict[str, zipfile.ZipInfo] = {}
    declared = 0
    for info in infos:
        name = info.filename
        why = _name_problem(name)
        if why is None and name in members:
            why = "is a duplicate member name"
        if why is None and (
            info.compress_type != zipfile.ZIP_STORED or info.file_size != info.compress_size
        ):
            why = "is compressed (a bundle stores its members; refused unread, a zip bomb?)"
        declared += info.file_size
        if why is None and declared > total:
            why = f"declares more bytes ({declared}) than the bundle holds ({total})"
        if why is not None:
            check.add(name or "(empty name)", None, why)
            return None
        members[name] = info
    manifest_info = members.get(MANIFEST)
    if manifest_info is None:
        check.add(MANIFEST, None, "missing")
        return None
    if manifest_info.file_size > _MANIFEST_LIMIT:
        check.add(MANIFEST, None, f"is larger than {_MANIFEST_LIMIT} bytes")
        return None
    for name, info in members.items():
        if not _copy_member(archive, info, folder / name, check):
            return None
    return members, (folder / MANIFEST).read_bytes()


def _copy_member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, check: EvidenceCheck
) -> bool:
    """Copy one member in chunks, never more than its declared size."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        left = info.file_size
        with archive.open(info) as src, open(target, "xb") as dst:
            while left > 0:
                chunk = src.read(min(_CHUNK, left))
                if not chunk:
                    break
                dst.write(chunk)
                left -= len(chunk)
            if left or src.read(1):
                raise ValueError("size differs from its header")
    except _READ_ERRORS as exc:  # a damaged member: reported, never raised
        check.add(
            info.filename, None, f"cannot be read from the zip ({type(exc).__name__}: edited)"
        )
        return False
    return True


def _check_manifest(
    raw: bytes, members: dict[str, zipfile.ZipInfo], folder: Path, check: EvidenceCheck
) -> tuple[str | None, str | None]:
    """Compare every extracted member with ``MANIFEST.sha256``; return the version and
    the run named in its header."""
    try:
        lines = raw.decode("utf-8").split("\n")
    except UnicodeDecodeError:
        check.add(MANIFEST, None, "is not UTF-8 (edited)")
        return None, None
    if lines[-1] != "" or not lines[0].startswith("# runbook-engine evidence bundle;"):
        check.add(MANIFEST, 1, "is not a bundle manifest (edited or cut)")
        return None, None
    listed: dict[str, str] = {}
    for n, line in enumerate(lines[1:-1], start=2):
        digest, sep, name = line.partition("  ")
        if not sep or len(digest) != 64 or name in listed:
            check.add(MANIFEST, n, "malformed line (edited)")
            return None, None
        listed[name] = digest
        if name not in members:
            check.add(MANIFEST, n, f"{name} is missing from the bundle")
        elif sha256_file(folder / name) != digest:
            check.add(name, None, f"SHA-256 differs from {MANIFEST} line {n} (edited)")
    for name in sorted(set(members) - set(listed) - {MANIFEST}):
        check.add(name, None, f"is not listed in {MANIFEST} (added)")
    header = lines[0]
    run = header.partition("; run ")[2].rpartition("; version ")[0]
    return header.rpartition("version ")[2], run


def _unpack(files: dict[str, bytes], folder: Path) -> None:
    for name, data in files.items():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def write_bundle(
    run_dir: Path, out: Path, public_key: bytes | None = None, expected_run_id: str | None = None
) -> EvidenceCheck:
    """Write the bundle of ``run_dir`` to ``out`` (atomically, through an exclusively
    created temporary file) and return the evidence check.

    Raises:
        InputError: no journal, or ``out`` cannot be written.
    """
    data, check = build_bundle(run_dir, public_key, expected_run_id)
    try:
        write_atomic(out, data)
    except OSError as exc:
        raise InputError(f"cannot write {out}: {exc.strerror}") from None
    return check


__all__ = ["build_bundle", "canonical_zip", "verify_bundle", "write_bundle"]
