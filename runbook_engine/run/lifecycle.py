"""Starting and resuming runs: validate, create or reopen the run, hand it to the runner.

:func:`start_run` and :func:`resume_run` are what ``runbook run`` and ``runbook resume``
call; :func:`create_run` and :func:`open_run` stop short of executing (notebooks execute
one cell at a time).  Nothing is written for bad input: every check that can refuse a
run (values, secrets given on the command line, each step kind's own checks such as the
approval policy) runs before the run exists.
"""

from __future__ import annotations

import getpass
import os
import platform
import re
import secrets as pysecrets
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from runbook_engine import __version__
from runbook_engine.errors import InputError, StateError, StepStillRunning
from runbook_engine.evidence import JOURNAL_NAME
from runbook_engine.evidence.journal import read_journal
from runbook_engine.evidence.record import flow_fields
from runbook_engine.evidence.redact import MIN_FREE_TEXT_LENGTH, Redactor
from runbook_engine.evidence.secrets import run_secrets
from runbook_engine.evidence.signing import SignedJournal, signer_for_run
from runbook_engine.run import snapshot
from runbook_engine.run.faults import crash_point
from runbook_engine.run.gates import Answers
from runbook_engine.run.hints import locate, location_args
from runbook_engine.run.live_steps import refuse_live_steps
from runbook_engine.run.options import RunOptions, RunResult
from runbook_engine.run.reconcile import reconcile
from runbook_engine.run.recovery import complete_finished, place_run_folder, prepare_staging
from runbook_engine.run.runner import Runner
from runbook_engine.run.selection import Selection, exclude, excluded
from runbook_engine.run.steps import executors
from runbook_engine.run.store import DONE_STATUSES, RunRecord, utcnow
from runbook_engine.run.store_api import Store
from runbook_engine.tailor.loading import Loaded, load
from runbook_engine.transports import weakened_hosts

_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def default_operator() -> str:
    """Return ``$RUNBOOK_OPERATOR`` or the login name."""
    return operator_and_source(None)[0]


#: How the operator's name was given (``operator_source`` in ``run-started`` and
#: ``by_source`` in ``run-resumed``): the flag, the environment variable, the login
#: name, the run's own operator (a resume that names nobody), or a notebook parameter.
OPERATOR_SOURCES = ("option", "env", "login", "run", "notebook")


def operator_and_source(
    given: str | None, given_as: str = "option", fallback: str | None = None
) -> tuple[str, str]:
    """Return who runs the change and how the name was given.

    Args:
        given: The name given explicitly (``--operator``, a notebook's ``operator``).
        given_as: The source code of ``given`` (``option`` or ``notebook``).
        fallback: The run's own operator, used on resume before the login name.

    Returns:
        ``(name, source)``, ``source`` one of :data:`OPERATOR_SOURCES`; facts from the
        arguments, ``$RUNBOOK_OPERATOR`` and :func:`getpass.getuser`.
    """
    if given:
        return given, given_as
    if env := os.environ.get("RUNBOOK_OPERATOR"):
        return env, "env"
    if fallback:
        return fallback, "run"
    return getpass.getuser(), "login"


