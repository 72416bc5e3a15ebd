"""The step executor interface: what a step kind does when the runner reaches it.

One executor per kind family (command, manual, probe, registry/service,
approval), registered under its kind names in :data:`runbook_engine.source.kinds.KINDS`
(papermill's engine registry is the model).  The runner walks the flow and hands each
step on each host to its executor with a :class:`StepContext`: a narrow view of the run
(journal, checkpoints, gates, commands on transports, the terminal).  Executors never
import the runner, and the runner never names a kind.

Executors promise:

* every state change of the step goes through ``ctx.transition``/``ctx.finish``
  (one checkpoint transaction each) and is journaled before it returns;
* they return one :data:`Outcome` word and never raise for a step that ran and failed;
  :class:`~runbook_engine.errors.InputError` (a bad body), ``RunPaused`` and
  ``KeyboardInterrupt`` pass through to the runner.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from runbook_engine.evidence.journal import Journal
    from runbook_engine.evidence.redact import Redactor
    from runbook_engine.run.gates import Decision
    from runbook_engine.run.options import RunOptions
    from runbook_engine.run.reporter import Reporter
    from runbook_engine.run.store import CheckpointStore, StepState
    from runbook_engine.source.model import Host
    from runbook_engine.tailor.loading import Loaded
    from runbook_engine.tailor.tailoring import TailoredRunbook, TailoredStep
    from runbook_engine.transports.base import CommandResult, Transport

#: How a step ended on one host, in the runner's words:
#: ``done`` (succeeded, already done or skipped: go on), ``pause`` (a gate waits),
#: ``abort`` (a person aborted the run), ``reject`` (an approval was rejected),
#: ``fail-stop`` / ``fail-continue`` (failed; ``on-failure`` decides), ``rerun``
#: (an interrupted step is to run again).
Outcome = Literal["done", "pause", "abort", "reject", "fail-stop", "fail-continue", "rerun"]


@dataclass(frozen=True, slots=True)
class Preview:
    """What a step would do on a host, found in check mode without changing anything.

    Attributes:
        verdict: ``already-done``, ``would-change`` or ``unknown``.
        detail: Why, in one phrase (``now 0; would set 1``).
        fields: Extra journal fields (``observed``, ``expected``).
    """

    verdict: str
    detail: str
    fields: dict[str, Any] = field(default_factory=dict)


def failed(ts: TailoredStep) -> Outcome:
    """The failure outcome of ``ts``: ``fail-continue`` when ``on-failure=continue``."""
    return "fail-continue" if ts.step.on_failure == "continue" else "fail-stop"


class StepContext(Protocol):
    """What the runner lends an executor for one run (implemented by
    :class:`runbook_engine.run.context.RunContext`).

    Attributes:
        run_id: The run's id.
        options: How the run was started (operator, answers, interactivity, emergency).
        loaded: The parsed runbook, environment and values of the run (real secrets).
        journal: The run's hash-chained journal.
        store: The checkpoint store.
        redactor: Masks secret values in any text before it is written or shown.
        report: Terminal output.
    """

    run_id: str
    options: RunOptions
    loaded: Loaded
    journal: Journal
    store: CheckpointStore
    redactor: Redactor
    report: Reporter

    def shown(self, step_id: str) -> TailoredStep:
        """The step as people see it (``[secret:NAME]`` markers instead of values)."""
        ...

    def append_signed(self, event: str, **fields: Any) -> dict[str, Any]:
        """Journal ``event`` and sign the new chain head (when the run is signed)."""
        ...

    def state(self, ts: TailoredStep, host: Host) -> StepState:
        """The checkpoint of ``ts`` on ``host`` (created pending when missing)."""
        ...

    def transition(self, ts: TailoredStep, host: Host, status: str, **fields: Any) -> None:
        """Move ``ts`` on ``host`` to ``status`` (one transaction)."""
        ...

    def finish(self, ts: TailoredStep, host: Host, status: str, **fields: Any) -> None:
        """Record that ``ts`` ended on ``host`` with ``status`` (one transaction)."""
        ...

    def by_hand(self, host: Host) -> bool:
        """True when ``host`` is reached by a person (the ``manual`` transport)."""
        ...

    def transport(self, host: Host) -> Transport:
        """The open transport of ``host`` (opened on first use).

        Raises:
            ExecutionError: the host cannot run commands or its credential is missing.
        """
        ...

    def released(self) -> AbstractContextManager[None]:
        """Let other hosts of a fanned-out step proceed while this block waits."""
        ...

    def decision(
        self, ts: TailoredStep, host: Host, question: str, choices: tuple[str, ...]
    ) -> Decision | None:
        """A stored, pre-answered or prompted decision for a gate; ``None`` when nobody
        has decided yet."""
        ...

    def gate(
        self,
        ts: TailoredStep,
        host: Host,
        state: StepState,
        shown: TailoredStep | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Outcome:
        """Stop for a person to do ``ts`` on ``host`` (shown as ``shown``)."""
        ...

    def check_done(self, ts: TailoredStep, host: Host) -> bool:
        """Run the step's ``check=`` helper; True (journaled already-done) when it passed."""
        ...

    def run_command(
        self,
        ts: TailoredStep,
        host: Host,
        step_id: str,
        *,
        purpose: str,
        attempt: int = 1,
        start: dict[str, Any] | None = None,
    ) -> CommandResult | None:
        """Run ``ts``'s body on ``host``: journaled, output saved and digested, reported
        (``start``: columns of the step's ``running`` checkpoint, committed after the
        ``-started`` record and before the command).

        Returns:
            The result, or ``None`` when it could not run (journaled as ``error``).
        """
        ...

    def save_output(
        self, step_id: str, own_id: str, host: Host, attempt: int, purpose: str, output: str
    ) -> str:
        """Keep a command's (redacted) output in the run folder; return its SHA-256."""
        ...

    def offer_backout(self, ts: TailoredStep, host: Host) -> None:
        """Offer (and, when agreed, run) the ``backout=`` helper of a failed step."""
        ...


