"""Where and how much of a command's output the runner keeps: the cap and the file name."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from runbook_engine.transports.process import DEFAULT_MAX_OUTPUT

if TYPE_CHECKING:
    from runbook_engine.run.options import RunOptions
    from runbook_engine.source.model import Host


def max_output_bytes(options: RunOptions) -> int:
    """Bytes of a command's output kept: ``options.max_output``, else
    ``$RUNBOOK_MAX_OUTPUT``, else :data:`DEFAULT_MAX_OUTPUT`."""
    if getattr(options, "max_output", None):
        return int(options.max_output)  # type: ignore[arg-type]
    env = os.environ.get("RUNBOOK_MAX_OUTPUT", "").strip()
    return int(env) if env.isdigit() and int(env) > 0 else DEFAULT_MAX_OUTPUT


def output_name(step_id: str, own_id: str, host: Host, attempt: int, purpose: str) -> str:
    """The file (in ``output/``) that keeps one command's output; the journal names it."""
    return f"{step_id}.{purpose}-{own_id}@{host.name}.{attempt}.txt"
