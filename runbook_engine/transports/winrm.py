"""WinRM transport: one reused cmd shell per host, per-step deadlines, chunked script upload.

Built on pywinrm's :class:`winrm.protocol.Protocol` (never ``winrm.Session``, which
opens and deletes a shell for every command).  Facts used here:

* WS-Management shell actions Create, Command, Send, Receive, Signal, Delete and
  the fault codes ``2150858793`` (``ERROR_WSMAN_OPERATIONTIMEOUT``: no output yet,
  poll again) and ``2150858843`` (``ERROR_WSMAN_SHELL_NOT_FOUND``): [MS-WSMV] §3.1.4.
* cmd.exe accepts at most 8191 characters on a command line: KB 830473.
* ``powershell -EncodedCommand`` takes base64 of UTF-16LE text (PowerShell 2.0 help).
* PowerShell serialises its error, warning and verbose streams as CLIXML on
  stderr when the output is redirected ([MS-PSRP] §2.2.5).

pywinrm and requests are imported lazily: the environment loader imports this
module for :func:`validate_winrm_options` and must stay fast (DESIGN.md §6).
"""

from __future__ import annotations

import codecs
import contextlib
import math
import time
from collections.abc import Callable
from typing import Any

from runbook_engine.errors import EnvironmentFileError, ExecutionError, Problem
from runbook_engine.source.model import Host
from runbook_engine.transports.base import CommandResult
from runbook_engine.transports.winrm_errors import ShellGone, describe_error, is_shell_gone
from runbook_engine.transports.winrm_identity import report_started
from runbook_engine.transports.winrm_options import (
    AUTH_METHODS,
    DEFAULT_OPERATION_TIMEOUT_SEC,
    DEFAULT_READ_TIMEOUT_SEC,
    OPTION_NAMES,
    endpoint_of,
    file_problems,
    validate_winrm_options,
)
from runbook_engine.transports.winrm_scripts import (
    CommandPlan,
    build_plan,
    decode_clixml,
    kill_command,
    parse_process_list,
    process_list_command,
)

#: Seconds allowed for each helper command run while killing a timed-out step.
KILL_HELPER_TIMEOUT = 30.0

OutputCallback = Callable[[str], None]


