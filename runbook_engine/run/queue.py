"""Runs on a job queue: procrastinate's PostgreSQL queue, two tasks, and how to enqueue them.

``runbook run --queue`` creates the run (``queued``) and enqueues task ``start_run``;
``runbook confirm`` and ``runbook approve`` enqueue ``resume_run`` for a queued run whose
gate they decide; ``runbook worker`` (:mod:`.worker`, where the tasks are) takes the
jobs.  The queue is procrastinate's (jobs, locks, retries, worker heartbeats and
stalled-job recovery in PostgreSQL tables); nothing here is a queue of our own.

A job's arguments are the run's id, where its store is (an opaque string: a state folder
today, a store URL once the PostgreSQL store exists; passed as ``--state-dir`` or
``--store``), who operates it, the answers file and the fan-out options, plus, for
``start_run``, the runbook, environment and ``--set`` values it was created with (for
people reading the queue).  Never a secret value: secrets resolve on the worker.

Every job of a run carries the run's procrastinate ``lock`` (two jobs of one run never
execute at once) and ``queueing_lock`` (at most one waiting job per run: a second
confirmation while a resume waits adds nothing).

Source of facts: procrastinate 3's documentation (tasks, locks, retry strategies,
``JobManager.get_stalled_jobs``) and its shipped schema (``schema.sql``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from runbook_engine.errors import InputError, StateError

try:
    import procrastinate
    import psycopg
    from procrastinate.exceptions import AlreadyEnqueued
except ImportError as _missing:  # one message, not a traceback
    raise InputError(
        f"team mode needs {_missing.name}: pip install 'runbook-engine[team]' "
        "(procrastinate and psycopg)"
    ) from None

#: The procrastinate queue runbook jobs go to.
QUEUE = "runbook"
#: Task names, as procrastinate stores them (blueprint namespace ``runbook``).
START_TASK = "runbook:start_run"
RESUME_TASK = "runbook:resume_run"


@dataclass
class JobArgs:
    """What a job tells its worker (JSON in procrastinate's ``args`` column).

    Attributes:
        run_id: The run.
        store: Where the run's store is: a state folder or a store URL (opaque here).
        operator: Who the run is recorded as operated by.
        answers: An answers file (path as the worker sees it), or ``None``.
        forks, max_failures, max_output: As ``runbook resume`` takes them.
        runbook, env, sets: What the run was created with (:func:`start_run` only;
            informative: the run's store holds them).
    """

    run_id: str
    store: str
    operator: str
    answers: str | None = None
    forks: int = 1
    max_failures: int | None = None
    max_output: int | None = None
    runbook: str | None = None
    env: str | None = None
    sets: dict[str, str] = field(default_factory=dict)


def make_app(url: str, *, sync: bool = False) -> procrastinate.App:
    """A procrastinate app on queue database ``url`` (the worker adds its tasks; the CLI
    enqueues by task name).

    Args:
        url: ``postgresql://...`` (libpq's URL; ``PGPASSWORD`` and ``~/.pgpass`` apply).
        sync: A synchronous connector (the CLI enqueues); else the worker's async pool.
    """
    check_url(url)
    if sync:
        connector: Any = procrastinate.SyncPsycopgConnector(conninfo=url)
    else:
        connector = procrastinate.PsycopgConnector(conninfo=url)
    return procrastinate.App(connector=connector)


def check_url(url: str | None) -> str:
    """``url`` when it is a PostgreSQL URL.

    Raises:
        InputError: no URL, or not ``postgresql://``/``postgres://``.
    """
    if not url:
        raise InputError(
            "no queue: give --queue-url postgresql://... or set RUNBOOK_QUEUE (the jobs "
            "live in PostgreSQL; see README, Team mode)"
        )
    if not url.startswith(("postgresql://", "postgres://")):
        raise InputError(f"--queue-url {redact_url(url)}: write postgresql://USER@HOST/DB")
    return url


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for messages)."""
    head, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    userinfo, _, hostpart = rest.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return f"{head}://{user}{':***' if ':' in userinfo else ''}@{hostpart}"


def without_password(url: str) -> str:
    """``url`` without a password (in its user part or a ``password=`` parameter): what a
    job may carry.  A worker connects with its own ``RUNBOOK_STORE`` when that names the
    same database, else with ``~/.pgpass`` or ``PGPASSWORD``, as ``psql`` does."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        netloc = f"{userinfo.split(':', 1)[0]}@{host}"
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "password"]
    return urlunsplit(parts._replace(netloc=netloc, query=urlencode(query)))


_SCHEMA_LOCK = 0x72626571  # "rbeq": one process applies the schema at a time


def ensure_schema(url: str) -> bool:
    """Apply procrastinate's schema to queue database ``url`` unless it is there.

    Held under a PostgreSQL advisory lock, so two workers starting at once apply it once.
    Returns whether it was applied now.

    Raises:
        StateError: the database cannot be reached or refuses the schema.
    """
    try:
        with psycopg.connect(check_url(url), autocommit=True) as db:
            db.execute("SELECT pg_advisory_lock(%s)", (_SCHEMA_LOCK,))
            try:
                row = db.execute("SELECT to_regclass('procrastinate_jobs')").fetchone()
                if row is not None and row[0] is not None:
                    return False
                schema = procrastinate.schema.SchemaManager.get_schema()
                db.execute(schema.encode())  # procrastinate's own schema.sql, as shipped
                return True
            finally:
                db.execute("SELECT pg_advisory_unlock(%s)", (_SCHEMA_LOCK,))
    except psycopg.Error as exc:
        raise StateError(f"queue {redact_url(url)}: {_pg_message(exc)}") from None


def _pg_message(exc: psycopg.Error) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def run_lock_name(run_id: str) -> str:
    """The procrastinate lock (and queueing lock) of run ``run_id``'s jobs."""
    return f"runbook-run:{run_id}"


def enqueue(url: str, task: str, args: JobArgs) -> int | None:
    """Enqueue ``task`` (:data:`START_TASK` or :data:`RESUME_TASK`) for ``args.run_id``.

    Returns:
        The job id, or ``None`` when a job of this run is already waiting (its queueing
        lock): that job will do.

    Raises:
        StateError: the queue cannot be reached.
    """
    ensure_schema(url)
    app = make_app(url, sync=True)
    lock = run_lock_name(args.run_id)
    try:
        with app.open():
            deferrer = app.configure_task(task, queue=QUEUE, lock=lock, queueing_lock=lock)
            return deferrer.defer(**asdict(args))
    except AlreadyEnqueued:
        return None
    except psycopg.Error as exc:
        raise StateError(f"queue {redact_url(url)}: {_pg_message(exc)}") from None


async def retry_stalled(app: procrastinate.App, seconds: float) -> list[int]:
    """Put back in the queue the jobs of workers silent for ``seconds`` (killed, hung,
    cut off): procrastinate's stalled-job recovery.  Returns the job ids retried."""
    retried = []
    for job in await app.job_manager.get_stalled_jobs(queue=QUEUE, seconds_since_heartbeat=seconds):
        await app.job_manager.retry_job(job)
        retried.append(int(job.id or 0))
    return retried


@dataclass(frozen=True, slots=True)
class RunJob:
    """A job of a run as procrastinate's tables hold it (what ``runbook status`` shows).

    Attributes:
        id: procrastinate's job id.
        task: :data:`START_TASK` or :data:`RESUME_TASK`.
        status: procrastinate's job status (``todo``, ``doing``, ``succeeded``, ``failed``,
            ``cancelled``, ``aborted``...).
        attempts: How many times a worker took it.
        at: When its last event happened (ISO 8601, UTC), or ``None``.
    """

    id: int
    task: str
    status: str
    attempts: int
    at: str | None


def run_jobs(url: str, run_id: str) -> list[RunJob]:
    """The jobs of run ``run_id`` in queue ``url``, oldest first (read-only).

    Raises:
        InputError: ``url`` is not a PostgreSQL URL.
        StateError: the queue cannot be reached, or has no procrastinate tables.
    """
    lock = run_lock_name(run_id)
    try:
        with psycopg.connect(check_url(url), connect_timeout=5) as db:
            db.read_only = True
            rows = db.execute(
                "SELECT j.id, j.task_name, j.status::text, j.attempts,"
                " (SELECT max(e.at) FROM procrastinate_events e WHERE e.job_id = j.id)"
                " FROM procrastinate_jobs j WHERE j.lock = %s OR j.queueing_lock = %s"
                " ORDER BY j.id",
                (lock, lock),
            ).fetchall()
    except psycopg.Error as exc:
        raise StateError(f"queue {redact_url(url)}: {_pg_message(exc)}") from None
    return [
        RunJob(int(i), str(task), str(status), int(attempts), _utc(at))
        for i, task, status, attempts, at in rows
    ]


def _utc(at: Any) -> str | None:
    from datetime import UTC

    return at.astimezone(UTC).isoformat(timespec="seconds") if at is not None else None
