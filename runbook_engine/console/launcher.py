"""Starting and continuing runs for the console: on a job queue, or in the background.

With a queue (``runbook serve --queue-url``, ``RUNBOOK_QUEUE``, or ``RUNBOOK_STORE`` when
it is a PostgreSQL URL), :class:`QueueLauncher` creates a started run ``queued`` and puts
it on the queue for ``runbook worker``, as ``runbook run --queue`` does, and a decision
enqueues the run's resume, as ``runbook confirm``/``approve`` do
(:mod:`runbook_engine.cli.team`).  Without one, :class:`BackgroundLauncher` starts
``runbook run ... --no-input`` (and ``runbook resume``) as a child process of the
console, in its own session, with its output in ``STATE/console/launch/``.  The pages
say which.  The console only ever calls :meth:`~Launcher.start` and
:meth:`~Launcher.resume`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class RunRequest:
    """A run to start: files as the library names them (absolute paths here), the values
    (``--set``), who starts it (recorded as the run's operator) and how the console
    signed them in (``auth_method``: the run records its operator as authenticated)."""

    run_id: str
    runbook: Path
    environment: Path | None
    operator: str
    sets: dict[str, str] = field(default_factory=dict)
    note: str | None = None
    change_id: str | None = None
    auth_method: str | None = None


class Launcher(Protocol):
    """Where the console hands runs over: a job queue, or a background process."""

    #: Said on the pages: how a started run is carried out.
    description: str

    def start(self, request: RunRequest) -> None:
        """Start the run of ``request``."""

    def resume(
        self, run_id: str, operator: str, cwd: Path | None = None, auth_method: str | None = None
    ) -> None:
        """Continue ``run_id`` (after a decision) in the name of its ``operator``, in
        ``cwd`` (the runbook's folder, where the console starts runs); ``auth_method``:
        the operator started the run signed in, by that method."""


class QueueLauncher:
    """Puts started runs and their resumes on the job queue for ``runbook worker``.

    Args:
        state_dir: The console's state directory.
        queue_url: The queue database (``postgresql://...``).
        store_url: The team's PostgreSQL store, or ``None``: the state directory (then
            only workers on this machine reach the runs).
    """

    def __init__(self, state_dir: Path, queue_url: str, store_url: str | None = None) -> None:
        from runbook_engine.run.queue import check_url

        self.state_dir = state_dir
        self.queue_url = check_url(queue_url)
        self.store_url = store_url
        self.description = (  # the queue's address is not for every signed-in person
            "is queued for `runbook worker` (the team's job queue); a worker executes it "
            "and resumes it after each decision"
        )

    def _open(self, run_id: str) -> Any:
        from runbook_engine.run.store_api import open_store

        return open_store(self.state_dir, self.store_url, run_id=run_id)

    def start(self, request: RunRequest) -> None:
        """Create the run ``queued`` (its operator journaled as signed in by
        ``request.auth_method``) and enqueue its first job (never waits for it).

        Raises:
            InputError: what ``runbook run`` refuses.  StateError: the queue or the store
                cannot be reached (a run created but not queued says how to run it).
        """
        from runbook_engine.cli.team import queue_new_run
        from runbook_engine.run.lifecycle import create_run
        from runbook_engine.run.options import RunOptions
        from runbook_engine.run.queue import ensure_schema

        ensure_schema(self.queue_url)  # the queue answers before a run is created for it
        options = RunOptions(
            operator=request.operator,
            operator_source="option",
            change_id=request.change_id,
            reason=request.note,
            operator_auth_method=request.auth_method,
        )
        store = self._open(request.run_id)
        try:
            runner = create_run(
                request.runbook,
                request.environment,
                dict(request.sets),
                store,
                options,
                request.run_id,
                queued=True,
            )
            where = self.store_url or str(store.state_dir.resolve())
            queue_new_run(self.queue_url, runner, options, None, dict(request.sets), None, where)
        finally:
            store.close()

    def resume(
        self, run_id: str, operator: str, cwd: Path | None = None, auth_method: str | None = None
    ) -> None:
        """Enqueue the resume of ``run_id`` for a worker, in ``operator``'s name, when it was
        queued (``runbook run --queue`` or this console); a run that was not is continued
        in a background process, as without a queue.  (A worker records the operator as
        signed in when the run's ``run-started`` says so:
        :func:`~runbook_engine.run.launch_ticket.issue_for_worker`.)

        Raises:
            StateError: the queue cannot be reached.
        """
        from runbook_engine.cli.team import is_queued_run, resume_when_decided
        from runbook_engine.errors import StateError

        store = self._open(run_id)
        try:
            if is_queued_run(store, run_id):
                try:
                    resume_when_decided(self.queue_url, store, run_id, operator)
                except StateError as exc:
                    raise StateError(
                        f"the decision is recorded, but the run's resume could not be queued "
                        f"({exc.message}): `runbook resume {run_id}` continues it on a "
                        "machine with the run's secrets"
                    ) from None
                return
        finally:
            store.close()
        BackgroundLauncher(self.state_dir, self.store_url).resume(
            run_id, operator, cwd, auth_method
        )


class BackgroundLauncher:
    """Runs ``runbook`` as a child process of the console (no job queue).

    Args:
        state_dir: The console's state directory.
        store_url: The team's PostgreSQL store the runs are in, or ``None``: the state
            directory.
    """

    description = (
        "runs in a background process of this console (`runbook run --no-input`); "
        "no job queue (give runbook serve --queue-url for workers)"
    )

    def __init__(self, state_dir: Path, store_url: str | None = None) -> None:
        self.state_dir = state_dir
        self.store_url = store_url
        self.logs = state_dir / "console" / "launch"
        self._children: list[subprocess.Popen[bytes]] = []

    def start(self, request: RunRequest) -> None:
        """Start ``runbook run`` for ``request`` (never waits for it)."""
        argv = [str(request.runbook), "--run-id", request.run_id, "--operator", request.operator]
        if request.environment is not None:
            argv += ["--env", str(request.environment)]
        for name, value in request.sets.items():
            argv += ["--set", f"{name}={value}"]
        if request.note:
            argv += ["--note", request.note]
        if request.change_id:
            argv += ["--change", request.change_id]
        ticket = self._ticket("run", request.run_id, request.operator, request.auth_method)
        self._spawn("run", argv, request.run_id, cwd=request.runbook.parent, ticket=ticket)

    def resume(
        self, run_id: str, operator: str, cwd: Path | None = None, auth_method: str | None = None
    ) -> None:
        """Start ``runbook resume RUN_ID --operator OPERATOR`` in ``cwd`` (never waits)."""
        ticket = self._ticket("resume", run_id, operator, auth_method)
        self._spawn("resume", [run_id, "--operator", operator], run_id, cwd=cwd, ticket=ticket)

    def _ticket(self, verb: str, run_id: str, operator: str, method: str | None) -> str | None:
        from runbook_engine.run.launch_ticket import issue
        from runbook_engine.run.store_api import work_folder

        if not method:
            return None
        return issue(work_folder(self.state_dir, self.store_url), verb, run_id, operator, method)

    def _spawn(
        self,
        verb: str,
        argv: list[str],
        run_id: str,
        cwd: Path | None = None,
        ticket: str | None = None,
    ) -> None:
        from runbook_engine.run.launch_ticket import TICKET_ENV

        self._reap()
        self.logs.mkdir(parents=True, exist_ok=True, mode=0o700)
        env = {k: v for k, v in os.environ.items() if k not in ("RUNBOOK_OPERATOR", TICKET_ENV)}
        env["NO_COLOR"] = "1"
        if ticket:
            env[TICKET_ENV] = ticket
        if self.store_url:  # in the environment, not on a command line others can read
            env["RUNBOOK_STORE"] = self.store_url
        command = [
            sys.executable,
            "-m",
            "runbook_engine",
            verb,
            *argv,
            "--state-dir",
            str(self.state_dir),
            "--no-input",
        ]
        with open(self.logs / f"{run_id}.log", "ab") as log:
            child = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=cwd,
                start_new_session=True,  # a Ctrl-C of the console does not stop the run
            )
        self._children.append(child)

    def _reap(self) -> None:
        self._children = [c for c in self._children if c.poll() is None]

    def wait(self, timeout: float = 120.0) -> None:
        """Wait until every started process has ended (tests; an orderly shutdown)."""
        for child in list(self._children):
            child.wait(timeout=timeout)
        self._reap()

    def busy(self) -> int:
        """How many started processes still run."""
        self._reap()
        return len(self._children)
