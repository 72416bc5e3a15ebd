"""``probe`` steps: a verification probe (tcp, tls, http, imap, smtp, dns) run from the
operator's machine, whatever the step's host; what it saw is journaled."""

from __future__ import annotations

from typing import TYPE_CHECKING

from runbook_engine.run.steps.base import Outcome, StepContext, StepExecutor, failed
from runbook_engine.run.store import utcnow

if TYPE_CHECKING:
    from runbook_engine.run.store import StepState
    from runbook_engine.source.model import Host
    from runbook_engine.tailor.tailoring import TailoredStep


class ProbeStep(StepExecutor):
    """Executor of ``probe`` steps (see :mod:`runbook_engine.probes`)."""

    def execute(
        self, ctx: StepContext, ts: TailoredStep, host: Host, state: StepState, checked: bool
    ) -> Outcome:
        """Run the probe; succeeded when it saw what the body asks for."""
        from runbook_engine.probes import describe_probe, parse_probe, run_probe

        spec = parse_probe(ts.body, ts.step.span.path, ts.step.body_line)
        ctx.transition(ts, host, "running", attempts=1, started_at=utcnow())
        ctx.journal.append("probe-started", step=ts.id, host=host.name, probe=describe_probe(spec))
        result = run_probe(spec)
        ctx.journal.append(
            "probe-finished",
            step=ts.id,
            host=host.name,
            status="succeeded" if result.ok else "failed",
            **{"result": ctx.redactor.redact_obj(result.to_dict())},
        )
        ctx.report.probe(ts, result)
        if result.ok:
            ctx.finish(ts, host, "succeeded", reason=result.message)
            return "done"
        ctx.finish(ts, host, "failed", reason=result.message)
        return failed(ts)
