"""Who is signed in, and how: a local password, OIDC single sign-on, or a trusted proxy.

* ``password``: the login form checks the account's argon2 hash (:mod:`.users`); the
  session cookie (signed, HttpOnly) then names the person and the method.
* ``oidc``: authlib's Starlette client runs the authorization-code flow with the
  provider in :class:`~.settings.OidcSettings`; the claim it names (default
  ``preferred_username``) must be the name of a console account, which gives the roles.
* ``proxy-header``: a reverse proxy that authenticates people sets a header (for example
  ``X-Forwarded-User``).  It is believed only from the addresses in ``--trusted-proxy``
  and only when ``--proxy-header`` is given; from anyone else the header is ignored.
  Risks (README): anyone who can reach the console's port from a trusted address, or
  make the proxy pass a header through, is whoever they say; bind the console to
  loopback or a private interface, and make the proxy overwrite the header.

* ``token``: API calls (paths under ``/api/``) may carry ``Authorization: Bearer TOKEN``,
  the account's token from ``runbook users add|token`` (kept as its SHA-256).  A bad
  token is nobody (401), whatever session cookie comes with it.

A session lasts ``session_hours``; after that the person signs in again.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runbook_engine.console.users import User, UserFile

if TYPE_CHECKING:
    from starlette.requests import Request

    from runbook_engine.console.settings import Settings


@dataclass(frozen=True, slots=True)
class Identity:
    """A signed-in person: the account, and ``method`` (``password``, ``oidc``,
    ``proxy-header``, ``token``) as journaled in ``auth_method``."""

    user: User
    method: str

    @property
    def name(self) -> str:
        """The name recorded in journals."""
        return self.user.name

    def may(self, ability: str) -> bool:
        """True when the account's roles grant ``ability``."""
        return self.user.may(ability)


def current(request: Request, settings: Settings, users: UserFile) -> Identity | None:
    """The person making ``request``, or ``None`` (not signed in, session expired, the
    account removed, or a proxy header from an untrusted address)."""
    client = request.client.host if request.client else None
    bearer = request.headers.get("authorization", "")
    if bearer and request.url.path.startswith("/api/"):
        scheme, _, token = bearer.partition(" ")
        user = users.by_token(token.strip()) if scheme.lower() == "bearer" else None
        return Identity(user, "token") if user and token.strip() else None
    if settings.proxy_header and settings.trusts(client):
        name = request.headers.get(settings.proxy_header, "").strip()
        user = users.get(name) if name else None
        return Identity(user, "proxy-header") if user else None
    session = request.session
    name, method, since = session.get("user"), session.get("method"), session.get("since")
    if not name or method not in ("password", "oidc") or not isinstance(since, (int, float)):
        return None
    if time.time() - since > settings.session_hours * 3600:
        session.clear()
        return None
    if since <= signed_out(settings.state_dir).get(str(name), 0.0):
        session.clear()  # signed out since (this cookie, or a copy of it, is dead)
        return None
    user = users.get(name)
    return Identity(user, method) if user else None


def sign_in(request: Request, user: User, method: str) -> None:
    """Start a session for ``user`` (a new session: the old one's values, its CSRF token
    included, are dropped)."""
    request.session.clear()
    request.session.update({"user": user.name, "method": method, "since": time.time()})


def _signed_out_path(state_dir: Path) -> Path:
    return state_dir / "console" / "signed-out.json"


def signed_out(state_dir: Path) -> dict[str, float]:
    """When each person last signed out (``{name: epoch seconds}``; empty when nobody has
    or the file cannot be read)."""
    try:
        data = json.loads(_signed_out_path(state_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): float(v) for k, v in data.items() if isinstance(v, (int, float))}


def sign_out(state_dir: Path, name: str) -> None:
    """Record that ``name`` signed out now: every session of theirs started before ends,
    including a copy of the cookie kept elsewhere (the cookie itself is only signed, so
    clearing it in the browser alone would leave copies valid until they expire).

    Raises:
        OSError: the state folder cannot be written.
    """
    from runbook_engine.evidence.safeio import write_atomic

    times = signed_out(state_dir)
    times[name] = time.time()
    path = _signed_out_path(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_atomic(path, (json.dumps(times, sort_keys=True) + "\n").encode("utf-8"), 0o600)


def oidc_client(settings: Settings) -> Any:
    """The authlib client of the configured provider (``None`` without one)."""
    if settings.oidc is None:
        return None
    from authlib.integrations.starlette_client import OAuth

    oauth = OAuth()
    issuer = settings.oidc.issuer.rstrip("/")
    oauth.register(
        "sso",
        client_id=settings.oidc.client_id,
        client_secret=settings.oidc.client_secret,
        server_metadata_url=f"{issuer}/.well-known/openid-configuration",
        client_kwargs={"scope": "openid profile email"},
    )
    return oauth.create_client("sso")
