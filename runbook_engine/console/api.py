"""The console's JSON API under ``/api/v1`` (its OpenAPI document: :mod:`.openapi`).

Who calls: scripts and ``runbook ... --server URL`` with a per-user bearer token
(``Authorization: Bearer TOKEN``, journaled with ``auth_method: token``), or the console's
own pages with the session cookie (a POST then needs the session's CSRF token in the
``X-CSRF-Token`` header).  The acts are the ones the pages do (:mod:`.actions`).

Answers: JSON; errors are ``{"error": "..."}`` with 400 (bad input), 401 (no or a bad
token: ``WWW-Authenticate: Bearer``), 403 (roles, CSRF, separation of duties), 404 (no
such run) and 409 (the run or step is not in a state that allows the act).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from runbook_engine.console import actions
from runbook_engine.console.actions import Forbidden
from runbook_engine.console.data import Gate, RunFilter, RunView
from runbook_engine.console.security import csrf_ok
from runbook_engine.errors import InputError, RunbookError, StateError
from runbook_engine.run.records import RunRecord, StepState

PREFIX = "/api/v1"
#: Longest note accepted (characters).
MAX_NOTE = 4000
Handler = Callable[[Request], Awaitable[Response]]


def error(status: int, message: str) -> JSONResponse:
    """``{"error": message}`` with ``status`` (401 adds ``WWW-Authenticate: Bearer``)."""
    headers = {"WWW-Authenticate": 'Bearer realm="runbook"'} if status == 401 else None
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def endpoint(handler: Handler) -> Handler:
    """Map refusals to JSON errors; check CSRF for POSTs made with the session cookie."""

    @wraps(handler)
    async def wrapped(request: Request) -> Response:
        me = request.state.identity
        if me is None:
            return error(401, "authentication required: send Authorization: Bearer TOKEN")
        session_post = request.method == "POST" and me.method != "token"
        if session_post and not csrf_ok(request.session, request.headers.get("x-csrf-token")):
            return error(403, "the X-CSRF-Token header is missing or wrong")
        try:
            return await handler(request)
        except Forbidden as exc:
            return error(403, str(exc))
        except StateError as exc:
            return error(404 if str(exc).startswith("no run") else 409, str(exc))
        except RunbookError as exc:
            return error(400, str(exc))

    return wrapped


async def body(request: Request, fields: dict[str, type]) -> dict[str, Any]:
    """The JSON object body, with only ``fields`` (each of its type, or null).

    Raises:
        InputError: not a JSON object, an unknown field, a field of the wrong type.
    """
    raw = await request.body()
    try:
        data = json.loads(raw or b"{}")
    except ValueError:
        raise InputError("the body is not JSON") from None
    if not isinstance(data, dict):
        raise InputError("the body must be a JSON object")
    for name, value in data.items():
        if name not in fields:
            raise InputError(f"unknown field {name!r} (fields: {', '.join(fields)})")
        if value is not None and not isinstance(value, fields[name]):
            raise InputError(f"{name}: expected {fields[name].__name__}")
    note = data.get("note")
    if isinstance(note, str) and len(note) > MAX_NOTE:
        raise InputError(f"note: at most {MAX_NOTE} characters")
    return data


def run_json(run: RunRecord) -> dict[str, Any]:
    """A run in the API's words."""
    return {
        "run_id": run.run_id,
        "runbook_id": run.runbook_id,
        "environment": run.env_name,
        "status": run.status,
        "outcome": run.outcome,
        "operator": run.operator,
        "change_id": run.change_id,
        "created_at": run.created_at,
        "updated_at": run.updated_at,
        "url": f"{PREFIX}/runs/{quote(run.run_id)}",
    }


def _step_json(step: StepState) -> dict[str, Any]:
    return {
        "step": step.step_id,
        "host": step.host,
        "status": step.status,
        "attempts": step.attempts,
        "exit_code": step.exit_code,
        "started_at": step.started_at,
        "finished_at": step.finished_at,
        "reason": step.reason,
    }


def _gate_json(gate: Gate) -> dict[str, Any]:
    approval = gate.approval or {}
    return {
        "step": gate.step,
        "hosts": list(gate.hosts),
        "kind": gate.kind,
        "instructions": gate.instructions,
        "approval": (
            {
                "required": approval.get("required"),
                "approvers": approval.get("approvers", []),
                "approved_by": [
                    v["by"] for v in approval.get("votes", []) if v.get("decision") == "approve"
                ],
            }
            if gate.approval
            else None
        ),
    }


