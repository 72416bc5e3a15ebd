"""``runbook status`` and ``runbook runs``: the checkpoint store shown to people or as JSON."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import click

from runbook_engine.errors import StateError
from runbook_engine.run.store import CheckpointStore


def show_runs(state_dir: Path, as_json: bool) -> None:
    """Print every run in ``state_dir``, newest first."""
    has_state = (state_dir / "state.db").is_file()
    runs = CheckpointStore(state_dir, create=False).list_runs() if has_state else []
    if as_json:
        click.echo(json.dumps([asdict(r) for r in runs], indent=2))
        return
    if not runs:
        click.echo(f"No runs in {state_dir}.")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("runbook", "environment", "status", "operator", "started (UTC)", "run")
    table.columns[-1].no_wrap = True
    for r in runs:
        table.add_row(
            r.runbook_id, r.env_name or "-", r.status, r.operator, r.created_at[:19], r.run_id
        )
    Console(width=max(Console().width, 160)).print(table)


def show_status(state_dir: Path, run_id: str | None, as_json: bool) -> None:
    """Print the steps of ``run_id`` (the newest run when ``None``).

    Raises:
        StateError: no such run, or no runs at all.
    """
    store = CheckpointStore(state_dir, create=False, run_id=run_id)
    if run_id is None:
        runs = store.list_runs()
        if not runs:
            raise StateError(f"no runs in {state_dir}")
        run_id = runs[0].run_id
    record = store.get_run(run_id)
    steps = store.steps(run_id)
    if as_json:
        data = asdict(record)
        data["steps"] = [asdict(s) for s in steps]
        data["journal"] = str(store.run_dir(run_id) / "journal.jsonl")
        click.echo(json.dumps(data, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(
        f"[bold]{record.run_id}[/bold]  {record.runbook_id}  env={record.env_name or '-'}"
        f"  status=[bold]{record.status}[/bold]  operator={record.operator}"
    )
    table = Table("#", "step", "host", "status", "attempts", "exit", "note")
    for s in steps:
        table.add_row(
            str(s.position),
            s.step_id,
            s.host,
            s.status,
            str(s.attempts),
            "" if s.exit_code is None else str(s.exit_code),
            s.reason or "",
        )
    console.print(table)
    console.print(f"Journal: {store.run_dir(run_id) / 'journal.jsonl'}")
