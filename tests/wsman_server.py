"""A WS-Management (WinRM) server on 127.0.0.1 that pywinrm talks to for real.

It implements the Windows Remote Shell actions of [MS-WSMV] §3.1.4 (Create,
Command, Send, Receive, Signal, Delete) over HTTP/1.1 keep-alive, with Basic
auth, NTLM with message encryption (pyspnego as the acceptor), HTTPS with
``trustme`` certificates and client-certificate auth.  Commands are executed by a
Python callable the test supplies; every command and every HTTP request is
recorded.  Faults are injected per action (see :meth:`WSManServer.inject`).

Use the :func:`wsman` fixture (import it into a test module) or
:class:`WSManServer` directly (the benchmark does).
"""

from __future__ import annotations

import base64
import re
import ssl
import struct
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "a": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "w": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
}
SHELL_URI = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
TERMINATE = SHELL_URI + "/signal/terminate"
MUTUAL = "http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/https/mutual"
BOUNDARY = b"--Encrypted Boundary"
ENCRYPTED_PROTOCOL = "application/HTTP-SPNEGO-session-encrypted"
OPERATION_TIMEOUT_CODE = 2150858793
SHELL_NOT_FOUND_CODE = 2150858843


@dataclass
class Reply:
    """What a scripted command produces (str is sent as UTF-8)."""

    stdout: bytes | str = b""
    stderr: bytes | str = b""
    exit_code: int = 0


@dataclass
class CommandCall:
    """One Command the server received, and its life."""

    shell_id: str
    command_id: str
    command: str
    arguments: str
    codepage: str
    terminated: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    stdin: bytearray = field(default_factory=bytearray)
    stdin_closed: threading.Event = field(default_factory=threading.Event)
    signals: list[str] = field(default_factory=list)
    reply: Reply | None = None
    #: The host's uploaded files (``C:\\TEMP\\...`` -> bytes), for a handler that reads them.
    files: dict[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True)
class RequestRecord:
    """One HTTP request: its action (``Create``...; ``""`` for an auth leg) and answer."""

    action: str
    shell_id: str | None
    status: int
    encrypted: bool
    body_bytes: int


Executor = Callable[[CommandCall], Reply]


@dataclass
class _Fault:
    action: str
    kind: str
    times: int
    delay: float


