"""The console's pages and forms.

Every page needs a signed-in person (else it redirects to ``/login``); every POST form
carries the session's CSRF token (else 403).  Bad input and refusals from the library
(separation of duties, a finished step...) come back as a message on the page, never a
traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from runbook_engine.console import actions, api, auth
from runbook_engine.console.actions import Forbidden, SeparationOfDuties
from runbook_engine.console.data import RunFilter
from runbook_engine.console.security import DOCUMENT_CSP, csrf_ok, csrf_token
from runbook_engine.errors import RunbookError
from runbook_engine.resources import templates_dir

_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(Path(templates_dir()) / "console")),
    autoescape=True,
)


def page(request: Request, name: str, status: int = 200, **values: Any) -> HTMLResponse:
    """Render template ``name`` with the signed-in person, the CSRF token and a message."""
    me = request.state.identity
    values.setdefault("message", request.session.pop("message", None))
    html = _TEMPLATES.get_template(name).render(
        me=me, csrf=csrf_token(request.session), path=request.url.path, **values
    )
    return HTMLResponse(html, status_code=status)


def back(request: Request, url: str, message: str | None = None) -> RedirectResponse:
    """Redirect (303) to ``url``, with ``message`` shown there once."""
    if message:
        request.session["message"] = message
    return RedirectResponse(url, status_code=303)


async def checked_form(request: Request, ability: str | None = None) -> Any:
    """The POSTed form, after the CSRF check and the role check.

    Raises:
        Forbidden: no or a wrong CSRF token; the roles do not grant ``ability``.
        RunbookError: a malformed or oversized form.
    """
    form = await api.read_form(request)
    if not csrf_ok(request.session, form.get("csrf")):
        raise Forbidden("the form's CSRF token is missing or wrong; reload the page and retry")
    if ability:
        actions.need(request.state.identity, ability)
    return form


# -- signing in -------------------------------------------------------------------------------
async def login_page(request: Request) -> Response:
    return page(request, "login.html.j2", oidc=request.app.state.settings.oidc is not None)


async def login(request: Request) -> Response:
    app = request.app.state
    form = await request.form()
    if not csrf_ok(request.session, form.get("csrf")):
        raise Forbidden("the form's CSRF token is missing or wrong; reload the page and retry")
    name, password = str(form.get("name", "")).strip(), str(form.get("password", ""))
    client = request.client.host if request.client else "?"
    if app.limiter.blocked(f"name:{name}", f"client:{client}"):
        return page(
            request,
            "login.html.j2",
            429,
            oidc=False,
            message="Too many failed logins; wait a few minutes.",
        )
    user = app.users.verify(name, password) if name and password else None
    if user is None:
        app.limiter.failed(f"name:{name}", f"client:{client}")
        app.audit("login-failed", name=name, client=client)
        return page(
            request,
            "login.html.j2",
            401,
            oidc=app.settings.oidc is not None,
            message="Wrong name or password.",
        )
    auth.sign_in(request, user, "password")
    app.audit("login", name=user.name, method="password", client=client)
    return back(request, "/runs")


async def oidc_start(request: Request) -> Response:
    client = request.app.state.oidc
    if client is None:
        return back(request, "/login", "single sign-on is not configured")
    return await client.authorize_redirect(request, str(request.url_for("oidc_done")))


async def oidc_done(request: Request) -> Response:
    from authlib.integrations.base_client.errors import OAuthError

    app = request.app.state
    try:
        token = await app.oidc.authorize_access_token(request)
    except (OAuthError, ValueError) as exc:  # refused by the provider, or a bad token
        app.audit("login-refused", method="oidc", why=str(exc)[:200])
        return back(request, "/login", "single sign-on failed; try again or use a password")
    claims = token.get("userinfo") or {}
    name = str(claims.get(app.settings.oidc.name_claim, ""))
    user = app.users.get(name)
    if user is None:
        app.audit("login-refused", name=name, method="oidc")
        return back(request, "/login", f"{name or 'that account'} has no console account")
    auth.sign_in(request, user, "oidc")
    app.audit("login", name=user.name, method="oidc")
    return back(request, "/runs")


async def logout(request: Request) -> Response:
    await checked_form(request)
    request.app.state.audit("logout", name=request.state.identity.name)
    if request.state.identity.method in ("password", "oidc"):  # a session of the cookie
        auth.sign_out(request.app.state.settings.state_dir, request.state.identity.name)
    request.session.clear()
    return back(request, "/login")


# -- runs -------------------------------------------------------------------------------------
async def runs(request: Request) -> Response:
    q = request.query_params
    where = RunFilter(*(q.get(k, "").strip() for k in RunFilter.__slots__))
    found = request.app.state.data.runs(where)
    return page(request, "runs.html.j2", runs=found, where=where)


async def run_page(request: Request) -> Response:
    view = request.app.state.data.run(request.path_params["run_id"])
    return page(request, "run.html.j2", view=view, launcher=request.app.state.launcher)


async def decide(request: Request) -> Response:
    """The gate form (confirm, skip, abort): :func:`.api.act`, as the API's paths."""
    return await _act(request, api.DECISIONS)


