"""The site build's page cache: a runbook's pages reused while their inputs are unchanged.

A runbook's pages (``index.html``, ``env-*.html`` and ``files/``: the guides, their
printable HTML, PDF and notebook downloads and the source copy) are kept in
``.<site folder name>.cache/pages/<key>/``, beside the PDF cache, where ``key``
(:func:`page_key`) is the SHA-256 of everything they are made from:

- the runbook's text and its included fragments (``Runbook.content_hash``), its
  path and its folder in the site;
- each example environment file (path and bytes);
- the download formats, the templates folder (every file's name and bytes),
  ``SOURCE_DATE_EPOCH``, and with PDFs what a PDF is printed with
  (:func:`~runbook_engine.outputs.pdf.print_environment`);
- the tool: its version and the name, size and modification time of each of its
  modules (an edited installation counts as another version).

An unchanged runbook's pages are copied (without ``SOURCE_DATE_EPOCH`` they keep
the "Rendered at" time of the build that made them); a runbook whose build
reported a problem is never cached.  The index is made anew by every build.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from runbook_engine.errors import InputError
from runbook_engine.outputs.site_pages import (
    FILES,
    PageJob,
    PageResult,
    RunbookEntry,
    StepCounts,
    Variant,
)
from runbook_engine.resources import templates_dir

#: The entry's description beside its pages.
RESULT = "result.json"
_TREE = "tree"


def build_stamp(formats: tuple[str, ...]) -> str:
    """What every page of a build with ``formats`` depends on besides its runbook: the
    tool, the templates folder, ``SOURCE_DATE_EPOCH`` and, with PDFs, the printing
    (computed once per build: files are read again by the next build)."""
    return "\0".join(
        (
            "runbook-engine site page cache 1",
            _tool_stamp(),
            _templates_stamp(templates_dir()),
            os.environ.get("SOURCE_DATE_EPOCH", "").strip(),
            _print_stamp() if "pdf" in formats else "",
        )
    )


def page_key(job: PageJob, stamp: str) -> str | None:
    """The cache key of ``job``'s pages in a build of :func:`build_stamp` ``stamp``, or
    ``None`` when the runbook cannot be read (it is built, and its problems reported,
    as without a cache)."""
    from runbook_engine.source.parser import parse_file

    try:
        content = parse_file(job.path).content_hash
        environments = [(str(p.resolve()), _sha256(p.read_bytes())) for p in job.environments]
    except (InputError, OSError):
        return None
    digest = hashlib.sha256(stamp.encode("utf-8"))
    digest.update(b"\0")
    job_part = [list(job.formats), job.rel, str(job.path.resolve()), content, environments]
    digest.update(json.dumps(job_part).encode("utf-8"))
    return digest.hexdigest()


def restore(cache: Path, key: str, job: PageJob) -> PageResult | None:
    """Copy the cached pages of ``key`` into the site and return their result, or
    ``None`` when not cached (or unreadable: then the runbook is built again)."""
    entry_dir = cache / key
    try:
        data = json.loads((entry_dir / RESULT).read_text(encoding="utf-8"))
        entry = _entry(data["entry"])
        pdf_keys = tuple(str(k) for k in data["pdf_keys"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    folder = job.out / job.rel
    try:
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copytree(entry_dir / _TREE, folder, dirs_exist_ok=True)
    except OSError:
        return None  # built again (over what was copied)
    return PageResult(job.path, entry, (), pdf_keys, 0, cached=True)


def store(cache: Path, key: str, job: PageJob, result: PageResult) -> None:
    """Keep the pages ``job`` wrote, when they were built without a problem."""
    if result.problems or result.entry is None or (cache / key).exists():
        return
    folder = job.out / job.rel
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".page-", dir=cache))
    try:
        (tmp / _TREE).mkdir()
        shutil.copytree(folder / FILES, tmp / _TREE / FILES)
        for variant in result.entry.variants:
            shutil.copyfile(folder / variant.page, tmp / _TREE / variant.page)
        record = {
            "formats": list(job.formats),
            "entry": asdict(result.entry),
            "pdf_keys": list(result.pdf_keys),
        }
        (tmp / RESULT).write_text(json.dumps(record, indent=1), encoding="utf-8")
        tmp.rename(cache / key)  # whole or absent
    except OSError:
        pass  # another build stored it first, or the disk is full: the cache is optional
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def prune(cache: Path, used: set[str], formats: tuple[str, ...]) -> None:
    """Delete the cached pages of this set of ``formats`` the last build did not use
    (pages of other formats, such as ``--no-pdf`` builds, stay)."""
    for entry_dir in cache.iterdir() if cache.is_dir() else ():
        if entry_dir.name in used or entry_dir.name.startswith("."):
            continue
        try:
            data = json.loads((entry_dir / RESULT).read_text(encoding="utf-8"))
            same = data.get("formats") == list(formats)
        except (OSError, ValueError, AttributeError):
            same = True  # damaged: remove
        if same:
            shutil.rmtree(entry_dir, ignore_errors=True)


def _entry(data: dict[str, Any]) -> RunbookEntry:
    return RunbookEntry(
        rel=str(data["rel"]),
        id=str(data["id"]),
        title=str(data["title"]),
        version=str(data["version"]),
        summary=str(data["summary"]),
        tags=tuple(str(t) for t in data["tags"]),
        counts=StepCounts(**data["counts"]),
        variants=tuple(Variant(**v) for v in data["variants"]),
    )


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _tool_stamp() -> str:
    """The tool's version and each module's name, size and modification time."""
    from runbook_engine import __version__

    package = Path(__file__).resolve().parents[1]
    lines = [__version__]
    for path in sorted(package.rglob("*.py")):
        stat = path.stat()
        lines.append(f"{path.relative_to(package).as_posix()} {stat.st_size} {stat.st_mtime_ns}")
    return "\n".join(lines)


def _templates_stamp(root: Path) -> str:
    """Every file of the templates folder ``root``: name and SHA-256."""
    lines = [str(root)]
    for path in sorted(root.rglob("*")):
        if path.is_file():
            lines.append(f"{path.relative_to(root).as_posix()} {_sha256(path.read_bytes())}")
    return "\n".join(lines)


def _print_stamp() -> str:
    from runbook_engine.outputs.pdf import print_environment

    return print_environment()
