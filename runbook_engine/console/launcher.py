"""Starting and continuing runs for the console, in the background.

There is no worker queue yet, so :class:`BackgroundLauncher` starts ``runbook run ...
--no-input`` (and ``runbook resume``) as a child process of the console, in its own
session, with its output in ``STATE/console/launch/``.  The pages say so.  A queue for
workers replaces it by implementing :class:`Launcher`: the console only ever calls
:meth:`~Launcher.start` and :meth:`~Launcher.resume`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


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
    """Where the console hands runs over: a background process today, a queue later."""

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


class BackgroundLauncher:
    """Runs ``runbook`` as a child process of the console (no worker queue yet)."""

    description = (
        "runs in a background process of this console (`runbook run --no-input`); "
        "no worker queue yet"
    )

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
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

        return issue(self.state_dir, verb, run_id, operator, method) if method else None

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
