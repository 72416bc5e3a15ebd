"""Run a ``registry`` or ``service`` step on a host: read first, change, read back, back out.

The runner hands every step of these kinds to :func:`execute_declarative`
(``Runner._one``).  On a host reached over a transport:

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

from ..errors import ExecutionError
from ..model import Host
from ..store import utcnow
from ..tailor import TailoredStep
from ..transports.base import CommandResult
from ..transports.winrm_scripts import SAFE_COMMAND_LINE
from . import compile as cc
from .output import OutputError, parse_reg_query, parse_sc
from .parse import parse_declarative
from .spec import DeclarativeSpec, RegistrySpec, RegValue, ServiceStatus

if TYPE_CHECKING:
    from ..runner import Runner

#: Seconds between ``sc query`` polls while a service start or stop is pending.
POLL_SECONDS = 2.0
#: Longest one-line command sent as is; longer ones go through a batch file.
INLINE_LIMIT = SAFE_COMMAND_LINE - 100

Observed = RegValue | ServiceStatus | None
Build = Callable[[bool], list[str]]


def execute_declarative(runner: Runner, ts: TailoredStep, host: Host) -> str:
    """Run step ``ts`` (kind ``registry`` or ``service``) on ``host``.

    Returns:
        The runner's outcome words: ``"done"``, ``"pause"`` (a gate on a manual
        host waits), ``"abort"``, ``"fail-stop"`` or ``"fail-continue"``.

    Raises:
        InputError: the body is invalid (tailoring normally reported it already).
        RunPaused, KeyboardInterrupt: as the runner's own steps.
    """
    spec = parse_declarative(ts.step.kind, ts.body, ts.step.span.path, ts.step.body_line)
    if host.transport == "manual":
        return _gate(runner, ts, host, spec)
    return _Execution(runner, ts, host, spec).run()


def _observed(value: Observed) -> dict[str, Any]:
    if value is None:
        return {"present": False}
    return value.to_dict()


def _text(value: Observed) -> str:
    return "absent" if value is None else value.text()


class _Execution:
    """One declarative step on one host reached over a transport."""

    def __init__(self, runner: Runner, ts: TailoredStep, host: Host, spec: DeclarativeSpec) -> None:
        self.r, self.ts, self.host, self.spec = runner, ts, host, spec
        self.sequence = 0
        self.error: str | None = None

    # -- flow -------------------------------------------------------------------------
    def run(self) -> str:
        r, ts, host = self.r, self.ts, self.host
        run_id = r.record.run_id
        state = r.store.step(run_id, ts.id, host.name)
        attempts = state.attempts if state else 0
        ok, current = self.settle("check")
        if not ok:
            return self._fail(
                f"could not read the current setting: {self.error}", None, offer=False
            )
        if self.spec.satisfied_by(current):  # type: ignore[arg-type]
            r._finish(ts, host, "already-done", reason=f"already {_text(current)}")
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
            r.store.transition(
                run_id,
                ts.id,
                host.name,
                "running",
                attempts=attempts + attempt + 1,
                started_at=utcnow(),
            )
            done, reason = self.change(current, attempt + 1)
            if done:
                r._finish(ts, host, "succeeded", exit_code=0, reason=reason)
                return "done"
            if attempt < ts.step.retries:
                r.journal.append(
                    "step-retry",
                    step=ts.id,
                    host=host.name,
                    attempt=attempt + 1,
                    delay_seconds=ts.step.retry_delay,
                )
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

    def _fail(self, reason: str, previous: Observed, *, offer: bool) -> str:
        """Mark the step failed; offer the backout when the change may have run."""
        ts, host = self.ts, self.host
        self.r._finish(ts, host, "failed", reason=reason)
        self.r.report.error(ts, host, reason)
        if offer:
            self.offer_backout(previous)
        return "fail-continue" if ts.step.on_failure == "continue" else "fail-stop"

    # -- backout ------------------------------------------------------------------------
    def restore(self, previous: Observed, current: Observed = None) -> Build:
        spec = self.spec
        now = current if isinstance(current, ServiceStatus) else None
        return lambda batch: cc.restore_commands(spec, previous, now, batch=batch)

    def offer_backout(self, previous: Observed) -> None:
        r, ts, host = self.r, self.ts, self.host
        if ts.step.backout:  # an explicit backout= step wins over the generated one
            r._offer_backout(ts, host)
            return
        ok, now = self.settle("check") if isinstance(previous, ServiceStatus) else (True, None)
        build = self.restore(previous, now if ok else None)
        shown = _display(ts, "\n".join(build(False)) + "\n")
        decision = r.options.answers.decision(ts.id) if r.options.answers else None
        wanted = decision.backout if decision else None
        if wanted is None and r.options.interactive:
            from rich.prompt import Confirm

            r.report.backout_offer(ts, shown, host)
            agreed = Confirm.ask("Run the backout now?", console=r.report.console)
            wanted = "run" if agreed else "skip"
        r.journal.append(
            "backout-offered",
            step=ts.id,
            host=host.name,
            backout="generated",
            decision=wanted or "not-answered",
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
        """Run one command as the runner's ``_run`` does: journaled, output saved and digested."""
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
            result = r.pool.get(host).run("cmd", body, timeout=ts.step.timeout)
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
        output = r.redactor.redact(result.stdout + result.stderr)
        digest = r._save_output(ts.id, f"{ts.id}.{self.sequence}", host, attempt, purpose, output)
        r.journal.append(
            f"{purpose}-finished",
            step=ts.id,
            id=ts.id,
            host=host.name,
            status="succeeded" if result.ok else "failed",
            exit_code=result.exit_code,
            timed_out=result.timed_out,
            duration_seconds=round(result.duration, 3),
            output_sha256=digest,
            output_excerpt=output[-2000:],
        )
        if purpose == "step":
            r.store.transition(
                r.record.run_id,
                ts.id,
                host.name,
                "running",
                output_digest=digest,
                exit_code=result.exit_code,
            )
        r.report.result(
            ts,
            host,
            replace(
                result,
                stdout=r.redactor.redact(result.stdout),
                stderr=r.redactor.redact(result.stderr),
            ),
            "check" if purpose in ("check", "readback") else purpose,
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


def _gate(runner: Runner, ts: TailoredStep, host: Host, spec: DeclarativeSpec) -> str:
    """A person does the step on a manual host: the runner's gate, showing the exact commands."""
    try:  # the body people see holds [secret:...] markers, never values
        shown_spec = parse_declarative(
            ts.step.kind, runner.shown.step(ts.id).body, ts.step.span.path, ts.step.body_line
        )
    except Exception:  # a [secret:...] marker may not fit the schema: use the real body
        shown_spec = spec
    script = runner.redactor.redact(cc.by_hand_script(shown_spec))
    state = runner.store.step(runner.record.run_id, ts.id, host.name)
    assert state is not None
    return runner._gate(
        ts, host, state, shown=_display(ts, script), extra={"ensures": cc.describe(shown_spec)}
    )
