"""``runbook confirm``, ``runbook approve`` and ``runbook reject``: decisions at a run's gates.

One free-text option, ``--note``, for notes, reasons and comments: with ``confirm --skip``
it is the reason (journaled as ``reason``).  The old names (``confirm --reason``,
``approve/reject --comment``) still work, hidden, with a warning on standard error.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from runbook_engine.cli.common import (
    EXISTING_FILE,
    json_option,
    note_option,
    open_store,
    state_option,
    warn_old_name,
)
from runbook_engine.cli.remote import Remote, server_option, show_decision
from runbook_engine.cli.team import queue_url_option, resume_when_decided
from runbook_engine.errors import InputError


def _need_name(by: str | None) -> str:
    if not by:
        raise InputError("--as NAME is required (or act through a console: --server URL)")
    return by


@click.command()
@click.argument("run_id")
@click.argument("step")
@click.option("--as", "by", help="Who confirms (name; with --server: the token's account).")
@note_option("What was done, observed or attached; with --skip, why the step is skipped.")
@click.option("--skip", "decision", flag_value="skip", help="Skip the step (needs --note).")
@click.option("--abort", "decision", flag_value="abort", help="Abort the run at this step.")
@click.option("--rerun", "decision", flag_value="rerun", help="Run an interrupted step again.")
@click.option("--reason", "old_reason", hidden=True, help="Old name: --note.")
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
    help="Keep FILE as evidence of this gate (copied, SHA-256 journaled; repeatable; "
    "with --server: uploaded, bounded in size and type by the console).",
)
@server_option
@state_option
@queue_url_option
@json_option
def confirm(
    run_id: str,
    step: str,
    by: str | None,
    note: str | None,
    decision: str | None,
    old_reason: str | None,
    host: str | None,
    in_advance: bool,
    attachments: tuple[Path, ...],
    server: str | None,
    state_dir: Path | None,
    queue_url: str | None,
    as_json: bool,
) -> None:
    """Record a decision for a gate the run waits at; `runbook resume` then continues
    (for a run started with `run --queue`, a worker resumes it).

    Decisions: confirm (the default), --skip, --abort, --rerun: the words answers files
    and `notebook run --decide` use.
    """
    from runbook_engine.run.confirm import record_confirmation

    decision = decision or "confirm"
    if server:
        if old_reason is not None:
            warn_old_name("--reason", "--note")
        data = Remote(server).decide(
            run_id,
            step,
            decision,
            by,
            note or old_reason,
            host=host,
            in_advance=in_advance,
            attachments=attachments,
        )
        show_decision(data, as_json)
        return
    by = _need_name(by)
    reason = old_reason
    if old_reason is not None:
        warn_old_name("--reason", "--note")
    elif decision == "skip":  # the one free text of a skip is its reason
        reason, note = note, None
    store = open_store(state_dir, create=False, run_id=run_id)
    hosts = record_confirmation(
        store,
        run_id,
        step,
        by,
        decision,
        note,
        reason,
        host,
        attachments,
        in_advance=in_advance,
    )
    queued = "" if in_advance else resume_when_decided(queue_url, store, run_id, None)
    if queued:
        click.echo(queued, err=True)
    if as_json:
        click.echo(
            json.dumps(
                {"run_id": run_id, "step": step, "hosts": hosts, "decision": decision, "by": by},
                indent=2,
            )
        )
        return
    from runbook_engine.evidence.safeio import terminal_safe
    from runbook_engine.run.hints import locate, location_args

    then = _worker_resumes(queued) or f"continue with: runbook resume {run_id}"
    click.echo(
        terminal_safe(
            locate(
                f"Recorded {decision} of {step} on {', '.join(hosts)} by {by}; {then}",
                location_args(store),
            )
        )
    )


def _worker_resumes(queued: str) -> str | None:
    """What comes next after a decision, when ``queued`` (resume_when_decided's line) says a
    worker's resume is on the queue; None when the person must run ``runbook resume``."""
    if "queued for a worker" in queued or "resume is queued already" in queued:
        return "a worker resumes the run"
    return None


def _vote(
    run_id: str,
    step: str,
    by: str | None,
    note: str | None,
    state_dir: Path | None,
    decision: str,
    as_json: bool,
    server: str | None = None,
    queue_url: str | None = None,
    attachments: tuple[Path, ...] = (),
) -> None:
    from runbook_engine.run.approval import record_vote

    if server:
        remote = Remote(server)
        data = remote.decide(run_id, step, decision, by, note, attachments=attachments)
        show_decision(data, as_json)
        return
    by = _need_name(by)
    store = open_store(state_dir, create=False, run_id=run_id)
    recorded = record_vote(store, run_id, step, by, decision, note, attachments=attachments)
    queued = ""
    if decision == "reject" or recorded.approvals >= recorded.required:  # the gate is decided
        queued = resume_when_decided(queue_url, store, run_id, None)
        if queued:
            click.echo(queued, err=True)
    if as_json:
        click.echo(json.dumps(recorded.to_dict(), indent=2))
        return
    from runbook_engine.evidence.safeio import terminal_safe
    from runbook_engine.run.hints import locate, location_args

    then = _worker_resumes(queued)
    click.echo(terminal_safe(locate(recorded.text(then), location_args(store))))


@click.command()
@click.argument("run_id")
@click.argument("step")
@click.option(
    "--as",
    "by",
    help="Who approves (name; not the run's operator; with --server: the token's account).",
)
@note_option("Note recorded with the approval.", old_names=("--comment",))
@click.option(
    "--attach",
    "attachments",
    multiple=True,
    type=EXISTING_FILE,
    metavar="FILE",
    help="Keep FILE as evidence of this vote (copied, SHA-256 journaled; repeatable).",
)
@server_option
@state_option
@queue_url_option
@json_option
def approve(
    run_id: str,
    step: str,
    by: str | None,
    note: str | None,
    attachments: tuple[Path, ...],
    server: str | None,
    state_dir: Path | None,
    queue_url: str | None,
    as_json: bool,
) -> None:
    """Approve approval step STEP of RUN_ID (the run waits there); `runbook resume` then goes on."""
    _vote(run_id, step, by, note, state_dir, "approve", as_json, server, queue_url, attachments)


@click.command()
@click.argument("run_id")
@click.argument("step")
@click.option(
    "--as",
    "by",
    help="Who rejects (name; an approver of the step; with --server: the token's account).",
)
@note_option("Why (recorded).", old_names=("--comment",))
@click.option(
    "--attach",
    "attachments",
    multiple=True,
    type=EXISTING_FILE,
    metavar="FILE",
    help="Keep FILE as evidence of this vote (copied, SHA-256 journaled; repeatable).",
)
@server_option
@state_option
@queue_url_option
@json_option
def reject(
    run_id: str,
    step: str,
    by: str | None,
    note: str | None,
    attachments: tuple[Path, ...],
    server: str | None,
    state_dir: Path | None,
    queue_url: str | None,
    as_json: bool,
) -> None:
    """Reject approval step STEP of RUN_ID: the run stops (outcome rejected) at its next resume."""
    _vote(run_id, step, by, note, state_dir, "reject", as_json, server, queue_url, attachments)