def new_run_id(runbook_id: str) -> str:
    """Return a new run id: ``<runbook-id>-<UTC yyyymmdd-hhmmss>-<4 hex>``."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"{runbook_id}-{stamp}-{pysecrets.token_hex(2)}"


def start_run(
    runbook_path: Path,
    env_path: Path | None,
    overrides: dict[str, str],
    store: Store,
    options: RunOptions,
    run_id: str | None = None,
    *,
    loaded: Loaded | None = None,
) -> RunResult:
    """Validate, create a run and execute it (``loaded``: see :func:`create_run`).

    Raises:
        InputError: bad runbook, environment, values or answers (nothing is written).
        RunPaused: stopped at an unanswered gate (exit 3).
        RunInterrupted: Ctrl-C (exit 130).
    """
    return create_run(
        runbook_path, env_path, overrides, store, options, run_id, loaded=loaded
    ).execute()


def create_run(
    runbook_path: Path,
    env_path: Path | None,
    overrides: dict[str, str],
    store: Store,
    options: RunOptions,
    run_id: str | None = None,
    *,
    queued: bool = False,
    loaded: Loaded | None = None,
) -> Runner:
    """Validate and create a run (journaled as started); return its runner, not yet executed.

    ``queued`` (``runbook run --queue``): the run is created ``queued`` for a worker to
    execute (:mod:`.queue`), and its secrets are not resolved here but on the worker.
    ``loaded``: the same runbook, environment and overrides loaded with their secrets
    already (by the preflight), so values and secrets are resolved once per run;
    ``None``: loaded here.

    The run's folder, with its signed ``run-started``, is written under a staging name
    before the store's row; the row is the commit point, and the folder is renamed into
    place right after it (:mod:`runbook_engine.run.recovery`): a kill leaves either no
    run or one that verifies and resumes.

    Raises:
        InputError: bad runbook, environment or values (nothing is written).
        StateError: ``run_id`` exists already.
    """
    if loaded is None or queued or loaded.shown is None:
        loaded = load(runbook_path, env_path, overrides, with_secrets=not queued, need_env=True)
    shown = loaded.shown or load(runbook_path, env_path, overrides, need_env=True).tailored
    _check_change_options(loaded, overrides, options)
    left_out = excluded(options.selection, loaded.tailored)  # bad ids refused before writing
    secret_values = run_secrets(loaded)
    run_id = run_id or new_run_id(loaded.runbook.id)
    if not _RUN_ID.fullmatch(run_id):
        raise InputError(
            f"--run-id {run_id!r}: use 1 to 100 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    env = loaded.environment
    record = RunRecord(
        run_id=run_id,
        runbook_id=loaded.runbook.id,
        runbook_path=str(runbook_path.resolve()),
        content_hash=loaded.runbook.content_hash,
        env_path=str(env_path.resolve()) if env_path else None,
        env_name=env.name if env else None,
        env_hash=env.content_hash if env else None,
        overrides=overrides,
        status="queued" if queued else "running",
        outcome=None,
        operator=options.operator,
        change_id=options.change_id,
        created_at=utcnow(),
        updated_at=utcnow(),
    )
    rows = [(ts.id, h.name, ts.number) for ts in loaded.tailored.steps for h in ts.hosts]
    if store.has_run(run_id):
        raise StateError(f"run {run_id} exists already")
    staging = prepare_staging(store, run_id)
    try:  # the run keeps its source: it goes on where these files are not (:mod:`.snapshot`)
        snapshot.keep(staging, runbook_path, record.content_hash, env_path, record.env_hash)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise StateError(f"run {run_id}: cannot keep a copy of its source: {exc}") from None
    signer = signer_for_run(store.state_dir, staging, run_id, None)
    if signer is not None:
        signer.export_public_key()
    journal = SignedJournal(staging / JOURNAL_NAME, Redactor(secret_values), signer, run_id)
    params = {k: v for k, v in (loaded.values.params if loaded.values else {}).items()}
    journal.append(
        "run-started",
        run_id=run_id,
        runbook=_runbook_fields(loaded),
        environment=_env_fields(loaded),
        parameters=params,
        operator=options.operator,
        operator_source=options.operator_source,
        change_id=options.change_id,
        tool={
            "name": "runbook-engine",
            "version": __version__,
            "python": platform.python_version(),
        },
        workstation=platform.node(),
        answers=_answers_fields(options.answers),
        reason=options.reason,
        emergency=options.emergency,
        approval_policy=loaded.runbook.meta.get("approval", "optional"),
        signing=signer.describe() if signer else None,
        steps=flow_fields(shown),
        mode="check" if options.check else "run",
        preflight=options.preflight,
        selection=options.selection.to_dict() if options.selection else None,
        **_operator_auth(options, "operator_"),
        **({"queued": True} if queued else {}),
    )
    short = sorted(
        n
        for n, v in (loaded.values.secrets if loaded.values else {}).items()
        if 0 < len(v) < MIN_FREE_TEXT_LENGTH
    )
    warnings = [
        f"secret {name!r} is shorter than {MIN_FREE_TEXT_LENGTH} characters: it is "
        "redacted in structured fields but cannot be found in command output"
        for name in short  # said once, up front: such a value cannot be found in free text
    ]
    for message in warnings:
        journal.append("warning", message=message)
    weakened = weakened_hosts(
        h for ts in [*loaded.tailored.steps, *loaded.tailored.helpers.values()] for h in ts.hosts
    )
    for host, what in weakened:
        journal.append(
            "transport-weakened",
            host=host.name,
            address=host.address,
            transport=host.transport,
            weakening=what,
        )
    try:
        store.create_run(record, rows)  # the commit point: the run exists from here on
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    crash_point("after-create")
    place_run_folder(store, run_id)
    runner = Runner(store, record, loaded, shown, options, secrets=secret_values)
    for message in warnings:
        runner.report.warning(message)
    for host, what in weakened:  # on standard error, whatever --quiet or --json say
        print(f"warning: host {host.name} ({host.transport}): {what}", file=sys.stderr)
    _exclude(runner, left_out)
    return runner


def _exclude(runner: Runner, left_out: dict[tuple[str, str], str]) -> None:
    """Journal and store what the run's selection leaves out (see :mod:`.selection`)."""
    count = exclude(runner.ctx, runner.loaded.tailored, left_out)
    if count:
        runner.report.warning(
            f"{runner.options.selection.describe()}: {count} step result(s) left out "
            "(journaled; the run can end partial at best)"
        )


