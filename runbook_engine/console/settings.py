"""What ``runbook serve`` was given: the store, the library and the ways to sign in."""

from __future__ import annotations

import ipaddress
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from runbook_engine.errors import InputError

#: The console's session key: from this variable, else a random key kept in the state.
SECRET_ENV = "RUNBOOK_CONSOLE_SECRET"
#: The OIDC client secret (never a flag value).
OIDC_SECRET_ENV = "RUNBOOK_OIDC_CLIENT_SECRET"


@dataclass(frozen=True, slots=True)
class OidcSettings:
    """An OpenID Connect provider: issuer URL (discovery at ``/.well-known/...``), client,
    and the claim that names the person (looked up among the console's accounts)."""

    issuer: str
    client_id: str
    client_secret: str
    name_claim: str = "preferred_username"


@dataclass(frozen=True, slots=True)
class Settings:
    """The console's configuration.

    Attributes:
        state_dir: The embedded store (``state.db`` and ``runs/``).
        library: The folder of runbooks the console lists and starts.
        secret_key: Signs the session cookie.
        secure_cookies: Send the session cookie over HTTPS only.
        proxy_header: Name of the header a trusted reverse proxy sets to the signed-in
            user (``None``: the mode is off).
        trusted_proxies: Addresses (networks) the header is believed from; from any other
            client the header is ignored.
        oidc: The OIDC provider, or ``None``.
        session_hours: How long a session lasts.
        max_upload_bytes: Largest attachment accepted.
        store_url: The team's PostgreSQL store (``postgresql://...``) the console works
            on, or ``None``: the embedded store of :attr:`state_dir`.  Accounts, the
            session key and the audit log stay in :attr:`state_dir` either way.
        queue_url: The job queue (``postgresql://...``): started runs are queued for
            ``runbook worker`` and decisions enqueue their resume; ``None``: runs are
            carried out in background processes of the console.
        sweep_seconds: How often the console looks for gates and approvals past their
            expiry (:mod:`runbook_engine.run.expiry`); ``0``: never.
    """

    state_dir: Path
    library: Path
    secret_key: str
    secure_cookies: bool = False
    proxy_header: str | None = None
    trusted_proxies: tuple[str, ...] = ()
    oidc: OidcSettings | None = None
    session_hours: float = 8.0
    max_upload_bytes: int = 10 * 1024 * 1024
    allowed_upload_types: tuple[str, ...] = field(
        default=(".txt", ".log", ".png", ".jpg", ".jpeg", ".pdf", ".csv", ".json", ".reg", ".xml")
    )
    store_url: str | None = None
    queue_url: str | None = None
    sweep_seconds: float = 30.0

    def trusts(self, client: str | None) -> bool:
        """True when ``client`` (an IP address) is one of :attr:`trusted_proxies`."""
        if not client or self.proxy_header is None:
            return False
        try:
            address = ipaddress.ip_address(client)
        except ValueError:
            return False
        return any(address in ipaddress.ip_network(n, strict=False) for n in self.trusted_proxies)


def secret_key(state_dir: Path) -> str:
    """The session key: ``$RUNBOOK_CONSOLE_SECRET``, else ``STATE/console/secret`` (made
    once, mode 0600)."""
    if os.environ.get(SECRET_ENV):
        return os.environ[SECRET_ENV]
    path = state_dir / "console" / "secret"
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = secrets.token_urlsafe(48)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="utf-8").strip()
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(key)
    return key


def store_dir(store: str | None, state_dir: Path) -> Path:
    """The state directory named by ``--store``: a folder, ``sqlite:///PATH/state.db``
    or ``file:///PATH``; ``None`` keeps ``state_dir`` (a ``postgresql://`` store is
    :attr:`Settings.store_url`, not given here).

    Raises:
        InputError: another kind of URL.
    """
    if store is None:
        return state_dir
    for prefix in ("sqlite:///", "file://"):
        if store.startswith(prefix):
            path = Path("/" + store[len(prefix) :].lstrip("/"))
            return path.parent if path.name == "state.db" else path
    if "://" in store:
        raise InputError(
            f"--store {store.split('://', 1)[0]}://…: give the team's store as "
            "postgresql://USER@HOST/DB, or a state directory: --state-dir DIR, or --store "
            "as a folder, sqlite:///PATH/state.db or file:///PATH"
        )
    return Path(store)