class WinRMTransport:
    """Runs ``cmd`` and ``powershell`` steps on one Windows host over WinRM.

    One cmd shell (UTF-8 code page 65001) is opened on the first :meth:`run`, reused
    for every step and deleted by :meth:`close`; when the server reports it gone
    before a step started, it is reopened once.

    Args:
        host: The host; ``host.options`` is its ``winrm:`` mapping (see ENV-SPEC.md).
        password: The resolved credential (``None`` for certificate or kerberos).
        on_output: Called with each line of output (stdout and stderr, without the
            line break) as it arrives, as :class:`TransportPool` expects.

    Raises:
        EnvironmentFileError: invalid options, missing password, missing cert or CA file.
    """

    name = "winrm"

    def __init__(
        self, host: Host, password: str | None, *, on_output: OutputCallback | None = None
    ) -> None:
        problems = validate_winrm_options(host.options, None, host.line)
        problems += file_problems(host)
        auth = host.options.get("transport", "ntlm")
        if password is None and auth in ("basic", "ntlm", "credssp"):
            problems.append(
                Problem(
                    f"winrm: host {host.name}: transport {auth} needs a password; "
                    "name a secret with 'credential:'",
                    None,
                    host.line,
                    code="RB214",
                )
            )
        if problems:
            raise EnvironmentFileError("\n".join(p.format() for p in problems), problems)
        self.host = host
        self.endpoint = endpoint_of(host)
        self._password = password
        self._on_output = on_output
        self._read = int(host.options.get("read_timeout_sec", DEFAULT_READ_TIMEOUT_SEC))
        self._op = int(host.options.get("operation_timeout_sec", DEFAULT_OPERATION_TIMEOUT_SEC))
        self._protocol: Any = None
        self._shell_id: str | None = None
        #: How many shells this transport created (1 unless the server lost one).
        self.shells_opened = 0

    # -- public API -------------------------------------------------------------------
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
        """Run ``body`` as a ``cmd`` or ``powershell`` step and wait for it.

        Args:
            kind: ``"cmd"`` or ``"powershell"``.
            body: The step body (LF line ends; sent with CRLF).
            timeout: Deadline in seconds; on expiry the remote process tree is killed
                and the result has ``timed_out=True`` and ``exit_code=None``.
            cwd: Working directory on the host.
            env: Extra environment variables (written into the uploaded script, never
                into :attr:`CommandResult.command`).
            errexit: Start PowerShell with ``$ErrorActionPreference = 'Stop'`` (not cmd).

        Raises:
            ExecutionError: the step could not be run (connection, credentials, TLS,
                fault, upload failure, shell lost while the step ran).
        """
        if timeout is not None and timeout <= 0:
            raise ExecutionError(f"timeout must be a positive number of seconds, not {timeout}")
        if kind not in ("cmd", "powershell"):
            raise ExecutionError(
                f"WinRM host {self.host.name}: cannot run a {kind!r} step; "
                "WinRM steps are cmd or powershell"
            )
        try:
            plan = build_plan(kind, body, cwd=cwd, env=env or {}, errexit=errexit)
        except ValueError as exc:
            raise ExecutionError(f"WinRM host {self.host.name}: {exc}") from None
        start = time.monotonic()
        deadline = None if timeout is None else start + timeout
        for attempt in (1, 2):
            try:
                return self._run_plan(plan, start, deadline, timeout)
            except ShellGone as gone:
                self._shell_id = None
                if gone.started or attempt == 2:
                    raise ExecutionError(self._shell_lost_message(gone)) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        """Delete the shell and close the HTTP session; safe to call twice, never raises."""
        shell, self._shell_id = self._shell_id, None
        if self._protocol is None:
            return
        try:
            if shell is not None:
                self._protocol.close_shell(shell, close_session=True)
        except Exception:  # best effort: the host may already be gone
            pass
        self._protocol.transport.close_session()

    # -- running ----------------------------------------------------------------------
    def _run_plan(
        self, plan: CommandPlan, start: float, deadline: float | None, timeout: float | None
    ) -> CommandResult:
        shell = self._ensure_shell()
        try:
            for command in plan.uploads:
                up = self._run_command(shell, command, deadline, kill=False, stdin_eof=False)
                if up.timed_out:
                    return self._timeout_result(plan, up, start, timeout, "while uploading")
                if up.exit_code != 0:
                    raise ExecutionError(
                        f"WinRM host {self.host.name}: uploading the step's script to %TEMP% "
                        f"failed (exit {up.exit_code}): {_excerpt(up.text())}. Check that "
                        "certutil.exe is present and %TEMP% is writable"
                    )
            out = self._run_command(
                shell,
                plan.command_line,
                deadline,
                kill=True,
                stdin_eof=plan.stdin_eof,
                marker=plan.marker,
                stream=True,
            )
        finally:
            if plan.cleanup and self._shell_id is not None:
                self._best_effort(shell, plan.cleanup)
        if out.timed_out:
            return self._timeout_result(plan, out, start, timeout, "")
        return CommandResult(
            out.exit_code,
            out.stdout_text(),
            out.stderr_text(),
            time.monotonic() - start,
            False,
            plan.display,
        )

    def _run_command(
        self,
        shell: str,
        command: str,
        deadline: float | None,
        *,
        kill: bool,
        stdin_eof: bool,
        marker: str = "",
        stream: bool = False,
    ) -> _Output:
        from winrm.exceptions import WinRMOperationTimeoutError

        p = self._proto()
        if marker:  # the step's own command: recorded before it can start (a kill between)
            report_started(self.host.name, marker)
        cid = self._call("start a command (Command)", lambda: p.run_command(shell, command))
        out = _Output(self._on_output if stream else None)
        if stdin_eof:
            self._call(
                "close the command's stdin (Send)",
                lambda: p.send_command_input(shell, cid, b"", end=True),
                started=True,
            )
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                out.timed_out = True
                out.kill_note = self._kill(shell, cid, marker) if kill else self._signal(shell, cid)
                out.finish()
                return out
            try:
                stdout, stderr, code, done = self._receive(shell, cid, remaining)
            except WinRMOperationTimeoutError:
                continue  # no output within operation_timeout_sec: poll again
            except ExecutionError:
                if deadline is not None and time.monotonic() >= deadline:
                    continue  # the reply came too late: the deadline kills the command
                raise
            out.add(stdout, stderr)
            if done:
                out.exit_code = code
                out.finish()
                self._best_effort_signal(shell, cid)
                return out

    def _receive(self, shell: str, cid: str, remaining: float | None) -> tuple:
        """One Receive poll, held at most ``operation_timeout_sec`` or the time left."""
        p = self._proto()
        op = self._op if remaining is None else max(1, min(self._op, math.ceil(remaining)))
        p.operation_timeout_sec = op
        p.transport.read_timeout_sec = op + (self._read - self._op)
        try:
            return self._call(
                "read the command's output (Receive)",
                lambda: p.get_command_output_raw(shell, cid),
                started=True,
                poll=True,
            )
        finally:
            p.operation_timeout_sec = self._op
            p.transport.read_timeout_sec = self._read

    # -- deadline kill ----------------------------------------------------------------
    def _kill(self, shell: str, cid: str, marker: str) -> str:
        """Find the step's process tree, Signal terminate, then ``taskkill /T /F``."""
        pids: list[int] = []
        try:
            listing = self._run_command(
                shell, process_list_command(), _soon(), kill=False, stdin_eof=False
            )
            pids = parse_process_list(listing.stdout, marker)
        except (ExecutionError, ShellGone):
            pass
        note = self._signal(shell, cid)
        if not pids:
            return note + "; process tree unknown, no taskkill"
        command = kill_command(pids)
        try:
            res = self._run_command(shell, command, _soon(), kill=False, stdin_eof=False)
            return f"{note}; {command} (exit {res.exit_code})"
        except (ExecutionError, ShellGone) as exc:
            return f"{note}; {command} failed: {exc}"

    def _signal(self, shell: str, cid: str) -> str:
        try:
            self._call(
                "terminate the command (Signal)",
                lambda: self._proto().cleanup_command(shell, cid),
                started=True,
            )
            return "sent Signal terminate"
        except (ExecutionError, ShellGone) as exc:
            return f"Signal terminate failed: {exc}"

    def _timeout_result(
        self, plan: CommandPlan, out: _Output, start: float, timeout: float | None, when: str
    ) -> CommandResult:
        note = (
            f"[runbook-engine] deadline of {timeout:g} s passed {when}".rstrip()
            + f"; {out.kill_note}\n"
        )
        stderr = out.stderr_text()
        stderr = stderr + ("\n" if stderr and not stderr.endswith("\n") else "") + note
        return CommandResult(
            None, out.stdout_text(), stderr, time.monotonic() - start, True, plan.display
        )

    # -- shell and protocol -----------------------------------------------------------
    def _proto(self) -> Any:
        if self._protocol is None:
            from winrm.protocol import Protocol

            o = self.host.options
            try:
                self._protocol = Protocol(
                    endpoint=self.endpoint,
                    transport=o.get("transport", "ntlm"),
                    username=o.get("username"),
                    password=self._password,
                    ca_trust_path=o.get("ca_trust_path"),
                    cert_pem=o.get("cert_pem"),
                    cert_key_pem=o.get("cert_key_pem"),
                    server_cert_validation=o.get("server_cert_validation", "validate"),
                    read_timeout_sec=self._read,
                    operation_timeout_sec=self._op,
                    message_encryption=o.get("message_encryption", "auto"),
                    proxy=None,
                )
            except Exception as exc:
                raise ExecutionError(self._describe("prepare the connection", exc)) from None
        return self._protocol

    def _ensure_shell(self) -> str:
        if self._shell_id is None:
            p = self._proto()
            self._shell_id = self._call(
                "open a shell (Create)", lambda: p.open_shell(codepage=65001, noprofile=True)
            )
            self.shells_opened += 1
        return self._shell_id

    def _call(
        self, action: str, fn: Callable[[], Any], *, started: bool = False, poll: bool = False
    ) -> Any:
        """Call pywinrm; map every foreign error to ExecutionError or ShellGone.

        With ``poll`` an OperationTimeout fault passes through (it means "poll again").
        """
        from winrm.exceptions import WinRMOperationTimeoutError

        try:
            return fn()
        except WinRMOperationTimeoutError:
            if poll:
                raise
            raise ExecutionError(
                self._describe(
                    action, TimeoutError("the server gave up within operation_timeout_sec")
                )
            ) from None
        except Exception as exc:
            if is_shell_gone(exc):
                raise ShellGone(action, started) from None
            raise ExecutionError(self._describe(action, exc)) from None

    def _describe(self, action: str, exc: BaseException) -> str:
        return describe_error(
            self.host.name, self.endpoint, self.host.options, action, exc, secret=self._password
        )

    def _shell_lost_message(self, gone: ShellGone) -> str:
        if gone.started:
            return (
                f"WinRM host {self.host.name} ({self.endpoint}): the shell disappeared "
                f"while the step was running ({gone.action}); its outcome is unknown. "
                "Check the host (WinRM service restart, IdleTimeout, MaxShellsPerUser) "
                "and verify the step's effect before retrying"
            )
        return (
            f"WinRM host {self.host.name} ({self.endpoint}): the server lost the shell "
            "again right after it was reopened. Check the WinRM service on the host"
        )

    def _best_effort(self, shell: str, command: str) -> None:
        with contextlib.suppress(ExecutionError, ShellGone):
            self._run_command(shell, command, _soon(), kill=False, stdin_eof=False)

    def _best_effort_signal(self, shell: str, cid: str) -> None:
        with contextlib.suppress(ExecutionError, ShellGone):
            self._call(
                "release the command (Signal)",
                lambda: self._proto().cleanup_command(shell, cid),
                started=True,
            )


