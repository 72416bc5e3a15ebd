"""Where notifications go: the settings file ``notifications.yaml``.

The file is ``$RUNBOOK_NOTIFY_CONFIG`` when set, else ``STATE/notifications.yaml``; without
either, runs send nothing.  Example::

    public_url: https://runbooks.example.com  # links to /runs/RUN_ID ($RUNBOOK_PUBLIC_URL wins)
    events: [gate-awaiting, approval-requested, approval-expired, run-finished]
    retry: {attempts: 4, backoff_seconds: 1, wait_at_end_seconds: 30}
    channels:
      - name: ops-mail
        email:
          smtp_host: smtp.example.com
          smtp_port: 587
          security: starttls                     # starttls | ssl | none
          from: runbook@example.com
          to: [ops@example.com]
          user: runbook
          password_env: RUNBOOK_SMTP_PASSWORD    # the NAME of a variable, never the password
      - name: ops-chat
        webhook:
          url_env: RUNBOOK_CHAT_WEBHOOK          # or url: http://... (no secret in it)
          format: chat                           # chat: {"text": ...}; json: apprise's JSON
      - name: teams
        apprise:
          url_env: RUNBOOK_TEAMS_URL             # any apprise URL: slack://..., msteams://...

Secrets (SMTP password, webhook URLs with tokens) are read from the environment when a
message is sent; the file never holds them.  Delivery is apprise's (``mailto://`` and
``mailtos://``, ``json://``, or the URL given).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import yaml

from runbook_engine.errors import InputError

CONFIG_ENV = "RUNBOOK_NOTIFY_CONFIG"
PUBLIC_URL_ENV = "RUNBOOK_PUBLIC_URL"
FILE_NAME = "notifications.yaml"
#: Events a notification can be about; ``run-failed`` is ``run-finished`` that did not succeed.
EVENTS = ("gate-awaiting", "approval-requested", "approval-expired", "run-finished", "run-failed")
DEFAULT_EVENTS = ("gate-awaiting", "approval-requested", "approval-expired", "run-finished")
_RETRY = ("attempts", "backoff_seconds", "wait_at_end_seconds")
_SECURITY = {
    "starttls": ("mailto", "starttls"),
    "ssl": ("mailtos", "ssl"),
    "none": ("mailto", "insecure"),
}


@dataclass(frozen=True, slots=True)
class Channel:
    """One destination.  ``kind`` is ``email``, ``webhook`` or ``apprise``; ``options`` the
    mapping under it in the file (checked by :func:`load_settings`)."""

    name: str
    kind: str
    options: dict[str, Any]

    def secrets(self) -> dict[str, str]:
        """The secret values this channel uses now (to keep them out of journaled errors)."""
        found = {}
        for key in ("password_env", "url_env"):
            var = self.options.get(key)
            if var and os.environ.get(var):
                found[var] = os.environ[var]
        return found

    def apprise_url(self) -> str:
        """The apprise URL of this channel, secrets filled in from the environment.

        Raises:
            InputError: a variable the channel names is not set.
        """
        o = self.options
        if self.kind == "email":
            scheme, mode = _SECURITY[o.get("security", "starttls")]
            auth = ""
            if o.get("user"):
                password = _env(o["password_env"], self.name) if o.get("password_env") else ""
                auth = f"{quote(str(o['user']), safe='')}:{quote(password, safe='')}@"
            port = f":{int(o['smtp_port'])}" if o.get("smtp_port") else ""
            query = {"from": o["from"], "to": ",".join(o["to"]), "mode": mode}
            query["smtp"] = o["smtp_host"]
            return f"{scheme}://{auth}{o['smtp_host']}{port}?{urlencode(query)}"
        url = _env(o["url_env"], self.name) if o.get("url_env") else str(o["url"])
        if self.kind == "apprise":
            return url
        parts = urlsplit(url)
        scheme = "jsons" if parts.scheme == "https" else "json"
        rest = url.split("://", 1)[1]
        extra = ":message=text&:version=&:attachments=" if o.get("format", "chat") == "chat" else ""
        joiner = "&" if "?" in rest else "?"
        return f"{scheme}://{rest}{joiner + extra if extra else ''}"


@dataclass(frozen=True, slots=True)
class NotifySettings:
    """The settings file, checked.

    Attributes:
        path: Where it was read from (named in messages).
        channels: Where messages go.
        events: Which events send a message (names of :data:`EVENTS`).
        public_url: The console's address, for links (``None``: links are paths).
        attempts: Tries per message and channel (the first included).
        backoff_seconds: Wait before the second try; doubled before each next one.
        wait_at_end_seconds: How long a run's process waits, when it stops, for messages
            still being sent (then gives up on them and journals so).
    """

    path: Path
    channels: tuple[Channel, ...]
    events: tuple[str, ...] = DEFAULT_EVENTS
    public_url: str | None = None
    attempts: int = 4
    backoff_seconds: float = 1.0
    wait_at_end_seconds: float = 30.0

    def link(self, run_id: str) -> str:
        """The run page's address."""
        base = (os.environ.get(PUBLIC_URL_ENV) or self.public_url or "").rstrip("/")
        return f"{base}/runs/{quote(run_id, safe='')}"


