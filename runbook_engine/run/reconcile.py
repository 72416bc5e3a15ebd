"""The journal is the source of truth: reconcile the checkpoint store with it on resume.

The store is a cache of what the journal says.  Before a run goes on, each step the
store calls done (succeeded, skipped, already-done) must have a journal event that
says so as its last word; one that has not (an edited ``state.db``, or a kill between
the two writes) is set back to what the journal supports (failed, running or
pending).  A run the store calls finished whose journal has no ``run-finished`` after
its last start or resume is set back to ``interrupted``, so a resume finishes it.
Every change is journaled in one ``store-reconciled`` event.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from runbook_engine.evidence import ATTACHMENTS_DIR, JOURNAL_NAME
from runbook_engine.evidence.files import sha256_file
from runbook_engine.evidence.journal import Journal, read_journal
from runbook_engine.run.recovery import ensure_created
from runbook_engine.run.store import DONE_STATUSES
from runbook_engine.run.store_api import Store

_FINISHED_RUN = ("succeeded", "unverified", "aborted", "failed", "checked")
#: ``step-checked`` verdicts of steps check mode did not run (stored as done).
_NOT_RUN = {"already-done": "already-done", "would-change": "skipped", "unknown": "skipped"}
#: Where ``confirm --attach`` copies a file before it is journaled (inside the run folder).
STAGING_DIR = ".attaching"


def journal_status(records: list[dict[str, Any]], step: str, host: str) -> str:
    """What the journal says of ``step`` on ``host``: done, failed, running or pending."""
    status = "pending"
    for rec in records:
        if rec.get("step") != step or rec.get("host") != host:
            continue
        event = rec["event"]
        if event == "step-started":
            status = "running"
        elif event == "step-finished":
            status = "done" if rec.get("status") == "succeeded" else "failed"
        elif event in ("step-already-done", "step-skipped", "step-excluded") or (
            event == "gate-passed" and rec.get("decision") in ("confirm", "done")
        ):
            status = "done"
        elif event == "run-aborted":
            status = "failed"
        elif event == "step-checked" and rec.get("verdict") in _NOT_RUN:
            status = "done"
    return status


def _done_status(records: list[dict[str, Any]], step: str, host: str) -> str:
    """The store status of the journal's last word that ``step`` on ``host`` is done."""
    status = "succeeded"
    for rec in records:
        if rec.get("step") == step and rec.get("host") == host:
            if rec["event"] in ("step-skipped", "step-excluded"):
                status = "skipped"
            elif rec["event"] == "step-checked" and rec.get("verdict") in _NOT_RUN:
                status = _NOT_RUN[str(rec.get("verdict"))]
            elif rec["event"] == "step-already-done":
                status = "already-done"
            elif rec["event"] in ("step-finished", "gate-passed"):
                status = "succeeded"
    return status


def _run_finished(records: list[dict[str, Any]]) -> str | None:
    """The store status of the run's journaled end (``None``: not ended since it last
    started or resumed)."""
    last: dict[str, Any] | None = None
    for rec in records:
        if rec["event"] in ("run-started", "run-resumed", "run-finished"):
            last = rec
    if last is None or last["event"] != "run-finished":
        return None
    status = str(last.get("status"))
    return "aborted" if status == "rejected" else status


def _journaled_source(records: list[dict[str, Any]]) -> list[tuple[str, str, str | None]]:
    """``(store field, what, SHA-256)`` of the runbook and the environment file the journal
    says the run runs: ``run-started``'s, else the last ``change-accepted``'s.  A journal
    without them (none yet, an old format) says nothing."""
    started = records[0] if records and records[0].get("event") == "run-started" else {}
    found: dict[str, tuple[str, str | None]] = {}
    if isinstance(started.get("runbook"), dict):
        found["runbook"] = ("content_hash", started["runbook"].get("sha256"))
    if "environment" in started:
        env = started["environment"]
        found["environment"] = ("env_hash", env.get("sha256") if isinstance(env, dict) else None)
    for rec in records:
        what = rec.get("what")
        if rec.get("event") == "change-accepted" and what in found:
            found[what] = (found[what][0], rec.get("new_sha256"))
    return [(field, what, sha) for what, (field, sha) in found.items() if what != "runbook" or sha]