class WSManServer(ThreadingHTTPServer):
    """The server.  ``auth`` is ``basic``, ``ntlm`` or ``certificate``.

    Args:
        executor: Runs each command (in its own thread); may block, and should
            watch ``call.terminated`` to stop early.
        auth: Authentication scheme expected from clients.
        username, password: The one account (basic and ntlm).
        tls: A server-side SSL context for HTTPS (``None``: plain HTTP).
    """

    daemon_threads = True
    block_on_close = False

    def __init__(
        self,
        executor: Executor,
        *,
        auth: str = "basic",
        username: str = "admin",
        password: str = "S3cret!pass",
        tls: ssl.SSLContext | None = None,
        path: str = "/wsman",
    ) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.executor = executor
        self.auth = auth
        self.username = username
        self.password = password
        self.tls = tls
        self.path = path
        self.shells: dict[str, dict[str, CommandCall]] = {}
        self.codepages: dict[str, str] = {}
        self.commands: list[CommandCall] = []
        self.requests: list[RequestRecord] = []
        self.faults: list[_Fault] = []
        #: Seconds every request waits before it is handled (simulated network/service time).
        self.latency = 0.0
        self.lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.server_address[1]}{self.path}"

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def start(self) -> WSManServer:
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        for call in self.commands:
            call.terminated.set()
        self.shutdown()
        self.server_close()

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.tls is not None:
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return
        super().finish_request(request, client_address)

    def inject(self, action: str, kind: str, *, times: int = 1, delay: float = 0.0) -> None:
        """Make the next ``times`` requests for ``action`` fail.

        ``kind``: ``401``; ``500`` (a plain-text, non-XML body); ``shell_not_found``
        (the shell is forgotten and a w:InvalidSelectors fault returned); ``drop``
        (the connection is closed without an answer); ``slow`` (sleep ``delay``
        seconds, then answer normally).
        """
        with self.lock:
            self.faults.append(_Fault(action, kind, times, delay))

    def take_fault(self, action: str) -> _Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.action == action and fault.times > 0:
                    fault.times -= 1
                    return fault
        return None

    def forget_shells(self) -> None:
        """Drop every shell, as a WinRM service restart would."""
        with self.lock:
            self.shells.clear()

    def count(self, action: str) -> int:
        """Number of recorded requests for ``action``."""
        return sum(1 for r in self.requests if r.action == action)

    def command_lines(self) -> list[str]:
        return [c.command for c in self.commands]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: WSManServer

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def setup(self) -> None:
        super().setup()
        self.ntlm: Any = None
        self.ntlm_done = False

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.server.latency:
            time.sleep(self.server.latency)
        if not self._authenticate(body):
            return
        encrypted = "multipart/encrypted" in (self.headers.get("Content-Type") or "")
        if encrypted:
            body = self._decrypt(body)
        if not body:  # pywinrm's empty POST that sets up NTLM encryption
            self._record("", None, 200, encrypted, body)
            self._send(200, b"", encrypted=False)
            return
        root = ET.fromstring(body)
        action = _text(root, "s:Header/a:Action").rsplit("/", 1)[-1]
        shell_id = _selector(root)
        fault = self.server.take_fault(action)
        if fault is not None and self._apply_fault(fault, action, shell_id, encrypted, body):
            return
        status, reply = self._dispatch(action, root, shell_id)
        self._record(action, shell_id, status, encrypted, body)
        self._send(status, reply, encrypted=encrypted)

    # -- auth ---------------------------------------------------------------------
    def _authenticate(self, body: bytes) -> bool:
        header = self.headers.get("Authorization") or ""
        srv = self.server
        if srv.auth == "basic":
            expected = base64.b64encode(f"{srv.username}:{srv.password}".encode()).decode()
            if header == f"Basic {expected}":
                return True
            return self._deny('Basic realm="WSMAN"')
        if srv.auth == "certificate":
            if header == MUTUAL and self.connection.getpeercert():
                return True
            return self._deny("")
        if self.ntlm_done:
            return True
        if not header.startswith(("Negotiate ", "NTLM ")):
            return self._deny("Negotiate")
        import spnego

        if self.ntlm is None:
            self.ntlm = spnego.server(protocol="ntlm")
        try:
            out = self.ntlm.step(base64.b64decode(header.split(" ", 1)[1]))
        except Exception:
            self.ntlm = None
            return self._deny("Negotiate")
        if not self.ntlm.complete:
            return self._deny("Negotiate " + base64.b64encode(out or b"").decode())
        self.ntlm_done = True
        return True

    def _deny(self, challenge: str) -> bool:
        self._record("", None, 401, False, b"")
        headers = {"WWW-Authenticate": challenge} if challenge else {}
        self._send(401, b"", encrypted=False, headers=headers)
        return False

    # -- message encryption ([MS-WSMV] §2.2.9.1) ------------------------------------
    def _decrypt(self, body: bytes) -> bytes:
        parts = [p for p in body.split(BOUNDARY + b"\r\n") if p]
        payload = parts[1].replace(b"\tContent-Type: application/octet-stream\r\n", b"", 1)
        payload = payload[: -len(BOUNDARY + b"--\r\n")]
        siglen = struct.unpack("<i", payload[:4])[0]
        return bytes(self.ntlm.unwrap(payload[4 : 4 + siglen] + payload[4 + siglen :]).data)

    def _encrypt(self, data: bytes) -> bytes:
        wrapped = self.ntlm.wrap(data, encrypt=True).data
        stream = struct.pack("<i", 16) + wrapped[:16] + wrapped[16:]
        return (
            BOUNDARY
            + b"\r\n\tContent-Type: "
            + ENCRYPTED_PROTOCOL.encode()
            + b"\r\n"
            + b"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length="
            + str(len(data)).encode()
            + b"\r\n"
            + BOUNDARY
            + b"\r\n"
            + b"\tContent-Type: application/octet-stream\r\n"
            + stream
            + BOUNDARY
            + b"--\r\n"
        )

    # -- replies ------------------------------------------------------------------
    def _send(
        self,
        status: int,
        data: bytes,
        *,
        encrypted: bool,
        headers: dict[str, str] | None = None,
        ctype: str | None = None,
    ) -> None:
        if encrypted and data:
            data = self._encrypt(data)
            ctype = (
                f'multipart/encrypted;protocol="{ENCRYPTED_PROTOCOL}";boundary="Encrypted Boundary"'
            )
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", ctype or "application/soap+xml;charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _record(
        self, action: str, shell_id: str | None, status: int, encrypted: bool, body: bytes
    ) -> None:
        with self.server.lock:
            record = RequestRecord(action, shell_id, status, encrypted, len(body))
            self.server.requests.append(record)

    def _apply_fault(
        self, fault: _Fault, action: str, shell_id: str | None, encrypted: bool, body: bytes
    ) -> bool:
        """Apply ``fault``; return True when the request has been answered (or dropped)."""
        if fault.kind == "slow":
            time.sleep(fault.delay)
            return False
        if fault.kind == "shell_not_found":
            self.server.forget_shells()
            return False  # the dispatcher now answers InvalidSelectors
        status = {"401": 401, "500": 500}.get(fault.kind, 0)
        self._record(action, shell_id, status, encrypted, body)
        if fault.kind == "401":
            self._send(
                401, b"", encrypted=False, headers={"WWW-Authenticate": 'Basic realm="WSMAN"'}
            )
        elif fault.kind == "500":
            self._send(
                500,
                b"Internal Server Error: the service crashed (0x80004005)",
                encrypted=False,
                ctype="text/plain",
            )
        elif fault.kind == "drop":
            self.close_connection = True
            self.connection.close()
        return True

    def _dispatch(self, action: str, root: ET.Element, shell_id: str | None) -> tuple[int, bytes]:
        srv = self.server
        message_id = _text(root, "s:Header/a:MessageID")
        if action == "Create":
            new_id = str(uuid.uuid4()).upper()
            with srv.lock:
                srv.shells[new_id] = {}
            codepage = _option(root, "WINRS_CODEPAGE")
            with srv.lock:
                srv.codepages[new_id] = codepage
            return 200, _envelope(action, message_id, _created(new_id, codepage))
        with srv.lock:
            shell = srv.shells.get(shell_id or "")
        if shell is None:
            return 500, _fault(
                message_id,
                "w:InvalidSelectors",
                SHELL_NOT_FOUND_CODE,
                f"The request for the Windows Remote Shell with ShellId {shell_id} "
                "failed because the shell was not found on the server.",
            )
        if action == "Delete":
            with srv.lock:
                srv.shells.pop(shell_id or "", None)
            return 200, _envelope(action, message_id, "")
        if action == "Command":
            return 200, self._command(root, shell, shell_id or "", message_id)
        call = shell.get(_command_id(root))
        if call is None:
            return 500, _fault(message_id, "w:InvalidParameter", 2150858752, "Unknown CommandId")
        if action == "Send":
            stream = root.find(".//rsp:Stream", NS)
            call.stdin.extend(base64.b64decode((stream.text or "") if stream is not None else ""))
            if stream is not None and stream.get("End") == "true":
                call.stdin_closed.set()
            return 200, _envelope(action, message_id, "<rsp:SendResponse/>")
        if action == "Signal":
            call.signals.append(_text(root, "s:Body/rsp:Signal/rsp:Code"))
            call.terminated.set()
            return 200, _envelope(action, message_id, "<rsp:SignalResponse/>")
        if action == "Receive":
            return self._receive(root, call, message_id)
        return 500, _fault(message_id, "w:ActionNotSupported", 2150858771, f"no action {action}")

    def _command(
        self, root: ET.Element, shell: dict[str, CommandCall], shell_id: str, message_id: str
    ) -> bytes:
        command_id = str(uuid.uuid4()).upper()
        call = CommandCall(
            shell_id,
            command_id,
            _text(root, "s:Body/rsp:CommandLine/rsp:Command"),
            _text(root, "s:Body/rsp:CommandLine/rsp:Arguments"),
            self.server.codepages.get(shell_id, ""),
        )
        with self.server.lock:
            shell[command_id] = call
            self.server.commands.append(call)
        threading.Thread(target=self._execute, args=(call,), daemon=True).start()
        body = (
            f"<rsp:CommandResponse><rsp:CommandId>{command_id}</rsp:CommandId>"
            "</rsp:CommandResponse>"
        )
        return _envelope("Command", message_id, body)

    def _execute(self, call: CommandCall) -> None:
        try:
            call.reply = self.server.executor(call)
        except Exception as exc:  # a bug in the test's executor shows as stderr
            call.reply = Reply(b"", f"executor failed: {exc!r}".encode(), 99)
        call.done.set()

    def _receive(self, root: ET.Element, call: CommandCall, message_id: str) -> tuple[int, bytes]:
        wait = _seconds(_text(root, "s:Header/w:OperationTimeout"))
        if not call.done.wait(wait) and not call.terminated.is_set():
            return 500, _fault(
                message_id,
                "w:TimedOut",
                OPERATION_TIMEOUT_CODE,
                "The WS-Management service cannot complete the operation "
                "within the time specified in OperationTimeout.",
            )
        reply = call.reply or Reply()
        streams = "".join(
            f'<rsp:Stream Name="{name}" CommandId="{call.command_id}">'
            f"{base64.b64encode(_bytes(data)).decode()}</rsp:Stream>"
            for name, data in (("stdout", reply.stdout), ("stderr", reply.stderr))
            if data
        )
        state = (
            f'<rsp:CommandState CommandId="{call.command_id}" '
            f'State="{SHELL_URI}/CommandState/Done"><rsp:ExitCode>{reply.exit_code}'
            "</rsp:ExitCode></rsp:CommandState>"
        )
        return 200, _envelope(
            "Receive", message_id, f"<rsp:ReceiveResponse>{streams}{state}</rsp:ReceiveResponse>"
        )


