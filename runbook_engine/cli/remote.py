"""The CLI acting through a console's API: ``--server URL`` of ``confirm`` (with
``--skip``, ``--abort``, ``--rerun``, ``--host``, ``--in-advance``, ``--attach``),
``approve`` and ``reject`` (with ``--attach``), ``status`` and ``runs``.

Attachments are uploaded as a form (``multipart/form-data``); the console bounds their
size and type (``max_upload_bytes``, ``allowed_upload_types``) and refuses the act with
nothing recorded when one is out of bounds.

The bearer token comes from ``$RUNBOOK_TOKEN`` (``runbook users add|token`` prints it);
never from a flag, so it stays out of shell history and process lists.  The server does
the act as the token's account, journaled ``authenticated: true, auth_method: token``; a
``--as`` name that differs from that account is refused (a token cannot act for another).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
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
        self.server = refuse_plain_http(server.rstrip("/"))
        self._client = httpx.Client(
            base_url=self.server, headers={"Authorization": f"Bearer {token}"}, timeout=60.0
        )

    def call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        files: tuple[Path, ...] = (),
    ) -> Any:
        """The JSON answer of ``method path``: ``body`` sent as JSON, or, with ``files``,
        as a form with the files as ``attachments``.

        Raises:
            InputError: a file cannot be read, the server cannot be reached, or it
                refused (its message on one line, with the HTTP status).
        """
        import httpx

        opened: list[Any] = []
        try:
            if files:
                for path_ in files:
                    opened.append(open(path_, "rb"))  # noqa: SIM115 (closed below)
                fields = {k: _form_value(v) for k, v in (body or {}).items() if v is not None}
                answer = self._client.request(
                    method,
                    PREFIX + path,
                    data=fields,
                    files=[
                        ("attachments", (p.name, f)) for p, f in zip(files, opened, strict=True)
                    ],
                )
            else:
                answer = self._client.request(method, PREFIX + path, json=body)
        except OSError as exc:
            raise InputError(f"--attach {exc.filename}: cannot read ({exc.strerror})") from None
        except httpx.HTTPError as exc:
            raise InputError(f"{self.server}: cannot reach the console ({exc})") from None
        finally:
            for f in opened:
                f.close()
        try:
            data = answer.json()
        except ValueError:
            data = {"error": answer.text[:200]}
        if answer.status_code >= 400:
            message = data.get("error") if isinstance(data, dict) else None
            line = " ".join(str(message or answer.reason_phrase).split())
            raise InputError(f"{self.server} refused ({answer.status_code}): {line}")
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
        self,
        run_id: str,
        step: str,
        verb: str,
        claimed: str | None,
        note: str | None,
        *,
        host: str | None = None,
        in_advance: bool = False,
        attachments: tuple[Path, ...] = (),
    ) -> dict[str, Any]:
        """POST ``verb`` (confirm, skip, abort, rerun, approve, reject) for ``step`` of
        ``run_id``; ``host`` and ``in_advance`` (gate decisions only) and ``attachments``
        go with it.

        Raises:
            InputError: as :meth:`call`; ``claimed`` is not the token's account.
        """
        self.acting_as(claimed)
        path = f"/runs/{quote(run_id, safe='')}/steps/{quote(step, safe='')}/{verb}"
        body: dict[str, Any] = {"note": note}
        if host:
            body["host"] = host
        if in_advance:
            body["in_advance"] = True
        return dict(self.call("POST", path, body, attachments))


def refuse_plain_http(server: str) -> str:
    """``server`` when the token may go there: an ``https://`` URL, or ``http://`` to this
    machine (a loopback address or ``localhost``).

    Raises:
        InputError: another scheme, or ``http://`` to another machine (the token would
            cross the network in clear text).
    """
    from ipaddress import ip_address
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(server)
        host = parts.hostname or ""
    except ValueError:
        parts, host = None, ""
    scheme = parts.scheme.lower() if parts is not None else ""
    if scheme == "https" and host:
        return server
    if scheme == "http" and host:
        try:
            local = host == "localhost" or ip_address(host).is_loopback
        except ValueError:
            local = False
        if local:
            return server
        raise InputError(
            f"--server {server}: plain http:// to another machine would send ${TOKEN_ENV} "
            "in clear text; give the console's https:// URL (TLS at its reverse proxy)"
        )
    raise InputError(f"--server {server}: give the console's URL, https://HOST[:PORT]")


def _form_value(value: Any) -> str:
    """A JSON body's value as a form field (``true``/``false`` for flags)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def show_decision(data: dict[str, Any], as_json: bool) -> None:
    """Print what the server recorded."""
    from runbook_engine.evidence.safeio import terminal_safe

    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    kept = data.get("attachments") or []
    if "approvals" in data:
        if data["decision"] == "reject":
            noun, then = "rejection", "the console continues the run, which stops (rejected)"
        elif data["approvals"] >= data["required"]:
            noun, then = "approval", "quorum reached; the console continues the run"
        else:
            noun = "approval"
            then = f"{data['required'] - data['approvals']} more needed; the run waits"
        text = (
            f"Recorded {noun} of {data['step']} by {data['by']} "
            f"({data['approvals']} of {data['required']} approvals; {then})"
        )
    else:
        then = (
            "decided in advance: the run takes it when it gets there"
            if data.get("in_advance")
            else "the console continues the run"
        )
        text = (
            f"Recorded {data['decision']} of {data['step']} on {', '.join(data['hosts'])} "
            f"by {data['by']}; {then}"
        )
    if kept:
        text += f"; attached {', '.join(kept)}"
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