def _check_change_options(loaded: Loaded, overrides: dict[str, str], options: RunOptions) -> None:
    """Refuse what must not start a run: an emergency without reason, a secret given with
    ``--set`` (it would be stored in clear), and what a step kind refuses (a missing
    approval, a bad approval body).

    Raises:
        InputError: (exit 2) before anything is written.
    """
    if options.emergency and not (options.reason or "").strip():
        raise InputError("--emergency needs --note: say why approval is bypassed")
    secret = sorted(
        n
        for n in overrides
        if n in loaded.runbook.parameters and loaded.runbook.parameters[n].secret
    )
    if secret:
        raise InputError(
            f"--set {secret[0]}: a secret parameter is never given on the command "
            "line; name its source under 'secrets' in the environment file"
        )
    for executor in executors():  # each kind's own refusals (the approval policy, ...)
        executor.check_run(loaded.tailored, options)


def resume_run(run_id: str, store: Store, options: RunOptions) -> RunResult:
    """Continue run ``run_id`` where it stopped; a finished run whose last records a kill
    left unsigned or unsealed is signed and sealed instead (its evidence completed).

    Raises:
        StateError: unknown run, finished run, or the runbook or environment
            changed since the run started (unless ``options.accept_changed``).
        RunPaused, RunInterrupted: as :func:`start_run`.
    """
    with store.lock_run(run_id):  # before run-resumed is written
        changes = reconcile(store, run_id)
        completed = complete_finished(store, run_id, options)
        if completed is not None:  # finished, but a kill cut its signature or seal
            return completed
        return _open_run(run_id, store, options, changes).execute()


def open_run(run_id: str, store: Store, options: RunOptions) -> Runner:
    """Check that run ``run_id`` can go on (journaled as resumed); return its runner.

    The run lock is held while the run is checked and ``run-resumed`` is written.

    Raises:
        StateError: as :func:`resume_run`; another process holds the run.
    """
    with store.lock_run(run_id):
        changes = reconcile(store, run_id)  # the journal, not state.db, says where the run is
        return _open_run(run_id, store, options, changes)


def _open_run(run_id: str, store: Store, options: RunOptions, changes: list[Any]) -> Runner:
    record = store.get_run(run_id)
    if record.status in ("succeeded", "unverified", "aborted", "checked"):
        raise StateError(f"run {run_id} is finished ({record.status}); start a new run instead")
    source = snapshot.source_of_run(store, record)
    started = read_journal(store.run_dir(run_id) / JOURNAL_NAME, verify=False)[0]
    if record.status == "queued" and (started.get("preflight") or {}).get("on_worker"):
        _preflight_on_worker(store, record, source, started)  # before secrets are needed
    with source.reading():
        loaded = load(
            source.runbook, source.env, record.overrides, with_secrets=True, need_env=True
        )
        shown = (
            loaded.shown
            or load(source.runbook, source.env, record.overrides, need_env=True).tailored
        )
    changed = []
    if loaded.runbook.content_hash != record.content_hash:
        changed.append(("runbook", record.content_hash, loaded.runbook.content_hash))
    env_hash = loaded.environment.content_hash if loaded.environment else None
    if env_hash != record.env_hash:
        changed.append(("environment", record.env_hash, env_hash))
    options.selection = Selection.from_dict(started.get("selection"))  # a resume keeps them
    options.check = started.get("mode") == "check"
    runner = Runner(store, record, loaded, shown, options)
    runner.claim()  # before anything is written: one process per run
    if changes:
        runner.journal.append("store-reconciled", changes=changes)
    for what, path, copy in source.copied:  # the recorded file is not on this machine
        sha = record.content_hash if what == "runbook" else record.env_hash
        runner.journal.append("source-copy-read", what=what, path=path, copy=copy, sha256=sha)
    if source.copied:
        runner.report.warning(source.describe())
    try:
        assumed = refuse_live_steps(store, run_id, runner, options)
    except StepStillRunning as still:
        runner.pool.close()  # the shells opened to look
        raise StepStillRunning(locate(still.message, location_args(store))) from None
    if changed and not options.accept_changed:
        what = ", ".join(
            f"{name} (sha256 {old and old[:12]} -> {new and new[:12]})"
            for name, old, new in changed
        )
        raise StateError(
            f"run {run_id}: the {what} changed since the run started; refusing to "
            "resume. Review the change, then resume with --accept-changed (the "
            "acceptance is recorded in the journal), or start a new run."
        )
    for name, old, new in changed:
        runner.journal.append(
            "change-accepted", what=name, old_sha256=old, new_sha256=new, by=options.operator
        )
        store.update_run(
            run_id, **({"content_hash": new} if name == "runbook" else {"env_hash": new})
        )
    if changed:  # the accepted source is kept too, next to the first
        env_hash = loaded.environment.content_hash if loaded.environment else None
        snapshot.keep(
            store.run_dir(run_id), source.runbook, loaded.runbook.content_hash, source.env, env_hash
        )
    current = set()
    for ts in loaded.tailored.steps:
        for host in ts.hosts:
            current.add((ts.id, host.name))
            store.ensure_step(run_id, ts.id, host.name, ts.number)
    for state in store.steps(run_id):  # steps the accepted change removed
        if (state.step_id, state.host) not in current and state.status not in DONE_STATUSES:
            reason = f"removed from the runbook (change accepted by {options.operator})"
            store.transition(
                run_id, state.step_id, state.host, "skipped", reason=reason, finished_at=utcnow()
            )
            runner.journal.append(
                "step-skipped", step=state.step_id, host=state.host, reason=reason
            )
    for state, error in assumed:
        runner.journal.append(
            "process-assumed-stopped",
            step=state.step_id,
            host=state.host,
            marker=state.marker,
            error=error,
            by=options.operator,
        )
    _exclude(runner, excluded(options.selection, loaded.tailored, strict=False))
    store.update_run(run_id, status="running")
    runner.append_signed(
        "run-resumed",
        by=options.operator,
        by_source=options.operator_source,
        answers=_answers_fields(options.answers),
        **_operator_auth(options, ""),
    )
    return runner


