"""The transport interface: how a command reaches a host (shape of httpx's transports).

A transport runs one step's command on one host and returns a
:class:`CommandResult`.  Transports never raise for a command that ran and
failed (non-zero exit, timeout): that is a result.  They raise
:class:`~runbook_engine.errors.ExecutionError` only when the command could not
be run at all (host unreachable, authentication refused, interpreter missing);
foreign exceptions (subprocess, requests, pywinrm) are mapped to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What running one command produced.

    Attributes:
        exit_code: Process exit status; ``None`` when it was killed on timeout.
        stdout: Standard output decoded as UTF-8 (errors replaced).
        stderr: Standard error decoded as UTF-8 (errors replaced).
        duration: Wall time in seconds.
        timed_out: True when the deadline killed the command.
        command: The command line as run (for the journal; never holds secrets
            that were not already in the body).
        streams: Per stream (``stdout``, ``stderr``) the size, SHA-256 and bytes
            dropped of the whole output, when the transport capped what it kept.
    """

    exit_code: int | None
    stdout: str
    stderr: str
    duration: float
    timed_out: bool = False
    command: str = ""
    streams: dict[str, dict[str, Any]] | None = None

    @property
    def ok(self) -> bool:
        """True when the command exited 0 within its deadline."""
        return self.exit_code == 0 and not self.timed_out


@runtime_checkable
class Transport(Protocol):
    """Runs commands on one host.

    ``kind`` is the step kind (``cmd``, ``powershell``, ``sh``, ``bash``,
    ``python``); ``body`` is the tailored step body; ``timeout`` is the deadline
    in seconds (``None`` for none); ``cwd`` a working directory or ``None``;
    ``env`` extra environment variables (secrets reach commands only this way);
    ``errexit`` whether a ``sh``/``bash``/``powershell`` body stops at its first failing
    command (:data:`runbook_engine.source.kinds.ERREXIT`; on unless a step says
    ``errexit=false``).
    """

    name: str

    def run(
        self,
        kind: str,
        body: str,
        *,
        timeout: float | None = None,
        cwd: str | None = None,
        env: dict[str, str] | None = None,
        errexit: bool = True,
    ) -> CommandResult:
        """Run ``body`` as a ``kind`` command and wait for it (see class doc)."""
        ...

    def close(self) -> None:
        """Release connections and shells; safe to call twice."""
        ...