class _Output:
    """Output gathered from Receive polls; complete lines go to the callback as they arrive.

    The callback gets each line of stdout and stderr without its line break (the
    contract of :class:`~runbook_engine.transports.TransportPool`); an exception it
    raises stops further calls, never the command.  CLIXML stderr is passed on
    decoded, once the command ends.
    """

    def __init__(self, callback: OutputCallback | None) -> None:
        self.stdout = b""
        self.stderr = b""
        self.exit_code: int | None = None
        self.timed_out = False
        self.kill_note = ""
        self._callback = callback
        self._decoders = {
            s: codecs.getincrementaldecoder("utf-8")("replace") for s in ("stdout", "stderr")
        }
        self._partial = {"stdout": "", "stderr": ""}

    def add(self, stdout: bytes, stderr: bytes) -> None:
        self.stdout += stdout
        self.stderr += stderr
        for stream, data in (("stdout", stdout), ("stderr", stderr)):
            if self._callback is None or self._is_clixml(stream):
                continue
            lines = (self._partial[stream] + self._decoders[stream].decode(data)).split("\n")
            self._partial[stream] = lines.pop()
            self._emit(lines)

    def finish(self) -> None:
        """Pass on what is left: unterminated last lines, decoded CLIXML."""
        for stream in ("stdout", "stderr"):
            if self._callback is None:
                return
            if self._is_clixml(stream):
                self._emit(self.stderr_text().splitlines())
                continue
            rest = self._partial[stream] + self._decoders[stream].decode(b"", final=True)
            if rest:
                self._emit([rest])

    def _is_clixml(self, stream: str) -> bool:
        return stream == "stderr" and self.stderr.startswith(b"#< CLIXML")

    def _emit(self, lines: list[str]) -> None:
        for line in lines:
            if self._callback is None:
                return
            try:
                self._callback(line.removesuffix("\r"))
            except Exception:  # a broken display must not break the step
                self._callback = None

    def stdout_text(self) -> str:
        return self.stdout.decode("utf-8", "replace").replace("\r\n", "\n")

    def stderr_text(self) -> str:
        return decode_clixml(self.stderr.decode("utf-8", "replace")).replace("\r\n", "\n")

    def text(self) -> str:
        return (self.stdout_text() + self.stderr_text()).strip()


def _soon() -> float:
    return time.monotonic() + KILL_HELPER_TIMEOUT


def _excerpt(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


__all__ = [
    "AUTH_METHODS",
    "OPTION_NAMES",
    "WinRMTransport",
    "endpoint_of",
    "validate_winrm_options",
]


def open_winrm(
    host: Host, secrets: dict[str, str], on_output: OutputCallback | None
) -> WinRMTransport:
    """Open the ``winrm`` transport for ``host`` with the password its ``credential``
    names (the registry's opener).

    Raises:
        ExecutionError: the credential was not resolved, or the options are invalid.
    """
    credential = host.options.get("credential")
    password = secrets.get(str(credential)) if credential else None
    if credential and password is None:
        raise ExecutionError(
            f"host {host.name}: credential {credential!r} was not resolved; "
            "name it under 'secrets' in the environment file"
        )
    return WinRMTransport(host, password, on_output=on_output)
