"""Files kept as evidence of a gate or a vote (``--attach``; the console's uploads).

:func:`keep_attachment` copies a file into ``runs/RUN_ID/attachments/STEP/`` and journals
it (``attachment-added``: path, size, SHA-256) before it is visible: copied under
``.attaching/``, journaled, then renamed into place (:func:`~.reconcile.settle_attachments`
finishes or undoes what a kill left).  Used by :mod:`.confirm` and :mod:`.approval`.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from runbook_engine.errors import InputError
from runbook_engine.evidence import ATTACHMENTS_DIR
from runbook_engine.evidence.journal import Journal
from runbook_engine.evidence.redact import Redactor
from runbook_engine.evidence.signing import SignedJournal
from runbook_engine.run.faults import crash_point
from runbook_engine.run.gates import authenticated_fields
from runbook_engine.run.reconcile import STAGING_DIR

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def keep_attachment(
    journal: Journal | SignedJournal,
    run_dir: Path,
    step_id: str,
    source: Path,
    by: str,
    redactor: Redactor,
    auth_method: str | None = None,
) -> dict[str, str]:
    """Copy ``source`` to ``attachments/STEP/`` (a free name), journal it, return its entry.

    The copy is made under ``.attaching/`` in the run folder, journaled with its final
    path and SHA-256, and only then renamed into place: a kill before the record leaves
    no attachment (the next open removes the copy), a kill after it leaves the record
    (the next open puts the copy in place; see :func:`~.reconcile.settle_attachments`).

    Raises:
        InputError: the file cannot be read or copied.
    """
    if not source.is_file():
        raise InputError(f"--attach {source}: no such file")
    folder = run_dir / ATTACHMENTS_DIR / step_id
    staging = run_dir / STAGING_DIR / step_id
    try:
        folder.mkdir(parents=True, exist_ok=True)
        staging.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"--attach {source}: cannot copy ({exc.strerror})") from None
    shown = Path(redactor.redact(source.name))
    name, n = shown.name, 1
    while True:
        target, partial = folder / name, staging / name
        if target.exists() or target.is_symlink():
            n += 1
            name = f"{shown.stem}-{n}{shown.suffix}"
            continue
        try:  # created exclusively: an existing file or a planted link is never written
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o644)
            break
        except FileExistsError:
            n += 1
            name = f"{shown.stem}-{n}{shown.suffix}"
        except OSError as exc:
            raise InputError(f"--attach {source}: cannot copy ({exc.strerror})") from None
    digest, size = hashlib.sha256(), 0
    try:
        with open(source, "rb") as src, os.fdopen(fd, "wb") as dst:
            while chunk := src.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
                dst.write(chunk)
            dst.flush()
            os.fsync(dst.fileno())
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise InputError(f"--attach {source}: cannot copy ({exc.strerror})") from None
    crash_point("after-attach-copy")
    entry = {"path": target.relative_to(run_dir).as_posix(), "sha256": digest.hexdigest()}
    journal.append(
        "attachment-added",
        step=step_id,
        name=shown.name,
        size_bytes=size,
        by=by,
        **entry,
        **authenticated_fields(auth_method),
    )
    crash_point("after-attach-record")
    os.replace(partial, target)
    return entry
