"""``runbook lint``: check runbooks and report every problem."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from runbook_engine.cli.common import json_option, warn_old_name


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path, exists=True))
@json_option
@click.option(
    "--format", "old_format", type=click.Choice(["text", "json"]), hidden=True, help="Old: --json."
)
@click.option("--rules", "list_rules", is_flag=True, help="List the warning rules and exit.")
def lint(paths: tuple[Path, ...], as_json: bool, old_format: str | None, list_rules: bool) -> None:
    """Check runbooks (default: runbooks/) and report every problem as file:line:col: code message.

    Exit status 2 when any error (bad input, as `runbook run` would refuse it), 0 with
    warnings only. Disable a warning for one runbook in its front matter, with a
    reason: lint: {disable: {RB302: "why"}}.
    """
    from runbook_engine.lint.check import print_rules, run_lint

    if old_format is not None:
        warn_old_name(f"--format {old_format}", "--json" if old_format == "json" else "no option")
        as_json = as_json or old_format == "json"
    fmt = "json" if as_json else "text"
    if list_rules:
        print_rules(fmt)
        return
    sys.exit(run_lint(list(paths) or [Path("runbooks")], fmt))
