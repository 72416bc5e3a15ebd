"""``runbook worker``: take runbook jobs from the queue and execute each run in its own process.

A job (:mod:`.queue`) becomes one ``runbook resume RUN_ID --no-input`` child process: a
run is a process, as on the command line (its own signals, run lock, step reaper and
journal; secrets resolve there, from the worker's environment and keyring).  The child
gets SIGTERM when its worker dies, even by SIGKILL (Linux's parent-death signal), and
stops as ``runbook resume`` stops on SIGTERM: the step's process group killed, the
interruption journaled.  The job stays ``doing`` in the queue under the dead worker; a
live worker finds it through procrastinate's worker heartbeats
(:func:`~.queue.retry_stalled`) and runs it again, which resumes the run: the checkpoint
rules decide about the interrupted step (its check, else a gate), never a silent second
execution.

How the child ended decides the job: exit 0 or 1 (the run ended), 3 (paused at a gate:
a decision enqueues the next job) finish it; 2 (bad input, a finished run) fails it;
anything else (interrupted, 74 a disk error, 75 a step's process still alive, another
process holding the run) raises :class:`RunNotDone`, which procrastinate retries
(:data:`RETRY`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import procrastinate

from runbook_engine.run.queue import (
    QUEUE,
    JobArgs,
    ensure_schema,
    make_app,
    redact_url,
    without_password,
)
from runbook_engine.run.queue import retry_stalled as _retry_stalled

log = logging.getLogger("runbook_engine.worker")

#: Child exit statuses that finish a job: the run ended (0, 1) or paused at a gate (3).
_FINISHED = {0: "ended", 1: "ended", 3: "paused"}
#: The run lock's refusal (exit 2): the state directory's, the PostgreSQL store's.
_HELD = ("is being executed by another process", "is being run by")


class RunNotDone(Exception):
    """A job's run process stopped before the run paused or ended (interrupted, refused
    while a step's process lives on, a disk error): the job is retried."""


#: Retry a job whose run did not pause or end: every 5 seconds, then slower, 10 times.
RETRY = procrastinate.RetryStrategy(
    max_attempts=10, wait=5, linear_wait=5, retry_exceptions={RunNotDone}
)
blueprint = procrastinate.Blueprint()


class RunRefused(Exception):
    """The run cannot go on as it is (bad input, finished, changed runbook): the job fails,
    not retried; the message says what to do."""


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    """How a worker runs.

    Attributes:
        url: The queue database (``postgresql://...``).
        concurrency: How many runs execute at once (one child process each).
        stalled_after: Seconds without a worker's heartbeat before its jobs are taken
            back (procrastinate's ``stalled_worker_timeout``; heartbeats every third).
        as_json: One JSON object per finished job on standard output.
        name: The worker's name in procrastinate's tables and logs.
        sweep_store: The team's store (``postgresql://...``) whose approvals past their
            expiry the worker journals and notifies (:mod:`.expiry`), or ``None``.
        sweep_seconds: How often (``0``: never).
    """

    url: str
    concurrency: int = 1
    stalled_after: float = 30.0
    as_json: bool = False
    name: str | None = None
    sweep_store: str | None = None
    sweep_seconds: float = 30.0


@blueprint.task(name="start_run", queue=QUEUE, retry=RETRY, pass_context=True)
async def start_run(context: Any, **args: Any) -> dict[str, Any]:
    """Execute a queued run from its first step (the worker's side of ``run --queue``)."""
    return await execute_job(context, JobArgs(**args))


@blueprint.task(name="resume_run", queue=QUEUE, retry=RETRY, pass_context=True)
async def resume_run(context: Any, **args: Any) -> dict[str, Any]:
    """Continue a queued run once a gate of it was decided (or after a worker died)."""
    return await execute_job(context, JobArgs(**args))


def store_args(store: str) -> list[str]:
    """The command-line options naming a store: ``--store URL`` for a database URL (none
    when the worker's own ``RUNBOOK_STORE`` names that database: the run's process
    inherits it, with any password, off the command line), else ``--state-dir FOLDER``."""
    if store.startswith(("postgresql://", "postgres://")):
        own = os.environ.get("RUNBOOK_STORE")
        if own and without_password(own) == without_password(store):
            return []
        return ["--store", store]
    return ["--state-dir", store]


def _same_database(url: str) -> str:
    """``url`` as compared with another: no password, one spelling of the scheme."""
    bare = without_password(url)
    return "postgresql://" + bare.split("://", 1)[1] if "://" in bare else bare


