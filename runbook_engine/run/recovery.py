"""Closing the crash windows of a run's start and end (see :mod:`runbook_engine.run.faults`).

A run is created in a staging folder, ``runs/.creating-RUN_ID/``, that holds its
signed ``run-started`` before the store's row exists; the row is the commit point,
and the folder is renamed into place right after it.  :func:`ensure_created` finishes
that rename for a run killed in between (and leaves a staging folder without a row to
the next creation of the same id, which removes it).

A finished run killed between ``run-finished`` and its signature or seal has
incomplete evidence; :func:`complete_finished` (``runbook resume`` of such a run)
signs what a kill left unsigned and seals it, journaling what it did.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from runbook_engine.errors import StateError
from runbook_engine.evidence import JOURNAL_NAME, SIGNATURES_NAME
from runbook_engine.evidence.journal import read_journal
from runbook_engine.evidence.signing import first_record, open_run_journal
from runbook_engine.run.free_text import run_redactor
from runbook_engine.run.options import RunOptions, RunResult
from runbook_engine.run.store_api import Store

#: Prefix of the staging folder a run is created in (under ``runs/``).
STAGING_PREFIX = ".creating-"
#: Store statuses of a finished run (``runbook resume`` does not run it again).
FINISHED = ("succeeded", "unverified", "aborted")
#: Files that make a folder a run's (others, such as the run lock or a notebook being
#: executed, may be there before the run is created).
_JOURNAL_FILES = frozenset({JOURNAL_NAME, SIGNATURES_NAME, f"{JOURNAL_NAME}.head"})


def staging_dir(store: Store, run_id: str) -> Path:
    """The folder run ``run_id`` is created in before it is renamed into place."""
    return store.run_dir(run_id).parent / f"{STAGING_PREFIX}{run_id}"


def prepare_staging(store: Store, run_id: str) -> Path:
    """An empty staging folder for a new run ``run_id`` (one left by a kill before the
    run's row was written is removed: that run never existed).

    Raises:
        StateError: a folder for ``run_id`` holds files without a run in the store.
    """
    final = store.run_dir(run_id)
    if final.exists() and set(os.listdir(final)) & _JOURNAL_FILES:
        raise StateError(
            f"{final} exists but state.db has no run {run_id!r}; move it away or "
            "choose another --run-id"
        )
    staging = staging_dir(store, run_id)
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    return staging


def place_run_folder(store: Store, run_id: str) -> None:
    """Rename the staging folder of a run whose row is written into ``runs/RUN_ID``.

    A folder already there (the run lock, a notebook being executed) receives the
    staging folder's files, the journal last.
    """
    staging, final = staging_dir(store, run_id), store.run_dir(run_id)
    try:
        os.rename(staging, final)
    except OSError:
        if not final.is_dir():
            raise
        names = sorted(os.listdir(staging), key=lambda n: n == JOURNAL_NAME)
        for name in names:  # the journal last: its presence means "created"
            os.replace(staging / name, final / name)
        staging.rmdir()
    with contextlib.suppress(OSError):
        fd = os.open(final.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def ensure_created(store: Store, run_id: str) -> list[str]:
    """Finish the creation of run ``run_id`` if a kill interrupted it; return what was done.

    Raises:
        StateError: the run has neither a journal nor a staging folder (it was never
            started: created by an older version killed before ``run-started``).
    """
    final = store.run_dir(run_id) / JOURNAL_NAME
    if final.exists():
        return []
    staging = staging_dir(store, run_id)
    started = first_record(staging / JOURNAL_NAME)
    if started is None or started.get("run_id") != run_id:
        raise StateError(
            f"run {run_id} was never started (it was killed while being created: no "
            "journal); nothing ran. Start a new run"
        )
    place_run_folder(store, run_id)
    return [f"run folder: put in place after a kill during creation ({staging.name})"]


def complete_finished(store: Store, run_id: str, options: RunOptions) -> RunResult | None:
    """Sign and seal a finished run whose end a kill left unsigned or unsealed.

    Returns:
        How the run ended, when there was something to complete; ``None`` when the run
        is not finished or its evidence is complete (or it is not signed).

    Raises:
        StateError: the run's key is not available.
    """
    record = store.get_run(run_id)
    if record.status not in FINISHED:
        return None
    path = store.run_dir(run_id) / JOURNAL_NAME
    started = first_record(path)
    if started is None or not started.get("signing"):
        return None
    redactor = run_redactor(record, store)
    journal = open_run_journal(
        store.state_dir, store.run_dir(run_id), run_id, redactor, optional_key=False
    )
    unsigned, sealed = journal.unsigned_tail(), journal.sealed
    if not unsigned and sealed:
        return None
    done = []
    if unsigned:
        first = journal.head[0] - unsigned + 1
        done.append(f"signed journal lines {first}-{journal.head[0]} (a kill left them unsigned)")
    if not sealed:
        done.append("sealed the finished run (a kill left it unsealed)")
    journal.append("evidence-completed", completed=done, by=options.operator)
    if not journal.sealed:
        journal.seal()
    if options.reporter is not None:
        options.reporter.warning(f"run {run_id} had finished; " + "; ".join(done))
    ended = next(
        (r for r in reversed(read_journal(path, verify=False)) if r["event"] == "run-finished"),
        {},
    )
    return RunResult(
        run_id,
        str(ended.get("status") or record.status),
        path,
        store.state_dir,
        outcome=ended.get("outcome") or record.outcome,
        known=ended.get("known"),
    )
