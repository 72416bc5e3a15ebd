"""Whether an interrupted step's process still runs: the check a resume makes before it
goes on (:func:`refuse_live_steps`), locally by process identity and remotely by the
step's marker, looked for through the host's transport.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runbook_engine.errors import ExecutionError, StepStillRunning
from runbook_engine.transports import TRANSPORTS
from runbook_engine.transports.process import ProcessIdentity, is_alive

if TYPE_CHECKING:
    from runbook_engine.run.options import RunOptions
    from runbook_engine.run.runner import Runner
    from runbook_engine.run.store_api import Store


def refuse_live_steps(
    store: Store, run_id: str, runner: Runner, options: RunOptions
) -> list[tuple[Any, str]]:
    """Refuse to go on while the process of an interrupted step still runs.

    A local step's process is known by pid, start time and group; a remote one's by the
    marker its command line carries, looked for on its host through the host's transport
    (:class:`~runbook_engine.transports.process.RemoteProcess`).  A host that cannot be
    asked refuses the resume as well, unless the operator says the command has ended
    (``options.assume_stopped``); a process found alive refuses it regardless.

    Returns:
        The remote steps assumed stopped, each with why its host could not be asked
        (journaled ``process-assumed-stopped`` once the resume goes on).

    Raises:
        StepStillRunning: (exit 75) a step found ``running`` whose process (same pid and
            start time), a process of its group, or a process carrying its marker is
            alive; or whose host cannot be asked (without ``assume_stopped``).
    """
    assumed: list[tuple[Any, str]] = []
    for state in store.steps(run_id):
        if state.status != "running":
            continue
        if state.marker is not None:
            error = _remote_alive(run_id, state, runner)
            if error is not None and not options.assume_stopped:
                raise StepStillRunning(
                    f"run {run_id}: step {state.step_id} was interrupted while its command "
                    f"ran on {state.host}, and {state.host} cannot be asked whether it still "
                    f"runs (marker {state.marker}): {error}. Resume once the host answers; "
                    "if you know the command has ended (no process on the host has "
                    f"RBE_STEP={state.marker} in its command line), resume with "
                    "--assume-stopped (journaled)"
                )
            if error is not None:
                assumed.append((state, error))
            continue
        if state.pid is None:
            continue
        identity = ProcessIdentity(state.pid, state.pid_start, state.pgid)
        if is_alive(identity):
            raise StepStillRunning(
                f"run {run_id}: step {state.step_id} on {state.host} is still running "
                f"(process {state.pid}, group {state.pgid}); wait for it to end or stop it "
                f"({identity.kill_hint()}), then `runbook resume {run_id}` again"
            )
    return assumed


def _remote_alive(run_id: str, state: Any, runner: Runner) -> str | None:
    """Look for the marked command of ``state`` on its host: ``None`` when it has ended,
    else why the host could not be asked.

    Raises:
        StepStillRunning: a process carrying the marker runs on the host.
    """
    hosts = {h.name: h for ts in runner.loaded.tailored.steps for h in ts.hosts}
    host = hosts.get(state.host)
    info = TRANSPORTS.get(host.transport) if host else None
    if host is None or info is None:
        return f"host {state.host} is not in the environment any more"
    try:
        transport = runner.pool.get(host)
        pids = info.still_running(transport, state.marker)
    except ExecutionError as exc:
        return exc.message
    if pids:
        try:
            hint = info.stop_hint(transport, state.marker, pids)
        except ExecutionError:  # found alive: refused regardless of the hint
            hint = f"processes {', '.join(map(str, pids))}"
        raise StepStillRunning(
            f"run {run_id}: step {state.step_id} is still running on {state.host} "
            f"(marker {state.marker}: process {', '.join(map(str, pids))}); wait for it "
            f"to end or stop it on the host ({hint}), then "
            f"`runbook resume {run_id}` again"
        )
    return None
