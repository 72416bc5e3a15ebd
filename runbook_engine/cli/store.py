"""``runbook store upgrade`` and ``runbook store import``: a team's PostgreSQL store.

``upgrade`` applies the schema migrations the database lacks (Alembic; idempotent) and
refuses a database newer than this runbook-engine.  Without a PostgreSQL URL it opens the
state directory, whose SQLite database upgrades itself as it always has.  ``import`` copies
the runs of a state directory, journals and files included, and verifies each copy.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from runbook_engine.cli.common import (
    current_store_url,
    json_option,
    open_store,
    state_dir_or_default,
    state_option,
)
from runbook_engine.errors import InputError


@click.group()
def store() -> None:
    """A team's store (--store postgresql://… or RUNBOOK_STORE): upgrade, import."""


@store.command("upgrade")
@state_option
@json_option
def store_upgrade(state_dir: Path | None, as_json: bool) -> None:
    """Bring the store's schema up to this runbook-engine's (nothing to do: exit 0)."""
    url = current_store_url()
    if url:
        from runbook_engine.run.pgstore.schema import upgrade
        from runbook_engine.run.store_api import is_pg

        if not is_pg(url):
            open_store(state_dir)  # the one message for a URL that is not postgresql://
        from runbook_engine.run.pgstore.connection import shown_url

        done = upgrade(url, shown_url(url))
        where, before, after = shown_url(url), done.before, done.after
    else:
        from runbook_engine.run.store import SCHEMA_VERSION

        opened = open_store(state_dir)  # the SQLite store adds what it lacks on opening
        opened.close()
        where, before, after = str(state_dir_or_default(state_dir)), None, str(SCHEMA_VERSION)
    if as_json:
        click.echo(json.dumps({"store": where, "before": before, "after": after}, indent=2))
    elif before == after:
        click.echo(f"Store {where}: schema {after}, already current.")
    else:
        click.echo(f"Store {where}: schema {before or 'none'} -> {after}.")


@store.command("import")
@click.argument("source", type=click.Path(path_type=Path, file_okay=False, exists=True))
@state_option
@json_option
def store_import(source: Path, state_dir: Path | None, as_json: bool) -> None:
    """Copy the runs of state directory SOURCE (journals, outputs, attachments) into the
    team's store and verify each copy; exit 1 when a run did not verify as its source."""
    from runbook_engine.run.pgstore.importer import import_state_dir
    from runbook_engine.run.store_api import is_pg

    if not is_pg(current_store_url()):
        raise InputError(
            "store import needs the team's store: --store postgresql://… or RUNBOOK_STORE"
        )
    target = open_store(state_dir)
    try:
        results = import_state_dir(source, target)
    finally:
        target.close()
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in results], indent=2))
    else:
        for r in results:
            click.echo(f"{r.run_id}: {r.action}, {r.message}")
        click.echo(f"{len(results)} run(s) from {source}.")
    if not all(r.ok for r in results):
        sys.exit(1)
