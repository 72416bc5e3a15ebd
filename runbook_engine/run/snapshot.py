"""A run's source kept with the run: the runbook, its included files and the environment file.

At creation a run keeps a copy of the files it was created from in its own folder
(``source/``), so the run can go on where those files are not: a worker on another
machine, an approver's laptop, a folder deleted after ``run --queue``.  In team mode the
run folder's files are in the database, the copy with them.

Each copy is named by the content hash the run records (``runs.content_hash`` and
``env_hash``; ``run-started`` signs them), so an accepted change keeps a copy of its own
next to the first::

    source/runbook-<hash>.json           {"runbook": "rel/path.md", "files": {rel: sha256}}
    source/runbook-<hash>/rel/path.md    the runbook and its includes, as laid out in its library
    source/environment-<hash>/NAME.yml   the environment file

Where the recorded files exist they are read (and a change is detected as before,
``--accept-changed``); where one does not, its copy is read, checked against the recorded
hash, and the command says so (:class:`Source`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runbook_engine.errors import StateError
from runbook_engine.run.store import RunRecord
from runbook_engine.run.store_api import Store
from runbook_engine.source.library import LIBRARY_ENV, library_root
from runbook_engine.source.parser import included_files

#: The run folder's sub-folder holding the copies.
SOURCE_DIR = "source"


def _key(digest: str | None) -> str:
    return (digest or "none")[:16]


@dataclass
class Source:
    """Where a command reads a run's runbook and environment file from.

    Attributes:
        runbook: The runbook file (the recorded path, or its copy).
        env: The environment file (idem), or ``None`` for a run without one.
        copied: What is read from the run's copy because the recorded file is missing:
            ``(what, recorded path, copy's path)``, ``what`` being ``runbook`` or
            ``environment``.
        library: The library folder of a copied runbook (its includes stay in it).
    """

    runbook: Path
    env: Path | None
    copied: list[tuple[str, str, str]] = field(default_factory=list)
    library: Path | None = None

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        """While parsing a copied runbook, its includes resolve in its copied library."""
        if self.library is None:
            yield
            return
        before = os.environ.get(LIBRARY_ENV)
        os.environ[LIBRARY_ENV] = str(self.library)
        try:
            yield
        finally:
            if before is None:
                os.environ.pop(LIBRARY_ENV, None)
            else:
                os.environ[LIBRARY_ENV] = before

    def describe(self) -> str:
        """One line for people: which files are read from the run's copy."""
        return "; ".join(
            f"{what} {path} is not on this machine: read the copy the run keeps ({copy})"
            for what, path, copy in self.copied
        )


def keep(
    run_dir: Path, runbook: Path, content_hash: str, env: Path | None, env_hash: str | None
) -> None:
    """Copy the runbook, the files it includes and the environment file into ``run_dir``.

    Raises:
        OSError: a file cannot be read or written (the run is not created).
    """
    folder = run_dir / SOURCE_DIR
    root = library_root(runbook)
    name = f"runbook-{_key(content_hash)}"
    files: dict[str, str] = {}
    for path in [runbook.resolve(), *included_files(runbook)]:
        try:
            rel = path.relative_to(root).as_posix()
        except ValueError:  # outside the library: refused by the parser already
            continue
        target = folder / name / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        files[rel] = hashlib.sha256(target.read_bytes()).hexdigest()
    manifest = {"runbook": runbook.resolve().relative_to(root).as_posix(), "files": files}
    (folder / f"{name}.json").write_text(json.dumps(manifest, sort_keys=True) + "\n")
    if env is not None:
        target = folder / f"environment-{_key(env_hash)}" / env.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(env, target)


def source_of(
    run_dir: Path,
    run_id: str,
    runbook_path: str,
    content_hash: str,
    env_path: str | None,
    env_hash: str | None,
) -> Source:
    """Where to read run ``run_id``'s runbook and environment file: the recorded paths
    where they exist, else the run's copies (checked against the recorded hashes).

    Raises:
        StateError: a recorded file is missing and the run keeps no copy of it, or the
            copy does not have the recorded hash.
    """
    source = Source(Path(runbook_path), Path(env_path) if env_path else None)
    folder = run_dir / SOURCE_DIR
    if not source.runbook.is_file():
        name = f"runbook-{_key(content_hash)}"
        manifest = _manifest(folder / f"{name}.json", run_id, runbook_path)
        for rel, digest in manifest["files"].items():
            copy = folder / name / rel
            if not copy.is_file() or hashlib.sha256(copy.read_bytes()).hexdigest() != digest:
                raise StateError(
                    f"run {run_id}: the copy of its runbook file {rel} ({copy}) is missing "
                    f"or altered; resume where {runbook_path} is"
                )
        source.runbook = folder / name / manifest["runbook"]
        source.library = folder / name
        source.copied.append(("runbook", runbook_path, str(source.runbook)))
    if source.env is not None and not source.env.is_file():
        copy = folder / f"environment-{_key(env_hash)}" / source.env.name
        if not copy.is_file() or hashlib.sha256(copy.read_bytes()).hexdigest() != env_hash:
            raise StateError(
                f"run {run_id}: its environment file {env_path} is not on this machine and "
                "the run keeps no intact copy of it; run this where the file is"
            )
        source.copied.append(("environment", str(env_path), str(copy)))
        source.env = copy
    return source


def _manifest(path: Path, run_id: str, runbook_path: str) -> dict[str, Any]:
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(manifest.get("runbook"), str) and isinstance(manifest.get("files"), dict):
            return manifest
    except (OSError, ValueError, AttributeError):
        pass
    raise StateError(
        f"run {run_id}: its runbook {runbook_path} is not on this machine and the run keeps "
        "no copy of it (a run created before copies were kept); run this where the file is"
    )


def source_of_run(store: Store, record: RunRecord) -> Source:
    """:func:`source_of` for run ``record`` of ``store`` (its run folder: a working copy
    in team mode).

    Raises:
        StateError: as :func:`source_of`.
    """
    return source_of(
        store.run_dir(record.run_id),
        record.run_id,
        record.runbook_path,
        record.content_hash,
        record.env_path,
        record.env_hash,
    )
