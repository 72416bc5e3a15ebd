"""The PostgreSQL store's schema: checked on every open, upgraded by ``runbook store upgrade``.

The revisions are Alembic's (``migrations/versions/NNNN_*.py``, run programmatically over
SQLAlchemy's ``postgresql+psycopg`` dialect).  Opening a store reads ``alembic_version``
with psycopg alone (Alembic and SQLAlchemy are imported only to upgrade) and refuses a
database at a revision this runbook-engine does not know: a newer one, written by a
later version, whose tables it could misread.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runbook_engine.errors import StateError
from runbook_engine.run.pgstore.connection import unreachable

MIGRATIONS = Path(__file__).with_name("migrations")
_REVISION_FILE = re.compile(r"^(\d{4})_\w+\.py$")


def known_revisions() -> list[str]:
    """The revisions this runbook-engine knows, oldest first (from the migration file names)."""
    names = (p.name for p in (MIGRATIONS / "versions").iterdir())
    return sorted(m.group(1) for n in names if (m := _REVISION_FILE.match(n)))


def head_revision() -> str:
    """The newest revision this runbook-engine knows."""
    return known_revisions()[-1]


def current_revision(execute: Any) -> str | None:
    """The revision the database is at (``None``: no runbook-engine schema yet); ``execute``
    runs one SQL text and returns a result (psycopg's ``conn.execute``, SQLAlchemy's
    ``conn.exec_driver_sql``)."""
    exists = _first(execute("SELECT to_regclass('alembic_version')").fetchone())
    if exists is None:
        return None
    version = _first(execute("SELECT version_num FROM alembic_version").fetchone())
    return None if version is None else str(version)


def _first(row: Any) -> Any:
    """The first column of a row (a tuple, SQLAlchemy's row, or psycopg's dict row)."""
    if row is None:
        return None
    return next(iter(row.values())) if isinstance(row, dict) else row[0]


def refuse_newer(revision: str | None, where: str) -> None:
    """Refuse a database at a revision this runbook-engine does not know.

    Raises:
        StateError: ``revision`` is not one of :func:`known_revisions` (exit 2).
    """
    if revision is not None and revision not in known_revisions():
        raise StateError(
            f"the store {where} has schema {revision}, newer than this runbook-engine "
            f"knows (schema {head_revision()}); upgrade runbook-engine on this machine"
        )


def check_current(execute: Any, where: str) -> None:
    """Refuse to use a database whose schema is not this runbook-engine's.

    Raises:
        StateError: no schema, an older one (run ``runbook store upgrade``), or a newer one.
    """
    revision = current_revision(execute)
    refuse_newer(revision, where)
    if revision != head_revision():
        have = "no runbook-engine schema" if revision is None else f"schema {revision}"
        raise StateError(
            f"the store {where} has {have}; this runbook-engine needs schema "
            f"{head_revision()}: run `runbook store upgrade --store URL` once"
        )


@dataclass(frozen=True, slots=True)
class Upgrade:
    """What :func:`upgrade` did: the revision before (``None``: empty) and after."""

    before: str | None
    after: str


def upgrade(url: str, where: str) -> Upgrade:
    """Apply every migration the database lacks (none when it is current: idempotent).

    Args:
        url: A ``postgresql://`` URL (psycopg's form).
        where: The store as shown in messages (the URL without its password).

    Raises:
        StateError: the database is at a newer revision, or cannot be reached.
    """
    import sqlalchemy
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    engine = sqlalchemy.create_engine(sqlalchemy_url(url), poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.begin() as conn:
            # One upgrader at a time (two machines running `store upgrade` together).
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7235142)")
            before = current_revision(conn.exec_driver_sql)
            refuse_newer(before, where)
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
    except sqlalchemy.exc.OperationalError as exc:
        raise StateError(unreachable(where, exc.orig)) from None
    finally:
        engine.dispose()
    return Upgrade(before, head_revision())


def sqlalchemy_url(url: str) -> str:
    """``postgresql://…`` as SQLAlchemy names psycopg 3: ``postgresql+psycopg://…``."""
    _scheme, sep, rest = url.partition("://")
    return f"postgresql+psycopg://{rest}" if sep else url
