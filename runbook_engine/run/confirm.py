"""``runbook confirm``: record a person's decision for a gate of a paused run.

Attached files (``--attach``: screenshots, exported settings) are copied into
``runs/RUN_ID/attachments/STEP/`` and each is journaled (``attachment-added``)
with its path, size and SHA-256 before the decision, so the gate's attestation
and its evidence are in the same hash chain.  A file is journaled before it is
visible: copied under ``.attaching/``, journaled, then renamed into place.

The run lock (:mod:`runbook_engine.run.runlock`) is held from the checks to the
last record, and every free-text field (``--as``, ``--note`` (a skip's reason), an
attachment's name) is redacted with the run's secrets before it is stored or
journaled, as the runner redacts what it writes.  Records are signed when the
run's key is at hand; otherwise the run's next signed record covers them.
"""

from __future__ import annotations

from pathlib import Path

from runbook_engine.errors import InputError, RunbookError, StateError
from runbook_engine.evidence.signing import open_run_journal
from runbook_engine.run.attachments import keep_attachment
from runbook_engine.run.free_text import run_redactor
from runbook_engine.run.gates import authenticated_fields
from runbook_engine.run.reconcile import settle_attachments
from runbook_engine.run.recovery import ensure_created
from runbook_engine.run.runlock import WAIT_SECONDS
from runbook_engine.run.store import DONE_STATUSES, GateDecision, RunRecord, utcnow
from runbook_engine.run.store_api import Store


def record_confirmation(
    store: Store,
    run_id: str,
    step_id: str,
    by: str,
    decision: str,
    note: str | None,
    reason: str | None,
    host: str | None,
    attachments: tuple[Path, ...] = (),
    *,
    in_advance: bool = False,
    auth_method: str | None = None,
) -> list[str]:
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
        attachments: Files to keep as evidence of this gate (copied, hashed, journaled).
        in_advance: Decide a step the run has not reached (``pending``): recorded with
            source ``cli-in-advance`` and its real time, and counted as pre-answered.
        auth_method: How ``by`` was authenticated (``password``, ``oidc``,
            ``proxy-header``: the web console); ``None`` for a name only given (``--as``).
            Journaled as ``authenticated: true`` with the method, source ``console``.

    Returns:
        The host names the decision was recorded for.

    Raises:
        StateError: unknown run or step, the step is finished already, it is not waiting
            for a decision (not reached, without ``in_advance``; or running now).
        InputError: a skip without a reason, an empty name, an attachment that
            cannot be read, an approval step (those take `runbook approve`).
    """
    if not by.strip():
        raise InputError("--as needs a name")
    if decision == "skip" and not reason:
        raise InputError("--skip needs --note: say why the step is skipped")
    with store.lock_run(run_id, wait=WAIT_SECONDS):
        return _record(
            store,
            run_id,
            step_id,
            by,
            decision,
            note,
            reason,
            host,
            attachments,
            in_advance,
            auth_method,
        )


def _record(
    store: Store,
    run_id: str,
    step_id: str,
    by: str,
    decision: str,
    note: str | None,
    reason: str | None,
    host: str | None,
    attachments: tuple[Path, ...],
    in_advance: bool,
    auth_method: str | None = None,
) -> list[str]:
    record = store.get_run(run_id)
    if record.status in ("succeeded", "unverified", "aborted"):
        raise StateError(f"run {run_id} is finished ({record.status})")
    ensure_created(store, run_id)  # a kill between the run's row and its folder
    states = [s for s in store.steps(run_id) if s.step_id == step_id]
    if not states:
        raise StateError(
            f"run {run_id} has no step {step_id!r}; `runbook status {run_id}` lists them"
        )
    if host is not None:
        states = [s for s in states if s.host == host]
        if not states:
            raise StateError(f"step {step_id!r} of run {run_id} does not run on host {host!r}")
    if _is_approval(store, record, step_id):
        raise InputError(
            f"{step_id!r} is an approval step: approvers pass it with `runbook "
            f"approve {run_id} {step_id} --as NAME` (or `runbook reject`)"
        )
    open_states = [s for s in states if s.status not in DONE_STATUSES]
    if not open_states:
        raise StateError(
            f"step {step_id!r} of run {run_id} is finished already "
            f"({states[0].status}); nothing to confirm"
        )
    run_state = record.status
    for state in open_states:
        waiting = state.status == "awaiting" or (
            state.status == "running" and run_state != "running"  # interrupted, not executing
        )
        if waiting or (in_advance and state.status == "pending"):
            continue
        if state.status == "pending":
            raise StateError(
                f"step {step_id!r} of run {run_id} on {state.host} has not been reached: "
                "decide it when the run waits there, or add --in-advance to decide it ahead "
                "(recorded as decided in advance)"
            )
        raise StateError(
            f"step {step_id!r} of run {run_id} on {state.host} is running now; a decision "
            "is taken only while the run waits at the step"
        )
    if decision == "rerun":
        not_running = [s.host for s in open_states if s.status != "running"]
        if not_running:
            raise InputError(
                f"--rerun applies to a step that was interrupted while running; "
                f"{step_id!r} on {', '.join(not_running)} was not"
            )
    redactor = run_redactor(record, store)
    by, note, reason = (
        redactor.redact(by.strip()),
        redactor.redact(note) if note is not None else None,
        redactor.redact(reason) if reason is not None else None,
    )
    journal = open_run_journal(store.state_dir, store.run_dir(run_id), run_id, redactor)
    settled = settle_attachments(store.run_dir(run_id))
    if settled:
        journal.append("store-reconciled", changes=settled)
    kept = [
        keep_attachment(journal, store.run_dir(run_id), step_id, path, by, redactor, auth_method)
        for path in attachments
    ]
    for state in open_states:
        source = "cli-in-advance" if state.status == "pending" else "cli"
        if auth_method:  # the store keeps how the person signed in with the source
            source = "console-in-advance" if state.status == "pending" else "console"
        store.put_gate(
            GateDecision(
                run_id,
                step_id,
                state.host,
                decision,
                by,
                note if decision != "skip" else reason,
                f"{source}:{auth_method}" if auth_method else source,
                utcnow(),
            )
        )
        journal.append(
            "gate-decision-recorded",
            step=step_id,
            host=state.host,
            decision=decision,
            by=by,
            note=note,
            reason=reason,
            source=source,
            attachments=kept or None,
            **authenticated_fields(auth_method),
        )
    return [s.host for s in open_states]


def _is_approval(store: Store, record: RunRecord, step_id: str) -> bool:
    from runbook_engine.run.approval import KIND
    from runbook_engine.run.snapshot import source_of_run
    from runbook_engine.source.parser import parse_file

    try:
        source = source_of_run(store, record)  # the run's copy where the file is not here
        with source.reading():
            return parse_file(source.runbook).step(step_id).kind == KIND
    except (RunbookError, KeyError, OSError):
        return False
