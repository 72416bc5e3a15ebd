"""``runbook confirm``, ``runbook approve`` and ``runbook reject``: decisions at a run's gates."""

from __future__ import annotations

from pathlib import Path

import click

from runbook_engine.cli.common import EXISTING_FILE, state_dir_or_default, state_option


@click.command()
@click.argument("run_id")
@click.argument("step")
@click.option("--as", "by", required=True, help="Who confirms (name).")
@click.option("--note", help="What was done, observed or attached.")
@click.option("--skip", "decision", flag_value="skip", help="Skip the step (needs --reason).")
@click.option("--abort", "decision", flag_value="abort", help="Abort the run at this step.")
@click.option("--rerun", "decision", flag_value="rerun", help="Run an interrupted step again.")
@click.option("--reason", help="Why the step is skipped.")
@click.option("--host", help="Only this host of the step's role (default: every host).")
@click.option(
    "--in-advance",
    is_flag=True,
    help="Decide a step the run has not reached yet (recorded as decided in advance, with "
    "the time; it counts as pre-answered, not attested).",
)
@click.option(
    "--attach",
    "attachments",
    multiple=True,
    type=EXISTING_FILE,
    metavar="FILE",
    help="Keep FILE as evidence of this gate (copied, SHA-256 journaled; repeatable).",
)
@state_option
def confirm(
    run_id: str,
    step: str,
    by: str,
    note: str | None,
    decision: str | None,
    reason: str | None,
    host: str | None,
    in_advance: bool,
    attachments: tuple[Path, ...],
    state_dir: Path | None,
) -> None:
    """Record a decision for a gate the run waits at; `runbook resume` then continues."""
    from runbook_engine.run.confirm import record_confirmation
    from runbook_engine.run.store import CheckpointStore

    store = CheckpointStore(state_dir_or_default(state_dir), create=False, run_id=run_id)
    hosts = record_confirmation(
        store,
        run_id,
        step,
        by,
        decision or "confirm",
        note,
        reason,
        host,
        attachments,
        in_advance=in_advance,
    )
    from runbook_engine.evidence.safeio import terminal_safe

    click.echo(
        terminal_safe(
            f"Recorded {decision or 'confirm'} of {step} on {', '.join(hosts)} by {by}; "
            f"continue with: runbook resume {run_id}"
        )
    )


def _vote(
    run_id: str, step: str, by: str, comment: str | None, state_dir: Path | None, decision: str
) -> None:
    from runbook_engine.run.approval import record_vote
    from runbook_engine.run.store import CheckpointStore

    store = CheckpointStore(state_dir_or_default(state_dir), create=False, run_id=run_id)
    from runbook_engine.evidence.safeio import terminal_safe

    click.echo(terminal_safe(record_vote(store, run_id, step, by, decision, comment)))


@click.command()
@click.argument("run_id")
@click.argument("step")
@click.option("--as", "by", required=True, help="Who approves (name; not the run's operator).")
@click.option("--comment", help="Comment recorded with the approval.")
@state_option
def approve(run_id: str, step: str, by: str, comment: str | None, state_dir: Path | None) -> None:
    """Approve approval step STEP of RUN_ID (the run waits there); `runbook resume` then goes on."""
    _vote(run_id, step, by, comment, state_dir, "approve")


@click.command()
@click.argument("run_id")
@click.argument("step")
@click.option("--as", "by", required=True, help="Who rejects (name; an approver of the step).")
@click.option("--comment", help="Why (recorded).")
@state_option
def reject(run_id: str, step: str, by: str, comment: str | None, state_dir: Path | None) -> None:
    """Reject approval step STEP of RUN_ID: the run stops (aborted, rejected) at its next resume."""
    _vote(run_id, step, by, comment, state_dir, "reject")
