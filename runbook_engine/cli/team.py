"""``runbook worker`` and ``runbook queue migrate``: runs taken from a PostgreSQL job queue.

Also the pieces ``run --queue`` and the gate commands share: the ``--queue-url`` option
(env ``RUNBOOK_QUEUE``; default: ``RUNBOOK_STORE`` when that is a PostgreSQL URL),
:func:`queue_new_run` and :func:`resume_when_decided`.  The queue is procrastinate's
(:mod:`runbook_engine.run.queue`); a worker executes each run in its own process
(:mod:`runbook_engine.run.worker`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from runbook_engine.cli.common import json_option, state_dir_or_default

queue_url_option = click.option(
    "--queue-url",
    envvar="RUNBOOK_QUEUE",
    metavar="URL",
    help="The job queue's PostgreSQL database (postgresql://...) [env RUNBOOK_QUEUE; "
    "default: RUNBOOK_STORE when it is a PostgreSQL URL].",
)


def queue_url_or_default(value: str | None) -> str | None:
    """``--queue-url`` when given, else the store (``--store`` or ``RUNBOOK_STORE``) when
    it is a PostgreSQL URL."""
    if value:
        return value
    from runbook_engine.cli.common import current_store_url

    store = current_store_url() or ""
    return store if store.startswith(("postgresql://", "postgres://")) else None


def store_location(state_dir: Path | None) -> str:
    """Where a job's worker finds the run's store: the store URL of ``--store`` or
    ``RUNBOOK_STORE`` when it names the team's PostgreSQL store (every worker reaches it),
    else the state folder, absolute (a worker on this machine)."""
    from runbook_engine.cli.common import current_store_url
    from runbook_engine.run.queue import without_password
    from runbook_engine.run.store_api import is_pg

    url = current_store_url()
    if is_pg(url):
        return without_password(str(url))  # a job never carries a password
    return str(state_dir_or_default(state_dir).resolve())


def queue_new_run(
    url: str | None,
    runner: Any,
    options: Any,
    answers: Path | None,
    sets: dict[str, str],
    state_dir: Path | None,
    store: str | None = None,
) -> dict[str, Any]:
    """Hand a run just created ``queued`` to the workers: let go of its runner, store its
    journal and files in a team's store, enqueue its first job; return what ``run --queue``
    prints (the run, its status, the job).  ``store``: where the worker finds the run (a
    store URL or a state folder; default :func:`store_location` of ``state_dir``).

    Raises:
        InputError: no queue URL.  StateError: the queue cannot be reached (the message
            says the run was created and how to run it).
    """
    from runbook_engine.errors import StateError
    from runbook_engine.run.queue import START_TASK, JobArgs, check_url, enqueue, without_password
    from runbook_engine.run.store_api import is_pg

    record = runner.record
    runner.ctx.rest()
    runner.pool.close()
    check_url(url)
    # The run stops here until a worker takes it, maybe on another machine: its journal
    # and files (its source's copy) go to a team's store now.
    runner.store.set_anchor(record.run_id, runner.journal.head, durable=True)
    where = store or store_location(state_dir)
    args = JobArgs(
        run_id=record.run_id,
        store=without_password(where) if is_pg(where) else where,
        operator=options.operator,
        answers=str(answers.resolve()) if answers else None,
        forks=options.forks,
        max_failures=options.max_failures,
        max_output=options.max_output,
        runbook=record.runbook_path,
        env=record.env_path,
        sets=sets,
    )
    try:
        job = enqueue(str(url), START_TASK, args)
    except StateError as exc:
        raise StateError(
            f"{exc.message}; run {record.run_id} was created (queued) but not put on the "
            f"queue: `runbook resume {record.run_id}` runs it"
        ) from None
    return {
        "run_id": record.run_id,
        "status": "queued",
        "outcome": None,
        "job": job,
        "state_dir": args.store,
    }


def is_queued_run(store: Any, run_id: str) -> bool:
    """True when run ``run_id`` was started with ``run --queue`` (its ``run-started`` says so)."""
    from runbook_engine.evidence import JOURNAL_NAME
    from runbook_engine.evidence.journal import read_journal

    path = store.run_dir(run_id) / JOURNAL_NAME
    if not path.exists():
        return False
    records = read_journal(path, verify=False)
    return bool(records and records[0].get("queued"))


def resume_when_decided(url: str | None, store: Any, run_id: str, operator: str | None) -> str:
    """After a gate of run ``run_id`` was decided: enqueue its resume when a worker runs it.

    Returns:
        A line for standard error ("" for a run not started with ``--queue``).

    Raises:
        StateError: the queue cannot be reached.
    """
    if not is_queued_run(store, run_id):
        return ""
    if not queue_url_or_default(url):
        return (
            f"run {run_id} is executed by workers, and no queue was named: give "
            f"--queue-url or set RUNBOOK_QUEUE so a worker resumes it, or run "
            f"`runbook resume {run_id}` here"
        )
    from runbook_engine.run.queue import RESUME_TASK, JobArgs, enqueue, without_password

    record = store.get_run(run_id)
    url_of_store = getattr(store, "url", None)
    where = without_password(url_of_store) if url_of_store else str(store.state_dir.resolve())
    args = JobArgs(run_id=run_id, store=where, operator=operator or record.operator)
    job = enqueue(str(queue_url_or_default(url)), RESUME_TASK, args)
    if job is None:
        return f"run {run_id}: a worker's resume is queued already"
    return f"run {run_id}: queued for a worker to resume (job {job})"


@click.command()
@queue_url_option
@click.option(
    "--concurrency",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="How many runs this worker executes at once (one process each).",
)
@click.option(
    "--stalled-after",
    type=click.FloatRange(0.5),
    default=30.0,
    show_default=True,
    help="Seconds without a worker's heartbeat before its jobs are taken back and retried "
    "(a killed worker's runs resume; the checkpoint rules decide about an interrupted step).",
)
@click.option("--name", help="The worker's name in the queue and its logs.")
@click.option(
    "--sweep-seconds",
    type=click.FloatRange(0),
    default=30.0,
    show_default=True,
    help="How often to look in the team's store (RUNBOOK_STORE postgresql://...) for "
    "approvals past their expiry, journal the expiry and send its notification (0: never).",
)
@json_option
def worker(
    queue_url: str | None,
    concurrency: int,
    stalled_after: float,
    name: str | None,
    sweep_seconds: float,
    as_json: bool,
) -> None:
    """Take queued runs and resumes from the job queue and execute them until stopped.

    Each run executes as `runbook resume RUN_ID --no-input` in its own process, with this
    worker's environment: secrets resolve here. Stop with Ctrl-C or SIGTERM (running runs
    finish or pause first).
    """
    from runbook_engine.cli.common import current_store_url
    from runbook_engine.run.queue import check_url
    from runbook_engine.run.store_api import is_pg
    from runbook_engine.run.worker import WorkerOptions, serve

    url = check_url(queue_url_or_default(queue_url))
    store = current_store_url()
    sweep_store = store if is_pg(store) else None
    serve(WorkerOptions(url, concurrency, stalled_after, as_json, name, sweep_store, sweep_seconds))


@click.group()
def queue() -> None:
    """The job queue workers take runs from (PostgreSQL, procrastinate)."""


@queue.command()
@queue_url_option
@json_option
def migrate(queue_url: str | None, as_json: bool) -> None:
    """Create the queue's tables (procrastinate's schema) unless they exist.

    `runbook worker` and `run --queue` do this too when the tables are missing.
    """
    from runbook_engine.run.queue import check_url, ensure_schema, redact_url

    url = check_url(queue_url_or_default(queue_url))
    applied = ensure_schema(url)
    if as_json:
        click.echo(json.dumps({"queue": redact_url(url), "applied": applied}))
    else:
        click.echo(
            f"{'Created' if applied else 'Already there'}: the queue's tables in {redact_url(url)}"
        )
