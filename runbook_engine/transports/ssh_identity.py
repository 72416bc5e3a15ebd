"""Finding a step started over SSH again, and telling a person how to stop it.

A step runs in its own session on the host (``setsid -w``, see
:mod:`~runbook_engine.transports.ssh_scripts`), and its script's path carries the step's
marker (``rbe-MARKER.``).  :func:`still_running` is the registry's finder (a resume asks
it whether an interrupted step still runs); :func:`kill_hint` is the command a person
runs on the host to stop it: ``pkill -TERM -s SID,...``, every process of the sessions
the marker names, behind ``sudo`` when the host's steps run with become.

Not ``kill -TERM -SID``: the shells' ``kill`` builtins take it, but procps-ng 4.0.2's
``/bin/kill`` (Debian 12, what ``sudo kill`` runs) reads ``-SID`` there as a signal
option and signals every process (``kill(-1)``; seen here); and dash's builtin refuses
``kill -TERM -- -SID`` (``Illegal number: --``).  ``pkill -s`` names a session without a
negative number, in procps and busybox alike.
"""

from __future__ import annotations

import shlex
from typing import Any

from runbook_engine.transports.ssh_scripts import parse_listing


def still_running(transport: Any, marker: str) -> list[int]:
    """Pids on ``transport``'s host in the session of the step marked ``marker``
    (empty when the step has ended).

    Args:
        transport: An open :class:`~runbook_engine.transports.ssh.SSHTransport`.
        marker: The step's marker (journaled with ``process-started``).

    Raises:
        ExecutionError: the host could not be asked.
    """
    return parse_listing(transport.listing(), marker)[1]


def kill_hint(transport: Any, marker: str, pids: list[int]) -> str:
    """The command that stops the step marked ``marker`` on ``transport``'s host.

    Lists the host's processes again for the step's sessions; when the step ended in
    between, says so.

    Raises:
        ExecutionError: the host could not be asked.
    """
    sids, _ = parse_listing(transport.listing(), marker)
    if not sids:
        return "it has just ended; resume again"
    return session_kill_command(sids, _become_user(transport))


def session_kill_command(sids: list[int], become_user: str | None) -> str:
    """``pkill -TERM -s SID,...`` (with ``sudo`` / ``sudo -u USER`` for a become host)."""
    command = "pkill -TERM -s " + ",".join(map(str, sids))
    if become_user is None:
        return command
    if become_user == "root":
        return f"sudo {command}"
    return f"sudo -u {shlex.quote(become_user)} {command}"


def _become_user(transport: Any) -> str | None:
    options = transport.options
    return options.become_user if options.become else None
