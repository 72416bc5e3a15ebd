"""The console's JSON API under ``/api/v1`` (its OpenAPI document: :mod:`.openapi`).

Who calls: scripts and ``runbook ... --server URL`` with a per-user bearer token
(``Authorization: Bearer TOKEN``, journaled with ``auth_method: token``), or the console's
own pages' script (``templates/console/console.js``) with the session cookie (a POST then
needs the session's CSRF token in the ``X-CSRF-Token`` header; a bearer token needs none).

An act at a step (confirm, skip, abort, rerun, approve, reject) has one implementation,
:func:`act`: the API's paths are it, and the pages' form routes (:mod:`.views`) are thin
wrappers that check the form's CSRF field and call it.  It takes a JSON object or a form
(``multipart/form-data``, attachments bounded in number, size and type) and calls
:mod:`.actions`, which checks roles and separation of duties and journals.

Answers: JSON; errors are ``{"error": "..."}`` with 400 (bad input), 401 (no or a bad
token: ``WWW-Authenticate: Bearer``), 403 (roles, CSRF, separation of duties), 404 (no
such run) and 409 (the run or step is not in a state that allows the act).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import wraps
from pathlib import Path
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
    """Map refusals to JSON errors; check the ``X-CSRF-Token`` header of unsafe requests
    made with the session cookie (or a proxy header); bearer-token requests need none."""

    @wraps(handler)
    async def wrapped(request: Request) -> Response:
        me = request.state.identity
        if me is None:
            return error(401, "authentication required: send Authorization: Bearer TOKEN")
        unsafe = request.method not in ("GET", "HEAD", "OPTIONS")
        given = request.headers.get("x-csrf-token")
        if unsafe and me.method != "token" and not csrf_ok(request.session, given):
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
        "decided": [{"decision": d.decision, "by": d.by, "host": d.host} for d in gate.decided],
        "approval": (
            {
                "required": approval.get("required"),
                "approvers": approval.get("approvers", []),
                "approved_by": [
                    v["by"] for v in approval.get("votes", []) if v.get("decision") == "approve"
                ],
                "votes": [_vote_json(v) for v in approval.get("votes", [])],
            }
            if gate.approval
            else None
        ),
    }


def _vote_json(vote: dict[str, Any]) -> dict[str, Any]:
    return {
        "by": vote["by"],
        "decision": vote["decision"],
        "note": vote.get("comment"),
        "at": vote["at"],
    }


def _event_json(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "event": record["event"],
        "time": record.get("time"),
        "step": record.get("step"),
        "by": record.get("by"),
        "authenticated": bool(record.get("authenticated")),
        "auth_method": record.get("auth_method"),
    }


def view_json(view: RunView) -> dict[str, Any]:
    """A run page's facts: the run, its steps, the gates it waits at, its approvals, the
    tails of its outputs and its latest journal events."""
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
                "votes": [_vote_json(v) for v in a.get("votes", [])],
            }
            for a in view.approvals
        ],
        "outputs": [{"name": name, "text": text} for name, text in view.outputs],
        "events": [_event_json(e) for e in view.events],
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


#: The acts at a step, by the last word of their path: gate decisions, then votes.
DECISIONS = ("confirm", "skip", "abort", "rerun")
VOTES = ("approve", "reject")
#: Most attachments one act takes.
MAX_FILES = 10
_YES, _NO = ("true", "on", "yes", "1"), ("false", "off", "no", "0", "")


@dataclass(frozen=True, slots=True)
class ActInput:
    """What an act at a step was given: a note, a host, ``in_advance``, attachments."""

    note: str | None
    host: str | None
    in_advance: bool
    uploads: tuple[Any, ...]


async def act_input(request: Request, verb: str) -> ActInput:
    """The act's input from a JSON object (``note``, ``host``, ``in_advance``) or a form
    (``multipart/form-data``: the same fields as text, and files as ``attachments``; a
    page's ``csrf`` and ``decision`` fields are allowed).

    Raises:
        InputError: a bad body, an unknown field, too many or too large parts, a
            ``decision`` field that is not ``verb``, ``host``/``in_advance`` on a vote.
    """
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind in ("multipart/form-data", "application/x-www-form-urlencoded"):
        form = await read_form(request)
        known = ("note", "host", "in_advance", "attachments", "csrf", "decision")
        for name in form:
            if name not in known:
                raise InputError(f"unknown field {name!r} (fields: {', '.join(known[:4])})")
        texts = {k: form.get(k) for k in ("note", "host", "in_advance", "decision")}
        if not all(v is None or isinstance(v, str) for v in texts.values()):
            raise InputError("note, host, in_advance and decision are text fields, not files")
        if texts["decision"] not in (None, verb):
            raise InputError(f"decision {texts['decision']!r} sent to the {verb} path")
        flag = str(texts["in_advance"] or "").strip().lower()
        if flag not in _YES + _NO:
            raise InputError("in_advance: true or false")
        uploads = tuple(f for f in form.getlist("attachments") if getattr(f, "filename", None))
        given = ActInput(texts["note"], texts["host"], flag in _YES, uploads)
    else:
        data = await body(request, {"note": str, "host": str, "in_advance": bool})
        given = ActInput(data.get("note"), data.get("host"), bool(data.get("in_advance")), ())
    note = (given.note or "").strip() or None
    if note and len(note) > MAX_NOTE:
        raise InputError(f"note: at most {MAX_NOTE} characters")
    host = (given.host or "").strip() or None
    if verb in VOTES and (host or given.in_advance):
        raise InputError(f"host and in_advance apply to gate decisions, not to {verb}")
    if verb == "rerun" and given.in_advance:
        raise InputError("in_advance: a rerun is for a step interrupted while running")
    return ActInput(note, host, given.in_advance, given.uploads)


async def read_form(request: Request) -> Any:
    """The request's form, bounded: :data:`MAX_FILES` files, 20 fields, a text field at
    most ``max_upload_bytes`` (read once; Starlette keeps it for later calls).

    Raises:
        InputError: Starlette refused the form (malformed, too many parts, too large).
    """
    from starlette.exceptions import HTTPException

    limit = request.app.state.settings.max_upload_bytes
    try:
        return await request.form(max_files=MAX_FILES, max_fields=20, max_part_size=limit)
    except HTTPException as exc:  # Starlette's refusal of a malformed or oversized form
        raise InputError(f"the form was refused: {exc.detail}") from None


async def save_uploads(uploads: tuple[Any, ...], folder: Path, settings: Any) -> tuple[Path, ...]:
    """Save ``uploads`` in ``folder``, each checked for its type (file name suffix) and size.

    Raises:
        InputError: a type not accepted, a file larger than ``max_upload_bytes``.
    """
    saved = []
    for item in uploads:
        name = Path(str(item.filename).replace("\\", "/")).name
        if Path(name).suffix.lower() not in settings.allowed_upload_types:
            raise InputError(
                f"{name}: not an accepted type ({', '.join(settings.allowed_upload_types)})"
            )
        data = await item.read(settings.max_upload_bytes + 1)
        if len(data) > settings.max_upload_bytes:
            raise InputError(f"{name}: larger than {settings.max_upload_bytes} bytes")
        target = folder / name
        if target.exists():
            raise InputError(f"{name}: attached twice")
        target.write_bytes(data)
        saved.append(target)
    return tuple(saved)


async def act(request: Request, run_id: str, step: str, verb: str) -> dict[str, Any]:
    """Do ``verb`` (one of :data:`DECISIONS` or :data:`VOTES`) at ``step`` of ``run_id``
    as the signed-in person: the one implementation behind the API's paths and the
    pages' forms (the caller has checked the CSRF token of a session).

    Returns:
        The answer: what was recorded, by whom and how authenticated, and ``message``
        (one sentence for a person).

    Raises:
        Forbidden: roles, separation of duties.
        RunbookError: bad input; the library refuses (no run, the step is finished...).
    """
    app, me = request.app.state, request.state.identity
    if verb not in DECISIONS + VOTES:
        raise InputError(f"unknown decision {verb!r} (one of {', '.join(DECISIONS + VOTES)})")
    given = await act_input(request, verb)
    if verb == "skip" and not given.note:
        raise InputError("a skip needs a note: why the step is skipped")
    with tempfile.TemporaryDirectory(prefix="rbe-upload-") as tmp:
        files = await save_uploads(given.uploads, Path(tmp), app.settings)
        if verb in VOTES:
            recorded = actions.vote(app, me, run_id, step, verb, given.note, files)
            text = recorded.text().split("; continue with")[0].split(": the run")[0]
            return {
                **recorded.to_dict(),
                "auth_method": me.method,
                "attachments": [f.name for f in files],
                "message": text,
            }
        hosts = actions.decide(
            app,
            me,
            run_id,
            step,
            verb,
            given.note,
            files,
            host=given.host,
            in_advance=given.in_advance,
        )
    then = (
        "decided in advance; the run takes it when it gets there"
        if given.in_advance
        else "the run continues"
    )
    return {
        "run_id": run_id,
        "step": step,
        "hosts": hosts,
        "decision": verb,
        "by": me.name,
        "auth_method": me.method,
        "in_advance": given.in_advance,
        "attachments": [f.name for f in files],
        "message": f"Recorded {verb} of {step} on {', '.join(hosts)} by {me.name} "
        f"({me.method}); {then}.",
    }


def _acting(verb: str) -> Handler:
    async def handler(request: Request) -> Response:
        params = request.path_params
        return JSONResponse(await act(request, params["run_id"], params["step_id"], verb))

    handler.__name__ = verb
    return endpoint(handler)


confirm, skip, abort, rerun = (_acting(v) for v in DECISIONS)
approve, reject = (_acting(v) for v in VOTES)


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


def begin(request: Request, data: dict[str, Any]) -> dict[str, Any]:
    """Start a run as the signed-in person from ``data`` (``runbook``, ``environment``,
    ``values``, ``note``, ``change_id``): the one implementation behind ``POST
    /api/v1/runs`` and the start page's form (the caller has checked a session's CSRF
    token).

    Returns:
        The answer: ``run_id``, its API ``url``, the ``launcher``'s description and
        ``message`` (one sentence for a person).

    Raises:
        Forbidden: the roles do not grant starting runs.
        InputError: no runbook, a value that is not a string.
        RunbookError: what ``runbook run`` refuses.
    """
    if not data.get("runbook"):
        raise InputError("runbook: the runbook's path in the library is required")
    values = data.get("values") or {}
    if not all(isinstance(v, str) for v in values.values()):
        raise InputError("values: every value must be a string")
    me = request.state.identity
    started = actions.start(
        request.app.state,
        me,
        data["runbook"],
        data.get("environment") or None,
        values,
        data.get("note") or None,
        data.get("change_id") or None,
    )
    return {
        "run_id": started.run_id,
        "url": f"{PREFIX}/runs/{quote(started.run_id)}",
        "launcher": started.description,
        "message": f"Run {started.run_id} started by {me.name}: it {started.description}.",
    }


@endpoint
async def start(request: Request) -> Response:
    data = await body(
        request,
        {"runbook": str, "environment": str, "values": dict, "note": str, "change_id": str},
    )
    return JSONResponse(begin(request, data), status_code=202)


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
        *(Route(step + name, globals()[name], methods=["POST"]) for name in DECISIONS + VOTES),
        Route("/api/{rest:path}", not_found, methods=["GET", "POST"]),
    ]
