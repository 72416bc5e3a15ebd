"""Run a ``registry`` or ``service`` step on a host: read first, change, read back, back out.

The runner hands every step of these kinds to :func:`execute_declarative`
(:class:`DeclarativeStep`).  On a host reached over a transport:

1. The current value (or start mode and state) is read; when it is already what
   the step asks for, the step is **already-done** and the observed value is
   journaled (``step-already-done``, field ``observed``).
2. Otherwise the previous value is journaled (``step-previous``, field
   ``previous``: ``{"present": false}``, ``{"present": true, "type", "data"}`` or
   ``{"start", "state"}``) with the generated backout that restores it.
3. The change runs, the value is read back (a service start or stop is awaited
   until it is no longer pending, at most ``wait`` seconds) and the step fails
   when the read-back differs (``step-readback``, field ``matches``).
4. On failure the generated backout is offered like a ``backout=`` step: it runs
   when the answers file says ``backout: run`` for the step (or the operator
   agrees at the terminal), and its result is read back (``backout-verified``).

On a ``manual`` host the step is a gate showing the exact commands and the GUI path.
Every command is journaled like the runner's own (``check-``/``step-``/``readback-``/
``backout-`` ``started``/``finished`` events with command, exit code, output digest).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any

from runbook_engine.declarative import compile as cc
from runbook_engine.declarative.output import OutputError, parse_reg_query, parse_sc
from runbook_engine.declarative.parse import parse_declarative
from runbook_engine.declarative.spec import DeclarativeSpec, RegistrySpec, RegValue, ServiceStatus
from runbook_engine.errors import ExecutionError
from runbook_engine.run.steps.base import Preview, StepExecutor, failed
from runbook_engine.run.store import utcnow
from runbook_engine.source.model import Host
from runbook_engine.tailor.tailoring import TailoredStep
from runbook_engine.transports.base import CommandResult
from runbook_engine.transports.winrm_scripts import SAFE_COMMAND_LINE

if TYPE_CHECKING:
    from runbook_engine.run.steps.base import Outcome, StepContext
    from runbook_engine.run.store import StepState

#: Seconds between ``sc query`` polls while a service start or stop is pending.
POLL_SECONDS = 2.0
#: Longest one-line command sent as is; longer ones go through a batch file.
INLINE_LIMIT = SAFE_COMMAND_LINE - 100

Observed = RegValue | ServiceStatus | None
Build = Callable[[bool], list[str]]


class DeclarativeStep(StepExecutor):
    """Executor of ``registry`` and ``service`` steps."""

    def execute(
        self, ctx: StepContext, ts: TailoredStep, host: Host, state: StepState, checked: bool
    ) -> Outcome:
        """Run step ``ts`` (kind ``registry`` or ``service``) on ``host``.

        Returns:
            ``"done"``, ``"pause"`` (a gate on a manual host waits), ``"abort"``,
            ``"fail-stop"`` or ``"fail-continue"``.

        Raises:
            InputError: the body is invalid (tailoring normally reported it already).
            RunPaused, KeyboardInterrupt: as every executor.
        """
        spec = parse_declarative(ts.step.kind, ts.body, ts.step.span.path, ts.step.body_line)
        if ctx.by_hand(host):
            return _gate(ctx, ts, host, spec, state)
        return _Execution(ctx, ts, host, spec, state).run()

    def preview(self, ctx: StepContext, ts: TailoredStep, host: Host) -> Preview | None:
        """Check mode: read the current value (``reg query``, ``sc qc``/``sc query``; the
        reads are journaled ``check-started``/``check-finished``) and compare it with the
        one the step sets.  Nothing is written."""
        if ctx.by_hand(host):
            return None
        spec = parse_declarative(ts.step.kind, ts.body, ts.step.span.path, ts.step.body_line)
        execution = _Execution(ctx, ts, host, spec, ctx.state(ts, host))
        ok, current = execution.read("check")
        if not ok:
            return Preview("unknown", f"could not read the current setting: {execution.error}")
        seen = {"observed": _observed(current), "expected": cc.expected_text(spec)}
        if spec.satisfied_by(current):  # type: ignore[arg-type]
            return Preview("already-done", f"already {_text(current)}", seen)
        detail = f"now {_text(current)}; would set {cc.expected_text(spec)}"
        return Preview("would-change", detail, seen)


def _observed(value: Observed) -> dict[str, Any]:
    if value is None:
        return {"present": False}
    return value.to_dict()


def _text(value: Observed) -> str:
    return "absent" if value is None else value.text()


class _Execution:
    """One declarative step on one host reached over a transport."""

    def __init__(
        self,
        ctx: StepContext,
        ts: TailoredStep,
        host: Host,
        spec: DeclarativeSpec,
        state: StepState,
    ) -> None:
        self.r, self.ts, self.host, self.spec, self.state = ctx, ts, host, spec, state
        self.sequence = 0
        self.error: str | None = None

    # -- flow -------------------------------------------------------------------------
    def run(self) -> Outcome:
        r, ts, host = self.r, self.ts, self.host
        attempts = self.state.attempts
        ok, current = self.settle("check")
        if not ok:
            return self._fail(
                f"could not read the current setting: {self.error}", None, offer=False
            )
        if self.spec.satisfied_by(current):  # type: ignore[arg-type]
            r.finish(ts, host, "already-done", reason=f"already {_text(current)}")
            r.journal.append(
                "step-already-done",
                step=ts.id,
                host=host.name,
                ensures=cc.describe(self.spec),
                observed=_observed(current),
            )
            r.report.already_done(ts, host)
            return "done"
        previous = current
        r.journal.append(
            "step-previous",
            step=ts.id,
            host=host.name,
            ensures=cc.describe(self.spec),
            previous=_observed(previous),
            backout_commands=self.restore(previous)(False),
        )
        reason = ""
        for attempt in range(ts.step.retries + 1):
            r.transition(ts, host, "running", attempts=attempts + attempt + 1, started_at=utcnow())
            done, reason = self.change(current, attempt + 1)
            if done:
                r.finish(ts, host, "succeeded", exit_code=0, reason=reason)
                return "done"
            if attempt < ts.step.retries:
                r.journal.append(
                    "step-retry",
                    step=ts.id,
                    host=host.name,
                    attempt=attempt + 1,
                    delay_seconds=ts.step.retry_delay,
                )
                with r.released():
                    time.sleep(ts.step.retry_delay)
                ok, fresh = self.settle("check")
                current = fresh if ok else current
        return self._fail(reason, previous, offer=True)

    def change(self, current: Observed, attempt: int) -> tuple[bool, str]:
        """Run the change and read it back; return (succeeded, reason)."""
        spec = self.spec
        build: Build = lambda batch: cc.change_commands(spec, current, batch=batch)  # noqa: E731
        result = self.commands("step", build, attempt)
        if result is None or not result.ok:
            return False, self._command_failure(result)
        ok, after = self.settle("readback")
        if not ok:
            return False, f"could not read the setting back: {self.error}"
        matches = spec.satisfied_by(after)  # type: ignore[arg-type]
        self.r.journal.append(
            "step-readback",
            step=self.ts.id,
            host=self.host.name,
            expected=cc.expected_text(spec),
            observed=_observed(after),
            matches=matches,
        )
        if matches:
            return True, f"read back {_text(after)}"
        return False, f"read back {_text(after)}, expected {cc.expected_text(spec)}"

    def settle(self, purpose: str) -> tuple[bool, Observed]:
        """Read; for a service, poll while a start or stop is pending (at most ``wait`` s)."""
        ok, seen = self.read(purpose)
        if isinstance(self.spec, RegistrySpec):
            return ok, seen
        deadline = time.monotonic() + self.spec.wait
        while ok and isinstance(seen, ServiceStatus) and seen.pending:
            if time.monotonic() >= deadline:
                break
            time.sleep(POLL_SECONDS)
            ok, seen = self.read(purpose)
        return ok, seen

    def _fail(self, reason: str, previous: Observed, *, offer: bool) -> Outcome:
        """Mark the step failed; offer the backout when the change may have run."""
        ts, host = self.ts, self.host
        self.r.finish(ts, host, "failed", reason=reason)
        self.r.report.error(ts, host, reason)
        if offer:
            self.offer_backout(previous)
        return failed(ts)

    # -- backout ------------------------------------------------------------------------
    def restore(self, previous: Observed, current: Observed = None) -> Build:
        spec = self.spec
        now = current if isinstance(current, ServiceStatus) else None
        return lambda batch: cc.restore_commands(spec, previous, now, batch=batch)

    def offer_backout(self, previous: Observed) -> None:
        r, ts, host = self.r, self.ts, self.host
        if ts.step.backout:  # an explicit backout= step wins over the generated one
            r.offer_backout(ts, host)
            return
        ok, now = self.settle("check") if isinstance(previous, ServiceStatus) else (True, None)
        build = self.restore(previous, now if ok else None)
        shown = _display(ts, "\n".join(build(False)) + "\n")
        wanted, source = r.backout_wanted(ts, shown, host)
        r.journal.append(
            "backout-offered",
            step=ts.id,
            host=host.name,
            backout="generated",
            decision=wanted or "not-answered",
            source=source,
            command=shown.body,
            previous=_observed(previous),
        )
        if wanted != "run":
            r.report.backout_offer(ts, shown, host)
            return
        result = self.commands("backout", build, 1)
        ok, after = self.settle("readback")
        restored = ok and self._restored(previous, after)
        r.journal.append(
            "backout-verified",
            step=ts.id,
            host=host.name,
            restored=bool(restored),
            expected=_observed(previous),
            observed=_observed(after) if ok else None,
        )
        r.report.backout_done(ts, result if restored else None)

    def _restored(self, previous: Observed, after: Observed) -> bool:
        """True when ``after`` is ``previous`` in what the step changes."""
        if isinstance(previous, ServiceStatus) and isinstance(after, ServiceStatus):
            spec = self.spec
            return (getattr(spec, "start", None) is None or after.start == previous.start) and (
                getattr(spec, "state", None) is None or after.state == previous.state
            )
        return after == previous

    # -- reading ------------------------------------------------------------------------
    def read(self, purpose: str) -> tuple[bool, Observed]:
        """Read the value or service status; (False, None) with ``self.error`` set on failure."""
        spec = self.spec
        results = []
        for index in range(len(cc.read_commands(spec))):
            result = self.commands(purpose, partial(_read_one, spec, index), 1)
            if result is None:
                return False, None
            results.append(result)
        try:
            if isinstance(spec, RegistrySpec):
                got = results[0]
                return True, parse_reg_query(got.exit_code, got.stdout + got.stderr, spec.value)
            qc, query = results
            return True, parse_sc(
                qc.exit_code, qc.stdout + qc.stderr, query.exit_code, query.stdout + query.stderr
            )
        except OutputError as exc:
            self.error = str(exc)
            return False, None

    # -- commands -----------------------------------------------------------------------
    def commands(self, purpose: str, build: Build, attempt: int) -> CommandResult | None:
        """Run the commands one by one, stopping at the first failure; return the last result."""
        line, batch = build(False), build(True)
        result: CommandResult | None = CommandResult(0, "", "", 0.0)  # nothing to run
        for index, command in enumerate(line):
            inline = self.host.transport == "winrm" and len(command) <= INLINE_LIMIT
            result = self.run_one(
                purpose, command if inline else "@echo off\n" + batch[index], attempt
            )
            if result is None or (purpose not in ("check", "readback") and not result.ok):
                break
        return result

    def run_one(self, purpose: str, body: str, attempt: int) -> CommandResult | None:
        """Run one command as :meth:`StepContext.run_command` does: journaled, output saved
        and digested (its own journal fields: the compiled command, kind ``cmd``)."""
        r, ts, host = self.r, self.ts, self.host
        self.sequence += 1
        shown = r.redactor.redact(body)
        r.journal.append(
            f"{purpose}-started",
            step=ts.id,
            id=ts.id,
            host=host.name,
            address=host.address,
            transport=host.transport,
            kind="cmd",
            command=shown,
            attempt=attempt,
            timeout_seconds=ts.step.timeout,
        )
        try:
            result = r.transport(host).run("cmd", body, timeout=ts.step.timeout)
        except ExecutionError as exc:
            self.error = r.redactor.redact(exc.message)
            r.journal.append(
                f"{purpose}-finished",
                step=ts.id,
                id=ts.id,
                host=host.name,
                status="error",
                error=exc.message,
            )
            return None
        r.record_result(ts, host, ts.id, f"{ts.id}.{self.sequence}", purpose, attempt, result)
        r.report.result(
            ts, host, r.redacted(result), "check" if purpose in ("check", "readback") else purpose
        )
        if not result.ok and result.timed_out:
            self.error = "timed out"
        return result

    def _command_failure(self, result: CommandResult | None) -> str:
        if result is None:
            return f"could not run the change: {self.error}"
        if result.timed_out:
            return "the change timed out"
        return f"the change failed with exit code {result.exit_code}"


def _read_one(spec: DeclarativeSpec, index: int, batch: bool) -> list[str]:
    """The ``index``-th read command of ``spec`` alone."""
    return [cc.read_commands(spec, batch=batch)[index]]


def _display(ts: TailoredStep, body: str) -> TailoredStep:
    """A copy of ``ts`` shown as a cmd script with ``body`` (for the reporter)."""
    return TailoredStep(
        replace(ts.step, kind="cmd"), ts.number, body, ts.hosts, ts.skip_reason, ts.condition
    )


def _gate(
    ctx: StepContext, ts: TailoredStep, host: Host, spec: DeclarativeSpec, state: StepState
) -> Outcome:
    """A person does the step on a manual host: the run's gate, showing the exact commands."""
    try:  # the body people see holds [secret:...] markers, never values
        shown_spec = parse_declarative(
            ts.step.kind, ctx.shown(ts.id).body, ts.step.span.path, ts.step.body_line
        )
    except Exception:  # a [secret:...] marker may not fit the schema: use the real body
        shown_spec = spec
    script = ctx.redactor.redact(cc.by_hand_script(shown_spec))
    return ctx.gate(
        ts, host, state, shown=_display(ts, script), extra={"ensures": cc.describe(shown_spec)}
    )