def reconcile(store: Store, run_id: str, journal: Journal | None = None) -> list[str]:
    """Set the store to what the journal of ``run_id`` supports; return the changes
    (journaled as ``store-reconciled`` when ``journal`` is given and there are any).

    A step the store calls done goes back to what the journal says; a step the store
    calls pending, running or awaiting whose journal says it is done (a kill between the
    journal write and the checkpoint, or a checkpoint the disk lost with the power: the
    runner's transitions do not wait for the disk) goes forward, and the decision stored
    for it is dropped; a step the store calls pending whose journal says it started goes
    to running (the command may have run: its check or a person decides).  The run's
    runbook and environment SHA-256 go back to what ``run-started`` (or the last
    ``change-accepted``) says: a resume reads and checks the source the journal names.
    """
    created = ensure_created(store, run_id)  # a kill between the row and the folder
    path = store.run_dir(run_id) / "journal.jsonl"
    records = read_journal(path, verify=False)
    changes: list[str] = created + settle_attachments(store.run_dir(run_id), records)
    for state in store.steps(run_id):
        said = journal_status(records, state.step_id, state.host)
        if state.status == "pending" and said == "running":  # the checkpoint never landed
            store.transition(
                run_id,
                state.step_id,
                state.host,
                "running",
                reason="reconciled: the journal says it started",
            )
            changes.append(f"step {state.step_id}@{state.host}: pending -> running")
            continue
        if state.status in ("pending", "running", "awaiting") and said == "done":
            ahead = _done_status(records, state.step_id, state.host)
            store.transition(
                run_id,
                state.step_id,
                state.host,
                ahead,
                reason=f"reconciled: the journal says it {ahead.replace('-', ' ')}",
                clear_gate=True,
            )
            changes.append(f"step {state.step_id}@{state.host}: {state.status} -> {ahead}")
            continue
        if state.status not in DONE_STATUSES or said == "done":
            continue
        back = said
        store.transition(
            run_id,
            state.step_id,
            state.host,
            back,
            reason=f"reconciled: the journal does not say {state.status}",
        )
        changes.append(f"step {state.step_id}@{state.host}: {state.status} -> {back}")
    record = store.get_run(run_id)
    for field, what, journaled in _journaled_source(records):
        stored = getattr(record, field)
        if stored != journaled:  # state.db or the team's database changed behind the journal
            store.update_run(run_id, **{field: journaled})
            changes.append(
                f"run: {what} sha256 {(stored or 'none')[:12]} -> {(journaled or 'none')[:12]} "
                "(as the journal says)"
            )
    ended = _run_finished(records)
    if record.status in _FINISHED_RUN and records and ended is None:
        store.update_run(run_id, status="interrupted", outcome=None)
        changes.append(f"run: {record.status} -> interrupted (no run-finished in the journal)")
    elif ended is not None and record.status != ended:
        store.update_run(run_id, status=ended)
        changes.append(f"run: {record.status} -> {ended} (as its run-finished says)")
    if changes and journal is not None:
        journal.append("store-reconciled", changes=changes)
    return changes


def settle_attachments(run_dir: Path, records: list[dict[str, Any]] | None = None) -> list[str]:
    """Finish or undo attachments a kill left under ``.attaching/``; return what was done.

    A copy the journal names (same path and SHA-256) is renamed into place; one it
    does not name was never part of the evidence and is removed.
    """
    staging = run_dir / STAGING_DIR
    if not staging.is_dir() or staging.is_symlink():
        return []
    if records is None:
        path = run_dir / JOURNAL_NAME
        records = read_journal(path, verify=False) if path.exists() else []
    named = {
        r["path"]: r.get("sha256")
        for r in records
        if r["event"] == "attachment-added" and isinstance(r.get("path"), str)
    }
    changes: list[str] = []
    for partial in sorted(staging.rglob("*"), reverse=True):
        if partial.is_dir() and not partial.is_symlink():
            with contextlib.suppress(OSError):
                partial.rmdir()
            continue
        rel = f"{ATTACHMENTS_DIR}/{partial.relative_to(staging).as_posix()}"
        target = run_dir / rel
        journaled = (
            rel in named
            and partial.is_file()
            and not partial.is_symlink()
            and not (target.exists() or target.is_symlink())
            and sha256_file(partial) == named[rel]
        )
        if journaled:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(partial, target)
            changes.append(f"attachment {rel}: journaled before a kill, put in place")
        else:
            partial.unlink()
            changes.append(f"attachment {rel}: copied but never journaled (a kill), removed")
    with contextlib.suppress(OSError):
        staging.rmdir()
    return changes
