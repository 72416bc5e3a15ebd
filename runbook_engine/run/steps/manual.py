"""``manual`` steps: instructions for a person, passed as a gate (confirm, skip, abort)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from runbook_engine.run.steps.base import Outcome, StepContext, StepExecutor

if TYPE_CHECKING:
    from runbook_engine.run.store import StepState
    from runbook_engine.source.model import Host
    from runbook_engine.tailor.tailoring import TailoredStep


class ManualStep(StepExecutor):
    """Executor of ``manual`` steps: the run's gate, nothing else."""

    def execute(
        self, ctx: StepContext, ts: TailoredStep, host: Host, state: StepState, checked: bool
    ) -> Outcome:
        """Show the instructions and wait for a decision (``pause`` when none yet)."""
        return ctx.gate(ts, host, state)
