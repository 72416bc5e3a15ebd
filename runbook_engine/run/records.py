"""What the stores hold: a run, a step on a host, a gate decision (dataclasses), and the
words and times they use.  Shared by :mod:`.store` (SQLite) and the PostgreSQL store."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from runbook_engine.evidence.safeio import utc_now

Anchor = tuple[int, str]  #: a run's ``(journal seq, record hash)`` anchor
STEP_STATUSES = ("pending", "running", "succeeded", "failed", "skipped", "awaiting", "already-done")
DONE_STATUSES = frozenset({"succeeded", "skipped", "already-done"})
RUN_STATUSES = ("running", "paused", "succeeded", "failed", "aborted", "interrupted", "unverified")


#: The current UTC time as ISO-8601 with microseconds and ``Z`` (the journal's clock).
utcnow = utc_now


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One run as stored.

    Attributes mirror the ``runs`` table; ``overrides`` is the ``--set``
    mapping; times are UTC ISO-8601 strings.
    """

    run_id: str
    runbook_id: str
    runbook_path: str
    content_hash: str
    env_path: str | None
    env_name: str | None
    env_hash: str | None
    overrides: dict[str, str]
    status: str
    outcome: str | None
    operator: str
    change_id: str | None
    created_at: str
    updated_at: str


@dataclass(frozen=True, slots=True)
class StepState:
    """One step on one host as stored (``status`` is one of :data:`STEP_STATUSES`;
    ``pid``, ``pid_start`` and ``pgid`` identify the local process of its last command,
    ``marker`` the remote one: see :class:`~runbook_engine.transports.process.RemoteProcess`)."""

    run_id: str
    step_id: str
    host: str
    position: int
    status: str
    attempts: int
    exit_code: int | None
    started_at: str | None
    finished_at: str | None
    reason: str | None
    output_digest: str | None
    updated_at: str
    pid: int | None = None
    pid_start: int | None = None
    pgid: int | None = None
    marker: str | None = None


@dataclass(frozen=True, slots=True)
class GateDecision:
    """A decision given for a gate outside the running process (``runbook confirm``)."""

    run_id: str
    step_id: str
    host: str
    decision: str
    by: str
    note: str | None
    source: str
    at: str


def default_state_dir() -> Path:
    """Return the state directory: ``$RUNBOOK_STATE_DIR``, else ``$XDG_STATE_HOME/runbook-engine``,
    else ``~/.local/state/runbook-engine``."""
    if os.environ.get("RUNBOOK_STATE_DIR"):
        return Path(os.environ["RUNBOOK_STATE_DIR"])
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "runbook-engine"
