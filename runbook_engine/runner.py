"""Execute a tailored runbook: steps to transports, gates to people, state to checkpoints.

The runner has papermill's shape: start -> execute -> always complete.  Each
step on each host is checkpointed in the store before and after it runs (one
transaction per transition) and every transition is a journal event, written
before the process moves on.  A run stops with :class:`RunPaused` (exit 3) at a
gate nobody has answered yet, and :func:`resume_run` continues it later.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import os
import platform
import re
import secrets as pysecrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from runbook_engine import __version__, approval
from runbook_engine.errors import ExecutionError, InputError, RunInterrupted, RunPaused, StateError
from runbook_engine.evidence.record import flow_fields
from runbook_engine.evidence.secrets import run_secrets
from runbook_engine.evidence.signing import first_record, signer_for_run
from runbook_engine.gates import Answers, Decision, prompt_gate
from runbook_engine.journal import Journal
from runbook_engine.loading import Loaded, load
from runbook_engine.model import Host
from runbook_engine.quoting import secret_environment
from runbook_engine.redact import MIN_FREE_TEXT_LENGTH, Redactor
from runbook_engine.reporter import Reporter
from runbook_engine.store import DONE_STATUSES, CheckpointStore, RunRecord, StepState, utcnow
from runbook_engine.tailor import TailoredStep
from runbook_engine.transports import CommandResult, TransportPool

EXCERPT_CHARS = 2000
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


@dataclass
class RunOptions:
    """How to run.

    Attributes:
        operator: Who runs the change (recorded in every event).
        answers: Pre-given gate decisions, or ``None``.
        interactive: Prompt at gates on the terminal.
        change_id: The change record's id (for example a ticket number).
        accept_changed: On resume, continue although the runbook changed.
        forks: How many hosts of one step run at once.
        max_failures: Start no further host of a step after this many of its hosts
            failed (``None``: 1 for steps that stop on failure, else no limit).
        reporter: Terminal output.
        reason: Why the change is made (recorded with the run).
        emergency: Bypass approval (``approval: required`` and approval steps);
            needs ``reason``; the journal and change record flag it.
    """

    operator: str
    answers: Answers | None = None
    interactive: bool = False
    change_id: str | None = None
    accept_changed: bool = False
    reporter: Reporter | None = None
    forks: int = 1
    max_failures: int | None = None
    reason: str | None = None
    emergency: bool = False


@dataclass(frozen=True, slots=True)
class RunResult:
    """How a run ended: ``status`` (succeeded, unverified, failed, aborted) and its files."""

    run_id: str
    status: str
    journal: Path
    state_dir: Path


def default_operator() -> str:
    """Return ``$RUNBOOK_OPERATOR`` or the login name."""
    return os.environ.get("RUNBOOK_OPERATOR") or getpass.getuser()


def new_run_id(runbook_id: str) -> str:
    """Return a new run id: ``<runbook-id>-<UTC yyyymmdd-hhmmss>-<4 hex>``."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"{runbook_id}-{stamp}-{pysecrets.token_hex(2)}"


def start_run(
    runbook_path: Path,
    env_path: Path | None,
    overrides: dict[str, str],
    store: CheckpointStore,
    options: RunOptions,
    run_id: str | None = None,
) -> RunResult:
    """Validate, create a run and execute it.

    Raises:
        InputError: bad runbook, environment, values or answers (nothing is written).
        RunPaused: stopped at an unanswered gate (exit 3).
        RunInterrupted: Ctrl-C (exit 130).
    """
    return create_run(runbook_path, env_path, overrides, store, options, run_id).execute()


