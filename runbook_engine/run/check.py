"""Check mode (``runbook run --check``): run only what reads, and say of every other step
whether it is already done, would change, or cannot be known without running it.

The runner hands each step on each host to :func:`check_step` instead of its executor.
The rule, in order:

1. A ``manual`` step, and any step of a host reached by hand (``manual`` transport), is
   **unknown**: check mode asks nobody.
2. The kind's own :meth:`~runbook_engine.run.steps.base.StepExecutor.preview`, when it
   has one: ``registry`` and ``service`` steps read the current value and compare it
   with the one they set (**already-done** / **would-change**); ``approval`` steps are
   **unknown**.
3. A step that only reads runs as in a real run and is **passed** or **failed**: the
   ``.precheck`` and ``.verify`` phases, kinds that change nothing (``probe``), and
   commands marked ``readonly=true`` — unless it names a ``backout=`` (a backout
   changes state).
4. A changing step with a ``check=`` runs that read-only check: passed is
   **already-done**, failed **would-change**, not run **unknown**.
5. Any other step is **unknown** and is not run.

Each verdict is journaled ``step-checked`` (``verdict``, ``detail``, and what was
read).  A step that did not run is stored ``skipped`` with its verdict as reason (a
check run is its own run, status ``checked``; nothing it stores counts for another run).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from runbook_engine.run.steps import executor_for
from runbook_engine.run.steps.base import Preview
from runbook_engine.source.kinds import KINDS

if TYPE_CHECKING:
    from runbook_engine.run.steps.base import Outcome, StepContext
    from runbook_engine.run.store import StepState
    from runbook_engine.source.model import Host, Step
    from runbook_engine.tailor.tailoring import TailoredStep

#: Verdicts, in the order summaries list them.
VERDICTS = ("already-done", "would-change", "unknown", "passed", "failed")


def only_reads(step: Step) -> bool:
    """True when ``step`` only reads and check mode may run it (rule 3 above)."""
    if step.backout or step.is_manual:
        return False
    info = KINDS.get(step.kind)
    return (
        step.phase in ("precheck", "verify")
        or step.readonly
        or (info is not None and not info.changes)
    )


def check_step(ctx: StepContext, ts: TailoredStep, host: Host, state: StepState) -> Outcome:
    """Check ``ts`` on ``host`` without changing anything; journal and store the verdict.

    Returns:
        ``"done"`` always: a check run goes on to the next step whatever it found.
    """
    preview = _preview(ctx, ts, host)
    if preview is None:  # a step that only reads: run it as a real run would
        executor_for(ts.step.kind).execute(ctx, ts, host, state, False)
        after = ctx.state(ts, host)
        verdict = "passed" if after.status in ("succeeded", "already-done") else "failed"
        detail = after.reason or (
            f"exit code {after.exit_code}" if after.exit_code is not None else ""
        )
        ctx.journal.append(
            "step-checked", step=ts.id, host=host.name, verdict=verdict, detail=detail
        )
        ctx.report.checked(ts, host, verdict, detail)
        return "done"
    ctx.journal.append(
        "step-checked",
        step=ts.id,
        host=host.name,
        verdict=preview.verdict,
        detail=preview.detail,
        **ctx.redactor.redact_obj(preview.fields),
    )
    status = "already-done" if preview.verdict == "already-done" else "skipped"
    ctx.finish(ts, host, status, reason=f"check mode: {preview.verdict}: {preview.detail}")
    ctx.report.checked(ts, host, preview.verdict, preview.detail)
    return "done"


def _preview(ctx: StepContext, ts: TailoredStep, host: Host) -> Preview | None:
    """The verdict of a step that is not run (``None``: it only reads; run it)."""
    step = ts.step
    if step.is_manual:
        return Preview("unknown", "a person's step: check mode asks nobody")
    if ctx.by_hand(host):
        return Preview("unknown", f"host {host.name} is reached by hand (manual transport)")
    own = executor_for(step.kind).preview(ctx, ts, host)
    if own is not None:
        return own
    if only_reads(step):
        return None
    if step.check:
        helper = ctx.loaded.tailored.helpers[step.check]
        result = ctx.run_command(helper, host, ts.id, purpose="check")
        if result is None:
            return Preview("unknown", f"its check {step.check!r} could not run")
        if result.ok:
            return Preview("already-done", f"its check {step.check!r} passed")
        return Preview(
            "would-change", f"its check {step.check!r} failed (exit code {result.exit_code})"
        )
    return Preview(
        "unknown",
        "changes state and has no check= to read first (mark a command that only "
        "reads readonly=true)",
    )


def verdict_counts(records: list[dict[str, object]]) -> dict[str, int]:
    """How many ``step-checked`` verdicts of each kind a journal holds (last per step/host)."""
    last: dict[tuple[object, object], str] = {}
    for rec in records:
        if rec.get("event") == "step-checked":
            last[(rec.get("step"), rec.get("host"))] = str(rec.get("verdict"))
    return {v: n for v in VERDICTS if (n := sum(1 for x in last.values() if x == v))}
