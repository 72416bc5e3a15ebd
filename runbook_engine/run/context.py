"""The run's services for step executors: journal, checkpoints, gates and commands.

:class:`RunContext` implements :class:`runbook_engine.run.steps.base.StepContext`.  The
runner builds one per run and hands it to each executor; executors reach the journal,
the checkpoint store, the gate logic and the transports only through it.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from runbook_engine.errors import ConnectionLost, ExecutionError, RunbookError
from runbook_engine.evidence.redact import Redactor
from runbook_engine.evidence.signing import SignedJournal, first_record, shared_lock, signer_for_run
from runbook_engine.run.anchor import StoreAnchor
from runbook_engine.run.faults import crash_point
from runbook_engine.run.gate_services import GateServices
from runbook_engine.run.groupcommit import GroupCommit, Move, fsync_file
from runbook_engine.run.heldlock import HeldLock
from runbook_engine.run.notify import attach
from runbook_engine.run.reporter import Reporter
from runbook_engine.run.step_output import max_output_bytes, output_name, write_output
from runbook_engine.run.store import CheckpointStore, RunRecord, StepState, utcnow
from runbook_engine.tailor.quoting import secret_environment
from runbook_engine.transports import TRANSPORTS, CommandResult, Transport, TransportPool
from runbook_engine.transports.process import (
    CommandHooks,
    ProcessIdentity,
    RemoteProcess,
    command_hooks,
)

if TYPE_CHECKING:
    from runbook_engine.run.options import RunOptions
    from runbook_engine.source.model import Host
    from runbook_engine.tailor.loading import Loaded
    from runbook_engine.tailor.tailoring import TailoredRunbook, TailoredStep

#: Characters of a command's output kept in its journal event (the whole output is a file).
EXCERPT_CHARS = 2000
#: Steps whose end may wait for one acknowledgment (one signature ``fsync`` for them all),
#: and the seconds the first of them may wait: the terminal lags the run by no more.
ACK_STEPS = 16
ACK_SECONDS = 0.2


class RunContext(GateServices):
    """Everything an executor may use during one run (its gates and backouts:
    :class:`~runbook_engine.run.gate_services.GateServices`).

    Args:
        store: The checkpoint store.
        record: The run as stored.
        loaded: The runbook, environment and values with real secrets.
        shown: The tailored runbook as people see it (secret markers).
        options: How the run was started.
        secrets: Resolved secret values by name, for redaction and credentials.
    """

    def __init__(
        self,
        store: CheckpointStore,
        record: RunRecord,
        loaded: Loaded,
        shown: TailoredRunbook,
        options: RunOptions,
        secrets: dict[str, str],
    ) -> None:
        self.store = store
        self.record = record
        self.run_id = record.run_id
        self.loaded = loaded
        self.shown_runbook = shown
        self.options = options
        self.run_dir = store.run_dir(record.run_id)
        path = self.run_dir / "journal.jsonl"
        with shared_lock(path):  # another process may be appending
            started = first_record(path)
            self.signer = signer_for_run(store.state_dir, self.run_dir, record.run_id, started)
            self.run_dir.mkdir(parents=True, exist_ok=True)
            if self.signer is not None and started is None:
                self.signer.export_public_key()
            self.redactor = Redactor(secrets)
            self.anchor = StoreAnchor(store, record.run_id, path)
            self.journal = SignedJournal(
                path, self.redactor, self.signer, record.run_id, anchor=self.anchor
            )
        #: Columns a step's next transition carries (its output digest and exit code,
        #: left by :meth:`record_result`): one transaction instead of two.
        self._carry: dict[tuple[str, str], dict[str, Any]] = {}
        #: Set by the runner while a step fans out to several hosts at once.
        self.group: GroupCommit | None = None
        #: Set by the runner while it walks the flow: a command step's end is written
        #: without ``fsync`` and acknowledged (checkpoint, terminal) with the next synced
        #: record (:meth:`record_result`).
        self.pipelined = False
        #: Store transitions waiting for the journal to be durable (:meth:`transition`).
        self._unacknowledged: list[tuple[tuple[str, str], Callable[[], None]]] = []
        #: ``(step, host)`` whose end was written without ``fsync`` (:meth:`record_result`),
        #: and when the first of them was.
        self._deferred: set[tuple[str, str]] = set()
        self._deferred_since = 0.0
        self.parallel = HeldLock()
        self.secret_env = secret_environment(dict(loaded.values.secrets) if loaded.values else {})
        self.report = options.reporter or Reporter(quiet=True)
        self.notifier = attach(
            self.journal, store.state_dir, record, shown, self.redactor, self.report
        )
        self.pool = TransportPool(
            secrets,
            (lambda line: self.report.output_line(self.redactor.redact(line)))
            if getattr(self.report, "stream", True)
            else None,
        )

    # -- journal and checkpoints ------------------------------------------------------------
    def shown(self, step_id: str) -> TailoredStep:
        """The step (or helper) ``step_id`` as people see it."""
        return self.shown_runbook.step(step_id)

    def append_signed(self, event: str, **fields: Any) -> dict[str, Any]:
        """Append a journal event (every append of a signed run is signed, and a stop signal
        waits until the record and its signature are written)."""
        return self.journal.append(event, **fields)

    def state(self, ts: TailoredStep, host: Host) -> StepState:
        """The checkpoint of ``ts`` on ``host``, created pending when the run has none."""
        if any(key == (ts.id, host.name) for key, _ in self._unacknowledged):
            self.settle()  # its own transition waits for the disk: read it committed
        state = self.store.step(self.run_id, ts.id, host.name)
        if state is None:
            self.store.ensure_step(self.run_id, ts.id, host.name, ts.number)
            state = self.store.step(self.run_id, ts.id, host.name)
        assert state is not None
        return state

    def transition(self, ts: TailoredStep, host: Host, status: str, **fields: Any) -> None:
        """Move ``ts`` on ``host`` to ``status`` (one transaction, which also keeps the
        journal's anchor: the last record written, already ``fsync``'d).

        The transaction does not wait for the disk: the journal holds what it says
        (ARCHITECTURE.md, "Durability of a step")."""
        _, _, _, columns = self._move(ts, host, status, fields)
        key = (ts.id, host.name)
        if self.journal.owing and key in self._deferred:  # a step whose end waits
            commit = functools.partial(self._commit, ts, host, status, columns)
            self._unacknowledged.append((key, commit))
            return
        self.settle()  # another step's move: what waits is committed first
        self._commit(ts, host, status, columns)

    def _commit(self, ts: TailoredStep, host: Host, status: str, columns: dict[str, Any]) -> None:
        self.store.transition(
            self.run_id,
            ts.id,
            host.name,
            status,
            anchor=self.anchor.pending,
            durable=False,
            **columns,
        )

    def settle(self) -> None:
        """Make the journal durable now when a step's end waits for it (``fsync``, then a
        signature), then commit and show what waited: before a person is asked anything,
        before a fanned-out step, at the end of the flow and when the run stops.

        Raises:
            StorageError: (exit 74) the journal or its signatures cannot be synced.
        """
        if self.journal.owing:
            self.journal.make_durable()

    def _acknowledge_now(self, host: Host) -> bool:
        """Whether a command's ``-started`` record also acknowledges the steps whose end
        waits (its signature ``fsync``'d): when they waited :data:`ACK_SECONDS` or are
        :data:`ACK_STEPS`, or the host's transport cannot do it while the command runs
        (no idle call); else the ends wait on, for the command's idle call, the next
        step or :meth:`settle`."""
        if not self._deferred:
            return True
        info = TRANSPORTS.get(host.transport)
        waited = time.monotonic() - self._deferred_since
        return (
            not (info and info.idle) or len(self._deferred) >= ACK_STEPS or (waited >= ACK_SECONDS)
        )

    def _idle(self) -> None:
        """A command runs on: acknowledge the steps whose end waits (errors wait on)."""
        if self.journal.owing:
            with self.parallel, contextlib.suppress(RunbookError):
                self.settle()

    def _acknowledge(self) -> None:
        """The journal is durable through a step's end: commit its transitions, then let
        the terminal say it (kill point ``before-acknowledge`` before)."""
        crash_point("before-acknowledge")
        waiting, self._unacknowledged, self._deferred = self._unacknowledged, [], set()
        for _, commit in waiting:
            commit()
        release = getattr(self.report, "release", None)
        if release is not None:
            release()

    def _move(self, ts: TailoredStep, host: Host, status: str, fields: dict[str, Any]) -> Move:
        """The transition of ``ts`` on ``host`` to ``status``, with what the last command left."""
        return (ts.id, host.name, status, {**self._carry.pop((ts.id, host.name), {}), **fields})

    def finish(self, ts: TailoredStep, host: Host, status: str, **fields: Any) -> None:
        """Record that ``ts`` ended on ``host`` with ``status`` (one transaction; in a
        fanned-out step, the group's next one: :meth:`GroupCommit.defer`)."""
        fields["finished_at"] = utcnow()
        if self.group is None:
            return self.transition(ts, host, status, **fields)
        self.group.defer(self._move(ts, host, status, fields))

    def rest(self) -> None:
        """The run stops here: journal how its notifications went, sign a last record
        written unsigned (``process-started`` of a command a full disk stopped; the journal
        ``fsync``'d first), then make the store and the journal's anchor durable
        (:meth:`StoreAnchor.rest`)."""
        with contextlib.suppress(RunbookError):  # a full disk: the resume reconciles
            self.settle()
        if self.notifier is not None:
            self.notifier.flush(self.journal)
        tail = self.journal.unsigned
        if tail is not None and self.signer is not None:
            with contextlib.suppress(RunbookError):  # a full disk: the resume signs it
                fsync_file(self.journal.path)
                self.signer.sign(tail)
        self.anchor.rest()

    def by_hand(self, host: Host) -> bool:
        """True when a person reaches ``host`` (its commands become gates)."""
        info = TRANSPORTS.get(host.transport)
        return info is not None and info.by_hand

    def transport(self, host: Host) -> Transport:
        """The open transport of ``host`` (see :class:`TransportPool`)."""
        return self.pool.get(host)

    def released(self) -> contextlib.AbstractContextManager[None]:
        """Let other hosts of a fanned-out step proceed during the block."""
        return self.parallel.released()

    # -- commands -------------------------------------------------------------------------------
    def check_done(self, ts: TailoredStep, host: Host) -> bool:
        """Run the ``check=`` helper of ``ts``; when it passes, journal already-done."""
        check = self.loaded.tailored.helpers[ts.step.check or ""]
        result = self.run_command(check, host, ts.id, purpose="check")
        if result is not None and result.ok:
            self.finish(ts, host, "already-done", reason=f"check {check.id!r} succeeded")
            self.journal.append("step-already-done", step=ts.id, host=host.name, check=check.id)
            self.report.already_done(ts, host)
            return True
        return False

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
        """Run ``ts``'s body on ``host`` for step ``step_id`` (``purpose``: step, check or
        backout): journaled before and after, output redacted, saved and digested; ``None``
        when it could not run.  Raises ConnectionLost (journaled ``{purpose}-lost``; the step
        is left ``running``, as a killed run leaves it).

        Args:
            start: Columns of the step's ``running`` checkpoint (attempts, start time),
                committed with its process once it started (``{purpose}-started`` is on
                the disk before), or with its end when no process is reported."""
        fields = {"step": step_id, "id": ts.id, "host": host.name, "address": host.address}
        fields |= {"transport": host.transport, "kind": ts.step.kind, "attempt": attempt}
        fields |= {"command": ts.run_body or ts.body, "timeout_seconds": ts.step.timeout}
        fields["values"] = dict(ts.env)  # on disk before the command starts (signature: at its end)
        if self._deferred and self.store.lock_may_lapse:
            # A team store's run lock can lapse unseen (a restart, a cut session): the
            # ends that wait are committed, and the lock checked, before another process
            # starts or is journaled as starting (else a second runner could take the run).
            self.settle()
        if self.group is not None and start is not None:  # fsync and transaction shared
            record = self.journal.append_record(f"{purpose}-started", fields, sync=False)
            self.group.commit(record, self._move(ts, host, "running", start))
        else:
            self.journal.append_record(
                f"{purpose}-started",
                fields,
                sync_signature=False,
                acknowledge=self._acknowledge_now(host),
            )
        if start is not None and self.group is None:  # running: with its process (one commit)
            crash_point("after-step-started")
            self._carry[(ts.id, host.name)] = self._carry.get((ts.id, host.name), {}) | start
        try:
            transport = self.transport(host)
            with self.released(), command_hooks(self._hooks(ts, host, step_id, purpose)):
                result = transport.run(
                    ts.step.kind,
                    ts.run_body or ts.body,
                    timeout=ts.step.timeout,
                    cwd=self._cwd(ts, host),
                    env=self._command_env(ts, host),
                    errexit=ts.step.errexit,
                )
        except ConnectionLost as lost:  # outcome unknown: the step stays "running"
            self.journal.append(f"{purpose}-lost", step=step_id, host=host.name, error=lost.message)
            raise
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
        defer = start is not None and self.pipelined and self.group is None
        self.record_result(ts, host, step_id, ts.id, purpose, attempt, result, defer=defer)
        self.report.result(ts, host, self.redacted(result), purpose)
        return result

    def _hooks(self, ts: TailoredStep, host: Host, step_id: str, purpose: str) -> CommandHooks:
        """What the transport is told for one command: redact its output as it arrives,
        keep at most ``max_output`` bytes, and report the process it started."""

        def started(identity: ProcessIdentity | RemoteProcess) -> None:
            with self.parallel:  # serialised with the other hosts' journal writes
                fields = {"step": step_id, "id": ts.id, "host": host.name, "purpose": purpose}
                fields |= identity.fields()
                # Not fsync'd: a process identity means nothing after a power loss.
                self.journal.append_record("process-started", fields, sync=False)
                crash_point("after-process-started")
                if purpose == "step":  # (the previous steps' ends may wait on: no settle)
                    self._commit(
                        ts, host, "running", self._move(ts, host, "running", identity.columns())[3]
                    )

        def event(name: str, fields: dict[str, Any]) -> None:
            with self.parallel:
                self.journal.append(name, step=step_id, id=ts.id, **{"host": host.name, **fields})

        return CommandHooks(
            started,
            self.redactor.redact,
            max_output_bytes(self.options),
            on_event=event,
            on_idle=self._idle if self.pipelined else None,
        )

    def record_result(
        self,
        ts: TailoredStep,
        host: Host,
        step_id: str,
        own_id: str,
        purpose: str,
        attempt: int,
        result: CommandResult,
        *,
        defer: bool = False,
    ) -> str:
        """Save and journal what a command did (``{purpose}-finished``); a step's own
        command also leaves its exit code and output digest in the checkpoint, in the
        step's next transition (a kill before it: the journal says them).

        ``defer``: the record is written without ``fsync`` or signature, and what
        acknowledges it (the step's transitions, its lines on the terminal) waits until a
        signature covering it is on the disk: with a later step's ``step-started``
        (:meth:`_acknowledge_now`), the running command's idle call, or :meth:`settle`.
        One journal ``fsync`` per step, one signature ``fsync`` per batch, instead of
        three per step (ARCHITECTURE.md, "Durability of a step").

        Returns:
            The SHA-256 of the redacted output.
        """
        output = self.redactor.redact(result.stdout + result.stderr)
        digest = self.save_output(step_id, own_id, host, attempt, purpose, output)
        name = output_name(step_id, own_id, host, attempt, purpose)
        fields = {"step": step_id, "id": ts.id, "host": host.name, "exit_code": result.exit_code}
        fields |= {"status": "succeeded" if result.ok else "failed", "timed_out": result.timed_out}
        fields |= {"duration_seconds": round(result.duration, 3), "output_sha256": digest}
        fields |= {"output_file": f"output/{name}", "output_excerpt": output[-EXCERPT_CHARS:]}
        fields |= {"output_streams": result.streams} if result.streams else {}
        sync = self.group is None and not defer
        record = self.journal.append_record(f"{purpose}-finished", fields, sync=sync)
        if self.group is not None:  # durable and signed with the other hosts' records
            self.group.commit(record)
        elif defer:  # acknowledged once the journal is durable through it
            if not self.journal.owing:
                self.journal.when_durable(self._acknowledge)
                self._deferred_since = time.monotonic()
            self._deferred.add((ts.id, host.name))
            hold = getattr(self.report, "hold", None)
            if hold is not None:
                hold()
        if purpose == "step":  # carried by the step's next transition (its end, mostly)
            crash_point("after-step-finished")
            self._carry[(ts.id, host.name)] = {
                "output_digest": digest,
                "exit_code": result.exit_code,
            }
        return digest

    def redacted(self, result: CommandResult) -> CommandResult:
        """``result`` with secret values masked in its output (for the terminal)."""
        return replace(
            result,
            stdout=self.redactor.redact(result.stdout),
            stderr=self.redactor.redact(result.stderr),
        )

    def _command_env(self, ts: TailoredStep, host: Host) -> dict[str, str]:
        """Environment variables a command gets: the run's context, the step's values
        (``RUNBOOK_VALUE_*``, which its body refers to) and the run's secrets."""
        return {
            "RUNBOOK_RUN_ID": self.run_id,
            "RUNBOOK_STEP": ts.id,
            "RUNBOOK_HOST": host.name,
            "RUNBOOK_HOST_ADDRESS": host.address,
            **ts.env,
            **self.secret_env,
        }

    def _cwd(self, ts: TailoredStep, host: Host) -> str | None:
        """Local steps run in the runbook's folder; a relative ``cwd`` is taken from there."""
        cwd = ts.step.cwd
        if host.transport != "local":
            return cwd
        folder = self.loaded.runbook.path.resolve().parent
        return str(folder / cwd) if cwd else str(folder)

    def save_output(
        self, step_id: str, own_id: str, host: Host, attempt: int, purpose: str, output: str
    ) -> str:
        """Write ``output`` to ``output/`` in the run folder; return its SHA-256."""
        return write_output(
            self.run_dir, output_name(step_id, own_id, host, attempt, purpose), output
        )
