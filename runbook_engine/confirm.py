"""``runbook confirm``: record a person's decision for a gate of a paused run."""

from __future__ import annotations

from pathlib import Path

from runbook_engine.errors import InputError, StateError
from runbook_engine.journal import Journal
from runbook_engine.store import DONE_STATUSES, CheckpointStore, GateDecision, utcnow


def record_confirmation(store: CheckpointStore, run_id: str, step_id: str, by: str, decision: str,
                        note: str | None, reason: str | None, host: str | None) -> list[str]:
    """Store ``decision`` for step ``step_id`` of run ``run_id`` and journal it.

    Args:
        store: The checkpoint store.
        run_id: The run.
        step_id: A step of the run that is not finished.
        by: Who decides.
        decision: ``confirm``, ``skip``, ``abort`` or ``rerun``.
        note: Free text.
        reason: Why (required for ``skip``).
        host: Only this host; ``None`` for every unfinished host of the step.

    Returns:
        The host names the decision was recorded for.

    Raises:
        StateError: unknown run or step, or the step is finished already.
        InputError: a skip without a reason, an empty name.
    """
    if not by.strip():
        raise InputError("--as needs a name")
    if decision == "skip" and not reason:
        raise InputError("--skip needs --reason: say why the step is skipped")
    record = store.get_run(run_id)
    if record.status in ("succeeded", "unverified", "aborted"):
        raise StateError(f"run {run_id} is finished ({record.status})")
    states = [s for s in store.steps(run_id) if s.step_id == step_id]
    if not states:
        raise StateError(f"run {run_id} has no step {step_id!r}; `runbook status {run_id}` lists them")
    if host is not None:
        states = [s for s in states if s.host == host]
        if not states:
            raise StateError(f"step {step_id!r} of run {run_id} does not run on host {host!r}")
    open_states = [s for s in states if s.status not in DONE_STATUSES]
    if not open_states:
        raise StateError(f"step {step_id!r} of run {run_id} is finished already "
                         f"({states[0].status}); nothing to confirm")
    if decision == "rerun":
        not_running = [s.host for s in open_states if s.status != "running"]
        if not_running:
            raise InputError(f"--rerun applies to a step that was interrupted while running; "
                             f"{step_id!r} on {', '.join(not_running)} was not")
    journal = Journal(Path(store.run_dir(run_id)) / "journal.jsonl")
    for state in open_states:
        store.put_gate(GateDecision(run_id, step_id, state.host, decision, by.strip(),
                                    note if decision != "skip" else reason, "cli", utcnow()))
        journal.append("gate-decision-recorded", step=step_id, host=state.host, decision=decision,
                       by=by.strip(), note=note, reason=reason, source="cli")
    return [s.host for s in open_states]
