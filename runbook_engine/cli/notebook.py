"""``runbook notebook run``: a runbook executed as a Jupyter notebook (papermill, loaded lazily)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from runbook_engine.cli.common import (
    EXISTING_FILE,
    FILE_PATH,
    AliasedOption,
    env_option,
    json_option,
    parse_sets,
    set_option,
    state_dir_option,
    state_dir_or_default,
)


@click.group()
def notebook() -> None:
    """Runbooks as Jupyter notebooks (render one with `runbook render --to ipynb`)."""


@notebook.command("run")
@click.argument("runbook", type=EXISTING_FILE)
@env_option
@set_option
@click.option("--answers", type=EXISTING_FILE, help="Answers file with gate decisions (YAML).")
@click.option("--run-id", help="Id for a new run, or an existing run to continue.")
@click.option("--operator", help="Who runs the change [env RUNBOOK_OPERATOR; default: login].")
@click.option("--change", "change_id", help="Change id (ticket) recorded with a new run.")
@click.option(
    "--decide",
    "confirms",
    multiple=True,
    cls=AliasedOption,
    old_names=("--confirm",),
    metavar="STEP[=DECISION]",
    help="Gate decision passed as a notebook parameter (repeatable), in the words of "
    "answers files and `runbook confirm`: STEP (confirm), STEP=confirm:NOTE, "
    "STEP=skip:REASON, STEP=abort, STEP=rerun.",
)
@click.option("-o", "--output", type=FILE_PATH, help="Also copy the executed notebook here.")
@state_dir_option
@json_option
def notebook_run(
    runbook: Path,
    env_path: Path | None,
    sets: tuple[str, ...],
    answers: Path | None,
    run_id: str | None,
    operator: str | None,
    change_id: str | None,
    confirms: tuple[str, ...],
    output: Path | None,
    state_dir: Path | None,
    as_json: bool,
) -> None:
    """Execute RUNBOOK's notebook with papermill; one executed notebook per attempt is kept.

    RUNBOOK is the runbook (.md) or a notebook rendered from it (.ipynb), whose runbook and
    environment are found from its metadata (paths relative to the library; set
    RUNBOOK_LIBRARY when the notebook lies outside it).
    """
    from runbook_engine.errors import RunPaused
    from runbook_engine.notebook.execute import run_notebook

    if runbook.suffix.lower() == ".ipynb":
        from runbook_engine.notebook.locate import locate

        runbook, env_path = locate(runbook, env_path)

    confirmations = {
        step: decision or "confirm"
        for step, _, decision in (item.partition("=") for item in confirms)
    }
    outcome = run_notebook(
        runbook,
        env_path,
        state_dir=state_dir_or_default(state_dir),
        overrides=parse_sets(sets),
        answers=answers,
        run_id=run_id,
        operator=operator,
        change_id=change_id,
        output=output,
        confirmations=confirmations,
    )
    if as_json:
        click.echo(
            json.dumps(
                {
                    "run_id": outcome.run_id,
                    "status": outcome.status,
                    "notebook": str(outcome.notebook) if outcome.notebook else None,
                    "attempt": outcome.attempt,
                    "sha256": outcome.sha256,
                    "message": outcome.message,
                },
                indent=2,
            )
        )
    elif outcome.notebook is not None:
        click.echo(f"Run:      {outcome.run_id} ({outcome.status})")
        click.echo(
            f"Notebook: {outcome.notebook} (attempt {outcome.attempt}, sha256 {outcome.sha256})"
        )
    if outcome.exit_status == 3:
        raise RunPaused(outcome.message or f"run {outcome.run_id} is paused at a gate")
    if outcome.exit_status:
        click.echo(outcome.message or f"run {outcome.run_id}: {outcome.status}", err=True)
        sys.exit(outcome.exit_status)
