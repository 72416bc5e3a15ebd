"""Transports by name (a registry in papermill's shape) and a per-run pool.

``local`` runs commands in subprocesses; ``winrm`` on Windows hosts through
pywinrm (imported only when a winrm host is used); ``ssh`` on Linux hosts through the
OpenSSH client; ``manual`` is no transport
at all: a person is, and executors turn such steps into gates.

A new transport is one :func:`register_transport` call naming the function that
opens it (``"module:function"``, imported on first use) and, when its hosts take
options, the environment-file key of the options mapping and their validator.
Neither the runner nor the executors change.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from runbook_engine.errors import ExecutionError
from runbook_engine.source.model import Host
from runbook_engine.transports.base import CommandResult, Transport

if TYPE_CHECKING:
    from runbook_engine.errors import Problem

__all__ = [
    "TRANSPORTS",
    "CommandResult",
    "Transport",
    "TransportInfo",
    "TransportPool",
    "register_transport",
]

#: ``opener(host, secrets, on_output) -> Transport``
Opener = Callable[[Host, dict[str, str], Callable[[str], None] | None], Transport]


@dataclass(frozen=True, slots=True)
class TransportInfo:
    """One transport.

    Attributes:
        name: The ``transport:`` word in an environment file.
        description: One line for docs and errors.
        opener: ``"module:function"`` returning an open :class:`Transport` for a host
            (see :data:`Opener`); ``None`` when a person carries the commands out.
        options_key: The host key holding this transport's options (``winrm``), if any.
        validator: ``"module:function"`` checking that mapping:
            ``(options, path, line) -> list[Problem]``.
        finder: ``"module:function"`` telling which processes of a remotely started
            command still run: ``(transport, marker) -> list[int]`` (pids; raises
            :class:`ExecutionError` when the host cannot be asked).  A resume uses it for
            a step interrupted while its command ran (see
            :class:`~runbook_engine.transports.process.RemoteProcess`).
        weakener: ``"module:function"`` naming what a host's options weaken:
            ``(options) -> list[str]`` (certificate validation off, a password sent in
            clear); a run warns of each and journals it.
        secret_options: Keys of the options mapping whose value names a secret of the
            environment file (``credential``, ``become_password``); a run resolves them.
        kill_hint: ``"module:function"`` giving the command a person runs on the host to
            stop a command ``finder`` found: ``(transport, marker, pids) -> str``
            (WinRM: ``taskkill /T /F /PID ...``; SSH: ``kill -TERM -- -SID``).
        preflight: ``"module:function"`` checking a host before a run: ``(host, secrets,
            needs) -> list[HostCheck]`` (connection, authentication, shell, programs;
            see :mod:`runbook_engine.transports.preflight`); ``None``: not checkable.
        idle: The transport calls :attr:`~.process.CommandHooks.on_idle` while a command
            runs (its output loop, :func:`~.reader.follow`): the run may leave the
            previous step's acknowledgment to that call.
    """

    name: str
    description: str
    opener: str | None
    options_key: str | None = None
    validator: str | None = None
    finder: str | None = None
    weakener: str | None = None
    secret_options: tuple[str, ...] = ()
    kill_hint: str | None = None
    preflight: str | None = None
    idle: bool = False

    @property
    def by_hand(self) -> bool:
        """True when a person reaches the host: its commands become gates."""
        return self.opener is None

    def validate(self, options: Any, path: Any, line: int) -> list[Problem]:
        """Problems in a host's options mapping (none when there is no validator).

        Raises:
            ImportError: the transport's library is not installed.
        """
        if self.validator is None:
            return []
        return _target(self.validator)(options, path, line)

    def weakenings(self, options: Any) -> list[str]:
        """What ``options`` weaken, one sentence each (none without a ``weakener``)."""
        return [] if self.weakener is None else _target(self.weakener)(options)

    def open(
        self, host: Host, secrets: dict[str, str], on_output: Callable[[str], None] | None
    ) -> Transport:
        """Open the transport for ``host``.

        Raises:
            ExecutionError: a person reaches this host, or the transport cannot open.
        """
        if self.opener is None:
            raise ExecutionError(
                f"host {host.name}: transport {host.transport!r} cannot run commands"
            )
        return _target(self.opener)(host, secrets, on_output)

    def still_running(self, transport: Transport, marker: str) -> list[int]:
        """Pids of the processes ``marker`` names on ``transport``'s host (see ``finder``).

        Raises:
            ExecutionError: the host cannot be asked, or this transport has no finder.
        """
        if self.finder is None:
            raise ExecutionError(f"transport {self.name!r} cannot find a remote process")
        return _target(self.finder)(transport, marker)

    def stop_hint(self, transport: Transport, marker: str, pids: list[int]) -> str:
        """How a person stops the processes ``pids`` of the command marked ``marker``
        on ``transport``'s host (see ``kill_hint``; a sentence when there is none).

        Raises:
            ExecutionError: the host cannot be asked.
        """
        if self.kill_hint is None:
            return f"stop processes {', '.join(map(str, pids))} on the host"
        return str(_target(self.kill_hint)(transport, marker, pids))

    def check(self, host: Host, secrets: dict[str, str], needs: Any) -> list[Any]:
        """The preflight of ``host`` (see ``preflight``): a list of
        :class:`~runbook_engine.transports.preflight.HostCheck`; a host reached by hand, or
        a transport without a preflight, gives one line with ``ok`` ``None``."""
        from runbook_engine.transports.preflight import HostCheck

        if self.preflight is not None:
            return list(_target(self.preflight)(host, secrets, needs))
        if self.by_hand:
            detail = "by hand: a person reaches this host; nothing to connect to"
        else:
            detail = f"transport {self.name!r} has no preflight"
        return [HostCheck(host.name, self.name, "connect", None, detail)]


TRANSPORTS: dict[str, TransportInfo] = {}


def register_transport(info: TransportInfo) -> None:
    """Add ``info`` to :data:`TRANSPORTS` (replacing one of the same name)."""
    TRANSPORTS[info.name] = info


def _target(spec: str) -> Any:
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


register_transport(
    TransportInfo(
        "local",
        "a subprocess on this machine",
        "runbook_engine.transports.local:open_local",
        preflight="runbook_engine.transports.preflight:preflight_local",
        idle=True,
    )
)
register_transport(TransportInfo("manual", "a person, shown the exact commands", None))
register_transport(
    TransportInfo(
        "winrm",
        "Windows hosts over WS-Management (pywinrm)",
        "runbook_engine.transports.winrm:open_winrm",
        options_key="winrm",
        validator="runbook_engine.transports.winrm_options:validate_winrm_options",
        finder="runbook_engine.transports.winrm_identity:still_running",
        weakener="runbook_engine.transports.winrm_options:weakenings",
        kill_hint="runbook_engine.transports.winrm_identity:kill_hint",
        secret_options=("credential",),
        preflight="runbook_engine.transports.preflight:preflight_winrm",
    )
)
register_transport(
    TransportInfo(
        "ssh",
        "Linux and POSIX hosts over SSH (the OpenSSH client, one connection per host)",
        "runbook_engine.transports.ssh:open_ssh",
        options_key="ssh",
        validator="runbook_engine.transports.ssh_options:validate_ssh_options",
        finder="runbook_engine.transports.ssh_identity:still_running",
        kill_hint="runbook_engine.transports.ssh_identity:kill_hint",
        secret_options=("become_password",),
        preflight="runbook_engine.transports.ssh_preflight:preflight_ssh",
        idle=True,
    )
)


def weakened_hosts(hosts: Iterable[Host]) -> list[tuple[Host, str]]:
    """``(host, what is weakened)`` for each weakening of each distinct host, in order."""
    out: list[tuple[Host, str]] = []
    seen: set[tuple[str, str]] = set()
    for host in hosts:
        info = TRANSPORTS.get(host.transport)
        if info is None or (host.name, host.address) in seen:
            continue
        seen.add((host.name, host.address))
        out.extend((host, text) for text in info.weakenings(host.options))
    return out


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
        info = TRANSPORTS.get(host.transport)
        if info is None:
            raise ExecutionError(
                f"host {host.name}: transport {host.transport!r} cannot run commands"
            )
        transport = info.open(host, self._secrets, self._on_output)
        self._open[key] = transport
        return transport

    def close(self) -> None:
        """Close every open transport (errors while closing are ignored)."""
        for transport in self._open.values():
            with contextlib.suppress(Exception):  # closing must not hide the run's outcome
                transport.close()
        self._open.clear()
