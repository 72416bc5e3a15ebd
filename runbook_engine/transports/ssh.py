"""SSH transport: the OpenSSH client, one multiplexed connection per host per run.

Each host gets one master connection (``ssh -N -f -o ControlMaster=yes`` with ``ControlPersist``, as
Ansible's ssh plugin does by default) the first time a step runs there; every command
then runs through it (``ControlMaster=auto``: a master that ended while idle is opened
again).  The client is run with ``BatchMode=yes`` (never a prompt), strict host key
checking against ``known_hosts_file`` (or ``accept-new``, whose accepted key is reported
with its SHA-256 fingerprint for the journal), and the host's ``ssh:`` options
(:mod:`~runbook_engine.transports.ssh_options`).

A step runs as a fixed remote script that receives its values, working directory and
body on standard input (:mod:`~runbook_engine.transports.ssh_scripts`): no value is ever
on a command line, here or on the host.  The script is written in and both output pipes
are read by one selectors loop in the calling thread, as for the local transport
(:func:`~runbook_engine.transports.reader.follow`: no reader threads), in blocks into a bounded
:class:`~runbook_engine.transports.capture.Capture`; on the deadline the step's remote
session is killed (TERM, then KILL) through the connection.  Connection, host key, sudo
and interpreter failures raise one clear :class:`ExecutionError` each
(:mod:`~runbook_engine.transports.ssh_errors`).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from typing import IO

from runbook_engine.errors import ConnectionLost, EnvironmentFileError, ExecutionError, Problem
from runbook_engine.source.model import Host
from runbook_engine.transports.base import CommandResult
from runbook_engine.transports.capture import Capture
from runbook_engine.transports.process import IDLE_SECONDS, RemoteProcess, current_hooks
from runbook_engine.transports.reader import StreamReader, follow
from runbook_engine.transports.ssh_errors import become_message, connection_error
from runbook_engine.transports.ssh_options import SSHOptions, file_problems, validate_ssh_options
from runbook_engine.transports.ssh_scripts import (
    ENDED,
    INTERPRETERS,
    LISTING,
    STARTED,
    command_line,
    kill_body,
    parse_listing,
    payload,
)

#: Seconds a master connection stays open with no command running.
CONTROL_PERSIST = 60
#: Seconds between TERM and KILL of a timed-out step's remote session.
GRACE_SECONDS = 2.0
#: Seconds allowed for the listing and the kill helper.
HELPER_TIMEOUT = 30.0
_BLOCK = 64 * 1024


#: The fixed first line of an errexit ``sh``/``bash`` step (GitHub Actions' defaults).
ERREXIT_LINES: dict[str, str] = {"sh": "set -e\n", "bash": "set -eo pipefail\n"}


class _MarkedReader(StreamReader):
    """The client's standard error: what comes before :data:`STARTED` is the client's and
    sudo's own messages (kept in :attr:`before`); the step's output follows it, up to
    :data:`ENDED` (removed; :attr:`finished` tells it came).  Read by the same loop as
    standard output (:func:`~runbook_engine.transports.reader.follow`)."""

    def __init__(
        self,
        stream: IO[bytes],
        capture: Capture,
        emit: Callable[[str], None] | None,
        filter: Callable[[str], str] | None,
    ) -> None:
        super().__init__(stream, capture, emit, filter)
        self.before = b""
        self.started = False
        self.finished = False  # (``ended``: the pipe, as for any StreamReader)
        self._held = b""  # a tail that may be the start of ENDED

    def feed(self, chunk: bytes) -> None:
        """Take the next ``chunk``: the client's messages, then the step's output."""
        if not self.started:
            self.before += chunk
            at = self.before.find(STARTED)
            if at < 0:
                self.before = self.before[-_BLOCK:]
                return
            self.started = True
            chunk = self.before[at + len(STARTED) :]
            self.before = self.before[:at]
        data = self._held + chunk
        if not self.finished and (at := data.find(ENDED)) >= 0:
            self.finished, data = True, data[:at] + data[at + len(ENDED) :]
        keep = 0 if self.finished else _prefix_at_end(data, ENDED)
        self._held = data[len(data) - keep :] if keep else b""
        super().feed(data[: len(data) - keep])

    def end(self) -> None:
        """The pipe closed: keep what was held back, then end."""
        if self._held:
            held, self._held = self._held, b""
            super().feed(held)
        super().end()


def _prefix_at_end(data: bytes, mark: bytes) -> int:
    """The length of the longest end of ``data`` that ``mark`` starts with (a mark cut in two)."""
    for n in range(min(len(mark) - 1, len(data)), 0, -1):
        if mark.startswith(data[-n:]):
            return n
    return 0


def _quiet(emit: Callable[[str], None] | None) -> Callable[[str], None] | None:
    """``emit`` that never raises: the display never stops a command."""
    if emit is None:
        return None

    def shown(line: str) -> None:
        with contextlib.suppress(Exception):
            emit(line)

    return shown


class SSHTransport:
    """Runs ``sh``, ``bash`` and ``python`` steps on one Linux (POSIX) host over SSH.

    Args:
        host: The host; ``host.options`` is its ``ssh:`` mapping.
        become_password: The resolved ``become_password`` secret, if any.
        on_output: Called with each output line as it arrives.
        grace: Seconds between TERM and KILL of a timed-out step.

    Raises:
        EnvironmentFileError: invalid options or a missing private key file.
        ExecutionError: no ``ssh`` client on PATH.
    """

    name = "ssh"

    def __init__(
        self,
        host: Host,
        become_password: str | None = None,
        *,
        on_output: Callable[[str], None] | None = None,
        grace: float = GRACE_SECONDS,
    ) -> None:
        problems = validate_ssh_options(host.options, None, host.line) + file_problems(host)
        if problems:
            raise EnvironmentFileError("\n".join(p.format() for p in problems), problems)
        client = shutil.which("ssh")
        if client is None:
            raise ExecutionError("ssh transport: no ssh client on PATH (install openssh-client)")
        self.host = host
        self.options = SSHOptions.of(host)
        self._client = client
        self._password = become_password
        self._on_output = on_output
        self._grace = grace
        self._lock = threading.Lock()
        self._control_dir: str | None = None
        #: How many master connections this transport opened.
        self.connections_opened = 0

    # -- the client's command line ------------------------------------------------------
    def _base(self) -> list[str]:
        o = self.options
        if self._control_dir is None:
            self._control_dir = tempfile.mkdtemp(prefix="rbe-ssh-")
        argv = [self._client, "-o", "BatchMode=yes", "-o", f"ConnectTimeout={o.connect_timeout}"]
        argv += [
            "-o",
            f"StrictHostKeyChecking={'yes' if o.host_key_checking == 'strict' else 'accept-new'}",
        ]
        argv += [
            "-o",
            f"UserKnownHostsFile={o.known_hosts_file}",
            "-o",
            "GlobalKnownHostsFile=/dev/null",
        ]
        argv += [
            "-o",
            f"ControlPath={self._control_dir}/%C",
            "-o",
            f"ControlPersist={CONTROL_PERSIST}",
        ]
        argv += ["-p", str(o.port)]
        if o.user:
            argv += ["-l", o.user]
        if o.private_key_file:
            argv += ["-i", o.private_key_file, "-o", "IdentitiesOnly=yes"]
        return argv + list(o.common_args)

    def argv(self, remote: str) -> list[str]:
        """The client's command line running ``remote`` through the master connection."""
        return [*self._base(), "-o", "ControlMaster=auto", self.host.address, remote]

    # -- connection ------------------------------------------------------------------------
    def connect(self) -> None:
        """Open the master connection unless it is open (the first command does this).

        Raises:
            ExecutionError: the connection failed (one message per cause).
        """
        with self._lock:
            if self.connections_opened:  # later commands reopen it (ControlMaster=auto)
                return
            first_use = self._is_unknown() if self.options.host_key_checking != "strict" else False
            with tempfile.TemporaryFile() as err:
                argv = [*self._base(), "-o", "ControlMaster=yes", "-N", "-f"]
                try:
                    rc = subprocess.run(
                        [*argv, self.host.address],
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL,
                        stderr=err,
                        timeout=self.options.connect_timeout + 30,
                        check=False,
                    ).returncode
                except subprocess.TimeoutExpired:
                    raise connection_error(*self._where(), "Connection timed out") from None
                err.seek(0)
                stderr = err.read().decode("utf-8", errors="replace")
            if rc != 0:
                raise connection_error(*self._where(), stderr)
            self.connections_opened += 1
            if first_use:
                self._report_new_key()

    def _where(self) -> tuple[str, str, SSHOptions]:
        return self.host.name, self.host.address, self.options

    def _known_name(self) -> str:
        a = self.host.address
        return a if self.options.port == 22 else f"[{a}]:{self.options.port}"

    def _is_unknown(self) -> bool:
        found = subprocess.run(
            ["ssh-keygen", "-F", self._known_name(), "-f", self.options.known_hosts_file],
            capture_output=True,
            check=False,
        )
        return found.returncode != 0

    def _report_new_key(self) -> None:
        """Tell the run (``on_event``) the fingerprint of the key accepted on first use."""
        found = subprocess.run(
            ["ssh-keygen", "-F", self._known_name(), "-f", self.options.known_hosts_file],
            capture_output=True,
            text=True,
            check=False,
        )
        keys = [ln.split() for ln in found.stdout.splitlines() if ln and not ln.startswith("#")]
        for parts in keys:
            if len(parts) < 3:
                continue
            digest = hashlib.sha256(base64.b64decode(parts[2])).digest()
            fingerprint = "SHA256:" + base64.b64encode(digest).decode().rstrip("=")
            on_event = current_hooks().on_event
            fields = {"host": self.host.name, "key_type": parts[1], "fingerprint": fingerprint}
            if on_event is not None:
                on_event("host-key-accepted", fields)
            if self._on_output is not None:
                self._on_output(
                    f"[runbook: {self.host.name}: host key {parts[1]} {fingerprint} "
                    f"trusted on first use and added to {self.options.known_hosts_file}]"
                )

    # -- running ---------------------------------------------------------------------------
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
        """Run ``body`` as a ``kind`` step on the host and wait for it.

        Args:
            kind: ``sh``, ``bash`` or ``python`` (``python3`` on the host).
            body: The step body (sent on standard input, written to a 0600 file there).
            timeout: Deadline in seconds; on expiry the step's remote session is killed
                and the result has ``timed_out=True`` and ``exit_code=None``.
            cwd: Working directory on the host.
            env: Variables for the step (sent on standard input, never on a command line).
            errexit: Stop at the first failing command: the script sent starts with the
                fixed line ``set -e`` (sh) or ``set -eo pipefail`` (bash), as the local
                transport's interpreter options do (error line numbers are one higher).

        Raises:
            ExecutionError: the step could not be run (connection, host key, sudo, missing
                interpreter or working directory).
        """
        if timeout is not None and timeout <= 0:
            raise ExecutionError(f"timeout must be a positive number of seconds, not {timeout}")
        interp = INTERPRETERS.get(kind)
        if interp is None:
            raise ExecutionError(
                f"SSH host {self.host.name}: cannot run a {kind!r} step; SSH steps are "
                f"{', '.join(INTERPRETERS)}"
            )
        if errexit and kind in ERREXIT_LINES:
            body = ERREXIT_LINES[kind] + body
        try:
            data = payload(body, env or {}, cwd, self._password if self.options.become else None)
        except ValueError as exc:
            raise ExecutionError(f"SSH host {self.host.name}: {exc}") from None
        self.connect()
        marker = uuid.uuid4().hex
        hooks = current_hooks()
        if hooks.on_process is not None:
            hooks.on_process(RemoteProcess("ssh", self.host.name, marker))
        become = self.options.become_user if self.options.become else None
        remote = command_line(marker, interp, become, self._password is not None)
        shown = f"ssh {self.host.address} {kind} step (marker {marker})"
        return self._execute(remote, data, timeout, marker, shown, stream=True)

    def _execute(
        self,
        remote: str,
        data: bytes,
        timeout: float | None,
        marker: str,
        shown: str,
        *,
        stream: bool,
    ) -> CommandResult:
        hooks = current_hooks()
        start = time.monotonic()
        proc = subprocess.Popen(
            self.argv(remote),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # the terminal's Ctrl-C reaches us, and we stop the step
        )
        emit = _quiet(self._on_output if stream else None)
        limit = max(2, hooks.max_output // 2)
        out = StreamReader(proc.stdout, Capture(limit), emit, hooks.filter)  # type: ignore[arg-type]
        err = _MarkedReader(proc.stderr, Capture(limit), emit, hooks.filter)  # type: ignore[arg-type]
        stopped: list[bool] = []

        def stop(proc: subprocess.Popen[bytes]) -> None:  # the deadline passed
            stopped.append(True)
            self._stop(proc, marker)

        try:  # one loop in this thread: the script in, both pipes out, the deadline
            idle = None if hooks.on_idle is None else (IDLE_SECONDS, hooks.on_idle)
            timed_out = follow(
                proc, [out, err], timeout, self._grace + 5, stop, stdin=data, idle=idle
            )
        except BaseException:  # Ctrl-C or any stop: the step must not outlive the run
            if not stopped:  # (a failed stop at the deadline is not tried twice)
                with contextlib.suppress(Exception):
                    self._stop(proc, marker)
            raise
        if not err.started and not timed_out:
            raise ExecutionError(self._not_started(proc.returncode, err.before))
        if not timed_out and not err.finished and proc.returncode == 255:
            raise ConnectionLost(
                f"SSH host {self.host.name}: connection lost while the step ran; whether "
                f"it ended is unknown and it may still run there (marker {marker})",
                marker,
            )
        return CommandResult(
            exit_code=None if timed_out else proc.returncode,
            stdout=out.text(),
            stderr=err.text(),
            duration=time.monotonic() - start,
            timed_out=timed_out,
            command=shown,
            streams={"stdout": out.capture.info(), "stderr": err.capture.info()},
        )

    def _not_started(self, code: int | None, before: bytes) -> str:
        text = before.decode("utf-8", errors="replace")
        if code == 255 and "runbook:" not in text:
            return connection_error(*self._where(), text).message
        if self.options.become:
            message = become_message(self.host.name, self.options, text)
            if message:
                return message
        for line in text.splitlines():
            if line.startswith("runbook: command not found: "):
                missing = line.rsplit(": ", 1)[-1]
                return (
                    f"SSH host {self.host.name}: command not found: {missing} is not on the "
                    "host's PATH (install it there)"
                )
            if line.startswith("runbook: "):
                return f"SSH host {self.host.name}: {line[len('runbook: ') :]}"
        last = [ln for ln in text.splitlines() if ln.strip()]
        return (
            f"SSH host {self.host.name}: the step could not start (exit {code}"
            + (f": {last[-1][:300]}" if last else "")
            + ")"
        )

    def _stop(self, proc: subprocess.Popen[bytes], marker: str) -> None:
        """Kill the marked step's remote session, then the local client."""
        try:
            self._kill_remote(marker)
        finally:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(self._grace)
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    def _kill_remote(self, marker: str) -> None:
        sids, _ = parse_listing(self.listing(), marker)
        if not sids:
            return
        become = self.options.become_user if self.options.become else None
        helper = uuid.uuid4().hex
        remote = command_line(helper, "sh", become, self._password is not None)
        pw = self._password if self.options.become else None
        data = payload(kill_body(sids, marker, self._grace), {}, None, pw)
        result = self._execute(remote, data, HELPER_TIMEOUT, helper, "kill", stream=False)
        if not result.ok:
            raise ExecutionError(
                f"SSH host {self.host.name}: could not stop the timed-out step (marker "
                f"{marker}, sessions {', '.join(map(str, sids))}): {result.stderr[-300:]}"
            )

    def listing(self) -> str:
        """The host's process list (pid, session, command line), as the login user.

        Raises:
            ExecutionError: the host could not be asked.
        """
        self.connect()
        try:
            done = subprocess.run(
                self.argv(LISTING), capture_output=True, timeout=HELPER_TIMEOUT, check=False
            )
        except subprocess.TimeoutExpired:
            raise ExecutionError(
                f"SSH host {self.host.name}: listing processes gave no answer in time"
            ) from None
        if done.returncode != 0:
            stderr = done.stderr.decode("utf-8", errors="replace")
            if done.returncode == 255:
                raise connection_error(*self._where(), stderr)
            raise ExecutionError(
                f"SSH host {self.host.name}: listing processes failed ({LISTING}: "
                f"exit {done.returncode})"
            )
        return done.stdout.decode("utf-8", errors="replace")

    def close(self) -> None:
        """Close the master connection and remove its socket folder; safe to call twice."""
        folder = self._control_dir
        if folder is None:
            return
        if self.connections_opened:
            with contextlib.suppress(Exception):
                subprocess.run(
                    [*self._base(), "-O", "exit", self.host.address],
                    capture_output=True,
                    timeout=10,
                )
        self._control_dir = None
        shutil.rmtree(folder, ignore_errors=True)


def open_ssh(
    host: Host, secrets: dict[str, str], on_output: Callable[[str], None] | None
) -> SSHTransport:
    """Open the ``ssh`` transport for ``host`` (the registry's opener).

    Raises:
        ExecutionError: ``become_password`` names a secret that was not resolved.
    """
    name = host.options.get("become_password")
    password = secrets.get(str(name)) if name else None
    if name and password is None:
        raise ExecutionError(
            f"host {host.name}: become_password {name!r} was not resolved; name it under "
            "'secrets' in the environment file"
        )
    return SSHTransport(host, password, on_output=on_output)


__all__ = ["Problem", "SSHTransport", "open_ssh"]
