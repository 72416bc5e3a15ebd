"""The local transport: run a step's body as a script on the operator's machine.

The body is written byte for byte to a temporary script file and run by the
kind's interpreter (``sh FILE``, ``bash FILE``, ``python FILE``, ``pwsh -File
FILE``, ``cmd.exe /d /c FILE.cmd``), so indentation, blank lines and heredocs
survive exactly.  The child starts in a new session (POSIX) or process group
(Windows); on the deadline the whole group gets SIGTERM, then, after a grace
period, SIGKILL (Windows: CTRL_BREAK, then ``taskkill /T /F``), so grandchildren
die with it.  On POSIX each transport also starts, with its first command, one small
*reaper* (:mod:`runbook_engine.transports.supervise`, run with ``python -I``) and tells
it each command's process group right after the command started (``add PGID`` on the
reaper's standard input; ``del PGID`` once it ended).  When this process dies, even by
SIGKILL, the reaper kills every group still registered, so a step never outlives its
runner; the interpreter start-up is paid once per transport, not once per command, and
the process identity reported is the command's own (it leads its group).  One window
is left: a SIGKILL of this process after the fork of a command and before the write of
its ``add`` line (the moment ``Popen`` takes to return once the command's exec succeeded,
well under a millisecond) leaves that command unwatched.  :meth:`LocalTransport.close`
ends the reaper.  Output is read in the calling thread, standard output and error and
the command's exit in one :mod:`selectors` loop (:mod:`runbook_engine.transports.reader`),
in blocks into a bounded :class:`~runbook_engine.transports.capture.Capture` (head and
tail, digest of all);
the current :class:`~runbook_engine.transports.process.CommandHooks` give the cap, the
redaction filter and who is told the process identity.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runbook_engine.errors import ExecutionError
from runbook_engine.transports.base import CommandResult
from runbook_engine.transports.capture import Capture
from runbook_engine.transports.process import IDLE_SECONDS, CommandHooks, current_hooks, identify
from runbook_engine.transports.reader import StreamReader, follow

#: The reaper script, run by path (``python -I``: it needs only the standard library).
SUPERVISOR = str(Path(__file__).with_name("supervise.py"))

if TYPE_CHECKING:
    from runbook_engine.source.model import Host

IS_WINDOWS = os.name == "nt"
#: Seconds between SIGTERM and SIGKILL on timeout, and the longest wait for the
#: output pipes to close after the command exited (a background child may hold them).
GRACE_SECONDS = 2.0
_SUFFIX = {"sh": ".sh", "bash": ".sh", "python": ".py", "powershell": ".ps1", "cmd": ".cmd"}


def _which(program: str) -> str:
    found = _found_on_path(program, os.environ.get("PATH"))
    if found is None:
        raise ExecutionError(f"{program} step cannot run locally: no {program} on PATH")
    return found


#: Where step scripts are written: ``$TMPDIR`` when set, else ``/dev/shm`` where it is a
#: writable folder (memory: a script never reaches the disk, and creating and removing one
#: per step adds nothing to the file system journal the run's ``fsync``s wait for), else
#: the system's temporary folder.
_SCRIPTS = (
    "/dev/shm"
    if not os.environ.get("TMPDIR") and os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK)
    else None
)


@functools.lru_cache(maxsize=64)
def _found_on_path(program: str, path: str | None) -> str | None:
    """``shutil.which(program)`` for this ``PATH`` (looked up once per run, not per step)."""
    return shutil.which(program, path=path)


#: Interpreter options that make a shell stop at the first failing command (errexit);
#: bash also fails a pipeline when any of its commands fails (as GitHub Actions runs bash).
ERREXIT_OPTIONS = {"sh": ["-e"], "bash": ["-e", "-o", "pipefail"]}
#: First line of a PowerShell script in errexit mode: errors stop the script.
POWERSHELL_ERREXIT = "$ErrorActionPreference = 'Stop'\n"


def interpreter(kind: str, errexit: bool = True) -> list[str]:
    """Return the argument vector that runs a ``kind`` script (the file is appended).

    With ``errexit`` (the default) ``sh`` runs with ``-e`` and ``bash`` with
    ``-e -o pipefail``: options of the interpreter, never text added to the body.

    Raises:
        ExecutionError: the kind is unknown or its interpreter is not available here.
    """
    if kind in ("sh", "bash"):
        return [_which(kind), *(ERREXIT_OPTIONS[kind] if errexit else [])]
    if kind == "python":
        return [sys.executable]
    if kind == "powershell":
        pwsh = shutil.which("pwsh") or (shutil.which("powershell") if IS_WINDOWS else None)
        if pwsh is None:
            raise ExecutionError(
                "powershell step cannot run locally: no pwsh on PATH (install PowerShell 7 "
                "or target a winrm or manual host)"
            )
        return [pwsh, "-NoProfile", "-NonInteractive", "-File"]
    if kind == "cmd":
        if not IS_WINDOWS:
            raise ExecutionError(
                "cmd step cannot run locally: cmd steps need a Windows host "
                "(target a role whose host uses winrm or manual)"
            )
        return [os.environ.get("COMSPEC", "cmd.exe"), "/d", "/c"]
    raise ExecutionError(f"local transport cannot run {kind!r} steps")


def _script_bytes(kind: str, body: str, errexit: bool = True) -> bytes:
    if kind == "cmd":
        return body.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")
    if kind == "powershell":
        body = (POWERSHELL_ERREXIT if errexit else "") + body
        return b"\xef\xbb\xbf" + body.encode("utf-8")  # BOM: Windows PowerShell 5 reads UTF-8
    return body.encode("utf-8")


class LocalTransport:
    """Runs step bodies as scripts in subprocesses on this machine.

    Args:
        on_output: Called with each output line (stdout and stderr, without the
            line break) as it arrives; calls are serialised.  An exception it raises
            stops further calls for that command, never the command.
        grace: Seconds between SIGTERM and SIGKILL on timeout.
    """

    name = "local"

    def __init__(
        self,
        *,
        on_output: Callable[[str], None] | None = None,
        grace: float = GRACE_SECONDS,
    ) -> None:
        self._on_output = on_output
        self._grace = grace
        self._reaper = None if IS_WINDOWS else _Reaper(grace)

    def close(self) -> None:
        """End the reaper (started with the first command); safe to call twice.

        A command still running in another thread is killed by the reaper.
        """
        if self._reaper is not None:
            self._reaper.close()

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
        """Run ``body`` as a ``kind`` script and wait for it.

        Args:
            kind: ``sh``, ``bash``, ``python``, ``powershell`` or ``cmd`` (Windows only).
            body: The script, written to a temporary file as UTF-8.
            timeout: Deadline in seconds; ``None`` for none.
            cwd: Working directory; ``None`` for the current one.
            env: Variables added to a copy of this process's environment.
            errexit: Stop at the first failing command: ``sh -e``, ``bash -e -o
                pipefail``, a first line ``$ErrorActionPreference = 'Stop'`` in
                PowerShell (the command in the result shows the options); no effect
                on ``python`` and ``cmd``.

        Returns:
            The result; ``exit_code`` is ``None`` and ``timed_out`` true when the
            deadline killed the command (output up to then is kept).

        Raises:
            ExecutionError: the kind cannot run here, the interpreter or ``cwd`` is
                missing, or the process cannot be started.
        """
        argv = interpreter(kind, errexit)
        if cwd is not None and not Path(cwd).is_dir():
            raise ExecutionError(f"working directory {cwd!r} does not exist")
        if timeout is not None and timeout <= 0:
            raise ExecutionError(f"timeout must be a positive number of seconds, not {timeout}")
        child_env = os.environ.copy()
        child_env.update({str(k): str(v) for k, v in (env or {}).items()})
        fd, script = tempfile.mkstemp(prefix="runbook-step-", suffix=_SUFFIX[kind], dir=_SCRIPTS)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(_script_bytes(kind, body, errexit))
            return self._execute([*argv, script], timeout, cwd, child_env)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(script)

    def _emitter(self) -> Callable[[str], None] | None:
        callback = self._on_output
        if callback is None:
            return None
        broken = False

        def emit(line: str) -> None:
            nonlocal broken
            if broken:
                return
            try:
                callback(line)
            except Exception:
                broken = True

        return emit

    def _execute(
        self, argv: list[str], timeout: float | None, cwd: str | None, env: dict[str, str]
    ) -> CommandResult:
        command = subprocess.list2cmdline(argv) if IS_WINDOWS else shlex.join(argv)
        hooks = current_hooks()
        start = time.monotonic()
        reaper = self._reaper
        if reaper is not None:
            reaper.start()  # before the command: a reaper that cannot start stops nothing
        try:
            proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                **_group_options(),
            )
        except (OSError, ValueError) as exc:
            raise ExecutionError(f"cannot start {argv[0]!r}: {exc}") from exc
        try:
            if reaper is not None:  # at once: until then a SIGKILL of ours leaves it unwatched
                reaper.add(proc.pid)
        except BaseException:
            self._kill_group(proc)
            raise
        try:
            return self._follow(proc, command, hooks, timeout, start)
        finally:
            # Once the leader is reaped its group is no longer ours (its id may be reused);
            # a leader left unreaped by an error stays watched.
            if reaper is not None and proc.returncode is not None:
                reaper.remove(proc.pid)

    def _follow(
        self,
        proc: subprocess.Popen[bytes],
        command: str,
        hooks: CommandHooks,
        timeout: float | None,
        start: float,
    ) -> CommandResult:
        """Read the output of the started ``proc`` and wait for it (or kill it)."""
        emit = self._emitter()
        limit = max(2, hooks.max_output // 2)  # per stream
        out = StreamReader(proc.stdout, Capture(limit), emit, hooks.filter)  # type: ignore[arg-type]
        err = StreamReader(proc.stderr, Capture(limit), emit, hooks.filter)  # type: ignore[arg-type]
        try:
            if hooks.on_process is not None:
                hooks.on_process(identify(proc.pid))
            idle = None if hooks.on_idle is None else (IDLE_SECONDS, hooks.on_idle)
            timed_out = follow(proc, [out, err], timeout, self._grace, self._kill_group, idle=idle)
        except BaseException:  # Ctrl-C or any other stop: the command must not outlive the run
            if proc.returncode is None:
                self._kill_group(proc)
            for reader in (out, err):
                reader.end()
            raise
        return CommandResult(
            exit_code=None if timed_out else proc.returncode,
            stdout=out.text(),
            stderr=err.text(),
            duration=time.monotonic() - start,
            timed_out=timed_out,
            command=command,
            streams={"stdout": out.capture.info(), "stderr": err.capture.info()},
        )

    def _kill_group(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGTERM the child's whole group, wait ``grace`` seconds, then SIGKILL it."""
        if IS_WINDOWS:  # pragma: no cover - exercised on Windows only
            with contextlib.suppress(OSError):
                proc.send_signal(signal.CTRL_BREAK_EVENT)  # type: ignore[attr-defined]
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(self._grace)
            subprocess.run(
                ["taskkill", "/T", "/F", "/PID", str(proc.pid)], capture_output=True, check=False
            )
            proc.wait()
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        _wait_unreaped(proc, self._grace)
        # The group may outlive its leader (a grandchild ignoring SIGTERM): kill it all.
        # The leader is not reaped yet, so its pid (the group id) cannot have been reused.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


