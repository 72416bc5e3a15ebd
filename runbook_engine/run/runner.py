"""The runner: the flow of one run, from its first pending step to its outcome.

The runner has papermill's shape: start -> execute -> always complete.  It decides the
order (steps in runbook order, each step's hosts one at a time or fanned out), skips
what ``when=`` excluded, resumes a step found ``running`` after a kill (its check
decides, or a person), applies the run's guards, and hands each step on each host to
the executor of its kind (:func:`runbook_engine.run.steps.executor_for`) with the run's
:class:`~runbook_engine.run.context.RunContext`.  It never names a kind.  Each step on
each host is checkpointed before and after it runs (one transaction per transition)
and every transition is a journal event, written before the process moves on.  A run
stops with :class:`RunPaused` (exit 3) at a gate nobody has answered yet;
:func:`runbook_engine.run.lifecycle.resume_run` continues it later.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from runbook_engine.errors import ConnectionLost, RunInterrupted, RunPaused, StateError
from runbook_engine.evidence.journal import read_journal
from runbook_engine.evidence.record import finished_summary
from runbook_engine.evidence.rows import NOT_REACHED
from runbook_engine.evidence.secrets import run_secrets
from runbook_engine.run.check import check_step, verdict_counts
from runbook_engine.run.context import RunContext
from runbook_engine.run.faults import crash_point
from runbook_engine.run.groupcommit import GroupCommit
from runbook_engine.run.hints import locate, location_args
from runbook_engine.run.interrupts import signal_of
from runbook_engine.run.options import RunOptions, RunResult
from runbook_engine.run.steps import executor_for, executors
from runbook_engine.run.steps.base import StepExecutor
from runbook_engine.run.store import DONE_STATUSES, RunRecord
from runbook_engine.run.store_api import Store

if TYPE_CHECKING:
    from runbook_engine.run.steps.base import Outcome
    from runbook_engine.source.model import Host
    from runbook_engine.tailor.loading import Loaded
    from runbook_engine.tailor.tailoring import TailoredRunbook, TailoredStep


class Runner:
    """Walks the flow of one run.  Build with
    :func:`~runbook_engine.run.lifecycle.create_run` or
    :func:`~runbook_engine.run.lifecycle.open_run`.

    Args:
        store: The checkpoint store.
        record: The run as stored.
        loaded: The runbook, environment and values with real secrets.
        shown_steps: The tailored runbook as people see it (secret markers).
        options: How the run was started.
        secrets: Resolved secret values (default: resolved from ``loaded``).
    """

    def __init__(
        self,
        store: Store,
        record: RunRecord,
        loaded: Loaded,
        shown_steps: TailoredRunbook,
        options: RunOptions,
        secrets: dict[str, str] | None = None,
    ) -> None:
        secret_values = run_secrets(loaded) if secrets is None else secrets
        self.ctx = RunContext(store, record, loaded, shown_steps, options, secret_values)
        self.store, self.record, self.loaded, self.options = store, record, loaded, options
        self.journal, self.redactor, self.signer = (
            self.ctx.journal,
            self.ctx.redactor,
            self.ctx.signer,
        )
        self.report, self.pool = self.ctx.report, self.ctx.pool
        #: Executors whose guard can refuse a step (found once per run).
        self._guards = [e for e in executors() if type(e).guard is not StepExecutor.guard]
        self._claim: contextlib.ExitStack | None = None

    def append_signed(self, event: str, **fields: Any) -> dict[str, Any]:
        """Append a journal event, then sign the new chain head (when the run is signed)."""
        return self.ctx.append_signed(event, **fields)

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
            RunInterrupted: Ctrl-C, SIGTERM or SIGHUP (exit 130, 143, 129).
            ConnectionLost: a host's connection broke while a step ran there (exit 75;
                the run is ``interrupted``, the step left ``running``).
            StateError: another process is executing this run.
        """
        try:
            return self._execute(stop_after)
        finally:  # finished, paused, interrupted or failed: the anchor goes to disk
            self.ctx.rest()

    def _execute(self, stop_after: str | None) -> RunResult:
        run_id = self.record.run_id
        status = "error"
        try:
            with self._lock():
                self.ctx.pipelined = True  # a step's end acknowledged with the next record
                try:
                    status = self._flow(stop_after)
                finally:
                    self.ctx.pipelined = False
                self.ctx.settle()  # the last step's end, before the summary reads the store
        except RunPaused as paused:
            self.store.update_run(run_id, status="paused")
            self.append_signed("run-paused")
            paused.run_id = run_id
            raise
        except ConnectionLost as lost:
            self.store.update_run(run_id, status="interrupted")
            self.append_signed("run-interrupted", by=self.options.operator, reason=lost.message)
            raise ConnectionLost(
                locate(
                    f"run {run_id} interrupted: {lost.message}. `runbook resume {run_id}` looks "
                    "for it on the host first, then asks whether it was done",
                    location_args(self.store),
                ),
                lost.marker,
            ) from None
        except KeyboardInterrupt as stop:
            signum = signal_of(stop)
            name = signal.Signals(signum).name
            self.store.update_run(run_id, status="interrupted")
            self.append_signed("run-interrupted", by=self.options.operator, signal=name)
            interrupted = RunInterrupted(
                locate(
                    f"run {run_id} interrupted ({name}); `runbook resume {run_id}` continues "
                    "it (the interrupted step is checked before it runs again)",
                    location_args(self.store),
                )
            )
            interrupted.exit_status = 128 + signum
            raise interrupted from None
        finally:
            if status != "partial":  # a notebook's next cell reuses the open WinRM shells
                self.pool.close()
                self.release()
        if status == "partial":
            return RunResult(run_id, "running", self.journal.path, self.store.state_dir)
        summary = self._summary()
        records = read_journal(self.journal.path, verify=False)
        known = finished_summary(records, status)
        stored = "aborted" if status == "rejected" else status  # outcome: rejected
        self.store.update_run(run_id, status=stored, outcome=known["outcome"])
        crash_point("after-final-status")  # a resume finds no run-finished: reconciled
        self.append_signed(
            "run-finished",
            status=status,
            outcome=known["outcome"],
            known=known["known"],
            verification_known=known["verification_known"],
            **summary,
        )
        checked = verdict_counts(records) if self.options.check else {}
        shown = {**summary, "steps": checked} if self.options.check else summary
        self.report.finished(run_id, known["outcome"], shown, known["note"], known["known"])
        return RunResult(
            run_id,
            stored,
            self.journal.path,
            self.store.state_dir,
            outcome=known["outcome"],
            note=known["note"],
            known=known["known"],
            checked=checked,
        )

    def _flow(self, stop_after: str | None = None) -> str:
        failed = False
        paused: list[str] = []
        steps = self.loaded.tailored.steps
        total = len(steps)
        if stop_after is not None and stop_after not in {ts.id for ts in steps}:
            raise StateError(f"run {self.record.run_id}: no step {stop_after!r} in the flow")
        # One read instead of one query per earlier step: the flow starts at the first pending one.
        done = self.store.done_keys(self.record.run_id)
        for ts in steps:
            if ts.hosts and all((ts.id, h.name) in done for h in ts.hosts):
                ts_hosts: Iterator[tuple[Host, Outcome]] = iter(())
            else:
                ts_hosts = self._hosts(ts, total)
            for host, outcome in ts_hosts:
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
        self.ctx.settle()  # the last step's end, before the store is read
        if paused:
            raise RunPaused(locate(self._pause_hint(paused[0]), location_args(self.store)))
        if failed:
            return "failed"
        if self.options.check:
            return "checked"
        return "succeeded" if self._verified() else "unverified"

    def _hosts(self, ts: TailoredStep, total: int) -> Iterator[tuple[Host, Outcome]]:
        """Run ``ts`` on each of its hosts; yield ``(host, outcome)`` in host order.

        With ``forks`` above 1 and several hosts, up to ``forks`` hosts run at once:
        everything but the command itself (store, journal, terminal) happens under
        one lock, so only transports run in parallel, and the hosts share the journal's
        ``fsync``s, signatures and transactions (:mod:`runbook_engine.run.groupcommit`).
        No new host is started once ``max_failures`` hosts of the step have failed
        (default: 1 when the step stops on failure), the same rule as one host at a time.
        """
        limit = self.options.max_failures
        if limit is None:
            limit = 1 if ts.step.on_failure == "stop" else len(ts.hosts)
        if self.options.forks <= 1 or len(ts.hosts) <= 1:
            failures = 0
            done: list[tuple[Host, Outcome]] = []
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

    def _fan_out(self, ts: TailoredStep, total: int, limit: int) -> Iterator[tuple[Host, Outcome]]:
        from concurrent.futures import ThreadPoolExecutor

        failed = [0]

        def work(host: Host) -> Outcome | None:
            with self.ctx.parallel:
                if failed[0] >= limit:
                    self._not_started(ts, host, failed[0])
                    return None
                outcome = self._one(ts, host, total)
                failed[0] += outcome.startswith("fail")
                return outcome

        ctx = self.ctx
        ctx.settle()  # the previous step's end first: the group syncs and signs its own
        ctx.group = GroupCommit(ctx.journal, ctx.store, ctx.run_id, ctx.anchor, ctx.parallel)
        try:
            with ThreadPoolExecutor(
                max_workers=self.options.forks, thread_name_prefix="runbook-host"
            ) as pool:
                futures = {host.name: pool.submit(work, host) for host in ts.hosts}
                results = {host.name: futures[host.name].result() for host in ts.hosts}
        finally:  # the hosts' ends, committed before the next step (or the run's stop)
            group, ctx.group = ctx.group, None
            group.flush()
        for host in ts.hosts:
            outcome = results[host.name]
            if outcome is not None:
                yield host, outcome

    def _not_started(self, ts: TailoredStep, host: Host, failures: int) -> None:
        self.journal.append(
            "step-not-started",
            step=ts.id,
            host=host.name,
            reason=f"{failures} host(s) of this step failed (max failures reached)",
        )

    def _pause_hint(self, where: str) -> str:
        run_id, step_id = self.record.run_id, where.split("@")[0]
        own = executor_for(self.loaded.tailored.step(step_id).step.kind).pause_hint(run_id, step_id)
        if own is not None:
            return own
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

    def _one(self, ts: TailoredStep, host: Host, total: int) -> Outcome:
        """Carry out ``ts`` on ``host`` unless its checkpoint says it is done."""
        ctx = self.ctx
        state = ctx.state(ts, host)
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
            ctx.finish(ts, host, "skipped", reason=ts.skip_reason)
            self.journal.append("step-skipped", step=ts.id, host=host.name, reason=ts.skip_reason)
            self.report.skipped(ts.skip_reason)
            return "done"
        if self.options.check:  # check mode: only what reads runs (run/check.py)
            return check_step(ctx, ts, host, state)
        executor = executor_for(ts.step.kind)
        if executor.guarded:
            for guard in self._guards:
                refused = guard.guard(ctx, ts)
                if refused is not None:
                    self.journal.append(
                        guard.guard_event, step=ts.id, host=host.name, reason=refused
                    )
                    ctx.finish(ts, host, "failed", reason=refused)
                    self.report.error(ts, host, refused)
                    return "fail-stop"
        return executor.execute(ctx, ts, host, state, checked)

    def _interrupted(self, ts: TailoredStep, host: Host) -> Outcome:
        """A step found ``running``: the process died mid-step.  Its check decides, or a person."""
        ctx = self.ctx
        self.journal.append("step-interrupted", step=ts.id, host=host.name)
        if ts.step.check and not (ts.step.is_manual or ctx.by_hand(host)):
            if ctx.check_done(ts, host):
                return "done"
            self.journal.append(
                "step-rerun",
                step=ts.id,
                host=host.name,
                reason="its check found the change not in place",
            )
            return "rerun"
        self.report.interrupted(ts, host)
        decision = ctx.decision(
            ts, host, "The step was interrupted. Was it done?", ("confirm", "rerun", "abort")
        )
        if decision is None:
            self.journal.append("gate-awaiting", step=ts.id, host=host.name, gate="interrupted")
            return "pause"
        if decision.decision == "confirm":
            decision = decision.renamed("done")
        return ctx.apply(ts, host, decision, "interrupted", ts.body)

    def _summary(self) -> dict[str, Any]:
        """The finished run's step counts by status; a step that never started is
        ``not reached`` (as in its change record), ``pending`` being a paused run's word."""
        counts: dict[str, int] = {}
        for s in self.store.steps(self.record.run_id):
            status = NOT_REACHED if s.status == "pending" else s.status
            counts[status] = counts.get(status, 0) + 1
        return {"steps": counts}

    def claim(self) -> None:
        """Take the run's lock (``store.lock_run``) for this
        process until :meth:`release` (at the end of :meth:`execute`); taken again, a no-op.

        Raises:
            StateError: another process holds it (it is executing or changing this run).
        """
        if self._claim is not None:
            return
        stack = contextlib.ExitStack()
        stack.enter_context(self.store.lock_run(self.record.run_id))
        self._claim = stack

    def release(self) -> None:
        """Let go of the run's lock."""
        if self._claim is not None:
            self._claim.close()
            self._claim = None

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        self.claim()
        yield
