"""Both stores for the same tests: the state folder (SQLite and files) and PostgreSQL.

A test that takes the ``store_kind`` fixture (tests/conftest.py) runs twice: once on the
state folder, once with ``RUNBOOK_STORE`` naming a fresh PostgreSQL database, so every
``runbook`` command the test starts (in-process or as a subprocess given
:func:`cli_environ`) uses that store.  :func:`run_folder` is where a test reads a run's
journal and files: the run folder in the state folder, or a copy rebuilt from the database
alone (through :class:`~runbook_engine.run.store_api.Store`), never the runner's own
working copy.

The server is ``RUNBOOK_TEST_PG`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``);
without one the PostgreSQL half of each test skips, saying so.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path

import pytest

#: The PostgreSQL server the tests create their databases on.
PG_SERVER = os.environ.get("RUNBOOK_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
#: The ``store_kind`` parameters.
KINDS = ("sqlite", "postgresql")


def store() -> str | None:
    """The store URL the current test set (``None``: the state folder)."""
    return os.environ.get("RUNBOOK_STORE") or None


def on_pg() -> bool:
    """True when the current test runs on the PostgreSQL store."""
    return bool(store())


def cli_environ(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) without ``RUNBOOK_*`` settings, except
    ``RUNBOOK_STORE`` (the store the test chose)."""
    base = os.environ if base is None else base
    return {k: v for k, v in base.items() if not k.startswith("RUNBOOK_") or k == "RUNBOOK_STORE"}


def run_folder(state: Path, run_id: str, url: str | None = None) -> Path:
    """The folder of run ``run_id`` to read: ``state/runs/RUN_ID`` on the state folder; on
    PostgreSQL (``url``, else the test's store) a copy in ``state/../db-copy`` filled from
    the database (journal, head file, outputs, attachments, signatures)."""
    url = url or store()
    if not url:
        return state / "runs" / run_id
    from runbook_engine.run.store_api import open_store

    reader = open_store(state.parent / "db-copy", url)
    with contextlib.closing(reader):  # type: ignore[type-var]
        return reader.run_dir(run_id)


#: Run the test on both stores (the ``store_kind`` fixture).
both_stores = pytest.mark.usefixtures("store_kind")
#: The test looks into the state folder's files or ``state.db``: the state folder only.
sqlite_only = pytest.mark.sqlite_only


def database_bytes(url: str) -> list[tuple[str, bytes]]:
    """Every value in every table of the store at ``url``, as ``(table, bytes)`` (a secret
    that must appear nowhere must not appear here either)."""
    import psycopg

    found: list[tuple[str, bytes]] = []
    with psycopg.connect(url) as conn:
        tables = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
        for (table,) in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"').fetchall():
                for value in row:
                    if isinstance(value, (bytes, memoryview)):
                        found.append((table, bytes(value)))
                    elif value is not None:
                        found.append((table, str(value).encode("utf-8")))
    return found