def _preflight_on_worker(
    store: Store, record: RunRecord, source: snapshot.Source, started: dict[str, Any]
) -> None:
    """The preflight of a run started with ``run --queue``, where it executes (its hosts,
    its secrets: the worker's), journaled as ``preflight`` with what failed.

    Raises:
        InputError: a check failed (exit 2; the run stays ``queued`` and the next
            ``runbook resume`` checks again).
    """
    from runbook_engine.evidence.signing import open_run_journal
    from runbook_engine.run.preflight import preflight

    with source.reading():
        tailored = load(source.runbook, source.env, record.overrides, need_env=True).tailored
        left_out = excluded(Selection.from_dict(started.get("selection")), tailored, strict=False)
        report = preflight(source.runbook, source.env, record.overrides, left_out)
    run_dir = store.run_dir(record.run_id)
    journal = open_run_journal(store.state_dir, run_dir, record.run_id, Redactor(report.secrets))
    journal.append(
        "preflight",
        **report.summary(),
        workstation=platform.node(),
        failures=report.journal_failures(),
    )
    if not report.ok:
        raise InputError(
            f"preflight on {platform.node()}: {report.failure_text()}. Nothing was started: run "
            f"{record.run_id} stays queued; fix this where it executes, then `runbook "
            f"resume {record.run_id}` there"
        )


def _runbook_fields(loaded: Loaded) -> dict[str, Any]:
    rb = loaded.runbook
    return {
        "id": rb.id,
        "title": rb.title,
        "version": rb.version,
        "path": str(rb.path.resolve()),
        "sha256": rb.content_hash,
    }


def _env_fields(loaded: Loaded) -> dict[str, Any] | None:
    env = loaded.environment
    if env is None:
        return None
    hosts = {
        role: [{"name": h.name, "address": h.address, "transport": h.transport} for h in hs]
        for role, hs in env.roles.items()
    }
    return {
        "name": env.name,
        "path": str(env.path.resolve()),
        "sha256": env.content_hash,
        "hosts": hosts,
    }


def _operator_auth(options: RunOptions, prefix: str) -> dict[str, Any]:
    """``{PREFIXauthenticated: true, PREFIXauth_method}`` for an operator the console
    signed in; nothing for a claimed name."""
    if not options.operator_auth_method:
        return {}
    return {f"{prefix}authenticated": True, f"{prefix}auth_method": options.operator_auth_method}


def _answers_fields(answers: Answers | None) -> dict[str, Any] | None:
    if answers is None:
        return None
    return {"path": str(answers.path), "sha256": answers.sha256, "operator": answers.operator}
