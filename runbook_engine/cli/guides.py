"""``runbook render`` and ``runbook plan``: a runbook as a tailored guide or a plan of its steps."""

from __future__ import annotations

import json
from pathlib import Path

import click

from runbook_engine.cli.common import (
    EXISTING_FILE,
    FILE_PATH,
    env_option,
    json_option,
    parse_sets,
    render_guide,
    set_option,
    write_output,
)


@click.command()
@click.argument("runbook", type=EXISTING_FILE)
@env_option
@set_option
@click.option(
    "--to",
    "fmt",
    default="md",
    show_default=True,
    help="Output format: md, html (pdf and ipynb where installed).",
)
@click.option("-o", "--output", type=FILE_PATH, help="Write here instead of standard output.")
@click.option("--change", "change_id", help="Change id printed in the guide's header.")
def render(
    runbook: Path,
    env_path: Path | None,
    sets: tuple[str, ...],
    fmt: str,
    output: Path | None,
    change_id: str | None,
) -> None:
    """Render RUNBOOK as a tailored guide (generic without --env)."""
    from runbook_engine.tailor.loading import load

    loaded = load(runbook, env_path, parse_sets(sets))
    data = render_guide(loaded.tailored, fmt, change_id)
    write_output(data, output)


@click.command()
@click.argument("runbook", type=EXISTING_FILE)
@env_option
@set_option
@json_option
def plan(runbook: Path, env_path: Path | None, sets: tuple[str, ...], as_json: bool) -> None:
    """List every step with its host, transport, action and command; runs nothing."""
    from runbook_engine.outputs.plan import build_plan
    from runbook_engine.run.approval import check_policy
    from runbook_engine.tailor.loading import load

    loaded = load(runbook, env_path, parse_sets(sets))
    check_policy(loaded.tailored, emergency=False)
    data = build_plan(loaded.tailored)
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    from runbook_engine.cli.plan_view import print_plan

    print_plan(data)
