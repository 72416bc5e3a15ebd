"""``runbook lint``: check runbooks and report every problem."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path, exists=True))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.option("--rules", "list_rules", is_flag=True, help="List the warning rules and exit.")
def lint(paths: tuple[Path, ...], fmt: str, list_rules: bool) -> None:
    """Check runbooks (default: runbooks/) and report every problem as file:line:col: code message.

    Exit status 1 when any error, 0 with warnings only. Disable a warning for one
    runbook in its front matter, with a reason: lint: {disable: {RB302: "why"}}.
    """
    from runbook_engine.lint.check import print_rules, run_lint

    if list_rules:
        print_rules(fmt)
        return
    sys.exit(run_lint(list(paths) or [Path("runbooks")], fmt))
