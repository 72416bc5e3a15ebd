"""Transports by name (a registry in papermill's shape) and a per-run pool.

``local`` runs commands in subprocesses; ``winrm`` on Windows hosts through
pywinrm (imported only when a winrm host is used); ``manual`` is no transport
at all: the runner turns such steps into gates.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from runbook_engine.errors import ExecutionError
from runbook_engine.model import Host
from runbook_engine.transports.base import CommandResult, Transport

__all__ = ["CommandResult", "Transport", "TransportPool"]


class TransportPool:
    """One transport per host for the length of a run, opened lazily, closed together.

    Args:
        secrets: Resolved secret values by name (credentials for WinRM hosts).
        on_output: Called with each output line as it arrives (may be ``None``).
    """

    def __init__(
        self, secrets: dict[str, str], on_output: Callable[[str], None] | None = None
    ) -> None:
        self._secrets = secrets
        self._on_output = on_output
        self._open: dict[str, Transport] = {}

    def get(self, host: Host) -> Transport:
        """Return the transport for ``host``, opening it on first use.

        Raises:
            ExecutionError: the host's transport is ``manual`` or unknown, or its
                credential is missing.
        """
        key = f"{host.transport}:{host.name}:{host.address}"
        if key in self._open:
            return self._open[key]
        if host.transport == "local":
            from runbook_engine.transports.local import LocalTransport

            transport: Transport = LocalTransport(on_output=self._on_output)
        elif host.transport == "winrm":
            from runbook_engine.transports.winrm import WinRMTransport

            credential = host.options.get("credential")
            password = self._secrets.get(str(credential)) if credential else None
            if credential and password is None:
                raise ExecutionError(
                    f"host {host.name}: credential {credential!r} was not resolved; "
                    "name it under 'secrets' in the environment file"
                )
            transport = WinRMTransport(host, password, on_output=self._on_output)
        else:
            raise ExecutionError(
                f"host {host.name}: transport {host.transport!r} cannot run commands"
            )
        self._open[key] = transport
        return transport

    def close(self) -> None:
        """Close every open transport (errors while closing are ignored)."""
        for transport in self._open.values():
            with contextlib.suppress(Exception):  # closing must not hide the run's outcome
                transport.close()
        self._open.clear()
