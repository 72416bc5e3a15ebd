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

from typing import Any

from runbook_engine.evidence.journal import Journal, read_journal
from runbook_engine.run.store import DONE_STATUSES, CheckpointStore

_FINISHED_RUN = ("succeeded", "unverified", "aborted", "failed")


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
        elif event in ("step-already-done", "step-skipped") or (
            event == "gate-passed" and rec.get("decision") in ("confirm", "done")
        ):
            status = "done"
        elif event == "run-aborted":
            status = "failed"
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


def reconcile(store: CheckpointStore, run_id: str, journal: Journal | None = None) -> list[str]:
    """Set the store to what the journal of ``run_id`` supports; return the changes
    (journaled as ``store-reconciled`` when ``journal`` is given and there are any).

    A step the store calls done goes back to what the journal says; a step the store
    calls running whose journal says it succeeded (a kill between the journal write
    and the checkpoint) goes forward to succeeded.
    """
    path = store.run_dir(run_id) / "journal.jsonl"
    if not path.exists():
        return []
    records = read_journal(path, verify=False)
    changes: list[str] = []
    for state in store.steps(run_id):
        said = journal_status(records, state.step_id, state.host)
        if state.status == "running" and said == "done":  # killed between the two writes
            store.transition(
                run_id,
                state.step_id,
                state.host,
                "succeeded",
                reason="reconciled: the journal says it succeeded",
            )
            changes.append(f"step {state.step_id}@{state.host}: running -> succeeded")
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