#: Closed reapers not waited for (they exit on their own), reaped at the next close.
_ENDING: list[subprocess.Popen[bytes]] = []


class _Reaper:
    """The transport's handle on its reaper process (POSIX): started lazily, told the
    process groups to watch, ended by :meth:`close`.  Thread-safe.

    If the reaper died (killed by hand), the next :meth:`start` or :meth:`add` starts a
    new one and registers again the groups still running.
    """

    def __init__(self, grace: float) -> None:
        self._grace = grace
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._groups: set[int] = set()

    def start(self) -> None:
        """Start the reaper unless it runs.

        Raises:
            ExecutionError: it cannot be started.
        """
        with self._lock:
            self._ensure()

    def add(self, pgid: int) -> None:
        """Watch group ``pgid`` (started a moment ago by this process).

        Raises:
            ExecutionError: no reaper could be told.
        """
        with self._lock:
            self._groups.add(pgid)
            self._send(f"add {pgid}\n")

    def remove(self, pgid: int) -> None:
        """Stop watching group ``pgid`` (its leader has been reaped)."""
        with self._lock:
            self._groups.discard(pgid)
            proc = self._proc
            if proc is None or proc.poll() is not None:
                return  # closed or dead: a new reaper is only told the groups left
            with contextlib.suppress(OSError):
                os.write(proc.stdin.fileno(), f"del {pgid}\n".encode())  # type: ignore[union-attr]

    def close(self) -> None:
        """Close the reaper's input; safe to call twice.  With groups still registered
        (commands running in another thread) wait for it to kill them and exit; with none
        it exits by itself as soon as it reads the end of its input (waiting for that
        would add the reaper's start-up time to a short run's end)."""
        with self._lock:
            proc, self._proc = self._proc, None
            left = bool(self._groups)
        if proc is None:
            return
        with contextlib.suppress(OSError):
            proc.stdin.close()  # type: ignore[union-attr]
        if left:
            with contextlib.suppress(subprocess.TimeoutExpired):  # it kills groups left
                proc.wait(self._grace + 2)
        else:  # reaped later (here or by the next close), never left a zombie for long
            _ENDING[:] = [p for p in [*_ENDING, proc] if p.poll() is None]

    def _ensure(self) -> subprocess.Popen[bytes]:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            return proc
        argv = [sys.executable, "-I", SUPERVISOR, "--reaper", str(os.getpid()), str(self._grace)]
        try:
            proc = subprocess.Popen(
                argv,
                bufsize=0,
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,  # it may outlive us: it must hold no pipe of ours
                start_new_session=True,  # out of reach of the terminal's Ctrl-C and hang-up
            )
        except (OSError, ValueError) as exc:
            raise ExecutionError(f"cannot start the step reaper: {exc}") from exc
        self._proc = proc
        known = "".join(f"add {pgid}\n" for pgid in sorted(self._groups)).encode()
        with contextlib.suppress(OSError):  # a failure shows at the next write
            os.write(proc.stdin.fileno(), known)  # type: ignore[union-attr]
        return proc

    def _send(self, line: str) -> None:
        for _ in range(2):
            proc = self._ensure()
            try:
                os.write(proc.stdin.fileno(), line.encode())  # type: ignore[union-attr]
                return
            except OSError:  # it died: start another one, which is told every group
                with contextlib.suppress(OSError):
                    proc.stdin.close()  # type: ignore[union-attr]
                proc.wait()
                self._proc = None
        raise ExecutionError("cannot tell the step reaper about a command")


def _group_options() -> dict[str, Any]:
    if IS_WINDOWS:  # pragma: no cover
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}  # type: ignore[attr-defined]
    return {"start_new_session": True}


def _wait_unreaped(proc: subprocess.Popen[bytes], seconds: float) -> None:
    """Wait up to ``seconds`` for ``proc`` to exit, without reaping it where POSIX allows."""
    if not hasattr(os, "waitid"):  # pragma: no cover - old macOS builds
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(seconds)
        return
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                return
        except ChildProcessError:
            return
        time.sleep(0.02)


def open_local(
    host: Host, secrets: dict[str, str], on_output: Callable[[str], None] | None
) -> LocalTransport:
    """Open the ``local`` transport (the registry's opener; ``host`` and ``secrets``
    are not needed: commands get their secrets through the environment)."""
    return LocalTransport(on_output=on_output)
