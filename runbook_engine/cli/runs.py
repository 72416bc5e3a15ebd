"""``runbook run``, ``resume``, ``status`` and ``runs``: checkpointed runs and their state."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from runbook_engine.cli.common import (
    EXISTING_FILE,
    FILE_PATH,
    apply_options,
    env_option,
    guide_format,
    json_option,
    note_option,
    open_store,
    parse_sets,
    render_guide,
    set_option,
    state_dir_or_default,
    state_option,
    write_output,
)
from runbook_engine.cli.control import control_options, preflight_or_refuse, selection_of
from runbook_engine.cli.remote import Remote, server_option
from runbook_engine.cli.remote import show_runs as remote_runs
from runbook_engine.cli.remote import show_status as remote_status
from runbook_engine.cli.team import queue_url_option


def _run_options(
    operator: str | None,
    answers: Path | None,
    step_ids: set[str] | None,
    change_id: str | None,
    accept_changed: bool,
    no_input: bool,
    quiet: bool,
    stream: bool,
    reason: str | None = None,
    emergency: bool = False,
    run_operator: str | None = None,
) -> Any:
    from runbook_engine.run.gates import load_answers
    from runbook_engine.run.lifecycle import RunOptions, operator_and_source
    from runbook_engine.run.reporter import Reporter

    loaded_answers = load_answers(answers, step_ids) if answers else None
    for warning in loaded_answers.warnings if loaded_answers else ():
        click.echo(f"runbook: {warning}", err=True)
    interactive = sys.stdin.isatty() and not no_input and loaded_answers is None
    name, source = operator_and_source(operator, fallback=run_operator)
    return RunOptions(
        operator=name,
        operator_source=source,
        answers=loaded_answers,
        interactive=interactive,
        change_id=change_id,
        accept_changed=accept_changed,
        reporter=Reporter(quiet=quiet, stderr=False, stream=stream),
        reason=reason,
        emergency=emergency,
    )


run_common = [
    click.option("--answers", type=FILE_PATH, help="Answers file with gate decisions (YAML)."),
    click.option(
        "--operator",
        help="Who runs the change [env RUNBOOK_OPERATOR; default: the login, or on resume "
        "the run's operator].",
    ),
    click.option("--no-input", is_flag=True, help="Never prompt; pause at gates (exit 3)."),
    click.option("--stream", is_flag=True, help="Show command output as it arrives."),
    click.option(
        "--forks",
        type=click.IntRange(1, 64),
        default=1,
        show_default=True,
        help="How many hosts of one step run at once.",
    ),
    click.option(
        "--max-failures",
        type=click.IntRange(1),
        default=None,
        help="Start no further host of a step after this many of its hosts failed "
        "[default: 1 for steps that stop on failure].",
    ),
    click.option(
        "--max-output",
        type=click.IntRange(1024),
        envvar="RUNBOOK_MAX_OUTPUT",
        default=None,
        help="Bytes of each command's output kept (head and tail; the journal holds the "
        "size and SHA-256 of all of it) [env RUNBOOK_MAX_OUTPUT; default 10 MiB].",
    ),
    state_option,
    json_option,
]


@click.command()
@click.argument("runbook", type=EXISTING_FILE)
@env_option
@set_option
@apply_options(run_common)
@click.option("--run-id", help="Id for the new run (default: generated).")
@click.option("--change", "change_id", help="Change id (ticket) recorded with the run.")
@note_option(
    "Why the change is made (recorded; required with --emergency).", old_names=("--reason",)
)
@click.option(
    "--emergency",
    is_flag=True,
    help="Bypass approval (recorded and flagged in the change record); needs --note.",
)
@click.option(
    "--guide",
    type=FILE_PATH,
    help="Also write the tailored guide here (format by suffix: .md, .html, .pdf, .ipynb).",
)
@apply_options(control_options)
@click.option(
    "--queue",
    "to_queue",
    is_flag=True,
    help="Do not execute here: create the run (status queued) and put it on the job queue "
    "for `runbook worker` (secrets and preflight resolve on the worker).",
)
@queue_url_option
def run(
    runbook: Path,
    env_path: Path | None,
    sets: tuple[str, ...],
    answers: Path | None,
    operator: str | None,
    no_input: bool,
    stream: bool,
    forks: int,
    max_failures: int | None,
    max_output: int | None,
    state_dir: Path | None,
    as_json: bool,
    run_id: str | None,
    change_id: str | None,
    note: str | None,
    emergency: bool,
    guide: Path | None,
    to_queue: bool,
    queue_url: str | None,
    **control: Any,
) -> None:
    """Execute RUNBOOK: automated steps on their hosts, manual steps as gates."""
    if to_queue:
        from runbook_engine.cli.team import queue_url_or_default
        from runbook_engine.run.queue import check_url, ensure_schema

        queue_url = check_url(queue_url_or_default(queue_url))
        ensure_schema(queue_url)  # the queue answers before a run is created for it
    from runbook_engine.run.lifecycle import start_run
    from runbook_engine.run.selection import excluded
    from runbook_engine.tailor.loading import load

    overrides = parse_sets(sets)
    loaded = load(runbook, env_path, overrides, need_env=True)
    options = _run_options(
        operator,
        answers,
        {s.id for s in loaded.runbook.steps},
        change_id,
        False,
        no_input,
        as_json,
        stream,
        note,
        emergency,
    )
    options.forks, options.max_failures, options.max_output = forks, max_failures, max_output
    options.check, no_preflight = control.pop("check"), control.pop("no_preflight")
    options.selection = selection_of(**control)
    left_out = excluded(options.selection, loaded.tailored)
    resolved = None  # the runbook with its secrets, resolved once (by the preflight)
    if not no_preflight and not to_queue:  # before the run exists: no run left behind
        options.preflight, resolved = preflight_or_refuse(
            runbook, env_path, overrides, left_out, as_json, loaded
        )
    elif not no_preflight:  # a queued run is checked where it executes (its hosts, secrets)
        options.preflight = {"on_worker": True}
    if guide is not None:
        write_output(render_guide(loaded.tailored, guide_format(guide), change_id), guide)
    store = open_store(state_dir)
    options.operator_auth_method = _ticket(store, "run", run_id, options.operator)
    if to_queue:
        _queue_run(
            store,
            (runbook, env_path, overrides, options, run_id),
            queue_url,
            answers,
            state_dir,
            as_json,
        )
        return
    _finish_run(
        lambda: start_run(runbook, env_path, overrides, store, options, run_id, loaded=resolved),
        store,
        as_json,
        guide,
    )


def _queue_run(
    store: Any,
    how: tuple[Any, ...],
    queue_url: str | None,
    answers: Path | None,
    state_dir: Path | None,
    as_json: bool,
) -> None:
    """``run --queue``: create the run ``queued`` (journaled, no secret resolved), then
    enqueue its first job; print the run id."""
    from runbook_engine.cli.team import queue_new_run
    from runbook_engine.run.lifecycle import create_run

    runbook, env_path, overrides, options, run_id = how
    runner = create_run(runbook, env_path, overrides, store, options, run_id, queued=True)
    data = queue_new_run(queue_url, runner, options, answers, overrides, state_dir)
    if as_json:
        click.echo(json.dumps(data, indent=2))
    else:
        click.echo(f"Queued:  {data['run_id']} (job {data['job']})")
        click.echo(f"State:   {data['state_dir']}")


@click.command()
@click.argument("run_id")
@apply_options(run_common)
@click.option(
    "--accept-changed",
    is_flag=True,
    help="Resume although the runbook or environment changed (journaled).",
)
@click.option(
    "--assume-stopped",
    is_flag=True,
    help="Resume although the host of a step interrupted while its remote command ran "
    "cannot be reached to check it ended (journaled; a command found running still refuses).",
)
def resume(
    run_id: str,
    answers: Path | None,
    operator: str | None,
    no_input: bool,
    stream: bool,
    forks: int,
    max_failures: int | None,
    max_output: int | None,
    state_dir: Path | None,
    as_json: bool,
    accept_changed: bool,
    assume_stopped: bool,
) -> None:
    """Continue RUN_ID where it stopped (recorded as the run's operator unless --operator
    or RUNBOOK_OPERATOR names someone else)."""
    from runbook_engine.run.lifecycle import resume_run
    from runbook_engine.run.snapshot import source_of_run
    from runbook_engine.source.parser import parse_file

    store = open_store(state_dir, create=False, run_id=run_id)
    record = store.get_run(run_id)
    step_ids = None
    if answers is None:
        answers = _answers_of_run(store, run_id)
    if answers is not None:
        source = source_of_run(store, record)  # the run's copy where the file is not here
        with source.reading():
            step_ids = {s.id for s in parse_file(source.runbook).steps}
    # Who resumes: --operator (or RUNBOOK_OPERATOR), else the run's own operator, never
    # silently the login of whoever types the command.
    options = _run_options(
        operator,
        answers,
        step_ids,
        None,
        accept_changed,
        no_input,
        as_json,
        stream,
        run_operator=record.operator,
    )
    options.forks, options.max_failures, options.max_output = forks, max_failures, max_output
    options.assume_stopped = assume_stopped
    options.operator_auth_method = _ticket(store, "resume", run_id, options.operator)
    _finish_run(lambda: resume_run(run_id, store, options), store, as_json, None)


def _answers_of_run(store: Any, run_id: str) -> Path | None:
    """The answers file the run was given, when it is unchanged (said on standard error)."""
    from runbook_engine.errors import RunbookError
    from runbook_engine.evidence.journal import read_journal
    from runbook_engine.run.gates import recorded_answers

    try:
        records = read_journal(store.run_dir(run_id) / "journal.jsonl", verify=False)
    except (OSError, ValueError, RunbookError):
        return None  # the resume itself reports a missing or damaged journal
    recorded = recorded_answers(records)
    if recorded is None:
        return None
    click.echo(f"runbook: {recorded.message}", err=True)
    return recorded.path if recorded.usable else None


def _ticket(store: Any, verb: str, run_id: str | None, operator: str) -> str | None:
    """The operator's sign-in method when the web console launched this command
    (:mod:`runbook_engine.run.launch_ticket`), else ``None``."""
    from runbook_engine.run.launch_ticket import TICKET_ENV, redeem

    return redeem(store.state_dir, os.environ.get(TICKET_ENV), verb, run_id, operator)


def _finish_run(action: Any, store: Any, as_json: bool, guide: Path | None) -> None:
    from runbook_engine.errors import RunPaused
    from runbook_engine.run.interrupts import stop_signals

    try:
        with stop_signals():  # SIGTERM and SIGHUP stop the run like Ctrl-C
            result = action()
    except RunPaused as paused:
        if as_json:
            journal = store.run_dir(paused.run_id) / "journal.jsonl" if paused.run_id else None
            data = {
                "run_id": paused.run_id,
                "status": "paused",
                "outcome": None,
                "message": paused.message,
                "state_dir": str(store.state_dir.resolve()),
                "journal": str(journal.resolve()) if journal else None,
                "guide": str(guide.resolve()) if guide else None,
            }
            click.echo(json.dumps(data, indent=2))
        raise
    where = {
        "run_id": result.run_id,
        "status": result.status,
        "outcome": result.outcome,
        "outcome_note": result.note,
        "known": result.known,
        **({"checked": result.checked} if result.status == "checked" else {}),
        "state_dir": str(result.state_dir.resolve()),
        "journal": str(result.journal.resolve()),
        "guide": str(guide.resolve()) if guide else None,
    }
    if as_json:
        click.echo(json.dumps(where, indent=2))
    else:
        if guide:
            click.echo(f"Guide:   {where['guide']}")
        if result.status == "checked":
            counts = ", ".join(f"{n} {v}" for v, n in result.checked.items()) or "nothing"
            click.echo(f"Check:   {counts} (nothing was changed)")
        click.echo(f"State:   {where['state_dir']}")
        click.echo(f"Journal: {where['journal']}")
    if result.status == "checked" and result.checked.get("failed"):
        # As ansible-playbook --check: a step that read (a pre-check, a verification, a
        # readonly command) and failed fails the check run.
        if not as_json:
            click.echo(f"Check:   {result.checked['failed']} step(s) that read failed", err=True)
        sys.exit(1)
    if result.status in ("failed", "aborted"):
        if result.status == "failed" and not as_json:
            from runbook_engine.run.hints import locate, location_args

            click.echo(
                locate(
                    f"After a fix, continue with: runbook resume {result.run_id}",
                    location_args(store),
                ),
                err=True,
            )
        sys.exit(1)


@click.command()
@click.argument("run_id", required=False)
@server_option
@state_option
@queue_url_option
@json_option
def status(
    run_id: str | None,
    server: str | None,
    state_dir: Path | None,
    queue_url: str | None,
    as_json: bool,
) -> None:
    """Show a run's steps (the latest run without RUN_ID); for a run a worker has not
    finished, its latest job in the queue (--queue-url, RUNBOOK_QUEUE or the store)."""
    from runbook_engine.cli.status_view import show_status

    if server:
        remote_status(Remote(server), run_id, as_json)
        return
    show_status(state_dir_or_default(state_dir), run_id, as_json, queue_url)


@click.command()
@server_option
@state_option
@json_option
def runs(server: str | None, state_dir: Path | None, as_json: bool) -> None:
    """List the runs in the state directory (or of the console at --server), newest first."""
    from runbook_engine.cli.status_view import show_runs

    if server:
        remote_runs(Remote(server), as_json)
        return
    show_runs(state_dir_or_default(state_dir), as_json)
