"""``runbook status`` and ``runbook runs``: the checkpoint store shown to people or as JSON.

Up to :data:`RICH_ROWS` rows a table is drawn by rich (borders, wrapped notes); a
longer one is printed as plain aligned text, one line per row, with the same
columns: rich costs about half a millisecond a row (2.5 s for 5,000 steps), the
plain table a few microseconds.

One word for a run everywhere (:func:`run_word`): its outcome once it has finished
(``succeeded``, ``succeeded-attested``, ``succeeded-pre-answered``, ``unverified``,
``failed``, ``aborted``, ``rejected``), the word the run's summary line prints, else
its status (``running``, ``paused``, ``interrupted``).  A step with a decision recorded
by ``runbook confirm`` that the runner has not taken yet shows it (:func:`step_word`):
``confirmed-awaiting-resume``, ``skipped-in-advance``...
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from runbook_engine.errors import StateError
from runbook_engine.evidence.rows import NOT_REACHED
from runbook_engine.evidence.safeio import terminal_safe
from runbook_engine.run.store import GateDecision, RunRecord, StepState

#: Longest table drawn by rich; longer ones are plain text (see the module docstring).
RICH_ROWS = 200

#: A recorded decision as a past participle (``runbook confirm`` words).
_DECIDED = {"confirm": "confirmed", "skip": "skipped", "abort": "aborted", "rerun": "rerun"}


def run_word(record: RunRecord) -> str:
    """The word shown for a run: its outcome when finished, else its status."""
    return record.outcome or record.status


def step_word(state: StepState, decision: GateDecision | None, finished: bool = False) -> str:
    """The word shown for a step: its status, or the decision recorded for it and waiting
    for the runner (``confirmed-awaiting-resume``; ``...-in-advance`` for a step not reached).

    ``finished``: the run has ended (it has an outcome); its steps that never started are
    ``not reached``, as its change record and summary line say (``pending`` is the word
    of a run that has not ended)."""
    if decision is None and finished and state.status == "pending":
        return NOT_REACHED
    if decision is None or state.status in ("succeeded", "skipped", "already-done"):
        return state.status
    word = _DECIDED.get(decision.decision, decision.decision)
    return f"{word}-in-advance" if state.status == "pending" else f"{word}-awaiting-resume"


def show_runs(state_dir: Path, as_json: bool) -> None:
    """Print every run in ``state_dir``, newest first."""
    from runbook_engine.cli.common import current_store_url, open_store

    team = current_store_url()
    has_state = bool(team) or (state_dir / "state.db").is_file()
    store = open_store(state_dir, create=False) if has_state else None
    runs = store.list_runs() if store is not None else []
    where = getattr(store, "where", state_dir)
    if as_json:
        click.echo(json.dumps([asdict(r) for r in runs], indent=2))
        return
    if not runs:
        click.echo(f"No runs in {where}.")
        return
    header = ("runbook", "environment", "status", "operator", "started (UTC)", "run")
    rows = [
        (r.runbook_id, r.env_name or "-", run_word(r), r.operator, r.created_at[:19], r.run_id)
        for r in runs
    ]
    if len(rows) > RICH_ROWS:
        click.echo(plain_table(header, rows))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(*header)
    table.columns[-1].no_wrap = True
    for row in rows:
        table.add_row(*row)
    Console(width=max(Console().width, 160)).print(table)


def show_status(
    state_dir: Path, run_id: str | None, as_json: bool, queue_url: str | None = None
) -> None:
    """Print the steps of ``run_id`` (the newest run when ``None``), and, for a queued run
    not finished, its latest job in queue ``queue_url`` (:func:`queue_view`).

    Raises:
        StateError: no such run, or no runs at all.
    """
    from runbook_engine.cli.common import open_store
    from runbook_engine.run.hints import locate, location_args

    store = open_store(state_dir, create=False, run_id=run_id)
    if run_id is None:
        runs = store.list_runs()
        if not runs:
            raise StateError(f"no runs in {getattr(store, 'where', state_dir)}")
        run_id = runs[0].run_id
    record = store.get_run(run_id)
    steps = store.steps(run_id)
    decided = store.gate_decisions(run_id)
    queue = queue_view(store, record, queue_url)
    if as_json:
        data = asdict(record)
        data["steps"] = [
            {**asdict(s), "decision": _decision_json(decided.get((s.step_id, s.host)))}
            for s in steps
        ]
        data["journal"] = str(store.run_dir(run_id) / "journal.jsonl")
        data["queue"] = queue
        click.echo(json.dumps(data, indent=2))
        return
    header = ("#", "step", "host", "status", "attempts", "exit", "note")
    rows = [
        (
            str(s.position),
            s.step_id,
            s.host,
            step_word(s, decided.get((s.step_id, s.host)), finished=bool(record.outcome)),
            str(s.attempts),
            "" if s.exit_code is None else str(s.exit_code),
            locate(_note(s, decided.get((s.step_id, s.host)), run_id), location_args(store)),
        )
        for s in steps
    ]
    journal = store.run_dir(run_id) / "journal.jsonl"
    waits = _waits(steps, decided)
    if queue is not None:
        waits.append(terminal_safe(queue["line"]))
    if len(rows) > RICH_ROWS:
        click.echo(
            terminal_safe(
                f"{record.run_id}  {record.runbook_id}  env={record.env_name or '-'}"
                f"  status={run_word(record)}  operator={record.operator}"
            )
        )
        click.echo(plain_table(header, rows))
        for line in waits:
            click.echo(terminal_safe(line))
        click.echo(f"Journal: {journal}")
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(
        f"[bold]{record.run_id}[/bold]  {record.runbook_id}  env={record.env_name or '-'}"
        f"  status=[bold]{run_word(record)}[/bold]  operator={record.operator}"
    )
    table = Table(*header)
    for column in (1, 2, 3):  # step ids, hosts (typed into `runbook confirm`), statuses
        table.columns[column].no_wrap = True  # are never cut
        table.columns[column].min_width = max(len(row[column]) for row in rows) if rows else None
    for row in rows:
        table.add_row(*row)
    console.print(table)
    for line in waits:
        console.print(line, markup=False, highlight=False)
    # A path is copied and pasted: never broken across lines, nor marked up.
    console.print(f"Journal: {journal}", soft_wrap=True, markup=False, highlight=False)


#: Run statuses for which the run's jobs are worth showing (a worker may have refused one).
_WAITING = ("queued", "paused", "interrupted")


def queue_view(store: Any, record: RunRecord, queue_url: str | None) -> dict[str, Any] | None:
    """What the queue says of a run started with ``run --queue`` that has not finished:
    its latest job (``job``, ``task``, ``status``, ``attempts``, ``at``), the queue's
    URL without its password, and ``line``, one sentence for people; or ``error`` when
    the queue cannot be read.  ``None`` for any other run, or when no queue is known
    (``queue_url`` falls back to the PostgreSQL store's URL).  Never raises."""
    from runbook_engine.cli.team import is_queued_run, queue_url_or_default
    from runbook_engine.errors import InputError

    if record.outcome or record.status not in _WAITING:
        return None
    url = queue_url_or_default(queue_url)
    if not url or not is_queued_run(store, record.run_id):
        return None
    try:
        from runbook_engine.run.queue import redact_url, run_jobs
    except InputError as exc:  # no team extra installed here
        return {"url": None, "error": str(exc), "line": f"Worker: cannot read the queue: {exc}"}
    shown = redact_url(url)
    try:
        jobs = run_jobs(url, record.run_id)
    except (InputError, StateError) as exc:
        return {"url": shown, "error": str(exc), "line": f"Worker: cannot read the queue: {exc}"}
    if not jobs:
        line = f"Worker: no job of this run in queue {shown}"
        return {"url": shown, "job": None, "line": line}
    job = jobs[-1]
    data: dict[str, Any] = {"url": shown, **asdict(job)}
    data["job"] = data.pop("id")
    data["line"] = _job_line(job, record.run_id)
    return data


def _job_line(job: Any, run_id: str) -> str:
    """One sentence on ``job`` (a :class:`~runbook_engine.run.queue.RunJob`)."""
    when = f" at {job.at[:19].replace('T', ' ')} UTC" if job.at else ""
    tries = f"{job.attempts} attempt{'s' if job.attempts != 1 else ''}"
    if job.status == "todo":
        return f"Worker: job {job.id} waits for a worker (queued{when})"
    if job.status == "doing":
        return f"Worker: job {job.id} is being executed by a worker (since{when or ' -'})"
    if job.status in ("failed", "cancelled", "aborted"):
        return (
            f"Worker: job {job.id} {job.status}{when} after {tries} — the worker's log says "
            f"why; fix it, then `runbook resume {run_id}` on a machine with what the run "
            "needs (its store, runbook, secrets, signing key)"
        )
    return f"Worker: job {job.id} {job.status}{when} after {tries}"


def _waits(steps: list[StepState], decided: dict[tuple[str, str], GateDecision]) -> list[str]:
    """One line per gate the run waits at with no decision recorded: the step id and host
    in full (the table may have to narrow its columns), and why it waits."""
    lines = []
    for s in steps:
        if s.status == "awaiting" and (s.step_id, s.host) not in decided:
            why = f": {s.reason}" if s.reason else ""
            lines.append(terminal_safe(f"Waits at {s.step_id} on {s.host}{why}"))
    return lines


def _note(state: StepState, decision: GateDecision | None, run_id: str) -> str:
    """The note column: who decided and what comes next, while a decision waits."""
    if decision is None or state.status in ("succeeded", "skipped", "already-done"):
        return state.reason or ""
    return f"by {decision.by} ({decision.source}); runbook resume {run_id} applies it"


def _decision_json(decision: GateDecision | None) -> dict[str, str | None] | None:
    if decision is None:
        return None
    return {
        "decision": decision.decision,
        "by": decision.by,
        "source": decision.source,
        "at": decision.at,
    }


def plain_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    """Return ``rows`` under ``header`` as aligned plain text (columns two spaces apart,
    a dashed rule under the header, the last column unpadded, control characters escaped)."""
    cells = [header, *(tuple(terminal_safe(" ".join(c.split())) for c in row) for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header) - 1)]
    rule = tuple("-" * w for w in [*widths, max(len(row[-1]) for row in cells)])
    lines = []
    for row in (cells[0], rule, *cells[1:]):
        padded = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*padded, row[-1]]).rstrip())
    return "\n".join(lines)