async def vote(request: Request) -> Response:
    """The approval form (approve, reject): :func:`.api.act`, as the API's paths."""
    return await _act(request, api.VOTES)


async def _act(request: Request, verbs: tuple[str, ...]) -> Response:
    """A form's act through the API's one implementation; its answer or refusal becomes
    the message on the run page (a wrong CSRF token or missing role: 403)."""
    run_id, step = request.path_params["run_id"], request.path_params["step"]
    form = await checked_form(request)
    verb = str(form.get("decision", ""))
    url = f"/runs/{quote(run_id)}"
    if verb not in verbs:
        return back(request, url, f"unknown decision {verb!r} (one of {', '.join(verbs)})")
    try:
        answer = await api.act(request, run_id, step, verb)
    except (RunbookError, SeparationOfDuties) as exc:
        return back(request, url, str(exc))
    return back(request, url, answer["message"])


# -- evidence ---------------------------------------------------------------------------------
async def record(request: Request) -> Response:
    data, verdict = request.app.state.data.change_record(request.path_params["run_id"], "html")
    return Response(
        data,
        media_type="text/html",
        headers={"Content-Security-Policy": DOCUMENT_CSP, "X-Evidence-Verdict": verdict},
    )


async def bundle(request: Request) -> Response:
    run_id = request.path_params["run_id"]
    data = request.app.state.data.bundle(run_id)
    name = quote(f"{run_id}-evidence.zip")
    return Response(
        data,
        media_type="application/zip",
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{name}"},
    )


# -- the library and starting runs ------------------------------------------------------------
async def library(request: Request) -> Response:
    return page(request, "library.html.j2", entries=request.app.state.data.library_entries())


async def guide(request: Request) -> Response:
    q = request.query_params
    data = request.app.state.data.guide(q.get("runbook", ""), q.get("env") or None)
    return Response(data, media_type="text/html", headers={"Content-Security-Policy": DOCUMENT_CSP})


async def start_page(request: Request) -> Response:
    entries = request.app.state.data.library_entries()
    chosen = next((e for e in entries if e.path == request.query_params.get("runbook")), None)
    return page(
        request,
        "start.html.j2",
        entries=entries,
        chosen=chosen,
        launcher=request.app.state.launcher,
    )


async def start(request: Request) -> Response:
    """The start page's form: the API's start (:func:`~.api.begin`), then the run's page."""
    form = await checked_form(request, "start")
    runbook = str(form.get("runbook", ""))
    data = {
        "runbook": runbook,
        "environment": str(form.get("environment", "")),
        "values": parse_values(str(form.get("values", ""))),
        "note": str(form.get("note", "")).strip(),
        "change_id": str(form.get("change", "")).strip(),
    }
    try:
        started = api.begin(request, data)
    except RunbookError as exc:
        return back(request, f"/start?runbook={quote(runbook)}", str(exc))
    return back(request, f"/runs/{quote(started['run_id'])}", started["message"])


def parse_values(text: str) -> dict[str, str]:
    """``NAME=VALUE`` lines (the start form's values box) as a dict."""
    sets = {}
    for line in text.splitlines():
        if line.strip():
            name, _, value = line.partition("=")
            sets[name.strip()] = value.strip()
    return sets
