"""The console application: routes, sessions, sign-in and security headers.

:func:`create_app` builds a Starlette application from :class:`~.settings.Settings`;
``runbook serve`` hands it to uvicorn, the tests to Starlette's ``TestClient``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from runbook_engine.console import api, auth, openapi, views
from runbook_engine.console.data import ConsoleData
from runbook_engine.console.launcher import BackgroundLauncher, Launcher, QueueLauncher
from runbook_engine.console.security import CSP, HEADERS, LoginLimiter
from runbook_engine.console.settings import Settings
from runbook_engine.console.users import UserFile, users_path
from runbook_engine.errors import RunbookError, StateError
from runbook_engine.resources import templates_dir

log = logging.getLogger("runbook_engine.console")

#: Pages anyone may see (signing in, the style sheet and the script, the API's document).
PUBLIC = ("/login", "/auth/oidc", "/static/", "/openapi.json")
#: Paths that answer 401 (JSON) rather than send the unknown to ``/login``.
API = "/api/"
STATIC = {"console.css": "text/css", "console.js": "text/javascript"}


class Audit:
    """The console's audit log: one JSON line per login and action in
    ``STATE/console/audit.jsonl`` (acts on runs are journaled as well)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self, event: str, **fields: Any) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        line = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "event": event}
        with open(self.path, "a", encoding="utf-8") as out:
            out.write(json.dumps({**line, **fields}, ensure_ascii=False) + "\n")


class _Identify(BaseHTTPMiddleware):
    """Who asks (``request.state.identity``); sends the unknown to ``/login``; adds the
    security headers to every response."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        state = request.app.state
        identity = auth.current(request, state.settings, state.users)
        request.state.identity = identity
        path = request.url.path
        if identity is None and not path.startswith(PUBLIC) and not path.startswith(API):
            response: Response = RedirectResponse("/login", status_code=303)
        else:
            response = await call_next(request)
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        response.headers.setdefault("Content-Security-Policy", CSP)
        return response


class _TooLarge(Exception):
    """A request body went past :class:`_BoundedBody`'s limit."""


def _caused_by_too_large(exc: BaseException | None, depth: int = 0) -> bool:
    """True when ``exc`` is :class:`_TooLarge`, or wraps it (exception groups, causes)."""
    if exc is None or depth > 20:
        return False
    if isinstance(exc, _TooLarge):
        return True
    inner = [*(getattr(exc, "exceptions", ()) or ()), exc.__cause__, exc.__context__]
    return any(_caused_by_too_large(e, depth + 1) for e in inner if e is not exc)


