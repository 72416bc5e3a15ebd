"""Where a step's command output goes: the kept size, the file name, the write.

The journal names each output file (``output_file``) and holds the SHA-256 of its bytes;
:mod:`runbook_engine.evidence.files` checks them.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from runbook_engine.errors import storage_error
from runbook_engine.run.options import RunOptions
from runbook_engine.source.model import Host
from runbook_engine.transports.process import DEFAULT_MAX_OUTPUT


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


def write_output(run_dir: Path, name: str, output: str) -> str:
    """Write ``output`` (UTF-8) to ``output/NAME`` in ``run_dir``; return its SHA-256 (hex).

    Raises:
        StorageError: the disk refused the write (exit 74).
    """
    folder = run_dir / "output"
    data = output.encode("utf-8")
    try:
        folder.mkdir(exist_ok=True)
        (folder / name).write_bytes(data)
    except OSError as exc:
        raise storage_error(f"output {folder / name}", exc) from exc
    return hashlib.sha256(data).hexdigest()