def store_allowed(store: str, queue_url: str | None) -> bool:
    """True when a job naming ``store`` may run here: a state folder (on this machine), or
    a PostgreSQL store that is this worker's own (``RUNBOOK_STORE``) or its queue's
    database.  A job naming any other database would make this worker connect there with
    its credentials (``PGPASSWORD``, ``~/.pgpass``) and execute what that database holds,
    with its secrets."""
    if not store.startswith(("postgresql://", "postgres://")):
        return True
    own = [os.environ.get("RUNBOOK_STORE"), queue_url]
    mine = {_same_database(u) for u in own if u and u.startswith(("postgresql://", "postgres://"))}
    return _same_database(store) in mine


def resume_command(args: JobArgs) -> list[str]:
    """The ``runbook resume`` command line a job runs (no secret on it)."""
    cmd = [sys.executable, "-m", "runbook_engine", "resume", args.run_id, *store_args(args.store)]
    cmd += ["--no-input", "--json", "--operator", args.operator, "--forks", str(args.forks)]
    if args.answers:
        cmd += ["--answers", args.answers]
    if args.max_failures is not None:
        cmd += ["--max-failures", str(args.max_failures)]
    if args.max_output is not None:
        cmd += ["--max-output", str(args.max_output)]
    return cmd


def operator_ticket(args: JobArgs) -> str | None:
    """A launch ticket for the job's ``runbook resume`` when the run's operator was
    signed in to the web console that started it
    (:func:`~runbook_engine.run.launch_ticket.issue_for_worker`); ``None`` otherwise or
    when the store cannot be read (the resume then says why)."""
    from runbook_engine.errors import RunbookError
    from runbook_engine.run.launch_ticket import issue_for_worker
    from runbook_engine.run.store import CheckpointStore, default_state_dir
    from runbook_engine.run.store_api import is_pg, open_store

    try:
        if is_pg(args.store):  # where the resume's --store keeps its working copies
            store: Any = open_store(default_state_dir(), args.store)
        else:
            store = CheckpointStore(Path(args.store), create=False, run_id=args.run_id)
    except (RunbookError, OSError) as exc:
        log.warning("run %s: %s", args.run_id, exc)
        return None
    try:
        return issue_for_worker(store, args.run_id, args.operator)
    except (RunbookError, OSError) as exc:
        log.warning("run %s: %s", args.run_id, exc)
        return None
    finally:
        store.close()


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    from runbook_engine.transports.supervise import _set_parent_death_signal

    _set_parent_death_signal(signal.SIGTERM)
    if os.getppid() == 1:  # the worker died before the signal was asked for
        os._exit(143)


async def execute_job(context: Any, args: JobArgs) -> dict[str, Any]:
    """Run job ``args`` as a ``runbook resume`` child; return what it said.

    Raises:
        RunNotDone: the run neither paused nor ended (retried by procrastinate).
        RunRefused: exit 2 other than a held run (the job fails).
    """
    job = getattr(context, "job", None)
    extra = getattr(context, "additional_context", None) or {}
    if not store_allowed(args.store, extra.get("queue_url")):
        message = (
            f"run {args.run_id}: the job names the store {redact_url(args.store)}, which is "
            "neither this worker's (RUNBOOK_STORE) nor its queue's database; refused (a "
            "worker connects, with its credentials, only to its own team's store)"
        )
        said = {"job": getattr(job, "id", None), "run_id": args.run_id, "exit": 2}
        _report(
            {**said, "status": None, "outcome": None, "message": message},
            bool(extra.get("as_json")),
        )
        raise RunRefused(message)
    env = dict(os.environ)
    ticket = await asyncio.to_thread(operator_ticket, args)
    if ticket:
        from runbook_engine.run.launch_ticket import TICKET_ENV

        env[TICKET_ENV] = ticket
    proc = await asyncio.create_subprocess_exec(
        *resume_command(args),
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        preexec_fn=_die_with_parent,
    )
    try:
        out, err = await proc.communicate()
    except asyncio.CancelledError:  # the worker stops without waiting: stop the run cleanly
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        await proc.wait()
        raise
    code = proc.returncode if proc.returncode is not None else -1
    said = _json_of(out)
    message = err.decode("utf-8", "replace").strip()
    result = {
        "job": getattr(job, "id", None),
        "task": getattr(job, "task_name", None),
        "run_id": args.run_id,
        "exit": code,
        "status": said.get("status") or ("paused" if code == 3 else None),
        "outcome": said.get("outcome"),
        "message": message.splitlines()[-1] if message else "",
    }
    if code == 3:
        result["message"] = queued_pause(result["message"])
    _report(result, bool(extra.get("as_json")))
    if code in _FINISHED:
        return result
    if code == 2 and f"run {args.run_id} is finished (" in message:
        return result  # another job of the run finished it: nothing left to do
    if code == 2 and not any(held in message for held in _HELD):
        raise RunRefused(f"run {args.run_id}: {result['message'] or 'refused (exit 2)'}")
    raise RunNotDone(f"run {args.run_id}: exit {code}: {result['message']}")


