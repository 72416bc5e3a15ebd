"""``approval`` steps at run time: count the journaled votes, pass, reject or wait.

The rules (quorum, separation of duties, expiry) are in :mod:`runbook_engine.run.approval`;
votes are given with ``runbook approve|reject`` while the run waits here.  This executor
also refuses a run whose approval policy or bodies are wrong before it starts, and guards
every changing step of a runbook that requires approval.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from runbook_engine.run.approval import (
    KIND,
    allowed_people,
    check_bodies,
    check_policy,
    is_changing,
    operators,
    parse_approval,
    tally,
    votes,
)
from runbook_engine.run.steps.base import Outcome, Preview, StepContext, StepExecutor

if TYPE_CHECKING:
    from runbook_engine.run.options import RunOptions
    from runbook_engine.run.store import StepState
    from runbook_engine.source.model import Host
    from runbook_engine.tailor.tailoring import TailoredRunbook, TailoredStep


class ApprovalStep(StepExecutor):
    """Executor of ``approval`` steps; other kinds' steps are guarded by :meth:`guard`."""

    guarded = False
    guard_event = "approval-missing"

    def preview(self, ctx: StepContext, ts: TailoredStep, host: Host) -> Preview | None:
        """Check mode never asks for approval: the step is unknown."""
        return Preview("unknown", "an approval gate: not asked for in check mode")

    def execute(
        self, ctx: StepContext, ts: TailoredStep, host: Host, state: StepState, checked: bool
    ) -> Outcome:
        """Decide the approval step: ``done``, ``reject`` or ``pause``."""
        return pass_gate(ctx, ts, host, state.status == "awaiting")

    def check_run(self, tailored: TailoredRunbook, options: RunOptions) -> None:
        """Refuse bad approval bodies (or an operator who approves their own run) and a
        runbook that requires approval without an approval step (exit 2)."""
        check_bodies(tailored, options.operator)
        check_policy(tailored, options.emergency)

    def guard(self, ctx: StepContext, ts: TailoredStep) -> str | None:
        """See :func:`guard`."""
        return guard(ctx, ts)

    def pause_hint(self, run_id: str, step_id: str) -> str:
        """How approvers give their approval, and how the run continues."""
        return (
            f"run {run_id} is waiting for approval at {step_id}: approvers give it with "
            f"`runbook approve {run_id} {step_id} --as NAME [--note TEXT]` (or `runbook "
            f"reject ...`), then `runbook resume {run_id}`"
        )


def pass_gate(ctx: StepContext, ts: TailoredStep, host: Host, awaiting: bool) -> Outcome:
    """Decide an approval step: ``done``, ``reject`` or ``pause``.

    Journals ``approval-bypassed`` (emergency), ``approval-passed`` or
    ``approval-rejected`` (each signed), or ``approval-requested`` the first time
    the run waits here.
    """
    spec = parse_approval(ts.body, ts.step.span.path, ts.step.body_line)
    allowed = allowed_people(spec, ctx.loaded.environment)
    if ctx.options.emergency:
        ctx.append_signed(
            "approval-bypassed",
            step=ts.id,
            host=host.name,
            reason=ctx.options.reason,
            by=ctx.options.operator,
        )
        ctx.finish(ts, host, "skipped", reason=f"emergency: {ctx.options.reason}")
        return "done"
    from runbook_engine.evidence.journal import read_journal

    records = read_journal(ctx.journal.path)
    count = tally(spec, allowed, votes(records, ts.id), operators(records), datetime.now(UTC))
    discarded = [{**v.to_dict(), "why": why} for v, why in count.discarded]
    if count.rejection is not None:
        ctx.append_signed(
            "approval-rejected",
            step=ts.id,
            host=host.name,
            **count.rejection.to_dict(),
            discarded=discarded,
        )
        ctx.finish(ts, host, "failed", reason=f"rejected by {count.rejection.by}")
        _say(ctx, f"  ✗ rejected by {count.rejection.by}")
        return "reject"
    if count.reached:
        ctx.append_signed(
            "approval-passed",
            step=ts.id,
            host=host.name,
            required=spec.required,
            approvals=[v.to_dict() for v in count.approvals],
            discarded=discarded,
        )
        names = ", ".join(v.by for v in count.approvals)
        ctx.finish(ts, host, "succeeded", reason=f"approved by {names}")
        _say(ctx, f"  ✓ approved by {names}")
        return "done"
    _expired(ctx, ts, host, records, count.discarded, spec.expires_hours)
    if not awaiting:
        plural = "" if spec.required == 1 else "s"
        ctx.transition(ts, host, "awaiting", reason=f"waiting for {spec.required} approval{plural}")
        ctx.journal.append(
            "approval-requested",
            step=ts.id,
            host=host.name,
            required=spec.required,
            approvers=sorted(allowed.values()),
            expires_hours=spec.expires_hours,
        )
    others = sorted(name for key, name in allowed.items() if key not in operators(records))
    _say(
        ctx,
        f"  waiting for approval: {len(count.approvals)} of {spec.required} "
        f"(approvers: {', '.join(others)})",
    )
    return "pause"


def guard(ctx: StepContext, ts: TailoredStep) -> str | None:
    """Refuse a changing step when approval is required and no approval step has passed.

    Returns:
        ``None`` when the step may run, else a reason (journaled by the caller).
    """
    if ctx.loaded.runbook.meta.get("approval") != "required" or ctx.options.emergency:
        return None
    if not is_changing(ts.step):
        return None
    kinds = {s.id: s.step.kind for s in ctx.loaded.tailored.steps}
    for state in ctx.store.steps(ctx.run_id):
        if kinds.get(state.step_id) == KIND and state.status == "succeeded":
            return None
    return (
        f"the runbook requires approval and no approval step has passed before {ts.id!r}; "
        "the step was not run"
    )


def _expired(
    ctx: StepContext,
    ts: TailoredStep,
    host: Host,
    records: list[dict[str, Any]],
    discarded: tuple[tuple[Any, str], ...],
    hours: float | None,
) -> None:
    """Journal ``approval-expired`` once for each approval found expired while the step
    still waits (what notifications tell approvers); the sweep of ``runbook serve`` and
    ``runbook worker`` writes the same records (:mod:`runbook_engine.run.expiry`)."""
    from runbook_engine.run.expiry import expired_records

    for fields in expired_records(ts.id, host.name, records, discarded, hours):
        ctx.journal.append("approval-expired", **fields)


def _say(ctx: StepContext, text: str) -> None:
    if not ctx.report.quiet:
        from rich.markup import escape

        ctx.report.console.print(escape(text))
