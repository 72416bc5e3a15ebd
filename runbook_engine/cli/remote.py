"""The CLI acting through a console's API: ``--server URL`` of ``confirm``, ``approve``,
``reject``, ``status`` and ``runs``.

The bearer token comes from ``$RUNBOOK_TOKEN`` (``runbook users add|token`` prints it);
never from a flag, so it stays out of shell history and process lists.  The server does
the act as the token's account, journaled ``authenticated: true, auth_method: token``; a
``--as`` name that differs from that account is refused (a token cannot act for another).
"""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import quote

import click

from runbook_engine.errors import InputError

TOKEN_ENV = "RUNBOOK_TOKEN"
PREFIX = "/api/v1"


def server_option(func: Any) -> Any:
    """``--server URL``: act through the web console at URL (token: ``$RUNBOOK_TOKEN``)."""
    return click.option(
        "--server",
        metavar="URL",
        envvar="RUNBOOK_SERVER",
        help="Act through the web console at URL as the account of $RUNBOOK_TOKEN "
        "[env RUNBOOK_SERVER].",
    )(func)


class Remote:
    """One console's API, called with the token of ``$RUNBOOK_TOKEN``."""

    def __init__(self, server: str) -> None:
        token = os.environ.get(TOKEN_ENV, "").strip()
        if not token:
            raise InputError(
                f"--server needs the API token in ${TOKEN_ENV} "
                "(runbook users add NAME or runbook users token NAME prints it)"
            )
        try:
            import httpx
        except ImportError:
            raise InputError(
                "--server needs httpx: pip install 'runbook-engine[console]'"
            ) from None
        self.server = server.rstrip("/")
        self._client = httpx.Client(
            base_url=self.server, headers={"Authorization": f"Bearer {token}"}, timeout=60.0
        )

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """The JSON answer of ``method path``.

        Raises:
            InputError: the server cannot be reached, or refused (its message, with the
                HTTP status).
        """
        import httpx

        try:
            answer = self._client.request(method, PREFIX + path, json=body)
        except httpx.HTTPError as exc:
            raise InputError(f"{self.server}: cannot reach the console ({exc})") from None
        try:
            data = answer.json()
        except ValueError:
            data = {"error": answer.text[:200]}
        if answer.status_code >= 400:
            message = data.get("error") if isinstance(data, dict) else None
            raise InputError(f"{self.server} refused ({answer.status_code}): {message}")
        return data

    def acting_as(self, claimed: str | None) -> str:
        """The token's account name; ``claimed`` (``--as``) must be it when given.

        Raises:
            InputError: ``claimed`` names someone else.
        """
        name = str(self.call("GET", "/me")["name"])
        if claimed and claimed.strip() != name:
            raise InputError(
                f"--as {claimed}: the token of ${TOKEN_ENV} is {name}'s; a token acts only "
                "for its own account (leave out --as)"
            )
        return name

    def decide(
        self, run_id: str, step: str, verb: str, claimed: str | None, note: str | None
    ) -> dict[str, Any]:
        """POST ``verb`` (confirm, skip, abort, approve, reject) for ``step`` of ``run_id``."""
        self.acting_as(claimed)
        path = f"/runs/{quote(run_id, safe='')}/steps/{quote(step, safe='')}/{verb}"
        return dict(self.call("POST", path, {"note": note}))


def show_decision(data: dict[str, Any], as_json: bool) -> None:
    """Print what the server recorded."""
    from runbook_engine.evidence.safeio import terminal_safe

    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    if "approvals" in data:
        text = (
            f"Recorded {data['decision']} of {data['step']} by {data['by']} "
            f"({data['approvals']} of {data['required']} approvals); the console continues "
            "the run"
        )
    else:
        text = (
            f"Recorded {data['decision']} of {data['step']} on {', '.join(data['hosts'])} "
            f"by {data['by']}; the console continues the run"
        )
    click.echo(terminal_safe(f"{text} (authenticated: {data.get('auth_method')})"))


def show_runs(remote: Remote, as_json: bool) -> None:
    """``runbook runs --server``: the console's runs, newest first."""
    from runbook_engine.evidence.safeio import terminal_safe

    found = remote.call("GET", "/runs")["runs"]
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    for run in found:
        word = run.get("outcome") or run["status"]
        click.echo(
            terminal_safe(f"{run['run_id']}  {word}  {run['operator']}  {run['created_at']}")
        )


def show_status(remote: Remote, run_id: str | None, as_json: bool) -> None:
    """``runbook status --server``: a run's steps and the gates it waits at."""
    from runbook_engine.evidence.safeio import terminal_safe

    if run_id is None:
        found = remote.call("GET", "/runs")["runs"]
        if not found:
            raise InputError(f"{remote.server}: no runs yet")
        run_id = found[0]["run_id"]
    run = remote.call("GET", f"/runs/{quote(run_id, safe='')}")
    if as_json:
        click.echo(json.dumps(run, indent=2))
        return
    lines = [f"Run {run['run_id']}: {run['word']} (operator {run['operator']})"]
    lines += [f"  {s['step']} on {s['host']}: {s['status']}" for s in run["steps"]]
    for gate in run["gates"]:
        lines.append(f"  waits at {gate['step']} ({gate['kind']})")
    click.echo(terminal_safe("\n".join(lines)))
