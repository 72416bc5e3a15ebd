"""Every test runs apart from the machine's own runbook-engine set-up.

A signing key in ``~/.config/runbook-engine/keys`` (made by ``runbook keys init``), a
state folder in ``~/.local/state``, or a team's store, queue, token or notification
settings in the environment would change what runs sign, where they are kept and how
they end.  Each test gets its own configuration and state homes (tests that need a key
make one there) and none of those variables.

``store_kind`` runs a test on both stores (the state folder and a fresh PostgreSQL
database through ``RUNBOOK_STORE``; tests/stores.py has the helpers); ``pg_url`` and
``pg_databases`` give fresh databases at the schema, copied from one template per session
and dropped afterwards.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from stores import KINDS, PG_SERVER  # type: ignore[import-not-found]

_CLEARED = (
    "RUNBOOK_SIGNING_KEY",
    "RUNBOOK_STATE_DIR",
    "RUNBOOK_STORE",
    "RUNBOOK_QUEUE",
    "RUNBOOK_TOKEN",
    "RUNBOOK_SERVER",
    "RUNBOOK_NOTIFY_CONFIG",
    "RUNBOOK_PUBLIC_URL",
    "RUNBOOK_LAUNCH_TICKET",
    "RUNBOOK_OPERATOR",
    "RUNBOOK_LIBRARY",
)


@pytest.fixture(autouse=True)
def _apart_from_the_machine(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    home: Path = tmp_path_factory.mktemp("xdg")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / "state"))
    for name in _CLEARED:
        monkeypatch.delenv(name, raising=False)


def _pg_admin() -> Any:
    """An autocommit connection to the test server's maintenance database (or a skip)."""
    psycopg = pytest.importorskip("psycopg", reason="team extra (psycopg) not installed")
    try:
        return psycopg.connect(PG_SERVER, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL at {PG_SERVER} (set RUNBOOK_TEST_PG): {exc}".strip())


def _db_url(name: str) -> str:
    return PG_SERVER.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A database at this runbook-engine's schema (``runbook store upgrade``'s migrations),
    made once per session; each test's database is a copy of it.  Dropped afterwards."""
    from runbook_engine.run.pgstore import schema

    name = f"rbe_tmpl_{secrets.token_hex(6)}"
    with _pg_admin() as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        schema.upgrade(_db_url(name), name)
        yield name
    finally:
        with _pg_admin() as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@contextlib.contextmanager
def _fresh_database(template: str) -> Iterator[str]:
    name = f"rbe_test_{secrets.token_hex(6)}"
    with _pg_admin() as admin:
        admin.execute(f"CREATE DATABASE {name} TEMPLATE {template}")
    try:
        yield _db_url(name)
    finally:
        with _pg_admin() as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def pg_url(pg_template: str) -> Iterator[str]:
    """A fresh database for this test at this runbook-engine's schema; dropped afterwards."""
    with _fresh_database(pg_template) as url:
        yield url


@pytest.fixture(scope="module")
def pg_databases(pg_template: str) -> Iterator[Callable[[], str]]:
    """Makes fresh databases (at the schema) for a module's shared runs (module-scoped
    fixtures): each call, one more URL; all dropped when the module ends."""
    with contextlib.ExitStack() as stack:
        yield lambda: stack.enter_context(_fresh_database(pg_template))


@pytest.fixture(params=KINDS)
def store_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs the test on each store: ``"sqlite"`` (the state folder) and ``"postgresql"``
    (``RUNBOOK_STORE`` set to a fresh database, seen by every ``runbook`` command the test
    starts; subprocesses get it through ``stores.cli_environ``)."""
    if request.param == "postgresql":
        monkeypatch.setenv("RUNBOOK_STORE", request.getfixturevalue("pg_url"))
    return str(request.param)