def create_run(
    runbook_path: Path,
    env_path: Path | None,
    overrides: dict[str, str],
    store: CheckpointStore,
    options: RunOptions,
    run_id: str | None = None,
) -> Runner:
    """Validate and create a run (journaled as started); return its runner, not yet executed.

    Raises:
        InputError: bad runbook, environment or values (nothing is written).
        StateError: ``run_id`` exists already.
    """
    loaded = load(runbook_path, env_path, overrides, with_secrets=True, need_env=True)
    shown = loaded.shown or load(runbook_path, env_path, overrides, need_env=True).tailored
    _check_change_options(loaded, overrides, options)
    secret_values = run_secrets(loaded)
    run_id = run_id or new_run_id(loaded.runbook.id)
    if not _RUN_ID.fullmatch(run_id):
        raise InputError(
            f"--run-id {run_id!r}: use 1 to 100 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    env = loaded.environment
    record = RunRecord(
        run_id=run_id,
        runbook_id=loaded.runbook.id,
        runbook_path=str(runbook_path.resolve()),
        content_hash=loaded.runbook.content_hash,
        env_path=str(env_path.resolve()) if env_path else None,
        env_name=env.name if env else None,
        env_hash=env.content_hash if env else None,
        overrides=overrides,
        status="running",
        outcome=None,
        operator=options.operator,
        change_id=options.change_id,
        created_at=utcnow(),
        updated_at=utcnow(),
    )
    rows = [(ts.id, h.name, ts.number) for ts in loaded.tailored.steps for h in ts.hosts]
    store.create_run(record, rows)
    runner = Runner(store, record, loaded, shown, options, secrets=secret_values)
    params = {k: v for k, v in (loaded.values.params if loaded.values else {}).items()}
    runner.append_signed(
        "run-started",
        run_id=run_id,
        runbook=_runbook_fields(loaded),
        environment=_env_fields(loaded),
        parameters=params,
        operator=options.operator,
        change_id=options.change_id,
        tool={
            "name": "runbook-engine",
            "version": __version__,
            "python": platform.python_version(),
        },
        workstation=platform.node(),
        answers=_answers_fields(options.answers),
        reason=options.reason,
        emergency=options.emergency,
        approval_policy=loaded.runbook.meta.get("approval", "optional"),
        signing=runner.signer.describe() if runner.signer else None,
        steps=flow_fields(shown),
    )
    short = sorted(
        n
        for n, v in (loaded.values.secrets if loaded.values else {}).items()
        if 0 < len(v) < MIN_FREE_TEXT_LENGTH
    )
    for name in short:  # said once, up front: such a value cannot be found in free text
        message = (
            f"secret {name!r} is shorter than {MIN_FREE_TEXT_LENGTH} characters: it is "
            "redacted in structured fields but cannot be found in command output"
        )
        runner.journal.append("warning", message=message)
        runner.report.warning(message)
    return runner


def _check_change_options(loaded: Loaded, overrides: dict[str, str], options: RunOptions) -> None:
    """Refuse what must not start a run: an emergency without reason, a secret given with
    ``--set`` (it would be stored in clear), a missing approval, a bad approval body.

    Raises:
        InputError: (exit 2) before anything is written.
    """
    if options.emergency and not (options.reason or "").strip():
        raise InputError("--emergency needs --reason: say why approval is bypassed")
    secret = sorted(
        n
        for n in overrides
        if n in loaded.runbook.parameters and loaded.runbook.parameters[n].secret
    )
    if secret:
        raise InputError(
            f"--set {secret[0]}: a secret parameter is never given on the command "
            "line; name its source under 'secrets' in the environment file"
        )
    approval.check_bodies(loaded.tailored, options.operator)
    approval.check_policy(loaded.tailored, options.emergency)


def resume_run(run_id: str, store: CheckpointStore, options: RunOptions) -> RunResult:
    """Continue run ``run_id`` where it stopped.

    Raises:
        StateError: unknown run, finished run, or the runbook or environment
            changed since the run started (unless ``options.accept_changed``).
        RunPaused, RunInterrupted: as :func:`start_run`.
    """
    return open_run(run_id, store, options).execute()


def open_run(run_id: str, store: CheckpointStore, options: RunOptions) -> Runner:
    """Check that run ``run_id`` can go on (journaled as resumed); return its runner.

    Raises:
        StateError: as :func:`resume_run`.
    """
    record = store.get_run(run_id)
    if record.status in ("succeeded", "unverified", "aborted"):
        raise StateError(f"run {run_id} is finished ({record.status}); start a new run instead")
    env_path = Path(record.env_path) if record.env_path else None
    loaded = load(
        Path(record.runbook_path), env_path, record.overrides, with_secrets=True, need_env=True
    )
    shown = (
        loaded.shown
        or load(Path(record.runbook_path), env_path, record.overrides, need_env=True).tailored
    )
    changed = []
    if loaded.runbook.content_hash != record.content_hash:
        changed.append(("runbook", record.content_hash, loaded.runbook.content_hash))
    env_hash = loaded.environment.content_hash if loaded.environment else None
    if env_hash != record.env_hash:
        changed.append(("environment", record.env_hash, env_hash))
    runner = Runner(store, record, loaded, shown, options)
    if changed and not options.accept_changed:
        what = ", ".join(
            f"{name} (sha256 {old and old[:12]} -> {new and new[:12]})"
            for name, old, new in changed
        )
        raise StateError(
            f"run {run_id}: the {what} changed since the run started; refusing to "
            "resume. Review the change, then resume with --accept-changed (the "
            "acceptance is recorded in the journal), or start a new run."
        )
    for name, old, new in changed:
        runner.journal.append(
            "change-accepted", what=name, old_sha256=old, new_sha256=new, by=options.operator
        )
        store.update_run(
            run_id, **({"content_hash": new} if name == "runbook" else {"env_hash": new})
        )
    current = set()
    for ts in loaded.tailored.steps:
        for host in ts.hosts:
            current.add((ts.id, host.name))
            store.ensure_step(run_id, ts.id, host.name, ts.number)
    for state in store.steps(run_id):  # steps the accepted change removed
        if (state.step_id, state.host) not in current and state.status not in DONE_STATUSES:
            reason = f"removed from the runbook (change accepted by {options.operator})"
            store.transition(
                run_id, state.step_id, state.host, "skipped", reason=reason, finished_at=utcnow()
            )
            runner.journal.append(
                "step-skipped", step=state.step_id, host=state.host, reason=reason
            )
    store.update_run(run_id, status="running")
    runner.append_signed(
        "run-resumed", by=options.operator, answers=_answers_fields(options.answers)
    )
    return runner


class Runner:
    """Walks the flow of one run.  Build with :func:`start_run` or :func:`resume_run`."""

    def __init__(
        self,
        store: CheckpointStore,
        record: RunRecord,
        loaded: Loaded,
        shown_steps: Any,
        options: RunOptions,
        secrets: dict[str, str] | None = None,
    ) -> None:
        self.store = store
        self.record = record
        self.loaded = loaded
        self.shown = shown_steps
        self.options = options
        self.run_dir = store.run_dir(record.run_id)
        secret_values = run_secrets(loaded) if secrets is None else secrets
        started = first_record(self.run_dir / "journal.jsonl")
        self.signer = signer_for_run(store.state_dir, self.run_dir, record.run_id, started)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.signer is not None and started is None:
            self.signer.export_public_key()
        self._parallel = _HeldLock()
        self.secret_env = secret_environment(dict(loaded.values.secrets) if loaded.values else {})
        self.redactor = Redactor(secret_values)
        self.journal = Journal(self.run_dir / "journal.jsonl", self.redactor)
        self.report = options.reporter or Reporter(quiet=True)
        self.pool = TransportPool(
            secret_values, lambda line: self.report.output_line(self.redactor.redact(line))
        )

    def append_signed(self, event: str, **fields: Any) -> dict[str, Any]:
        """Append a journal event, then sign the new chain head (when the run is signed)."""
        written = self.journal.append(event, **fields)
        if self.signer is not None:
            self.signer.sign(written)
        return written

    def finish_step(self, ts: TailoredStep, host: Host, status: str, **fields: Any) -> None:
        """Record that a step ended on a host with ``status`` (one transaction)."""
        self._finish(ts, host, status, **fields)

    # -- flow ---------------------------------------------------------------
    def execute(self, stop_after: str | None = None) -> RunResult:
        """Run every pending step; close transports (kept open after a partial run, for the
        next ``stop_after`` call) and record how the run ended.

        Args:
            stop_after: Stop after this step (pending earlier steps run first; the
                run is left ``running`` unless that was its last step).  Used by
                notebooks, one cell per step.

        Raises:
            RunPaused: stopped at an unanswered gate (exit 3).
            RunInterrupted: Ctrl-C (exit 130).
            StateError: another process is executing this run.
        """
        run_id = self.record.run_id
        status = "error"
        try:
            with self._lock():
                status = self._flow(stop_after)
        except RunPaused:
            self.store.update_run(run_id, status="paused")
            self.append_signed("run-paused")
            raise
        except KeyboardInterrupt:
            self.store.update_run(run_id, status="interrupted")
            self.append_signed("run-interrupted", by=self.options.operator)
            raise RunInterrupted(
                f"run {run_id} interrupted; `runbook resume {run_id}` continues "
                "it (the interrupted step is checked before it runs again)"
            ) from None
        finally:
            if status != "partial":  # a notebook's next cell reuses the open WinRM shells
                self.pool.close()
        if status == "partial":
            return RunResult(run_id, "running", self.journal.path, self.store.state_dir)
        self.store.update_run(
            run_id, status="aborted" if status == "rejected" else status, outcome=status
        )
        summary = self._summary()
        self.append_signed("run-finished", status=status, **summary)
        self.report.finished(run_id, status, summary)
        return RunResult(run_id, status, self.journal.path, self.store.state_dir)

    def _flow(self, stop_after: str | None = None) -> str:
        failed = False
        paused: list[str] = []
        steps = self.loaded.tailored.steps
        total = len(steps)
        if stop_after is not None and stop_after not in {ts.id for ts in steps}:
            raise StateError(f"run {self.record.run_id}: no step {stop_after!r} in the flow")
        for ts in steps:
            for host, outcome in self._hosts(ts, total):
                if outcome == "pause":
                    paused.append(f"{ts.id}@{host.name}")
                    break
                if outcome == "abort":
                    return "aborted"
                if outcome == "reject":
                    return "rejected"
                if outcome == "fail-stop":
                    return "failed"
                if outcome == "fail-continue":
                    failed = True
            if paused:
                break
            if ts.id == stop_after and ts is not steps[-1]:
                return "failed" if failed else "partial"
        if paused:
            raise RunPaused(self._pause_hint(paused[0]))
        if failed:
            return "failed"
        return "succeeded" if self._verified() else "unverified"

    def _hosts(self, ts: TailoredStep, total: int) -> Iterator[tuple[Host, str]]:
        """Run ``ts`` on each of its hosts; yield ``(host, outcome)`` in host order.

        With ``forks`` above 1 and several hosts, up to ``forks`` hosts run at once:
        everything but the command itself (store, journal, terminal) happens under
        one lock, so only transports run in parallel.  No new host is started once
        ``max_failures`` hosts of the step have failed (default: 1 when the step
        stops on failure), the same rule as one host at a time.
        """
        limit = self.options.max_failures
        if limit is None:
            limit = 1 if ts.step.on_failure == "stop" else len(ts.hosts)
        if self.options.forks <= 1 or len(ts.hosts) <= 1:
            failures = 0
            done: list[tuple[Host, str]] = []
            for host in ts.hosts:
                if failures >= limit:
                    self._not_started(ts, host, failures)
                    continue
                outcome = self._one(ts, host, total)
                failures += outcome.startswith("fail")
                done.append((host, outcome))
                if outcome in ("pause", "abort", "reject"):
                    break
            yield from done  # the flow stops at the first failure only after the others ran
            return
        yield from self._fan_out(ts, total, limit)

    def _fan_out(self, ts: TailoredStep, total: int, limit: int) -> Iterator[tuple[Host, str]]:
        from concurrent.futures import ThreadPoolExecutor

        failed = [0]
        results: dict[str, str] = {}

        def work(host: Host) -> str:
            with self._parallel:
                if failed[0] >= limit:
                    self._not_started(ts, host, failed[0])
                    return "not-started"
                outcome = self._one(ts, host, total)
                failed[0] += outcome.startswith("fail")
                return outcome

        with ThreadPoolExecutor(
            max_workers=self.options.forks, thread_name_prefix="runbook-host"
        ) as pool:
            futures = {host.name: pool.submit(work, host) for host in ts.hosts}
            for host in ts.hosts:
                results[host.name] = futures[host.name].result()
        for host in ts.hosts:
            if results[host.name] != "not-started":
                yield host, results[host.name]

    def _not_started(self, ts: TailoredStep, host: Host, failures: int) -> None:
        self.journal.append(
            "step-not-started",
            step=ts.id,
            host=host.name,
            reason=f"{failures} host(s) of this step failed (max failures reached)",
        )

    def _pause_hint(self, where: str) -> str:
        run_id, step_id = self.record.run_id, where.split("@")[0]
        if self.loaded.tailored.step(step_id).step.kind == approval.KIND:
            return (
                f"run {run_id} is waiting for approval at {step_id}: approvers give it with "
                f"`runbook approve {run_id} {step_id} --as NAME [--comment TEXT]` (or `runbook "
                f"reject ...`), then `runbook resume {run_id}`"
            )
        host = where.split("@", 1)[1] if "@" in where else None
        state = self.store.step(run_id, step_id, host) if host else None
        if state is not None and state.status == "running":
            return (
                f"run {run_id}: step {step_id} on {host} was interrupted while running and "
                f"may or may not have completed. Check the host; then `runbook confirm {run_id}"
                f" {step_id} --as NAME` if it completed, or add --rerun to run it again; then "
                f"`runbook resume {run_id}`"
            )
        return (
            f"run {run_id} is waiting at {where}: confirm with `runbook confirm {run_id} "
            f"{step_id} --as NAME`, then `runbook resume {run_id}` (or resume with "
            "--answers FILE)"
        )

    def _verified(self) -> bool:
        states = {(s.step_id, s.host): s for s in self.store.steps(self.record.run_id)}
        for ts in self.loaded.tailored.steps:
            if ts.step.phase != "verify" or ts.skip_reason:  # not applicable here
                continue
            for host in ts.hosts:
                state = states.get((ts.id, host.name))
                if state is None or state.status not in ("succeeded", "already-done"):
                    return False
        return True

    def _one(self, ts: TailoredStep, host: Host, total: int) -> str:
        run_id = self.record.run_id
        state = self.store.step(run_id, ts.id, host.name)
        if state is None:
            self.store.ensure_step(run_id, ts.id, host.name, ts.number)
            state = self.store.step(run_id, ts.id, host.name)
        assert state is not None
        if state.status in DONE_STATUSES:
            return "done"
        self.report.step_header(ts, host, total)
        checked = False
        if state.status == "running":
            outcome = self._interrupted(ts, host)
            if outcome != "rerun":
                return outcome
            checked = bool(ts.step.check)  # its check already said "not done"
        if ts.skip_reason:
            self._finish(ts, host, "skipped", reason=ts.skip_reason)
            self.journal.append("step-skipped", step=ts.id, host=host.name, reason=ts.skip_reason)
            self.report.skipped(ts.skip_reason)
            return "done"
        if ts.step.kind == approval.KIND:
            return approval.pass_gate(self, ts, host, state.status == "awaiting")
        refused = approval.guard(self, ts)
        if refused is not None:
            self.journal.append("approval-missing", step=ts.id, host=host.name, reason=refused)
            self._finish(ts, host, "failed", reason=refused)
            self.report.error(ts, host, refused)
            return "fail-stop"
        if ts.step.kind == "probe":
            return self._probe(ts, host)
        if ts.step.kind in ("registry", "service"):
            from runbook_engine.declarative.execute import execute_declarative

            return execute_declarative(self, ts, host)
        if ts.step.is_manual or host.transport == "manual":
            return self._gate(ts, host, state)
        if ts.step.check and not checked and self._check_done(ts, host):
            return "done"
        return self._command(ts, host, state)

    # -- gates --------------------------------------------------------------
    def _decision(
        self, ts: TailoredStep, host: Host, question: str, choices: tuple[str, ...]
    ) -> Decision | None:
        stored = self.store.take_gate(self.record.run_id, ts.id, host.name)
        if stored is not None:
            skip = stored.decision == "skip"
            return Decision(
                stored.decision,
                stored.by,
                note=None if skip else stored.note,
                reason=stored.note if skip else None,
                source=stored.source,
            )
        if self.options.answers is not None:
            found = self.options.answers.decision(ts.id)
            if found is not None:
                return found
        if self.options.interactive:
            console = self.report.console
            return prompt_gate(
                console,
                f"Step {ts.number}: {ts.step.display_title()}",
                question,
                self.options.operator,
                choices=choices,
            )
        return None

    def _gate(
        self,
        ts: TailoredStep,
        host: Host,
        state: StepState,
        shown: TailoredStep | None = None,
        extra: dict[str, Any] | None = None,
    ) -> str:
        """Stop for a person: a manual step, or a command on a ``manual`` host.

        Args:
            shown: What the person is shown, when not the step as written (a
                declarative step shows its compiled commands).
            extra: More fields for the ``gate-awaiting`` event.
        """
        shown = shown or self.shown.step(ts.id)
        kind = "manual" if ts.step.is_manual else "command-by-hand"
        self.report.gate(shown, host, kind)
        if ts.step.check:
            self.report.check_hint(self.shown.step(ts.step.check), host)
        decision = self._decision(ts, host, "Done as shown?", ("confirm", "skip", "abort"))
        if decision is not None and decision.decision == "done":
            decision = Decision(
                "confirm",
                decision.by,
                decision.note,
                source=decision.source,
                answers_path=decision.answers_path,
                answers_hash=decision.answers_hash,
            )
        if decision is not None and decision.decision == "rerun":
            self.journal.append(
                "gate-decision-ignored",
                step=ts.id,
                host=host.name,
                reason="'rerun' applies only to an interrupted step",
                **decision.journal_fields(),
            )
            decision = None
        if decision is None:
            if state.status != "awaiting":
                self.store.transition(
                    self.record.run_id,
                    ts.id,
                    host.name,
                    "awaiting",
                    reason="waiting for confirmation",
                )
                self.journal.append(
                    "gate-awaiting",
                    step=ts.id,
                    host=host.name,
                    gate=kind,
                    instructions=shown.body,
                    **(extra or {}),
                )
            return "pause"
        return self._apply(ts, host, decision, kind, shown.body)

    def _apply(self, ts: TailoredStep, host: Host, decision: Decision, kind: str, body: str) -> str:
        if decision.decision in ("confirm", "done"):
            self.append_signed(
                "gate-passed",
                step=ts.id,
                host=host.name,
                gate=kind,
                command=body if kind == "command-by-hand" else None,
                **decision.journal_fields(),
            )
            self._finish(
                ts, host, "succeeded", reason=f"confirmed by {decision.by} ({decision.source})"
            )
            self.report.passed(ts, host, decision)
            return "done"
        if decision.decision == "skip":
            self.append_signed(
                "step-skipped", step=ts.id, host=host.name, gate=kind, **decision.journal_fields()
            )
            self._finish(ts, host, "skipped", reason=decision.reason or "skipped")
            self.report.passed(ts, host, decision)
            return "done"
        if decision.decision == "rerun":
            self.append_signed(
                "gate-passed", step=ts.id, host=host.name, gate=kind, **decision.journal_fields()
            )
            return "rerun"
        self.append_signed("run-aborted", step=ts.id, host=host.name, **decision.journal_fields())
        self._finish(ts, host, "failed", reason=f"aborted by {decision.by}")
        return "abort"

    def _interrupted(self, ts: TailoredStep, host: Host) -> str:
        """A step found ``running``: the process died mid-step.  Its check decides, or a person."""
        self.journal.append("step-interrupted", step=ts.id, host=host.name)
        if ts.step.check and not (ts.step.is_manual or host.transport == "manual"):
            if self._check_done(ts, host):
                return "done"
            self.journal.append(
                "step-rerun",
                step=ts.id,
                host=host.name,
                reason="its check found the change not in place",
            )
            return "rerun"
        self.report.interrupted(ts, host)
        decision = self._decision(
            ts, host, "The step was interrupted. Was it done?", ("done", "rerun", "abort")
        )
        if decision is None:
            self.journal.append("gate-awaiting", step=ts.id, host=host.name, gate="interrupted")
            return "pause"
        if decision.decision == "confirm":
            decision = Decision(
                "done",
                decision.by,
                decision.note,
                source=decision.source,
                answers_path=decision.answers_path,
                answers_hash=decision.answers_hash,
            )
        return self._apply(ts, host, decision, "interrupted", ts.body)

    # -- commands -----------------------------------------------------------
    def _probe(self, ts: TailoredStep, host: Host) -> str:
        """Run a verification probe from the operator's machine and journal what it saw."""
        from runbook_engine.probes import describe_probe, parse_probe, run_probe

        spec = parse_probe(ts.body, ts.step.span.path, ts.step.body_line)
        self.store.transition(
            self.record.run_id, ts.id, host.name, "running", attempts=1, started_at=utcnow()
        )
        self.journal.append("probe-started", step=ts.id, host=host.name, probe=describe_probe(spec))
        result = run_probe(spec)
        self.journal.append(
            "probe-finished",
            step=ts.id,
            host=host.name,
            status="succeeded" if result.ok else "failed",
            **{"result": self.redactor.redact_obj(result.to_dict())},
        )
        self.report.probe(ts, result)
        if result.ok:
            self._finish(ts, host, "succeeded", reason=result.message)
            return "done"
        self._finish(ts, host, "failed", reason=result.message)
        return "fail-continue" if ts.step.on_failure == "continue" else "fail-stop"

    def _check_done(self, ts: TailoredStep, host: Host) -> bool:
        check = self.loaded.tailored.helpers[ts.step.check or ""]
        result = self._run(check, host, ts.id, purpose="check")
        if result is not None and result.ok:
            self._finish(ts, host, "already-done", reason=f"check {check.id!r} succeeded")
            self.journal.append("step-already-done", step=ts.id, host=host.name, check=check.id)
            self.report.already_done(ts, host)
            return True
        return False

    def _command(self, ts: TailoredStep, host: Host, state: StepState) -> str:
        step = ts.step
        for attempt in range(step.retries + 1):
            self.store.transition(
                self.record.run_id,
                ts.id,
                host.name,
                "running",
                attempts=state.attempts + attempt + 1,
                started_at=utcnow(),
            )
            result = self._run(ts, host, ts.id, purpose="step", attempt=attempt + 1)
            if result is not None and result.ok:
                self._finish(ts, host, "succeeded", exit_code=result.exit_code)
                return "done"
            if attempt < step.retries:
                self.journal.append(
                    "step-retry",
                    step=ts.id,
                    host=host.name,
                    attempt=attempt + 1,
                    delay_seconds=step.retry_delay,
                )
                with self._parallel.released():
                    time.sleep(step.retry_delay)
        code = result.exit_code if result is not None else None
        reason = "timed out" if result is not None and result.timed_out else f"exit code {code}"
        self._finish(ts, host, "failed", exit_code=code, reason=reason)
        self._offer_backout(ts, host)
        return "fail-continue" if step.on_failure == "continue" else "fail-stop"

    def _run(
        self, ts: TailoredStep, host: Host, step_id: str, *, purpose: str, attempt: int = 1
    ) -> CommandResult | None:
        shown = self.shown.step(ts.id).body
        self.journal.append(
            f"{purpose}-started",
            step=step_id,
            id=ts.id,
            host=host.name,
            address=host.address,
            transport=host.transport,
            kind=ts.step.kind,
            command=shown,
            attempt=attempt,
            timeout_seconds=ts.step.timeout,
        )
        try:
            transport = self.pool.get(host)
            with self._parallel.released():
                result = transport.run(
                    ts.step.kind,
                    ts.body,
                    timeout=ts.step.timeout,
                    cwd=self._cwd(ts, host),
                    env=self._command_env(ts, host),
                )
        except ExecutionError as exc:
            self.journal.append(
                f"{purpose}-finished",
                step=step_id,
                id=ts.id,
                host=host.name,
                status="error",
                error=exc.message,
            )
            self.report.error(ts, host, self.redactor.redact(exc.message))
            return None
        output = self.redactor.redact(result.stdout + result.stderr)
        digest = self._save_output(step_id, ts.id, host, attempt, purpose, output)
        self.journal.append(
            f"{purpose}-finished",
            step=step_id,
            id=ts.id,
            host=host.name,
            status="succeeded" if result.ok else "failed",
            exit_code=result.exit_code,
            timed_out=result.timed_out,
            duration_seconds=round(result.duration, 3),
            output_sha256=digest,
            output_excerpt=output[-EXCERPT_CHARS:],
        )
        if purpose == "step":
            self.store.transition(
                self.record.run_id,
                ts.id,
                host.name,
                "running",
                output_digest=digest,
                exit_code=result.exit_code,
            )
        self.report.result(
            ts,
            host,
            replace(
                result,
                stdout=self.redactor.redact(result.stdout),
                stderr=self.redactor.redact(result.stderr),
            ),
            purpose,
        )
        return result

    def _command_env(self, ts: TailoredStep, host: Host) -> dict[str, str]:
        """Environment variables every command gets: the run's context and its secrets."""
        return {
            "RUNBOOK_RUN_ID": self.record.run_id,
            "RUNBOOK_STEP": ts.id,
            "RUNBOOK_HOST": host.name,
            "RUNBOOK_HOST_ADDRESS": host.address,
            **self.secret_env,
        }

    def _cwd(self, ts: TailoredStep, host: Host) -> str | None:
        """Local steps run in the runbook's folder; a relative ``cwd`` is taken from there."""
        cwd = ts.step.cwd
        if host.transport != "local":
            return cwd
        folder = self.loaded.runbook.path.resolve().parent
        return str(folder / cwd) if cwd else str(folder)

    def _save_output(
        self, step_id: str, own_id: str, host: Host, attempt: int, purpose: str, output: str
    ) -> str:
        folder = self.run_dir / "output"
        folder.mkdir(exist_ok=True)
        name = f"{step_id}.{purpose}-{own_id}@{host.name}.{attempt}.txt"
        data = output.encode("utf-8")
        (folder / name).write_bytes(data)
        return hashlib.sha256(data).hexdigest()

    def _offer_backout(self, ts: TailoredStep, host: Host) -> None:
        if not ts.step.backout:
            return
        backout = self.loaded.tailored.helpers[ts.step.backout]
        shown = self.shown.step(backout.id)
        decision = self.options.answers.decision(ts.id) if self.options.answers else None
        wanted = decision.backout if decision else None
        if wanted is None and self.options.interactive:
            from rich.prompt import Confirm

            self.report.backout_offer(ts, shown, host)
            wanted = (
                "run"
                if Confirm.ask("Run the backout now?", console=self.report.console)
                else "skip"
            )
        self.journal.append(
            "backout-offered",
            step=ts.id,
            host=host.name,
            backout=backout.id,
            decision=wanted or "not-answered",
            command=shown.body,
        )
        if wanted != "run":
            self.report.backout_offer(ts, shown, host)
            return
        if backout.step.is_manual or host.transport == "manual" or not backout.step.is_command:
            self.journal.append("backout-by-hand", step=ts.id, backout=backout.id, host=host.name)
            return
        result = self._run(backout, host, ts.id, purpose="backout")
        self.report.backout_done(ts, result)

    def _finish(self, ts: TailoredStep, host: Host, status: str, **fields: Any) -> None:
        self.store.transition(
            self.record.run_id, ts.id, host.name, status, finished_at=utcnow(), **fields
        )

    def _summary(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for s in self.store.steps(self.record.run_id):
            counts[s.status] = counts.get(s.status, 0) + 1
        return {"steps": counts}

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: one runner per run is assumed
            yield
            return
        with open(self.run_dir / "lock", "w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                raise StateError(
                    f"run {self.record.run_id} is being executed by another process"
                ) from None
            yield


class _HeldLock:
    """A lock for host fan-out that a worker can let go of while its command runs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._local = threading.local()

    def __enter__(self) -> None:
        self._lock.acquire()
        self._local.held = True

    def __exit__(self, *exc: object) -> None:
        self._local.held = False
        self._lock.release()

    @contextlib.contextmanager
    def released(self) -> Iterator[None]:
        """Release the lock for the duration of the block, if this thread holds it."""
        if not getattr(self._local, "held", False):
            yield
            return
        self.__exit__()
        try:
            yield
        finally:
            self.__enter__()


def _runbook_fields(loaded: Loaded) -> dict[str, Any]:
    rb = loaded.runbook
    return {
        "id": rb.id,
        "title": rb.title,
        "version": rb.version,
        "path": str(rb.path.resolve()),
        "sha256": rb.content_hash,
    }


def _env_fields(loaded: Loaded) -> dict[str, Any] | None:
    env = loaded.environment
    if env is None:
        return None
    hosts = {
        role: [{"name": h.name, "address": h.address, "transport": h.transport} for h in hs]
        for role, hs in env.roles.items()
    }
    return {
        "name": env.name,
        "path": str(env.path.resolve()),
        "sha256": env.content_hash,
        "hosts": hosts,
    }


def _answers_fields(answers: Answers | None) -> dict[str, Any] | None:
    if answers is None:
        return None
    return {"path": str(answers.path), "sha256": answers.sha256, "operator": answers.operator}
