"""The remote equivalent of a step's process identity, for WinRM hosts.

Each step command started on a Windows host carries a marker unique to that command in
its command line (``set "RBE_STEP=<marker>"& ...``, from
:func:`~runbook_engine.transports.winrm_scripts.build_plan`); cmd.exe, and the script it
starts, keep that line as their ``CommandLine``, which ``wmic process`` lists.  The marker
plays the part a local pid and start time play: it names this one command, and no later
command reuses it.

* :func:`report_started` tells the runner the marker just before the command is sent
  (the runner journals ``process-started`` and keeps the marker in the step's
  checkpoint): a runner killed while the host starts the command has recorded it
  already.  A marker recorded for a command the host never started is harmless: no
  process carries it, so a resume finds nothing running.
* :func:`still_running` asks the host, when a run is resumed, which processes still carry
  the marker (their descendants included).

The WS-Management shell of a killed runner is not deleted, and the command in it goes on
running until it ends or the shell's idle timeout ends it: a resume must look.
"""

from __future__ import annotations

import time
from typing import Any

from runbook_engine.errors import ExecutionError
from runbook_engine.transports.process import RemoteProcess, current_hooks
from runbook_engine.transports.winrm_errors import ShellGone
from runbook_engine.transports.winrm_scripts import (
    kill_command,
    parse_process_list,
    process_list_command,
)

#: Seconds allowed for the process listing on resume.
LISTING_TIMEOUT = 30.0


def report_started(host_name: str, marker: str) -> None:
    """Tell the hooks of the current thread that the command marked ``marker`` started."""
    hooks = current_hooks()
    if hooks.on_process is not None:
        hooks.on_process(RemoteProcess("winrm", host_name, marker))


def still_running(transport: Any, marker: str) -> list[int]:
    """The pids on ``transport``'s host whose command line holds ``marker``, then their
    descendants; empty when the command has ended.

    ``transport`` is an open :class:`~runbook_engine.transports.winrm.WinRMTransport`
    (typed loosely: that module imports this one).  The listing runs in the transport's
    own shell, without streaming its output to the run's display.

    Raises:
        ExecutionError: the host could not be asked (unreachable, credentials, TLS,
            fault, or the listing failed or timed out).
    """
    try:
        shell = transport._ensure_shell()
        listing = transport._run_command(
            shell,
            process_list_command(),
            time.monotonic() + LISTING_TIMEOUT,
            kill=False,
            stdin_eof=False,
        )
    except ShellGone as gone:
        raise ExecutionError(
            f"WinRM host {transport.host.name}: the shell was lost while listing processes "
            f"({gone.action})"
        ) from None
    if listing.timed_out or listing.exit_code != 0:
        raise ExecutionError(
            f"WinRM host {transport.host.name}: listing processes failed "
            f"({process_list_command()}: "
            + ("no answer in time" if listing.timed_out else f"exit {listing.exit_code}")
            + ")"
        )
    return parse_process_list(listing.stdout, marker)


def kill_hint(transport: Any, marker: str, pids: list[int]) -> str:
    """``taskkill /T /F /PID ...`` for the processes :func:`still_running` found
    (the registry's ``kill_hint``; the host is not asked again)."""
    return kill_command(pids)