#: The runner's "then `runbook resume RUN`" at the end of its pause message.
_THEN_RESUME = re.compile(r", then `runbook resume [^`]*`(?: \(or resume with --answers FILE\))?")


def queued_pause(message: str) -> str:
    """The pause message of a queued run as its worker tells it: the decision (``runbook
    confirm``, ``approve`` once the quorum is reached, ``reject``) queues the run's resume
    for a worker, so the runner's "then `runbook resume RUN`" is left out."""
    return _THEN_RESUME.sub("; the decision queues its resume for a worker", message)


def _json_of(out: bytes) -> dict[str, Any]:
    with contextlib.suppress(ValueError):
        data = json.loads(out.decode("utf-8", "replace") or "{}")
        if isinstance(data, dict):
            return data
    return {}


def _report(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(result, sort_keys=True), flush=True)
        return
    word = result["outcome"] or result["status"] or f"exit {result['exit']}"
    tail = f": {result['message']}" if result["exit"] not in (0,) and result["message"] else ""
    print(f"job {result['job']} run {result['run_id']}: {word}{tail}", flush=True)


def _without_traceback(record: logging.LogRecord) -> bool:
    """Log a job our own exceptions ended without their traceback: its line says it all."""
    if record.exc_info and isinstance(record.exc_info[1], (RunNotDone, RunRefused)):
        record.exc_info, record.exc_text = None, None
    return True


def serve(options: WorkerOptions) -> None:
    """Apply the queue's schema when missing, then take jobs until SIGINT or SIGTERM.

    Raises:
        StateError: the queue database cannot be reached.
    """
    ensure_schema(options.url)
    logging.basicConfig(level=logging.WARNING, format="runbook worker: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(_without_traceback)
    asyncio.run(_serve(options))


async def _serve(options: WorkerOptions) -> None:
    app = make_app(options.url)
    app.add_tasks_from(blueprint, namespace="runbook")  # runbook:start_run, runbook:resume_run
    async with app.open_async():
        recovery = asyncio.create_task(_recover(app, options.stalled_after))
        sweeping = None
        if options.sweep_store and options.sweep_seconds > 0:
            sweeping = asyncio.create_task(_sweep(options.sweep_store, options.sweep_seconds))
        try:
            await app.run_worker_async(
                queues=[QUEUE],
                name=options.name,
                concurrency=options.concurrency,
                update_heartbeat_interval=max(options.stalled_after / 3, 0.2),
                stalled_worker_timeout=options.stalled_after,
                additional_context={"as_json": options.as_json, "queue_url": options.url},
            )
        finally:
            for task in (recovery, sweeping):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task


async def _recover(app: Any, stalled_after: float) -> None:
    """Every third of ``stalled_after``, retry the jobs of silent workers."""
    while True:
        try:
            for job_id in await _retry_stalled(app, stalled_after):
                print(f"job {job_id}: its worker went silent; retried", flush=True)
        except Exception as exc:  # the database went away: the worker's own loop says so
            log.warning("stalled-job recovery: %s", exc)
        await asyncio.sleep(max(stalled_after / 3, 0.2))


def sweep_once(url: str) -> list[Any]:
    """Journal and notify the approvals past their expiry in the store at ``url``
    (:func:`runbook_engine.run.expiry.sweep`, working copies in this machine's state
    folder, as the worker's runs keep them).  Returns them."""
    from runbook_engine.run.expiry import sweep
    from runbook_engine.run.store import default_state_dir
    from runbook_engine.run.store_api import open_store

    store = open_store(default_state_dir(), url)
    try:
        return sweep(store)
    finally:
        store.close()


async def _sweep(url: str, seconds: float) -> None:
    """Every ``seconds``: :func:`sweep_once` in a thread (a failure is logged)."""
    while True:
        try:
            for expired in await asyncio.to_thread(sweep_once, url):
                print(
                    f"run {expired.run_id}: an approval of {expired.step} by "
                    f"{expired.by} expired (journaled)",
                    flush=True,
                )
        except Exception as exc:  # the database went away: the next round tries again
            log.warning("expiry sweep: %s", exc)
        await asyncio.sleep(seconds)
