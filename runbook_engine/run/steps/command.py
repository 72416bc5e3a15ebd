"""Shell kinds (``cmd``, ``powershell``, ``sh``, ``bash``, ``python``) on a host's transport.

On a host a person reaches (the ``manual`` transport) the step is a gate that shows the
exact command.  Otherwise: its ``check=`` runs first (passed: already done), then the
body with ``retries`` and ``retry-delay``; a failure offers the ``backout=`` helper and
``on-failure`` decides whether the run stops.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from runbook_engine.run.steps.base import Outcome, StepContext, StepExecutor, failed
from runbook_engine.run.store import utcnow

if TYPE_CHECKING:
    from runbook_engine.run.store import StepState
    from runbook_engine.source.model import Host
    from runbook_engine.tailor.tailoring import TailoredStep


class CommandStep(StepExecutor):
    """Executor of the shell kinds."""

    def execute(
        self, ctx: StepContext, ts: TailoredStep, host: Host, state: StepState, checked: bool
    ) -> Outcome:
        """Run ``ts`` on ``host`` (see the module docstring)."""
        if ctx.by_hand(host):
            return ctx.gate(ts, host, state)
        if ts.step.check and not checked and ctx.check_done(ts, host):
            return "done"
        step = ts.step
        result = None
        for attempt in range(step.retries + 1):
            # step-started is journaled, then the running checkpoint committed, then the
            # command started (run_command): one journal write, one transaction.
            start = {"attempts": state.attempts + attempt + 1, "started_at": utcnow()}
            result = ctx.run_command(
                ts, host, ts.id, purpose="step", attempt=attempt + 1, start=start
            )
            if result is not None and result.ok:
                ctx.finish(ts, host, "succeeded", exit_code=result.exit_code)
                return "done"
            if attempt < step.retries:
                ctx.journal.append(
                    "step-retry",
                    step=ts.id,
                    host=host.name,
                    attempt=attempt + 1,
                    delay_seconds=step.retry_delay,
                )
                with ctx.released():
                    time.sleep(step.retry_delay)
        code = result.exit_code if result is not None else None
        reason = "timed out" if result is not None and result.timed_out else f"exit code {code}"
        ctx.finish(ts, host, "failed", exit_code=code, reason=reason)
        ctx.offer_backout(ts, host)
        return failed(ts)
