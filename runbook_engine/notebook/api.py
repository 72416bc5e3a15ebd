"""What a runbook notebook's cells call: one run, one runner per kernel.

The derive cell calls :func:`attach`, which creates the run when ``run_id`` is
new (or ``None``) and opens it otherwise, through the same
:func:`~runbook_engine.run.runner.create_run` / :func:`~runbook_engine.run.runner.open_run`
as ``runbook run`` and ``runbook resume``; a run is therefore shared with the
CLI: started in one, finished in the other, each step run once.  Each step
cell calls :meth:`NotebookRun.step`, which executes the flow up to that step
(``Runner.execute(stop_after=...)``) and prints its output.

A gate cannot prompt under papermill (``input()`` does not work there, DESIGN.md
§7): the runner records the step as *awaiting* and the cell raises
:class:`NotebookPaused`, which stops the execution.  Continue with
``runbook confirm`` and then ``runbook resume`` or a new execution of the
notebook, or give ``confirmations`` as a notebook parameter (journaled with
source ``notebook-parameter``).

Errors raised into a cell carry ``_render_traceback_`` (IPython's hook), so a
person sees the message, not a traceback of engine internals.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runbook_engine.errors import (
    ExecutionError,
    InputError,
    RunbookError,
    RunInterrupted,
    RunPaused,
    StateError,
)
from runbook_engine.notebook.report import NotebookReporter
from runbook_engine.run.gates import DECISIONS, decision_word, load_answers
from runbook_engine.run.lifecycle import (
    RunOptions,
    create_run,
    open_run,
    operator_and_source,
)
from runbook_engine.run.runner import Runner
from runbook_engine.run.store import (
    DONE_STATUSES,
    CheckpointStore,
    GateDecision,
    StepState,
    default_state_dir,
    utcnow,
)
from runbook_engine.tailor.loading import load
from runbook_engine.tailor.tailoring import TailoredStep

FINISHED = ("succeeded", "unverified", "aborted")
#: Journal source of decisions given as notebook parameters.
PARAMETER_SOURCE = "notebook-parameter"


class _Shown:
    """Mixin: IPython shows ``Type: message`` instead of a traceback (``_render_traceback_``)."""

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]


class NotebookPaused(_Shown, RunPaused):
    """The run stopped at a gate nobody has answered yet (the cell stops the notebook)."""


class StepFailed(_Shown, ExecutionError):
    """A step failed (or the run was aborted): the cell stops the notebook."""


class NotebookInputError(_Shown, InputError):
    """Bad notebook parameters, runbook, environment or answers file."""


class NotebookStateError(_Shown, StateError):
    """The store refuses: unknown or finished run, changed runbook, another process runs it."""


@dataclass(frozen=True, slots=True)
class _Target:
    """What a notebook points at (resolved paths), to tell whether an attached run fits."""

    runbook: Path
    env: Path | None
    state_dir: Path


_CURRENT: NotebookRun | None = None


def attach(
    *,
    runbook_file: str,
    env_file: str | None = None,
    run_id: str | None = None,
    state_dir: str | None = None,
    change_id: str | None = None,
    operator: str | None = None,
    answers_file: str | None = None,
    confirmations: dict[str, str] | None = None,
    parameters: dict[str, Any] | None = None,
) -> NotebookRun:
    """Create or open the notebook's run; return the handle the step cells use.

    Args:
        runbook_file: The runbook (Markdown file).
        env_file: The environment file, ``None`` for a runbook that needs none.
        run_id: ``None`` or an unknown id: a new run (with that id); a known
            id: continue that run.
        state_dir: The state directory (``None``: ``$RUNBOOK_STATE_DIR`` or the default).
        change_id: The change ticket (new runs).
        operator: Who runs it (``None``: ``$RUNBOOK_OPERATOR`` or the login name).
        answers_file: Answers file with gate decisions (YAML), or ``None``.
        confirmations: Step id to ``"confirm"``, ``"confirm:note"``,
            ``"skip:reason"`` (also ``abort``, ``rerun``; the old ``done`` is read as
            ``confirm`` with a warning), recorded as
            gate decisions with source ``notebook-parameter``.
        parameters: The runbook's parameter values; given to a new run as
            overrides (``--set``); for an existing run they must equal its values.

    Returns:
        The :class:`NotebookRun`; attaching again in the same kernel with the
        same runbook, environment and state directory (and ``run_id`` ``None``
        or the same id) returns the same one.

    Raises:
        NotebookInputError: bad input of any kind (nothing is created).
        NotebookStateError: the run is finished, changed, or locked.
    """
    global _CURRENT
    try:
        target = _Target(
            Path(runbook_file).resolve(),
            Path(env_file).resolve() if env_file else None,
            Path(state_dir).resolve() if state_dir else default_state_dir().resolve(),
        )
        overrides = {k: v for k, v in (parameters or {}).items() if v is not None}
        wanted = parse_confirmations(confirmations or {})
        if _CURRENT is not None and _CURRENT.target == target and run_id in (None, _CURRENT.run_id):
            handle = _CURRENT
            handle.check_values(overrides)
        else:
            handle = _open(target, run_id, overrides, change_id, operator, answers_file)
            _CURRENT = handle
        handle.record_decisions(wanted, PARAMETER_SOURCE)
    except (InputError, StateError) as exc:
        raise _shown(exc) from None
    handle.describe()
    return handle


def _open(
    target: _Target,
    run_id: str | None,
    overrides: dict[str, Any],
    change_id: str | None,
    operator: str | None,
    answers_file: str | None,
) -> NotebookRun:
    store = CheckpointStore(target.state_dir)
    record = _existing(store, run_id)
    known = record is not None
    recorded_env = Path(record.env_path) if record and record.env_path else None
    if record is not None and (
        Path(record.runbook_path) != target.runbook or recorded_env != target.env
    ):
        raise InputError(
            f"run {run_id} runs {record.runbook_path} with environment "
            f"{record.env_path}; this notebook gives {target.runbook} with "
            f"{target.env}: set run_id = None for a new run"
        )
    step_ids = {s.id for s in load(target.runbook, target.env, overrides).runbook.steps}
    answers = load_answers(Path(answers_file), step_ids) if answers_file else None
    reporter = NotebookReporter()
    name, source = operator_and_source(operator, given_as="notebook")
    options = RunOptions(
        operator=name,
        operator_source=source,
        answers=answers,
        interactive=False,
        change_id=change_id,
        reporter=reporter,
    )
    if known:
        assert run_id is not None
        handle = NotebookRun(store, target, options, reporter, run_id, new=False)
        handle.check_values(overrides)
        handle.runner = open_run(run_id, store, options)
    else:
        runner = create_run(target.runbook, target.env, overrides, store, options, run_id)
        handle = NotebookRun(store, target, options, reporter, runner.record.run_id, new=True)
        handle.runner = runner
    reporter.redactor = handle.runner.redactor
    return handle


class NotebookRun:
    """A run seen from a notebook kernel.  Made by :func:`attach`.

    Attributes:
        run_id: The run's id.
        store: The checkpoint store.
        runner: The kernel's runner (re-opened after a pause or a failure, so the
            journal records the resumption).
    """

    def __init__(
        self,
        store: CheckpointStore,
        target: _Target,
        options: RunOptions,
        reporter: NotebookReporter,
        run_id: str,
        *,
        new: bool,
    ) -> None:
        self.store = store
        self.target = target
        self.options = options
        self.reporter = reporter
        self.run_id = run_id
        self.new = new
        self.runner: Runner | None = None
        self._stale = False

    # -- cells ----------------------------------------------------------------
    def step(self, step_id: str) -> str:
        """Run the flow up to step ``step_id`` (earlier pending steps first); print the output.

        A step that finished before (in this notebook or the CLI) is not run again.

        Returns:
            The step's status (of its first host).

        Raises:
            NotebookPaused: a gate waits for a decision (the run is ``paused``).
            StepFailed: the step failed (on-failure stop) or the run was aborted.
            NotebookInputError: no step ``step_id`` in the flow.
            NotebookStateError: the run is finished or locked by another process.
        """
        ts = self._flow_step(step_id)
        states = self._states(step_id)
        if states and all(s.status in DONE_STATUSES for s in states):
            self.reporter.earlier(ts, states, len(self._flow()))
            return states[0].status
        result_status = self._execute(step_id)
        states = self._states(step_id)
        open_states = [s for s in states if s.status not in DONE_STATUSES]
        tolerated = ts.step.on_failure == "continue" and all(
            s.status == "failed" for s in open_states
        )
        if result_status == "aborted" or (
            result_status == "failed" and open_states and not tolerated
        ):
            raise StepFailed(self._failure_message(step_id))
        return states[0].status if states else "pending"

    def finish(self) -> str:
        """Complete the run (pending steps run now); print every step's state; return the status.

        A failed or paused run is not continued here: the message says how.

        Raises:
            NotebookPaused: a pending step reaches a gate nobody has answered.
        """
        status = self.store.get_run(self.run_id).status
        if status in ("running", "paused"):
            status = self._execute(None)
        titles = {ts.id: ts.step.display_title() for ts in self._flow()}
        self.reporter.table(self.store.steps(self.run_id), titles)
        journal = self.store.run_dir(self.run_id) / "journal.jsonl"
        self.reporter.say(f"Run {self.run_id}: {status}. Journal: {journal}")
        if status in ("failed", "paused", "interrupted"):
            self.reporter.say(
                f"Continue with `runbook resume {self.run_id}` "
                f"(state dir {self.store.state_dir}) or run the notebook again "
                f"with run_id = {self.run_id!r}."
            )
        return status

    def confirm(
        self,
        step_id: str,
        decision: str = "confirm",
        note: str | None = None,
        by: str | None = None,
    ) -> None:
        """Record a decision for a gate from inside the notebook (source ``notebook``).

        ``decision`` is written as in ``confirmations`` (``"skip:reason"``);
        run the step's cell again afterwards.

        Raises:
            NotebookInputError: unknown step, malformed decision.
        """
        text = decision if note is None or ":" in decision else f"{decision}:{note}"
        try:
            self.record_decisions(parse_confirmations({step_id: text}), "notebook", by)
        except (InputError, StateError) as exc:
            raise _shown(exc) from None

    def status(self) -> list[StepState]:
        """Print and return every step's state."""
        states = self.store.steps(self.run_id)
        self.reporter.table(states, {ts.id: ts.step.display_title() for ts in self._flow()})
        return states

    # -- helpers --------------------------------------------------------------
    def describe(self) -> None:
        """Print which run this notebook is attached to."""
        record = self.store.get_run(self.run_id)
        counts: dict[str, int] = {}
        for s in self.store.steps(self.run_id):
            counts[s.status] = counts.get(s.status, 0) + 1
        word = "Started new run" if self.new else "Continuing run"
        self.reporter.say(
            f"{word} {self.run_id} of {record.runbook_id} "
            f"(environment {record.env_name or 'none'}, operator {record.operator})"
        )
        self.reporter.say(
            f"  state dir {self.store.state_dir}; steps: "
            + ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
        )

    def check_values(self, overrides: dict[str, Any]) -> None:
        """Refuse parameters that differ from the run's values (a run keeps its values).

        Raises:
            InputError: a value differs (names it, and both values).
        """
        record = self.store.get_run(self.run_id)
        env = Path(record.env_path) if record.env_path else None
        values = load(Path(record.runbook_path), env, record.overrides, need_env=True).values
        params = values.params if values is not None else {}
        for name, value in overrides.items():
            if name in params and params[name] != value:
                raise InputError(
                    f"run {self.run_id} has {name} = {params[name]!r}, the notebook "
                    f"gives {value!r}; a run keeps the values it started with: set "
                    "run_id = None (or restart the kernel) for a new run"
                )

    def record_decisions(
        self, wanted: dict[str, tuple[str, str | None]], source: str, by: str | None = None
    ) -> None:
        """Store gate decisions (``step id -> (decision, note or reason)``) and journal them.

        Raises:
            InputError: an unknown step, or a step that is no gate in this environment.
        """
        if not wanted:
            return
        runner = self._runner()
        redact = runner.redactor.redact  # names and notes never store a secret
        who = redact(by or self.options.operator)
        flow = {ts.id: ts for ts in self._flow()}
        journal = runner.journal
        for step_id, (decision, given) in wanted.items():
            detail = redact(given) if given else given
            if step_id not in flow:
                raise InputError(
                    f"confirmations name step {step_id!r}, which is not in the flow "
                    f"of run {self.run_id}"
                )
            ts = flow[step_id]
            for state in self._states(step_id):
                if state.status in DONE_STATUSES:
                    continue
                host = next(h for h in ts.hosts if h.name == state.host)
                gate = ts.step.is_manual or host.transport == "manual"
                if not (gate or state.status == "running"):
                    raise InputError(
                        f"step {step_id!r} is not a gate on {state.host} (it runs "
                        f"over {host.transport}); confirmations are for manual "
                        "steps, steps on hosts reached by hand, interrupted steps"
                    )
                self.store.put_gate(
                    GateDecision(
                        self.run_id, step_id, state.host, decision, who, detail, source, utcnow()
                    )
                )
                journal.append(
                    "gate-decision-recorded",
                    step=step_id,
                    host=state.host,
                    decision=decision,
                    by=who,
                    note=None if decision == "skip" else detail,
                    reason=detail if decision == "skip" else None,
                    source=source,
                )

    def _execute(self, stop_after: str | None) -> str:
        runner = self._runner()
        try:
            result = runner.execute(stop_after=stop_after)
        except RunPaused as exc:
            self._stale = True
            raise NotebookPaused(self._pause_message(exc)) from None
        except RunInterrupted:
            self._stale = True
            raise
        except (InputError, StateError) as exc:
            self._stale = True
            raise _shown(exc) from None
        if result.status != "running":
            self._stale = True
        return result.status

    def _runner(self) -> Runner:
        if self.runner is None or self._stale:
            try:
                self.runner = open_run(self.run_id, self.store, self.options)
            except (InputError, StateError) as exc:
                raise _shown(exc) from None
            self.reporter.redactor = self.runner.redactor
            self._stale = False
        return self.runner

    def _flow(self) -> tuple[TailoredStep, ...]:
        runner = self.runner if self.runner is not None else self._runner()
        return runner.loaded.tailored.steps

    def _flow_step(self, step_id: str) -> TailoredStep:
        for ts in self._flow():
            if ts.id == step_id:
                return ts
        raise NotebookInputError(f"no step {step_id!r} in the flow of run {self.run_id}")

    def _states(self, step_id: str) -> list[StepState]:
        return self.store.steps_of(self.run_id, step_id)

    def _pause_message(self, exc: RunPaused) -> str:
        return (
            f"{exc.message}; or run this notebook again with run_id = {self.run_id!r} "
            f"(`runbook notebook run RUNBOOK --env ENV --run-id {self.run_id}`), or give "
            "confirmations = {'STEP': 'confirm'}"
        )

    def _failure_message(self, step_id: str) -> str:
        failed = [s for s in self.store.steps(self.run_id) if s.status == "failed"]
        what = ", ".join(f"{s.step_id} on {s.host} ({s.reason or 'failed'})" for s in failed)
        return (
            f"run {self.run_id} stopped at step {step_id!r}: failed: {what or 'aborted'}. "
            f"Fix the cause, then run the cell again or `runbook resume {self.run_id}` "
            f"(output in {self.store.run_dir(self.run_id) / 'output'})"
        )


