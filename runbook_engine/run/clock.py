"""The run's clock and the default state folder (shared by the store and the runner)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path


def utcnow() -> str:
    """Return the current UTC time as ISO-8601 with microseconds and ``Z``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def default_state_dir() -> Path:
    """Return the state directory: ``$RUNBOOK_STATE_DIR``, else ``$XDG_STATE_HOME/runbook-engine``,
    else ``~/.local/state/runbook-engine``."""
    if os.environ.get("RUNBOOK_STATE_DIR"):
        return Path(os.environ["RUNBOOK_STATE_DIR"])
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "runbook-engine"
