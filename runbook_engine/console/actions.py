"""What signed-in people do to runs, once, for the pages and the API alike.

Acts at a step reach these functions through :func:`.api.act` alone (the API's paths,
and the pages' forms that wrap it); starting a run through :mod:`.views` and :mod:`.api`.
So a decision is checked, journaled, audited and followed by the run's continuation the
same way whichever door it came in.

Errors: :class:`Forbidden` (HTTP 403) when the person's roles do not allow the act or
separation of duties forbids it; :class:`~runbook_engine.errors.RunbookError` (400/404/409)
for everything the library refuses.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runbook_engine.console.auth import Identity
from runbook_engine.console.launcher import RunRequest
from runbook_engine.errors import InputError


class Forbidden(Exception):
    """A request without the session's CSRF token, or an act the person may not do."""


class SeparationOfDuties(Forbidden):
    """The person operates the run and may not approve or reject it."""


@dataclass(frozen=True, slots=True)
class Started:
    """A run handed to the launcher: its id and how it is carried out."""

    run_id: str
    description: str


def need(me: Identity, ability: str) -> None:
    """Raise :class:`Forbidden` unless ``me``'s roles grant ``ability``."""
    if not me.may(ability):
        raise Forbidden(f"{me.name} may not {ability} (roles: {', '.join(me.user.roles)})")


def decide(
    app: Any,
    me: Identity,
    run_id: str,
    step: str,
    decision: str,
    note: str | None,
    files: tuple[Path, ...] = (),
    *,
    host: str | None = None,
    in_advance: bool = False,
) -> list[str]:
    """Confirm, skip, abort or rerun gate ``step`` of ``run_id`` as ``me``; the run
    continues (not after a decision ``in_advance``: the run has not reached the step).

    Returns:
        The hosts the decision was recorded for.

    Raises:
        Forbidden: the roles do not grant ``decide``.
        RunbookError: as :meth:`~.data.ConsoleData.decide`.
    """
    need(me, "decide")
    hosts = app.data.decide(
        run_id,
        step,
        me.name,
        me.method,
        decision,
        note,
        files,
        host=host,
        in_advance=in_advance,
    )
    app.audit(
        "gate-decision",
        name=me.name,
        run=run_id,
        step=step,
        decision=decision,
        **({"in_advance": True} if in_advance else {}),
    )
    if not in_advance:
        continue_run(app, run_id)
    return list(hosts)


def vote(
    app: Any,
    me: Identity,
    run_id: str,
    step: str,
    decision: str,
    note: str | None,
    files: tuple[Path, ...] = (),
) -> Any:
    """Approve or reject approval step ``step`` of ``run_id`` as ``me``, ``files`` kept
    as its evidence; the run continues once the step is decided (a rejection, or the
    approvals it needs).

    Returns:
        The :class:`~runbook_engine.run.approval.VoteRecorded`.

    Raises:
        Forbidden: the roles do not grant ``vote``.
        SeparationOfDuties: ``me`` operates the run.
        RunbookError: as :meth:`~.data.ConsoleData.vote`.
    """
    from runbook_engine.run.approval import person_key

    need(me, "vote")
    if person_key(me.name) in app.data.operators(run_id):
        app.audit("vote-refused", name=me.name, run=run_id, step=step, why="operates the run")
        raise SeparationOfDuties(
            f"{me.name} operates run {run_id} and cannot approve or reject it "
            "(separation of duties)"
        )
    try:
        recorded = app.data.vote(run_id, step, me.name, me.method, decision, note, files)
    except InputError as exc:
        app.audit("vote-refused", name=me.name, run=run_id, step=step, why=str(exc))
        raise
    app.audit("vote", name=me.name, run=run_id, step=step, decision=decision)
    if decision == "reject" or recorded.approvals >= recorded.required:  # the step is decided
        continue_run(app, run_id)
    return recorded


def start(
    app: Any,
    me: Identity,
    runbook: str,
    environment: str | None,
    sets: dict[str, str],
    note: str | None = None,
    change_id: str | None = None,
) -> Started:
    """Start ``runbook`` (a path in the library) with ``me`` as its authenticated operator.

    Raises:
        Forbidden: the roles do not grant ``start``.
        InputError: a runbook, environment or value the run would refuse.
    """
    from runbook_engine.run.lifecycle import new_run_id
    from runbook_engine.source.parser import parse_file

    need(me, "start")
    app.data.check_start(runbook, environment, sets)
    path = app.data.in_library(runbook)
    run_id = new_run_id(parse_file(path).id)
    app.launcher.start(
        RunRequest(
            run_id,
            path,
            app.data.in_library(environment) if environment else None,
            me.name,
            sets,
            note,
            change_id,
            me.method,
        )
    )
    app.audit("run-started", name=me.name, run=run_id, runbook=runbook, method=me.method)
    return Started(run_id, app.launcher.description)


def continue_run(app: Any, run_id: str) -> None:
    """Continue a paused run after a decision, in its operator's name (recorded as
    authenticated when the console started it for its signed-in operator): a queued run
    by a worker (its resume enqueued), any other by the console's launcher.

    Raises:
        StateError: the queue cannot be reached (the decision is journaled already).
    """
    record = app.data.run(run_id).record
    if record.status != "running":
        app.launcher.resume(
            run_id,
            record.operator,
            Path(record.runbook_path).parent,
            app.data.operator_auth(run_id),
        )