def settings_path(state_dir: Path) -> Path | None:
    """The settings file in force: ``$RUNBOOK_NOTIFY_CONFIG``, else ``STATE/notifications.yaml``
    when it exists, else ``None`` (no notifications)."""
    named = os.environ.get(CONFIG_ENV)
    if named:
        return Path(named)
    path = state_dir / FILE_NAME
    return path if path.is_file() else None


def load_settings(path: Path) -> NotifySettings:
    """Read and check the settings file at ``path``.

    Raises:
        InputError: the file cannot be read, is not YAML, or a setting is wrong (the
            message names the file, the line when known, and the setting).
    """
    try:
        text = path.read_text(encoding="utf-8")
        data = yaml.safe_load(text) or {}
    except OSError as exc:
        raise InputError(
            f"{path}: cannot read the notification settings ({exc.strerror})"
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise InputError(f"{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None

    def bad(what: str) -> InputError:
        return InputError(f"{path}: {what} (README: Notifications)")

    if not isinstance(data, dict):
        raise bad("the file must be a mapping with 'channels'")
    unknown = set(data) - {"public_url", "events", "retry", "channels"}
    if unknown:
        raise bad(f"unknown setting(s) {', '.join(sorted(unknown))}")
    events = tuple(data.get("events") or DEFAULT_EVENTS)
    wrong = [e for e in events if e not in EVENTS]
    if wrong:
        raise bad(f"events: {', '.join(map(str, wrong))} unknown; use {', '.join(EVENTS)}")
    retry = data.get("retry") or {}
    if not isinstance(retry, dict) or set(retry) - set(_RETRY):
        raise bad("retry: a mapping of attempts, backoff_seconds, wait_at_end_seconds")
    try:
        attempts = int(retry.get("attempts", 4))
        backoff = float(retry.get("backoff_seconds", 1.0))
        wait = float(retry.get("wait_at_end_seconds", 30.0))
    except (TypeError, ValueError):
        raise bad("retry: numbers expected") from None
    if not 1 <= attempts <= 10 or not 0 <= backoff <= 300 or not 0 <= wait <= 600:
        raise bad("retry: attempts 1..10, backoff_seconds 0..300, wait_at_end_seconds 0..600")
    channels = tuple(_channel(i, c, bad) for i, c in enumerate(data.get("channels") or []))
    if not channels:
        raise bad("channels: name at least one channel (email, webhook or apprise)")
    public = data.get("public_url")
    if public is not None and not str(public).startswith(("http://", "https://")):
        raise bad("public_url: an http:// or https:// address of the console")
    return NotifySettings(path, channels, events, public, attempts, backoff, wait)


def _channel(index: int, item: Any, bad: Any) -> Channel:
    where = f"channels[{index}]"
    kinds = [k for k in ("email", "webhook", "apprise") if isinstance(item, dict) and k in item]
    if len(kinds) != 1 or not isinstance(item[kinds[0]], dict):
        raise bad(f"{where}: give exactly one of email:, webhook:, apprise: (a mapping)")
    kind, options = kinds[0], dict(item[kinds[0]])
    name = str(item.get("name") or f"{kind}-{index + 1}")
    if "password" in options:
        raise bad(f"{where}.{kind}.password: never a secret in the file; use password_env NAME")
    if kind == "email":
        missing = [k for k in ("smtp_host", "from", "to") if not options.get(k)]
        if missing:
            raise bad(f"{where}.email: needs {', '.join(missing)}")
        if isinstance(options["to"], str):
            options["to"] = [options["to"]]
        if options.get("security", "starttls") not in _SECURITY:
            raise bad(f"{where}.email.security: one of {', '.join(_SECURITY)}")
        if options.get("user") and not options.get("password_env"):
            raise bad(f"{where}.email: a user needs password_env (the variable's name)")
    else:
        if bool(options.get("url")) == bool(options.get("url_env")):
            raise bad(f"{where}.{kind}: give url or url_env (the variable holding it)")
        if kind == "webhook":
            url = str(options.get("url") or "http://")
            if not url.startswith(("http://", "https://")):
                raise bad(f"{where}.webhook.url: an http:// or https:// address")
            if options.get("format", "chat") not in ("chat", "json"):
                raise bad(f"{where}.webhook.format: chat or json")
    return Channel(name, kind, options)


def _env(name: str, channel: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise InputError(f"channel {channel}: ${name} is not set")
    return value