def view_json(view: RunView) -> dict[str, Any]:
    """A run page's facts: the run, its steps, the gates it waits at, its approvals."""
    return {
        **run_json(view.record),
        "word": view.word,
        "finished": view.finished,
        "steps": [_step_json(s) for s in view.steps],
        "gates": [_gate_json(g) for g in view.gates],
        "approvals": [
            {
                "step": a["step"],
                "status": a["status"],
                "required": a.get("required"),
                "votes": [
                    {
                        "by": v["by"],
                        "decision": v["decision"],
                        "note": v.get("comment"),
                        "at": v["at"],
                    }
                    for v in a.get("votes", [])
                ],
            }
            for a in view.approvals
        ],
    }


# -- the endpoints ----------------------------------------------------------------------------
@endpoint
async def me(request: Request) -> Response:
    me = request.state.identity
    return JSONResponse({"name": me.name, "roles": list(me.user.roles), "method": me.method})


@endpoint
async def runs(request: Request) -> Response:
    q = request.query_params
    where = RunFilter(*(q.get(k, "").strip() for k in RunFilter.__slots__))
    return JSONResponse({"runs": [run_json(r) for r in request.app.state.data.runs(where)]})


@endpoint
async def run(request: Request) -> Response:
    return JSONResponse(view_json(request.app.state.data.run(request.path_params["run_id"])))


async def _decision(request: Request, decision: str) -> Response:
    app, me = request.app.state, request.state.identity
    run_id, step = request.path_params["run_id"], request.path_params["step_id"]
    data = await body(request, {"note": str})
    note = (data.get("note") or "").strip() or None
    if decision in ("approve", "reject"):
        recorded = actions.vote(app, me, run_id, step, decision, note)
        return JSONResponse({**recorded.to_dict(), "auth_method": me.method})
    if decision == "skip" and not note:
        raise InputError("a skip needs a note: why the step is skipped")
    hosts = actions.decide(app, me, run_id, step, decision, note)
    return JSONResponse(
        {
            "run_id": run_id,
            "step": step,
            "hosts": hosts,
            "decision": decision,
            "by": me.name,
            "auth_method": me.method,
        }
    )


def _acting(decision: str) -> Handler:
    async def handler(request: Request) -> Response:
        return await _decision(request, decision)

    handler.__name__ = decision
    return endpoint(handler)


confirm, skip, abort = _acting("confirm"), _acting("skip"), _acting("abort")
approve, reject = _acting("approve"), _acting("reject")


@endpoint
async def evidence(request: Request) -> Response:
    verdict, text = request.app.state.data.verdict(request.path_params["run_id"])
    return JSONResponse({"run_id": request.path_params["run_id"], "verdict": verdict, "text": text})


@endpoint
async def bundle(request: Request) -> Response:
    run_id = request.path_params["run_id"]
    data = request.app.state.data.bundle(run_id)
    name = quote(f"{run_id}-evidence.zip")
    return Response(
        data,
        media_type="application/zip",
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{name}"},
    )


@endpoint
async def start(request: Request) -> Response:
    data = await body(
        request,
        {"runbook": str, "environment": str, "values": dict, "note": str, "change_id": str},
    )
    if not data.get("runbook"):
        raise InputError("runbook: the runbook's path in the library is required")
    values = data.get("values") or {}
    if not all(isinstance(v, str) for v in values.values()):
        raise InputError("values: every value must be a string")
    started = actions.start(
        request.app.state,
        request.state.identity,
        data["runbook"],
        data.get("environment") or None,
        values,
        data.get("note") or None,
        data.get("change_id") or None,
    )
    return JSONResponse(
        {
            "run_id": started.run_id,
            "url": f"{PREFIX}/runs/{quote(started.run_id)}",
            "launcher": started.description,
        },
        status_code=202,
    )


@endpoint
async def not_found(request: Request) -> Response:
    return error(404, f"no such API path: {request.url.path} (see /openapi.json)")


def routes() -> list[Any]:
    """The API's routes (mounted by :func:`~.app.create_app`)."""
    from starlette.routing import Route

    step = PREFIX + "/runs/{run_id}/steps/{step_id}/"
    return [
        Route(PREFIX + "/me", me),
        Route(PREFIX + "/runs", runs, methods=["GET"]),
        Route(PREFIX + "/runs", start, methods=["POST"]),
        Route(PREFIX + "/runs/{run_id}", run),
        Route(PREFIX + "/runs/{run_id}/evidence", evidence),
        Route(PREFIX + "/runs/{run_id}/bundle", bundle),
        *(
            Route(step + name, globals()[name], methods=["POST"])
            for name in ("confirm", "skip", "abort", "approve", "reject")
        ),
        Route("/api/{rest:path}", not_found, methods=["GET", "POST"]),
    ]