class _BoundedBody:
    """Refuse (HTTP 413) a request body larger than ``limit`` bytes, before anything reads
    it: Starlette's form parser bounds text fields but spools file parts to disk whatever
    their size, even on ``/login`` where nobody is signed in yet.  A declared
    ``Content-Length`` over the limit is refused at once; a body without one is counted
    as it arrives and cut off."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send)
            return
        seen, started = 0, False

        async def bounded() -> Any:
            nonlocal seen
            message = await receive()
            if message.get("type") == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return message

        async def sending(message: Any) -> None:
            nonlocal started
            started = started or message.get("type") == "http.response.start"
            await send(message)

        try:
            await self.app(scope, bounded, sending)
        except Exception as exc:  # raised in the middle of the app, maybe in task groups
            if not _caused_by_too_large(exc):
                raise
            if not started:
                await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Any, receive: Any, send: Any) -> None:
        await Response(
            f"the request is larger than {self.limit} bytes (attachments: at most "
            f"{api.MAX_FILES} files, each within the console's max_upload_bytes)",
            status_code=413,
            media_type="text/plain",
        )(scope, receive, send)


async def _static(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in STATIC:
        return Response("not found", status_code=404)
    return FileResponse(Path(templates_dir()) / "console" / name, media_type=STATIC[name])


async def _home(request: Request) -> Response:
    return RedirectResponse("/runs", status_code=303)


async def _openapi(request: Request) -> Response:
    return JSONResponse(openapi.document())


async def _forbidden(request: Request, exc: Exception) -> Response:
    return Response(str(exc), status_code=403, media_type="text/plain")


async def _refused(request: Request, exc: Exception) -> Response:
    status = 404 if isinstance(exc, StateError) else 400
    if request.state.identity is None:
        return Response(str(exc), status_code=status, media_type="text/plain")
    return views.page(request, "problem.html.j2", status, problem=str(exc))


def sweep_once(app: Any) -> list[Any]:
    """Journal and notify the approvals past their expiry in the console's store
    (:func:`runbook_engine.run.expiry.sweep`); each is audited.  Returns them."""
    from runbook_engine.run.expiry import sweep

    data = app.state.data
    if not data.has_state():
        return []
    with data._store() as store:
        found = sweep(store)
    for expired in found:
        app.state.audit("approval-expired", run=expired.run_id, step=expired.step, by=expired.by)
    return found


async def _sweeping(app: Any, seconds: float) -> None:
    """Every ``seconds``: :func:`sweep_once` (in a thread; a failure is logged, and the
    next round tries again)."""
    said = ""
    while True:
        try:
            await asyncio.to_thread(sweep_once, app)
            said = ""
        except Exception as exc:  # the store went away: say so (once), try again next round
            if str(exc) != said:
                log.warning("expiry sweep: %s", exc)
            said = str(exc)
        await asyncio.sleep(seconds)


@contextlib.asynccontextmanager
async def _lifespan(app: Starlette) -> AsyncIterator[None]:
    """While the console serves: the expiry sweep every ``settings.sweep_seconds``."""
    seconds = app.state.settings.sweep_seconds
    task = asyncio.create_task(_sweeping(app, seconds)) if seconds > 0 else None
    try:
        yield
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def default_launcher(settings: Settings) -> Launcher:
    """Where started runs go: the job queue of ``settings.queue_url`` for workers
    (:class:`~.launcher.QueueLauncher`), else a background process per run."""
    if settings.queue_url:
        return QueueLauncher(settings.state_dir, settings.queue_url, settings.store_url)
    return BackgroundLauncher(settings.state_dir, settings.store_url)


def body_limit(settings: Settings) -> int:
    """The largest request body the console reads: its attachments at their largest
    (:data:`~.api.MAX_FILES` of ``max_upload_bytes``) and 1 MiB of fields and framing."""
    return api.MAX_FILES * settings.max_upload_bytes + 1024 * 1024


def create_app(settings: Settings, launcher: Launcher | None = None) -> Starlette:
    """The console for ``settings``; ``launcher`` carries out started runs (default:
    :func:`default_launcher`)."""
    routes = [
        Route("/", _home),
        Route("/login", views.login_page, methods=["GET"]),
        Route("/login", views.login, methods=["POST"]),
        Route("/login/oidc", views.oidc_start),
        Route("/auth/oidc", views.oidc_done, name="oidc_done"),
        Route("/logout", views.logout, methods=["POST"]),
        Route("/runs", views.runs),
        Route("/runs/{run_id}", views.run_page),
        Route("/runs/{run_id}/record", views.record),
        Route("/runs/{run_id}/bundle", views.bundle),
        Route("/runs/{run_id}/steps/{step}/decide", views.decide, methods=["POST"]),
        Route("/runs/{run_id}/steps/{step}/vote", views.vote, methods=["POST"]),
        Route("/library", views.library),
        Route("/library/guide", views.guide),
        Route("/start", views.start_page, methods=["GET"]),
        Route("/start", views.start, methods=["POST"]),
        Route("/static/{name}", _static),
        Route("/openapi.json", _openapi),
        *api.routes(),
    ]
    middleware = [
        Middleware(_BoundedBody, limit=body_limit(settings)),
        Middleware(
            SessionMiddleware,
            secret_key=settings.secret_key,
            session_cookie="runbook_console",
            max_age=int(settings.session_hours * 3600),
            same_site="lax",
            https_only=settings.secure_cookies,
        ),
        Middleware(_Identify),
    ]
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={views.Forbidden: _forbidden, RunbookError: _refused},
        lifespan=_lifespan,
    )
    app.state.settings = settings
    app.state.users = UserFile(users_path(settings.state_dir))
    app.state.data = ConsoleData(settings.state_dir, settings.library, settings.store_url)
    app.state.launcher = launcher or default_launcher(settings)
    app.state.limiter = LoginLimiter()
    app.state.audit = Audit(settings.state_dir / "console" / "audit.jsonl")
    app.state.oidc = auth.oidc_client(settings)
    return app
