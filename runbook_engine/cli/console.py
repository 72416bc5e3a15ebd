"""``runbook serve`` (the web console) and ``runbook users add|token`` (its local accounts).

Passwords come from a prompt or ``$RUNBOOK_CONSOLE_PASSWORD``, never a flag value.  The
account's API token is printed once, alone on the last line of ``users add`` and ``users
token``; only its SHA-256 is kept.
The console's own modules are in :mod:`runbook_engine.console`; its dependencies are the
``console`` extra (``pip install 'runbook-engine[console]'``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from runbook_engine.cli.common import (
    current_store_url,
    json_option,
    state_dir_or_default,
    state_option,
)
from runbook_engine.cli.team import queue_url_option
from runbook_engine.errors import InputError

PASSWORD_ENV = "RUNBOOK_CONSOLE_PASSWORD"
INSTALL_HINT = "install the console extra: pip install 'runbook-engine[console]'"


def _need_console() -> None:
    try:
        import argon2  # noqa: F401
        import starlette  # noqa: F401
    except ImportError as exc:
        raise InputError(f"the web console needs {exc.name}: {INSTALL_HINT}") from None


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=int, help="Port to listen on.")
@click.option(
    "--library",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    default="runbooks",
    show_default=True,
    help="Folder of runbooks the console lists and starts.",
)
@click.option(
    "--proxy-header",
    metavar="NAME",
    help="Believe this header (set by a reverse proxy that signs people in) for the "
    "signed-in user; only from --trusted-proxy addresses (README: risks).",
)
@click.option(
    "--trusted-proxy",
    "trusted",
    multiple=True,
    metavar="ADDRESS",
    help="Address or network of the reverse proxy (repeatable; needed by --proxy-header).",
)
@click.option("--oidc-issuer", metavar="URL", help="OpenID Connect issuer for single sign-on.")
@click.option(
    "--oidc-client-id", metavar="ID", help="OIDC client id (secret: $RUNBOOK_OIDC_CLIENT_SECRET)."
)
@click.option(
    "--oidc-claim",
    default="preferred_username",
    show_default=True,
    help="The OIDC claim that names the console account.",
)
@click.option(
    "--secure-cookies/--no-secure-cookies",
    default=None,
    help="Send the session cookie over HTTPS only [default: on unless --host is loopback].",
)
@click.option(
    "--public-url",
    metavar="URL",
    help="The console's address as people reach it: the link in notifications of the runs "
    "it starts (else public_url of notifications.yaml).",
)
@queue_url_option
@click.option(
    "--sweep-seconds",
    type=click.FloatRange(0),
    default=30.0,
    show_default=True,
    help="How often to look for approvals past their expiry in runs paused at the step, "
    "journal the expiry and send its notification (0: never; a run still notices when "
    "it resumes).",
)
@state_option
def serve(
    host: str,
    port: int,
    library: Path,
    proxy_header: str | None,
    trusted: tuple[str, ...],
    oidc_issuer: str | None,
    oidc_client_id: str | None,
    oidc_claim: str,
    secure_cookies: bool | None,
    public_url: str | None,
    queue_url: str | None,
    sweep_seconds: float,
    state_dir: Path | None,
) -> None:
    """Serve the web console: runs, gates and approvals by signed-in people, evidence.

    It works on the team's store (--store postgresql://...) or a state directory
    (--state-dir, or --store as a folder, sqlite:///PATH/state.db or file:///PATH).
    With a job queue (--queue-url, RUNBOOK_QUEUE, or a postgresql:// RUNBOOK_STORE),
    the runs it starts are queued for `runbook worker`; without one, they run in
    background processes of the console.  Accounts and the audit log stay in the
    state directory.
    """
    _need_console()
    from runbook_engine.cli.team import queue_url_or_default
    from runbook_engine.console.settings import (
        OIDC_SECRET_ENV,
        OidcSettings,
        Settings,
        secret_key,
        store_dir,
    )
    from runbook_engine.run.store_api import is_pg

    url = current_store_url()
    team_store = url if is_pg(url) else None
    folder = store_dir(None if team_store else url, state_dir_or_default(state_dir))
    queue = queue_url_or_default(queue_url)
    _check_team(team_store, queue, folder)
    if proxy_header and not trusted:
        raise InputError("--proxy-header needs --trusted-proxy ADDRESS (the proxy's address)")
    oidc = None
    if oidc_issuer or oidc_client_id:
        if not (oidc_issuer and oidc_client_id and os.environ.get(OIDC_SECRET_ENV)):
            raise InputError(
                f"single sign-on needs --oidc-issuer, --oidc-client-id and ${OIDC_SECRET_ENV}"
            )
        oidc = OidcSettings(oidc_issuer, oidc_client_id, os.environ[OIDC_SECRET_ENV], oidc_claim)
    if public_url:
        if not public_url.startswith(("http://", "https://")):
            raise InputError(f"--public-url {public_url}: an http:// or https:// address")
        from runbook_engine.run.notify_settings import PUBLIC_URL_ENV

        os.environ[PUBLIC_URL_ENV] = public_url  # the runs it starts inherit it
    loopback = host in ("127.0.0.1", "::1", "localhost")
    settings = Settings(
        state_dir=folder,
        library=library,
        secret_key=secret_key(folder),
        secure_cookies=(not loopback) if secure_cookies is None else secure_cookies,
        proxy_header=proxy_header,
        trusted_proxies=trusted,
        oidc=oidc,
        store_url=team_store,
        queue_url=queue,
        sweep_seconds=sweep_seconds,
    )
    import uvicorn

    from runbook_engine.console.app import create_app

    where = f"store {shown(team_store)}" if team_store else f"state {folder}"
    queued = f", queue {shown(queue)}" if queue else ""
    click.echo(f"runbook console on http://{host}:{port}/ ({where}, library {library}{queued})")
    uvicorn.run(
        create_app(settings), host=host, port=port, log_level="warning", proxy_headers=False
    )


def shown(url: str) -> str:
    """A store URL without its password."""
    from runbook_engine.run.pgstore.connection import shown_url

    return shown_url(url)


def _check_team(store: str | None, queue: str | None, folder: Path) -> None:
    """Refuse, in one message, a team store or queue that cannot be used (before
    serving anything).

    Raises:
        InputError: the team extra is missing, or a queue URL that is not PostgreSQL.
        StateError: the store or the queue does not answer.
    """
    if store:  # first: the queue is the store's database by default, and the store says more
        from runbook_engine.run.store_api import open_store

        open_store(folder, store, create=False).close()
    if queue:
        from runbook_engine.run.queue import check_url, ensure_schema

        ensure_schema(check_url(queue))


@click.group()
def users() -> None:
    """Local accounts of the web console."""


@users.command("add")
@click.argument("name")
@click.option(
    "--role",
    "roles",
    multiple=True,
    default=("viewer",),
    show_default=True,
    type=click.Choice(["viewer", "operator", "approver", "admin"]),
    help="A role (repeatable).",
)
@click.option("--no-password", is_flag=True, help="No password: signs in by OIDC or proxy only.")
@state_option
@json_option
def users_add(
    name: str, roles: tuple[str, ...], no_password: bool, state_dir: Path | None, as_json: bool
) -> None:
    """Add (or replace) account NAME; the password is asked for, or read from
    $RUNBOOK_CONSOLE_PASSWORD.  The last line is the account's API token (shown once)."""
    _need_console()
    from runbook_engine.console.users import UserFile, users_path

    password = None
    if not no_password:
        password = os.environ.get(PASSWORD_ENV) or click.prompt(
            f"Password for {name}", hide_input=True, confirmation_prompt=True, err=True
        )
    path = users_path(state_dir_or_default(state_dir))
    user, token = UserFile(path).add(name, roles, password)
    if as_json:
        click.echo(
            json.dumps(
                {"name": user.name, "roles": list(user.roles), "file": str(path), "token": token}
            )
        )
        return
    click.echo(f"Account {user.name} ({', '.join(user.roles)}) kept in {path}")
    click.echo("API token (shown once; RUNBOOK_TOKEN or an Authorization: Bearer header):")
    click.echo(token)


@users.command("token")
@click.argument("name")
@state_option
@json_option
def users_token(name: str, state_dir: Path | None, as_json: bool) -> None:
    """Issue a new API token for account NAME (the old one stops working); the last line
    is the token (shown once)."""
    _need_console()
    from runbook_engine.console.users import UserFile, users_path

    token = UserFile(users_path(state_dir_or_default(state_dir))).new_token(name)
    if as_json:
        click.echo(json.dumps({"name": name, "token": token}))
        return
    click.echo(f"New API token of {name} (shown once; the old one no longer works):")
    click.echo(token)