def _existing(store: CheckpointStore, run_id: str | None) -> Any:
    if run_id is None:
        return None
    try:
        return store.get_run(run_id)
    except StateError:
        return None


def parse_confirmations(confirmations: dict[str, str]) -> dict[str, tuple[str, str | None]]:
    """Read ``confirmations`` (step id -> ``"confirm"``, ``"confirm:note"``, ``"skip:reason"``...).

    Returns:
        Step id -> (decision, note or reason).

    Raises:
        InputError: not a dict, an unknown decision, a skip without a reason.
    """
    if not isinstance(confirmations, dict):
        raise InputError("confirmations must be a dict: step id -> 'confirm' or 'skip:reason'")
    out: dict[str, tuple[str, str | None]] = {}
    for step_id, text in confirmations.items():
        if not isinstance(text, str):
            raise InputError(
                f"confirmations[{step_id!r}]: give 'confirm', 'confirm:note' or 'skip:reason'"
            )
        word, _, detail = text.partition(":")
        decision, warning = decision_word(word.strip(), f"confirmations[{step_id!r}]")
        if warning:
            print(f"runbook: {warning}", file=sys.stderr)
        if decision not in DECISIONS:
            raise InputError(
                f"confirmations[{step_id!r}]: {decision!r} is not one of {', '.join(DECISIONS)}"
            )
        if decision == "skip" and not detail.strip():
            raise InputError(f"confirmations[{step_id!r}]: a skip needs a reason: 'skip:why'")
        out[str(step_id)] = (str(decision), detail.strip() or None)
    return out


def _shown(exc: RunbookError) -> RunbookError:
    """The same error as one whose cell output is its message, not a traceback."""
    kind = NotebookStateError if isinstance(exc, StateError) else NotebookInputError
    return kind(exc.format(), exc.problems)
