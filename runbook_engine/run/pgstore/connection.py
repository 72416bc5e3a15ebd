"""Reaching the team's PostgreSQL store: one connection, the URL as shown, and the one
line that says why the store cannot be reached (shared by the store and its schema
upgrade, :mod:`.store` and :mod:`.schema`).
"""

from __future__ import annotations

import logging
from typing import Any

from runbook_engine.errors import StateError

#: Seconds to wait for the database to answer a new connection.
CONNECT_TIMEOUT = 10

# The pool's own complaints (each failed reconnection) would bury the one message a
# command gives when the database goes away (:meth:`.store.PgStore._reachable`).
logging.getLogger("psycopg.pool").addHandler(logging.NullHandler())
logging.getLogger("psycopg.pool").propagate = False


def shown_url(url: str) -> str:
    """The URL without its password (for messages and folder names)."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        parts = conninfo_to_dict(url)
    except Exception:  # a malformed URL: show its scheme only
        return url.split("://", 1)[0] + "://…"
    user = f"{parts['user']}@" if parts.get("user") else ""
    port = f":{parts['port']}" if parts.get("port") else ""
    return f"postgresql://{user}{parts.get('host', '')}{port}/{parts.get('dbname', '')}"


def connect(url: str, **kwargs: Any) -> Any:
    """A psycopg connection to ``url`` (rows as dicts).

    Raises:
        StateError: the database cannot be reached (exit 2; the message names the store).
    """
    import psycopg
    from psycopg.rows import dict_row

    try:
        return psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT, row_factory=dict_row, **kwargs)
    except psycopg.OperationalError as exc:
        raise StateError(unreachable(shown_url(url), exc)) from None


def unreachable(where: str, exc: BaseException) -> str:
    """One line saying why the store ``where`` (a URL without its password) cannot be
    reached, from the driver's error ``exc``, and what to do when a database is missing.

    psycopg's message has several lines (``... failed: Connection refused`` then a tab and
    ``Is the server running ...?``; one per address tried): they are joined, repeats left out.
    """
    lines: list[str] = []
    for line in str(exc).splitlines():
        line = " ".join(line.split())
        if line and line not in lines:
            lines.append(line)
    reason = " ".join(lines) or "no answer"
    text = f"cannot reach the store {where}: {reason}"
    if "does not exist" in reason and "database" in reason:
        name = where.rsplit("/", 1)[-1]
        text += (
            f"; create it once on the database server (createdb {name}), "
            "then run `runbook store upgrade`"
        )
    return text
