"""``console``/``shell-session`` steps: the commands of a transcript, run by the host's shell.

The commands after the prompts (:mod:`runbook_engine.source.console`) run as one script
of the transcript's shell (``$ `` → ``sh``, ``PS>`` → ``powershell``) with errexit on,
like any command step; the other lines are expected output, compared when the step says
``expect=exact`` or ``expect=lines`` (default ``expect=none``: shown, not compared, since
pasted output holds names and times of the day it was pasted); each comparison is
journaled (``output-compared``, with ``matched``).  On a host reached by hand
the step is a gate showing the transcript as written.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from runbook_engine.run.steps.base import Outcome, StepContext, StepExecutor, failed
from runbook_engine.run.store import utcnow
from runbook_engine.source.console import output_matches, parse_transcript

if TYPE_CHECKING:
    from runbook_engine.run.store import StepState
    from runbook_engine.source.model import Host
    from runbook_engine.tailor.tailoring import TailoredStep


class ConsoleStep(StepExecutor):
    """Executor of transcripts."""

    def execute(
        self, ctx: StepContext, ts: TailoredStep, host: Host, state: StepState, checked: bool
    ) -> Outcome:
        """Run the transcript's commands on ``host`` and compare their output (module doc)."""
        if ctx.by_hand(host):
            return ctx.gate(ts, host, state)
        if ts.step.check and not checked and ctx.check_done(ts, host):
            return "done"
        transcript = parse_transcript(ts.body)
        script = replace(
            ts, step=replace(ts.step, kind=transcript.shell), run_body=transcript.script
        )
        ctx.transition(ts, host, "running", attempts=state.attempts + 1, started_at=utcnow())
        result = ctx.run_command(script, host, ts.id, purpose="step")
        mode = ts.step.attrs.get("expect", "none")
        if result is not None and result.ok:
            matched = mode == "none" or output_matches(transcript.expected, result.stdout, mode)
            if mode != "none":
                ctx.journal.append(
                    "output-compared", step=ts.id, host=host.name, expect=mode, matched=matched
                )
            if matched:
                ctx.finish(ts, host, "succeeded", exit_code=result.exit_code)
                return "done"
            reason = f"output differs from the transcript (expect={mode})"
        else:
            code = result.exit_code if result is not None else None
            reason = "timed out" if result is not None and result.timed_out else f"exit code {code}"
        ctx.finish(
            ts, host, "failed", exit_code=result.exit_code if result else None, reason=reason
        )
        ctx.offer_backout(ts, host)
        return failed(ts)
