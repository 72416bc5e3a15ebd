"""The ``runbook`` command.  Thin commands over the library; one place maps errors to exit statuses.

The group is made here and gets its commands from one module per command group:
:mod:`.guides` (render, plan), :mod:`.runs` (run, resume, status, runs), :mod:`.gates`
(confirm, approve, reject), :mod:`.evidence` (keys, evidence), :mod:`.lint`,
:mod:`.notebook`, :mod:`.site`, :mod:`.control` (preflight), :mod:`.adopt` (import),
:mod:`.store` (a team's store), :mod:`.team` (worker, queue) and :mod:`.console` (serve,
users).  Shared options, and the mapping of errors to exit statuses (DESIGN.md §6: 0 done,
1 a step or run failed, 2 bad input, 3 paused at a gate, 130 interrupted), are in
:mod:`.common`.
"""

from __future__ import annotations

import click

from runbook_engine import __version__
from runbook_engine.cli import (
    adopt,
    console,
    control,
    evidence,
    gates,
    guides,
    lint,
    notebook,
    runs,
    site,
    store,
    team,
)
from runbook_engine.cli.common import invoke


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="runbook")
def cli() -> None:
    """Operations procedures as documentation that runs: guides, plans, checkpointed runs."""


for _command in (
    guides.render,
    guides.plan,
    runs.run,
    control.preflight,
    runs.resume,
    runs.status,
    runs.runs,
    gates.confirm,
    gates.approve,
    gates.reject,
    evidence.keys,
    evidence.evidence,
    lint.lint,
    adopt.import_,
    notebook.notebook,
    site.site,
    store.store,
    console.serve,
    console.users,
    team.worker,
    team.queue,
):
    cli.add_command(_command)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; map errors to exit statuses and print them without a traceback."""
    invoke(cli, argv)
