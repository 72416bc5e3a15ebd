"""One store interface, two implementations, chosen by ``--store URL`` or ``RUNBOOK_STORE``.

:class:`Store` is what the runner, the lifecycle, the gates and the CLI use.  The default,
:class:`~runbook_engine.run.store.CheckpointStore`, keeps a state directory on one machine
(SQLite and files; nothing to set up).  A ``postgresql://`` URL names a team's
:class:`~runbook_engine.run.pgstore.store.PgStore`: every machine pointed at it sees the
same runs, journals, files, gates and locks.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path
from typing import Any, Protocol

from runbook_engine.errors import InputError
from runbook_engine.run.store import Anchor, CheckpointStore, GateDecision, RunRecord, StepState

#: URL schemes of the PostgreSQL store.
PG_SCHEMES = ("postgresql://", "postgres://")


class Store(Protocol):
    """Run, step and gate state, the journal's anchor and the run's lock.

    ``state_dir`` is a folder on this machine (the state directory, or the PostgreSQL
    store's working copies); ``run_dir`` a run's folder in it, ready to read.
    """

    state_dir: Path
    #: Whether the run lock can lapse without this process seeing it (the runner then
    #: commits waiting step ends before it starts the next command).
    lock_may_lapse: bool

    def close(self) -> None: ...
    def run_dir(self, run_id: str) -> Path: ...
    def lock_run(
        self, run_id: str, *, wait: float = 0.0
    ) -> contextlib.AbstractContextManager[None]: ...
    def create_run(self, record: RunRecord, steps: list[tuple[str, str, int]]) -> None: ...
    def has_run(self, run_id: str) -> bool: ...
    def get_run(self, run_id: str) -> RunRecord: ...
    def list_runs(self) -> list[RunRecord]: ...
    def update_run(self, run_id: str, **changes: Any) -> None: ...
    def steps(self, run_id: str) -> list[StepState]: ...
    def step(self, run_id: str, step_id: str, host: str) -> StepState | None: ...
    def steps_of(self, run_id: str, step_id: str) -> list[StepState]: ...
    def done_keys(self, run_id: str) -> set[tuple[str, str]]: ...
    def transition(
        self,
        run_id: str,
        step_id: str,
        host: str,
        status: str,
        *,
        clear_gate: bool = False,
        anchor: Anchor | None = None,
        durable: bool = True,
        **changes: Any,
    ) -> None: ...
    def transitions(
        self,
        run_id: str,
        moves: list[tuple[str, str, str, dict[str, Any]]],
        *,
        anchor: Anchor | None = None,
        durable: bool = True,
        clear_gate: bool = False,
    ) -> None: ...
    def set_anchor(self, run_id: str, anchor: Anchor, *, durable: bool = True) -> None: ...
    def anchor(self, run_id: str) -> Anchor | None: ...
    def ensure_step(self, run_id: str, step_id: str, host: str, position: int) -> None: ...
    def put_gate(self, decision: GateDecision) -> None: ...
    def peek_gate(self, run_id: str, step_id: str, host: str) -> GateDecision | None: ...
    def gate_decisions(self, run_id: str) -> dict[tuple[str, str], GateDecision]: ...
    def drop_gate(self, run_id: str, step_id: str, host: str) -> None: ...
    def take_gate(self, run_id: str, step_id: str, host: str) -> GateDecision | None: ...


def store_url(given: str | None = None) -> str | None:
    """The store URL: ``given`` (``--store``), else ``$RUNBOOK_STORE``; ``None``: the default."""
    url = given if given is not None else os.environ.get("RUNBOOK_STORE")
    return url or None


def is_pg(url: str | None) -> bool:
    """True when ``url`` names a PostgreSQL store."""
    return bool(url) and str(url).startswith(PG_SCHEMES)


def open_store(
    state_dir: Path, url: str | None = None, *, create: bool = True, run_id: str | None = None
) -> Store:
    """The store ``url`` names (``None``: the state directory's).

    Args:
        state_dir: The state directory; with a PostgreSQL URL, the working copies of run
            folders go in ``state_dir/team/<digest of the URL>``.
        create: For the state directory: create it when missing.

    Raises:
        InputError: ``url`` is neither empty nor ``postgresql://…`` (exit 2).
        StateError: the store cannot be opened (see each implementation).
    """
    if not url:
        return CheckpointStore(state_dir, create=create, run_id=run_id)
    if not is_pg(url):
        raise InputError(
            f"--store {url.split('://', 1)[0]}://…: give a postgresql://user@host/dbname URL "
            "(or no --store for the state directory)"
        )
    try:
        from runbook_engine.run.pgstore.store import PgStore
    except ImportError:
        raise InputError(
            "a postgresql:// store needs the team extra: pip install 'runbook-engine[team]'"
        ) from None
    return PgStore(url, work_folder(state_dir, url))


def work_folder(state_dir: Path, url: str | None) -> Path:
    """The folder a store's ``state_dir`` is on this machine: ``state_dir`` itself for
    the state directory, ``state_dir/team/<digest of the URL>`` (the working copies of
    run folders) for a PostgreSQL store.  Opens nothing."""
    if not is_pg(url):
        return state_dir
    from runbook_engine.run.pgstore.connection import shown_url

    digest = hashlib.sha256(shown_url(str(url)).encode("utf-8")).hexdigest()[:16]
    return state_dir / "team" / digest
