"""Where a person decides during a run: the gates and backout offers of :class:`RunContext`.

:class:`GateServices` is the part of :class:`~runbook_engine.run.context.RunContext` that
stops for a person (a manual step, a command on a host reached by hand), journals and
checkpoints what they decided, and offers a failed step's backout.  It uses the
context's journal, store, reporter and commands; it holds no state of its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runbook_engine.run.faults import crash_point
from runbook_engine.run.gates import Decision, prompt_gate, stored_source

if TYPE_CHECKING:
    from runbook_engine.evidence.signing import SignedJournal
    from runbook_engine.run.options import RunOptions
    from runbook_engine.run.reporter import Reporter
    from runbook_engine.run.steps.base import Outcome
    from runbook_engine.run.store import CheckpointStore, StepState
    from runbook_engine.source.model import Host
    from runbook_engine.tailor.loading import Loaded
    from runbook_engine.tailor.tailoring import TailoredStep
    from runbook_engine.transports import CommandResult


class GateServices:
    """Gates and backouts of a run; mixed into
    :class:`~runbook_engine.run.context.RunContext`, which provides what is declared here."""

    store: CheckpointStore
    run_id: str
    loaded: Loaded
    options: RunOptions
    journal: SignedJournal
    report: Reporter

    if TYPE_CHECKING:

        def shown(self, step_id: str) -> TailoredStep: ...
        def append_signed(self, event: str, **fields: Any) -> dict[str, Any]: ...
        def transition(self, ts: TailoredStep, host: Host, status: str, **fields: Any) -> None: ...
        def finish(self, ts: TailoredStep, host: Host, status: str, **fields: Any) -> None: ...
        def settle(self) -> None: ...
        def by_hand(self, host: Host) -> bool: ...
        def run_command(
            self, ts: TailoredStep, host: Host, step_id: str, *, purpose: str
        ) -> CommandResult | None: ...

    # -- gates --------------------------------------------------------------------------------
    def decision(
        self, ts: TailoredStep, host: Host, question: str, choices: tuple[str, ...]
    ) -> Decision | None:
        """A decision for the gate of ``ts`` on ``host``: stored by ``runbook confirm``,
        pre-answered in the answers file, or asked on the terminal; ``None`` otherwise.

        A stored decision stays stored until :meth:`apply` has journaled it (a kill in
        between does not make the person decide again)."""
        stored = self.store.peek_gate(self.run_id, ts.id, host.name)
        if stored is not None:  # kept in the store until the journal says what became of it
            crash_point("after-take-gate")
            skip = stored.decision == "skip"
            return Decision(
                stored.decision,
                stored.by,
                note=None if skip else stored.note,
                reason=stored.note if skip else None,
                **stored_source(stored.source),
                decided_at=stored.at,
            )
        if self.options.answers is not None:
            found = self.options.answers.decision(ts.id)
            if found is not None:
                return found
        if self.options.interactive:
            self.settle()  # the terminal shows everything the person is asked after
            return prompt_gate(
                self.report.console,
                f"Step {ts.number}: {ts.step.display_title()}",
                question,
                self.options.operator,
                choices=choices,
            )
        return None

    def gate(
        self,
        ts: TailoredStep,
        host: Host,
        state: StepState,
        shown: TailoredStep | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Outcome:
        """Stop for a person: a manual step, or a command on a ``manual`` host.

        Args:
            shown: What the person is shown, when not the step as written (a
                declarative step shows its compiled commands).
            extra: More fields for the ``gate-awaiting`` event.
        """
        shown = shown or self.shown(ts.id)
        kind = "manual" if ts.step.is_manual else "command-by-hand"
        self.report.gate(shown, host, kind)
        if ts.step.check:
            self.report.check_hint(self.shown(ts.step.check), host)
        decision = self.decision(ts, host, "Done as shown?", ("confirm", "skip", "abort"))
        if decision is not None and decision.decision == "done":
            decision = decision.renamed("confirm")
        if decision is not None and decision.decision == "rerun":
            self.journal.append(
                "gate-decision-ignored",
                step=ts.id,
                host=host.name,
                reason="'rerun' applies only to an interrupted step",
                **decision.journal_fields(),
            )
            self.store.drop_gate(self.run_id, ts.id, host.name)
            decision = None
        if decision is None:
            if state.status != "awaiting":
                self.transition(ts, host, "awaiting", reason="waiting for confirmation")
                self.journal.append(
                    "gate-awaiting",
                    step=ts.id,
                    host=host.name,
                    gate=kind,
                    instructions=shown.body,
                    **(extra or {}),
                )
            return "pause"
        return self.apply(ts, host, decision, kind, shown.body)

    def apply(
        self, ts: TailoredStep, host: Host, decision: Decision, kind: str, body: str
    ) -> Outcome:
        """Journal and checkpoint a person's ``decision`` at a gate of kind ``kind``."""
        if decision.decision in ("confirm", "done"):
            self.append_signed(
                "gate-passed",
                step=ts.id,
                host=host.name,
                gate=kind,
                command_shown=body if kind == "command-by-hand" else None,
                instructions_shown=body if kind == "manual" else None,
                **decision.journal_fields(),
            )
            self.finish(
                ts,
                host,
                "succeeded",
                reason=f"confirmed by {decision.by} ({decision.source})",
                clear_gate=True,
            )
            self.report.passed(ts, host, decision)
            return "done"
        if decision.decision == "skip":
            self.append_signed(
                "step-skipped", step=ts.id, host=host.name, gate=kind, **decision.journal_fields()
            )
            self.finish(ts, host, "skipped", reason=decision.reason or "skipped", clear_gate=True)
            self.report.passed(ts, host, decision)
            return "done"
        if decision.decision == "rerun":
            self.append_signed(
                "gate-passed", step=ts.id, host=host.name, gate=kind, **decision.journal_fields()
            )
            self.store.drop_gate(self.run_id, ts.id, host.name)
            return "rerun"
        self.append_signed("run-aborted", step=ts.id, host=host.name, **decision.journal_fields())
        self.finish(ts, host, "failed", reason=f"aborted by {decision.by}", clear_gate=True)
        return "abort"

    # -- backouts -----------------------------------------------------------------------------
    def offer_backout(self, ts: TailoredStep, host: Host) -> None:
        """Offer the ``backout=`` helper of failed step ``ts``; run it when agreed."""
        if not ts.step.backout:
            return
        backout = self.loaded.tailored.helpers[ts.step.backout]
        shown = self.shown(backout.id)
        wanted, source = self.backout_wanted(ts, shown, host)
        self.journal.append(
            "backout-offered",
            step=ts.id,
            host=host.name,
            backout=backout.id,
            decision=wanted or "not-answered",
            source=source,
            command=shown.body,
        )
        if wanted != "run":
            self.report.backout_offer(ts, shown, host)
            return
        if backout.step.is_manual or self.by_hand(host) or not backout.step.is_command:
            self.journal.append("backout-by-hand", step=ts.id, backout=backout.id, host=host.name)
            return
        result = self.run_command(backout, host, ts.id, purpose="backout")
        self.report.backout_done(ts, result)

    def backout_wanted(
        self, ts: TailoredStep, shown: TailoredStep, host: Host
    ) -> tuple[str | None, str | None]:
        """Whether to run the backout of failed step ``ts``, and who said so.

        Returns:
            ``(wanted, source)``: ``run``/``skip`` and ``answers-file`` or ``terminal``;
            ``(None, None)`` when nobody said (no answer in the file, no terminal).
        """
        decision = self.options.answers.decision(ts.id) if self.options.answers else None
        wanted = decision.backout if decision else None
        if wanted is not None:
            return wanted, "answers-file"
        if self.options.interactive:
            from rich.prompt import Confirm

            self.report.backout_offer(ts, shown, host)
            self.settle()
            agreed = Confirm.ask("Run the backout now?", console=self.report.console)
            return ("run" if agreed else "skip"), "terminal"
        return None, None
