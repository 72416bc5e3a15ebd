"""``runbook notebook run``: execute a runbook's notebook with papermill.

The notebook is built as ``runbook render --to ipynb`` builds it and executed
by papermill on a real ipykernel of this very interpreter (a kernelspec
written to a temporary ``JUPYTER_PATH`` entry names ``sys.executable``, so a
``python3`` kernelspec of another Python cannot be picked up).  Parameters go
to papermill as a dict, never as ``-p`` strings (DESIGN.md §7).

Every execution is one *attempt*: ``state_dir/runs/RUN_ID/notebooks/attempt-N.ipynb``,
reserved with an exclusive create so it is never overwritten; papermill saves
it after each cell and before raising, so even a failed attempt is kept.  The
journal gets a ``notebook-executed`` event with its path and SHA-256.

Exit statuses are those of ``runbook run`` (DESIGN.md §6), read from the
checkpoint store after the execution, not from papermill's error: 0 done,
1 failed or aborted, 2 bad input, 3 paused at a gate, 130 interrupted.
Per-step deadlines are the runner's (each step's ``timeout``); papermill's
execution timeout is not used.

Kernel chatter (debugger and platform-dirs warnings, the kernel's own stderr)
goes to a temporary log, shown only when the kernel itself fails.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runbook_engine.errors import InputError, StateError
from runbook_engine.run.store import CheckpointStore, RunRecord

#: Exit status by the run's status in the store after the execution.
EXIT_BY_STATUS = {
    "succeeded": 0,
    "unverified": 0,
    "failed": 1,
    "aborted": 1,
    "paused": 3,
    "interrupted": 130,
}
#: Exit status by the name of the exception a cell raised, when it says more than the store.
EXIT_BY_ERROR = {
    "NotebookInputError": 2,
    "NotebookStateError": 2,
    "NotebookPaused": 3,
    "StepFailed": 1,
}
_QUIET_ENV = {
    "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    "JUPYTER_PLATFORM_DIRS": "1",
    "PYTHONUNBUFFERED": "1",
}
_LOGGERS = ("papermill", "nbclient", "traitlets", "jupyter_client", "asyncio")


@dataclass(frozen=True, slots=True)
class NotebookOutcome:
    """How ``runbook notebook run`` ended.

    Attributes:
        run_id: The run.
        status: The run's status in the store (``paused``, ``failed``...), or
            ``not-started`` when the run could not be created.
        exit_status: The CLI's exit status.
        notebook: The executed notebook of this attempt (``None`` if not kept).
        sha256: SHA-256 (hex) of that file.
        attempt: Attempt number (1-based).
        message: What a person needs to read (the gate, the failure), or ``None``.
    """

    run_id: str
    status: str
    exit_status: int
    notebook: Path | None
    sha256: str | None
    attempt: int
    message: str | None


def run_notebook(
    runbook: Path,
    env_path: Path | None,
    *,
    state_dir: Path,
    overrides: dict[str, str],
    answers: Path | None,
    run_id: str | None,
    operator: str | None,
    change_id: str | None,
    output: Path | None = None,
    confirmations: dict[str, str] | None = None,
) -> NotebookOutcome:
    """Build and execute the notebook of ``runbook`` for one attempt of a run.

    Args:
        runbook: The runbook file.
        env_path: The environment file.
        state_dir: The state directory.
        overrides: ``--set`` values (new runs only).
        answers: An answers file, or ``None``.
        run_id: A new run's id (``None``: generated), or an existing run to continue.
        operator: Who runs it (``None``: ``$RUNBOOK_OPERATOR`` or the login name).
        change_id: Change ticket (new runs).
        output: Also copy the executed notebook here.
        confirmations: Gate decisions passed as the ``confirmations`` notebook
            parameter (step id -> ``confirm``, ``confirm:note``, ``skip:reason``).

    Raises:
        InputError: bad runbook, environment, values, answers, or a runbook or
            environment other than the existing run's (before any kernel starts).
        StateError: the run is finished.
    """
    from runbook_engine.notebook.api import parse_confirmations
    from runbook_engine.outputs.notebook import build_notebook
    from runbook_engine.run.gates import load_answers
    from runbook_engine.run.lifecycle import new_run_id

    store = CheckpointStore(state_dir)
    record = _existing(store, run_id)
    if record is not None:
        _check_same(record, runbook, env_path, overrides)
        loaded = _load(
            Path(record.runbook_path),
            Path(record.env_path) if record.env_path else None,
            record.overrides,
        )
    else:
        loaded = _load(runbook, env_path, overrides)
    if answers is not None:
        for warning in load_answers(answers, {s.id for s in loaded.runbook.steps}).warnings:
            print(f"runbook: {warning}", file=sys.stderr)
    unknown = sorted(
        set(parse_confirmations(confirmations or {})) - {ts.id for ts in loaded.tailored.steps}
    )
    if unknown:
        raise InputError(f"--decide names {', '.join(unknown)}: not a step of the runbook's flow")
    run_id = run_id or new_run_id(loaded.runbook.id)
    nb = build_notebook(loaded.tailored, change_id=change_id)
    params = {  # the files as this run reads them (the rendered cell holds library paths)
        "runbook_file": str(loaded.runbook.path.resolve()),
        "env_file": str(loaded.environment.path.resolve()) if loaded.environment else None,
        "run_id": run_id,
        "state_dir": str(state_dir.resolve()),
        "answers_file": str(answers.resolve()) if answers else None,
        "operator": operator,
        "change_id": change_id,
        "confirmations": dict(confirmations or {}),
    }
    folder = store.run_dir(run_id) / "notebooks"
    created = not store.run_dir(run_id).exists()
    attempt, path = _reserve(folder)
    error = _papermill(nb, path, params)
    return _conclude(store, run_id, attempt, path, error, output, created)


def _load(runbook: Path, env_path: Path | None, overrides: dict[str, Any]) -> Any:
    from runbook_engine.tailor.loading import load

    return load(runbook, env_path, overrides, need_env=True)


def _existing(store: CheckpointStore, run_id: str | None) -> RunRecord | None:
    if run_id is None:
        return None
    try:
        record = store.get_run(run_id)
    except StateError:
        return None
    if record.status in ("succeeded", "unverified", "aborted"):
        raise StateError(f"run {run_id} is finished ({record.status}); start a new run instead")
    return record


def _check_same(
    record: RunRecord, runbook: Path, env_path: Path | None, overrides: dict[str, str]
) -> None:
    env = env_path.resolve() if env_path else None
    if Path(record.runbook_path) != runbook.resolve() or (
        (Path(record.env_path) if record.env_path else None) != env
    ):
        raise InputError(
            f"run {record.run_id} runs {record.runbook_path} with environment "
            f"{record.env_path or 'none'}; give those (or leave out --run-id for "
            "a new run)"
        )
    if overrides:
        raise InputError(
            f"--set applies to new runs; run {record.run_id} keeps the values it started with"
        )


def _reserve(folder: Path) -> tuple[int, Path]:
    """Create ``attempt-N.ipynb`` exclusively (the next free N); never reuse a name."""
    folder.mkdir(parents=True, exist_ok=True)
    attempt = len(list(folder.glob("attempt-*.ipynb"))) + 1
    while True:
        path = folder / f"attempt-{attempt}.ipynb"
        try:
            with open(path, "x", encoding="utf-8"):
                return attempt, path
        except FileExistsError:
            attempt += 1


@dataclass(frozen=True, slots=True)
class _CellError:
    """What stopped the execution: the exception a cell raised, or the kernel's failure."""

    name: str
    message: str
    kernel_log: str = ""
    in_cell: bool = True


