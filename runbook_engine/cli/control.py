"""``runbook preflight``, and the options of ``runbook run`` that choose what a run does:
part of a runbook (``--only``, ``--from``, ``--to``, ``--limit``, ``--tags``,
``--skip-tags``), check mode (``--check``) and the preflight it starts with
(``--no-preflight``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from runbook_engine.cli.common import (
    EXISTING_FILE,
    env_option,
    json_option,
    parse_sets,
    set_option,
)

#: Options ``runbook run`` adds for selection, check mode and preflight.
control_options = [
    click.option(
        "--only",
        multiple=True,
        metavar="STEP[,STEP]",
        help="Run only these steps (repeatable; the rest is journaled as left out).",
    ),
    click.option("--from", "start", metavar="STEP", help="Start at this step."),
    click.option("--to", "stop", metavar="STEP", help="Stop after this step."),
    click.option(
        "--limit",
        multiple=True,
        metavar="PATTERN",
        help="Only hosts whose name, address or role matches (fnmatch; repeatable).",
    ),
    click.option(
        "--tags", multiple=True, metavar="TAG[,TAG]", help="Only steps of these phases or kinds."
    ),
    click.option(
        "--skip-tags", multiple=True, metavar="TAG[,TAG]", help="Leave out these phases or kinds."
    ),
    click.option(
        "--check",
        is_flag=True,
        help="Check mode: run only what reads; report each step already done, would "
        "change or unknown; change nothing. Exit 1 when a step that read failed.",
    ),
    click.option(
        "--no-preflight", is_flag=True, help="Start without checking hosts and secrets first."
    ),
]


def selection_of(
    only: tuple[str, ...],
    start: str | None,
    stop: str | None,
    limit: tuple[str, ...],
    tags: tuple[str, ...],
    skip_tags: tuple[str, ...],
) -> Any:
    """The :class:`~runbook_engine.run.selection.Selection` the flags ask for."""
    from runbook_engine.run.selection import Selection, split_list

    return Selection(
        split_list(only), start, stop, split_list(limit), split_list(tags), split_list(skip_tags)
    )


def preflight_or_refuse(
    runbook: Path,
    env_path: Path | None,
    overrides: dict[str, str],
    left_out: Any,
    quiet: bool,
    loaded: Any = None,
) -> tuple[dict[str, Any], Any]:
    """Run the preflight before a run (``loaded``: the runbook as loaded already, without
    secrets); return its summary for the journal and the runbook loaded with its secrets,
    which the run then uses (its values are resolved once).

    Raises:
        InputError: (exit 2) a check failed; every failure is named with its fix and
            nothing was written.
    """
    from runbook_engine.run.preflight import preflight

    report = preflight(runbook, env_path, overrides, left_out, loaded)
    if not report.ok:
        raise report.error()
    if not quiet:
        hand = report.summary()["by_hand"]
        extra = f"; by hand: {', '.join(hand)}" if hand else ""
        click.echo(f"Preflight: {len(report.checks)} check(s) passed{extra}")
    return report.summary(), report.loaded


@click.command()
@click.argument("runbook", type=EXISTING_FILE)
@env_option
@set_option
@json_option
def preflight(runbook: Path, env_path: Path | None, sets: tuple[str, ...], as_json: bool) -> None:
    """Check before a run: every host of every transport (connection, login, shell,
    programs the steps call), every secret, every probe target. Exit 2 when one fails."""
    from runbook_engine.errors import InputError
    from runbook_engine.run.preflight import preflight as run_preflight

    report = run_preflight(runbook, env_path, parse_sets(sets))
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        for c in report.checks:
            mark = {True: "ok  ", False: "FAIL", None: "hand"}[c.ok]
            where = f"{c.host} ({c.transport})" if c.transport != "-" else "run"
            line = f"{mark} {where} {c.check}: {c.detail}"
            click.echo(line + (f"\n     fix: {c.fix}" if c.ok is False and c.fix else ""))
    if not report.ok:
        raise InputError(f"preflight: {len(report.failures)} check(s) failed; nothing was started")
