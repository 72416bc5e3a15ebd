"""What a run tells a transport about one command, and what it learns back.

:func:`command_hooks` sets, for the commands started by the current thread, a
:class:`CommandHooks`: who to tell the started process's identity (the runner records
it, so a resume can refuse to rerun a step whose process is still alive), a filter
applied to output before it is kept (redaction), and the cap on output kept in memory
(head and tail; the digest covers everything).  It is a context variable, so the
:class:`~runbook_engine.transports.base.Transport` protocol does not change.

:class:`ProcessIdentity` names a process across pid reuse: pid plus its start time
(``/proc/PID/stat`` field 22, in clock ticks since boot) and its process group.  For a
local step it is the step's own process (the interpreter of its script), which leads its
group; the reaper that kills that group if the runner dies is a separate process.
:class:`RemoteProcess` is the remote equivalent: a command started on a host through a
transport (WinRM), named by the unique marker its command line carries; the host's
transport finds it again by that marker (:mod:`runbook_engine.transports.winrm_identity`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Bytes of a command's output kept by default (head and tail); the rest is dropped.
DEFAULT_MAX_OUTPUT = 10 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ProcessIdentity:
    """One process: ``pid``, ``start`` (boot-relative start time; ``None`` where
    unknown) and ``pgid`` (its process group: the step and everything it started)."""

    pid: int
    start: int | None
    pgid: int | None = None

    def fields(self) -> dict[str, Any]:
        """The identity as journal and store fields."""
        return {"pid": self.pid, "pid_start": self.start, "pgid": self.pgid}

    def columns(self) -> dict[str, Any]:
        """The store's identity columns (a local process has no marker)."""
        return {**self.fields(), "marker": None}

    def kill_hint(self) -> str:
        """The command that stops this process and all it started, on this machine:
        ``pkill -TERM -g PGID`` (POSIX; the step leads its group), ``taskkill /T /F /PID``
        on Windows.  Not ``kill -TERM -PGID``: procps-ng 4.0.2's ``/bin/kill`` takes
        ``-PGID`` there for an option and signals every process."""
        if os.name == "nt":
            return f"taskkill /T /F /PID {self.pid}"
        if self.pgid is None:
            return f"kill -TERM {self.pid}"
        return f"pkill -TERM -g {self.pgid}"


@dataclass(frozen=True, slots=True)
class RemoteProcess:
    """A command started on ``host`` through ``transport``, whose process tree carries
    ``marker`` in its command line (WinRM: ``RBE_STEP=<marker>``, unique per command).

    Its pid is not known (nor needed): the transport lists the host's processes and
    looks for the marker (:func:`~runbook_engine.transports.winrm_identity.still_running`).
    """

    transport: str
    host: str
    marker: str

    def fields(self) -> dict[str, Any]:
        """The identity as journal fields (the journal record names the host already)."""
        return {"transport": self.transport, "marker": self.marker}

    def columns(self) -> dict[str, Any]:
        """The store's identity columns (no local pid)."""
        return {"pid": None, "pid_start": None, "pgid": None, "marker": self.marker}


@dataclass(frozen=True, slots=True)
class CommandHooks:
    """What the runner wants from a transport while the current thread runs commands.

    Attributes:
        on_process: Called once with the started process's identity (a
            :class:`RemoteProcess` for a remote command, reported just before it is sent).
        filter: Applied to each block of decoded output before it is kept and digested.
        max_output: Bytes of output kept per stream (half head, half tail).
        on_event: Called with an event name and its fields for something the transport
            did that belongs in the journal (SSH: ``host-key-accepted`` on first use).
        on_idle: Called once, in the calling thread, when a command has run
            :data:`IDLE_SECONDS` (transports whose ``idle`` is set: local, SSH); it must
            not raise.
    """

    on_process: Callable[[ProcessIdentity | RemoteProcess], None] | None = None
    filter: Callable[[str], str] | None = None
    max_output: int = DEFAULT_MAX_OUTPUT
    on_event: Callable[[str, dict[str, Any]], None] | None = None
    on_idle: Callable[[], None] | None = None


#: Seconds a command runs before :attr:`CommandHooks.on_idle` is called.
IDLE_SECONDS = 0.2

_NO_HOOKS = CommandHooks()
_HOOKS: ContextVar[CommandHooks | None] = ContextVar("runbook_command_hooks", default=None)


def current_hooks() -> CommandHooks:
    """The hooks in force for the current thread (defaults when none were set)."""
    return _HOOKS.get() or _NO_HOOKS


@contextlib.contextmanager
def command_hooks(hooks: CommandHooks) -> Iterator[None]:
    """Use ``hooks`` for commands the current thread runs inside the block."""
    token = _HOOKS.set(hooks)
    try:
        yield
    finally:
        _HOOKS.reset(token)


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes().decode("ascii", errors="replace")
    except OSError:
        return None
    # "pid (comm) state ppid pgrp ..." -- comm may hold spaces and parentheses.
    return raw[raw.rfind(")") + 2 :].split()


def start_time(pid: int) -> int | None:
    """The start time of ``pid`` in clock ticks since boot, or ``None`` (gone, not Linux)."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields and len(fields) > 19 else None


def identify(pid: int) -> ProcessIdentity:
    """The identity of live process ``pid`` (it leads its own group)."""
    return ProcessIdentity(pid, start_time(pid), pid)


def is_alive(identity: ProcessIdentity) -> bool:
    """True when ``identity``'s process still runs (same pid and start time), or any
    process is left in its process group (a grandchild the step started).

    A pid reused by another process (another start time) means the old group is empty:
    the kernel does not hand out a pid that still names a process group.
    """
    fields = _stat_fields(identity.pid)
    if fields is None and not Path("/proc/self/stat").exists():  # not Linux: pid only
        try:
            os.kill(identity.pid, 0)
        except ProcessLookupError:
            return False
        except OSError:
            return True
        return True
    if fields is not None and identity.start is not None and int(fields[19]) != identity.start:
        return False
    if fields is not None and fields[0] != "Z":
        return True
    return identity.pgid is not None and bool(group_members(identity.pgid))


def group_members(pgid: int) -> list[int]:
    """Pids of live (not zombie) processes in process group ``pgid`` (Linux)."""
    found = []
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            fields = _stat_fields(int(entry.name))
            if fields and fields[0] != "Z" and fields[2] == str(pgid):
                found.append(int(entry.name))
    return found