def _papermill(nb: Any, path: Path, params: dict[str, Any]) -> _CellError | None:
    """Execute ``nb`` into ``path``; return what stopped it, or ``None`` when every cell ran."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    from runbook_engine.notebook.engine import ENGINE_NAME

    with (
        tempfile.TemporaryDirectory(prefix="runbook-kernel-") as tmp,
        kernel_environment(Path(tmp)),
        _quiet(Path(tmp) / "kernel.log") as log,
    ):
        try:
            papermill.execute_notebook(
                nb,
                str(path),
                parameters=params,
                kernel_name="python3",
                engine_name=ENGINE_NAME,
                log_output=False,
                progress_bar=False,
                request_save_on_cell_execute=True,
                cwd=os.getcwd(),
            )
        except PapermillExecutionError as exc:
            return _CellError(exc.ename, exc.evalue)
        except KeyboardInterrupt:
            return _CellError("RunInterrupted", "interrupted")
        except Exception as exc:  # kernel start or death: report it, keep the record
            sys.stderr.flush()
            return _CellError(
                type(exc).__name__, str(exc), log.read_text(errors="replace")[-4000:], in_cell=False
            )
    return None


@contextlib.contextmanager
def kernel_environment(tmp: Path) -> Iterator[None]:
    """Set up, for the length of the block, the environment a kernel started here inherits.

    A ``python3`` kernelspec for ``sys.executable`` (without the debugger) comes
    first on ``JUPYTER_PATH``; connection files and the IPython profile go to
    ``tmp`` (nothing is written to ``$HOME``); debugger and platform-dirs
    warnings are switched off.  ``os.environ`` is restored afterwards.
    """
    spec = tmp / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Python 3 (runbook-engine)",
                "language": "python",
                "metadata": {"debugger": False},
            }
        ),
        encoding="utf-8",
    )
    changes = dict(_QUIET_ENV)
    changes["JUPYTER_PATH"] = os.pathsep.join(
        p for p in (str(tmp / "jupyter"), os.environ.get("JUPYTER_PATH")) if p
    )
    changes["JUPYTER_RUNTIME_DIR"] = str(tmp / "runtime")
    changes["IPYTHONDIR"] = str(tmp / "ipython")
    saved = {k: os.environ.get(k) for k in changes}
    os.environ.update(changes)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def _quiet(log: Path) -> Iterator[Path]:
    """Send file descriptors 1 and 2 (the kernel inherits them) and noisy loggers to ``log``."""
    levels = {name: logging.getLogger(name).level for name in _LOGGERS}
    for name in _LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = (os.dup(1), os.dup(2))
    with open(log, "wb") as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield log
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            for name, level in levels.items():
                logging.getLogger(name).setLevel(level)


def _conclude(
    store: CheckpointStore,
    run_id: str,
    attempt: int,
    path: Path,
    error: _CellError | None,
    output: Path | None,
    created: bool,
) -> NotebookOutcome:
    record = _existing_any(store, run_id)
    if record is None:
        path.unlink(missing_ok=True)
        if created:
            with contextlib.suppress(OSError):
                path.parent.rmdir()
                path.parent.parent.rmdir()
        message = error.message if error else "the notebook did not create the run"
        if error and error.kernel_log:
            message += "\n" + error.kernel_log
        code = EXIT_BY_ERROR.get(error.name, 1) if error else 1
        return NotebookOutcome(run_id, "not-started", code, None, None, attempt, message)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    status = record.status
    from runbook_engine.evidence.signing import open_run_journal

    open_run_journal(store.state_dir, store.run_dir(run_id), run_id).append(
        "notebook-executed",
        attempt=attempt,
        path=str(path.resolve()),
        sha256=digest,
        run_status=status,
        error=error.name if error else None,
    )
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        tmp = output.with_name(f".{output.name}.tmp")
        shutil.copyfile(path, tmp)
        tmp.replace(output)
    code = EXIT_BY_STATUS.get(status, 1)
    if error is not None and error.name in ("NotebookInputError", "NotebookStateError"):
        code = 2
    elif error is not None and error.name in ("RunInterrupted", "KeyboardInterrupt"):
        code = 130
    elif error is not None and (code == 0 or not error.in_cell):
        code = 1
    message = None
    if code == 130:
        message = (
            f"run {run_id} interrupted; `runbook resume {run_id}` continues it (the "
            "interrupted step is checked, or a person confirms it, before it runs again)"
        )
    elif error is not None:
        message = error.message if error.name in EXIT_BY_ERROR else f"{error.name}: {error.message}"
        message += f"\n{error.kernel_log}" if error.kernel_log else ""
    return NotebookOutcome(run_id, status, code, path, digest, attempt, message)


def _existing_any(store: CheckpointStore, run_id: str) -> RunRecord | None:
    try:
        return store.get_run(run_id)
    except StateError:
        return None