class StepExecutor:
    """Base class of executors: one per kind family.

    Subclasses implement :meth:`execute`; the hooks have harmless defaults.

    Attributes:
        guarded: The run's guards (for example "approval required before any
            changing step") apply to steps of this kind.
        guard_event: The journal event written when this executor's guard refuses a step.
    """

    guarded: bool = True
    #: The journal event when :meth:`guard` refuses a step.
    guard_event: str = "step-refused"

    def execute(
        self, ctx: StepContext, ts: TailoredStep, host: Host, state: StepState, checked: bool
    ) -> Outcome:
        """Carry out ``ts`` on ``host``.

        Args:
            ctx: The run's services.
            ts: The tailored step (real secret values in its body).
            host: One of the step's hosts.
            state: Its checkpoint (``awaiting`` when a gate waited before).
            checked: The step's ``check=`` already ran and found it not done (an
                interrupted step being run again).

        Returns:
            How the step ended on this host.
        """
        raise NotImplementedError

    def check_run(self, tailored: TailoredRunbook, options: RunOptions) -> None:
        """Refuse a run before anything is written (for example a bad approval policy).

        Raises:
            InputError: the run must not start (exit 2).
        """

    def guard(self, ctx: StepContext, ts: TailoredStep) -> str | None:
        """Say why a guarded step of another kind must not run now (``None``: it may)."""
        return None

    def preview(self, ctx: StepContext, ts: TailoredStep, host: Host) -> Preview | None:
        """Check mode: what ``ts`` would do on ``host``, found by reading only.

        ``None`` (the default): the general rule of :mod:`runbook_engine.run.check`
        applies (a step that only reads runs; another runs its ``check=`` or is unknown).
        Must never change anything on the host.
        """
        return None

    def pause_hint(self, run_id: str, step_id: str) -> str | None:
        """What to tell people when the run pauses at this kind's step (``None``: the
        runner's hint for gates)."""
        return None