# -- XML helpers ------------------------------------------------------------------------
def _text(root: ET.Element, path: str) -> str:
    node = root.find(path, NS)
    return (node.text or "").strip() if node is not None else ""


def _selector(root: ET.Element) -> str | None:
    node = root.find("s:Header/w:SelectorSet/w:Selector[@Name='ShellId']", NS)
    return node.text if node is not None else None


def _option(root: ET.Element, name: str) -> str:
    node = root.find(f"s:Header/w:OptionSet/w:Option[@Name='{name}']", NS)
    return (node.text or "") if node is not None else ""


def _command_id(root: ET.Element) -> str:
    for node in root.iter():
        if node.get("CommandId"):
            return node.get("CommandId") or ""
    return ""


def _seconds(duration: str) -> float:
    match = re.fullmatch(r"PT([\d.]+)S", duration)
    return float(match.group(1)) if match else 20.0


def _bytes(data: bytes | str) -> bytes:
    return data.encode("utf-8") if isinstance(data, str) else data


def _envelope(action: str, relates_to: str, body: str) -> bytes:
    return (
        f'<s:Envelope xmlns:s="{NS["s"]}" xmlns:a="{NS["a"]}" xmlns:w="{NS["w"]}" '
        f'xmlns:rsp="{NS["rsp"]}" xmlns:x="http://schemas.xmlsoap.org/ws/2004/09/transfer">'
        f"<s:Header><a:Action>{SHELL_URI}/{action}Response</a:Action>"
        f"<a:MessageID>uuid:{uuid.uuid4()}</a:MessageID>"
        f"<a:RelatesTo>{relates_to}</a:RelatesTo></s:Header>"
        f"<s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


def _created(shell_id: str, codepage: str) -> str:
    return (
        "<x:ResourceCreated><a:Address>http://127.0.0.1/wsman</a:Address>"
        "<a:ReferenceParameters><w:ResourceURI>http://schemas.microsoft.com/wbem/wsman/1/"
        f'windows/shell/cmd</w:ResourceURI><w:SelectorSet><w:Selector Name="ShellId">{shell_id}'
        "</w:Selector></w:SelectorSet></a:ReferenceParameters></x:ResourceCreated>"
        f"<rsp:Shell><rsp:ShellId>{shell_id}</rsp:ShellId><rsp:Codepage>{codepage}</rsp:Codepage>"
        "</rsp:Shell>"
    )


def _fault(relates_to: str, subcode: str, code: int, reason: str) -> bytes:
    body = (
        f"<s:Fault><s:Code><s:Value>s:Receiver</s:Value><s:Subcode><s:Value>{subcode}</s:Value>"
        f'</s:Subcode></s:Code><s:Reason><s:Text xml:lang="en-US">{reason}</s:Text></s:Reason>'
        f'<s:Detail><f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault" '
        f'Code="{code}" Machine="127.0.0.1"><f:Message>{reason}</f:Message></f:WSManFault>'
        "</s:Detail></s:Fault>"
    )
    return _envelope("Fault", relates_to, body)


# -- a scripted Windows host -------------------------------------------------------------
ScriptHandler = Callable[[str, str, CommandCall], Reply]


class WindowsHost:
    """Executor that understands the cmd.exe lines a WinRM client sends and hands the
    step itself to ``handler(kind, text, call)`` (kind ``cmd`` or ``powershell``).

    It keeps a fake %TEMP% (``files``), answers ``echo``/``certutil -decode``/``del``
    like cmd.exe, lists running commands for ``wmic process get`` (UTF-16 output, a
    ``cmd.exe`` per command with one child process) and marks commands terminated
    on ``taskkill /PID``.
    """

    def __init__(self, handler: ScriptHandler) -> None:
        self.handler = handler
        self.files: dict[str, bytes] = {}
        self.scripts: list[tuple[str, str]] = []
        self.killed: list[int] = []
        self._calls: list[CommandCall] = []
        self._lock = threading.Lock()

    def __call__(self, call: CommandCall) -> Reply:
        with self._lock:
            self._calls.append(call)
        line = re.sub(r'^set "RBE_STEP=[^"]+"& ', "", call.command)
        if line.startswith(("(echo", "certutil ")):
            out = Reply()
            for part in line.split(" && "):
                out = self._file_command(part)
                if out.exit_code:
                    break
            return out
        if line.startswith("del /f /q "):
            for path in re.findall(r'"([^"]+)"', line):
                self.files.pop(_temp(path), None)
            return Reply()
        if line.startswith("wmic process get"):
            return Reply(self._process_list(call))
        if line.startswith("taskkill "):
            return self._taskkill(line)
        return self._run(line, call)

    def _run(self, line: str, call: CommandCall) -> Reply:
        kind, text = "cmd", line
        if match := re.fullmatch(r"powershell .*-EncodedCommand (\S+)", line):
            kind, text = "powershell", base64.b64decode(match.group(1)).decode("utf-16-le")
        elif match := re.fullmatch(r'powershell .*-File "([^"]+)"', line):
            kind, text = "powershell", self.files[_temp(match.group(1))].decode("utf-8-sig")
        elif match := re.fullmatch(r'"([^"]+\.cmd)"', line):
            text = self.files[_temp(match.group(1))].decode("utf-8")
        self.scripts.append((kind, text))
        call.files = self.files
        return self.handler(kind, text, call)

    def _file_command(self, part: str) -> Reply:
        if match := re.fullmatch(r'\((.*)\)(>>?)"([^"]+)"', part):
            lines = [x.removeprefix("echo ") + "\r\n" for x in match.group(1).split("&")]
            data = "".join(lines).encode("ascii")
            path = _temp(match.group(3))
            old = self.files.get(path, b"") if match.group(2) == ">>" else b""
            self.files[path] = old + data
            return Reply()
        if match := re.fullmatch(r'certutil -f -decode "([^"]+)" "([^"]+)"', part):
            source = self.files.get(_temp(match.group(1)))
            if source is None:
                return Reply("CertUtil: -decode command FAILED: 0x80070002", "", 2)
            self.files[_temp(match.group(2))] = base64.b64decode(b"".join(source.split()))
            return Reply("CertUtil: -decode command completed successfully.\r\n")
        return Reply("", f"'{part}' is not recognized", 9009)

    def _process_list(self, me: CommandCall) -> bytes:
        records = [
            "CommandLine=C:\\Windows\\system32\\winrshost.exe\r\nParentProcessId=500"
            "\r\nProcessId=600"
        ]
        for index, call in enumerate(self._calls):
            if call is me or call.done.is_set():
                continue
            records.append(
                f"CommandLine=cmd.exe /c {call.command}\r\nParentProcessId=600"
                f"\r\nProcessId={4000 + index}"
            )
            records.append(
                f"CommandLine=ping -n 100 127.0.0.1\r\nParentProcessId={4000 + index}"
                f"\r\nProcessId={5000 + index}"
            )
        text = "\r\n\r\n" + "\r\n\r\n\r\n".join(records) + "\r\n\r\n\r\n"
        return text.encode("utf-16-le")

    def _taskkill(self, line: str) -> Reply:
        pids = [int(p) for p in re.findall(r"/PID (\d+)", line)]
        self.killed.extend(pids)
        for pid in pids:
            if 4000 <= pid < 5000 and pid - 4000 < len(self._calls):
                self._calls[pid - 4000].terminated.set()
        return Reply(
            "".join(f"SUCCESS: The process with PID {p} has been terminated.\r\n" for p in pids)
        )


def _temp(path: str) -> str:
    """A path as cmd.exe expands it on this host (``%TEMP%`` is ``C:\\TEMP``)."""
    return re.sub("(?i)%TEMP%", lambda _: "C:\\TEMP", path)


# -- fixture ------------------------------------------------------------------------
@pytest.fixture
def wsman() -> Iterator[Callable[..., WSManServer]]:
    """Factory fixture: ``wsman(executor, **options)`` starts a server, stopped at teardown."""
    servers: list[WSManServer] = []

    def make(executor: Executor, **options: Any) -> WSManServer:
        server = WSManServer(executor, **options).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()
