"""Real servers on 127.0.0.1 for the probe tests: HTTPS, IMAP, SMTP (aiosmtpd), silent ports.

Certificates come from a trustme CA.  Every server binds to 127.0.0.1 only,
runs in a daemon thread, records what clients sent, and is a context manager
that stops it.
"""

from __future__ import annotations

import socket
import socketserver
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import trustme
from aiosmtpd.controller import Controller

LOOPBACK = "127.0.0.1"
#: Names in every server certificate.
IDENTITIES = ("localhost", LOOPBACK, "mail.example.test")


# --- certificates -------------------------------------------------------------------------


@dataclass
class Pki:
    """A test CA and the server certificates the tests need.

    Attributes:
        ca: The trustme CA.
        ca_file: Its certificate, PEM, on disk (what a probe's ``ca_file`` names).
        good: Valid for :data:`IDENTITIES` for about a year.
        short: Valid for :data:`IDENTITIES`, expiring in 5 days.
        expired: Valid for :data:`IDENTITIES`, expired in 2020.
    """

    ca: trustme.CA
    ca_file: Path
    good: trustme.LeafCert
    short: trustme.LeafCert
    expired: trustme.LeafCert


def make_pki(directory: Path) -> Pki:
    """Create the CA and certificates; write the CA certificate to ``directory/ca.pem``."""
    ca = trustme.CA()
    ca_file = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    now = datetime.now(UTC)
    return Pki(
        ca=ca,
        ca_file=ca_file,
        good=ca.issue_cert(*IDENTITIES),
        short=ca.issue_cert(*IDENTITIES, not_after=now + timedelta(days=5)),
        expired=ca.issue_cert(
            *IDENTITIES,
            not_before=datetime(2019, 1, 1, tzinfo=UTC),
            not_after=datetime(2020, 6, 1, tzinfo=UTC),
        ),
    )


def server_context(
    cert: trustme.LeafCert, max_version: ssl.TLSVersion | None = None
) -> ssl.SSLContext:
    """Return a server-side TLS context presenting ``cert``."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(ctx)
    if max_version is not None:
        ctx.maximum_version = max_version
    return ctx


# --- ports ------------------------------------------------------------------------------


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def closed_port() -> int:
    """Return a port nothing listens on (bound, then closed: connections are refused)."""
    return free_port()


@contextmanager
def silent_port() -> Iterator[int]:
    """Yield a port that accepts TCP connections (kernel backlog) but never says a word."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        sock.listen(8)
        yield int(sock.getsockname()[1])


# --- HTTPS ------------------------------------------------------------------------------


class _RpcProxyHandler(BaseHTTPRequestHandler):
    """Answers like IIS with RPC over HTTP installed and anonymous access off."""

    server: HttpsServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._answer(with_body=True)

    def do_HEAD(self) -> None:
        self._answer(with_body=False)

    def _answer(self, *, with_body: bool) -> None:
        self.server.requests.append((self.command, self.path, dict(self.headers)))
        if self.path.startswith("/rpc/rpcproxy.dll"):
            status, body = 401, b"401 - Unauthorized: Access is denied due to invalid credentials."
            challenges = ["Negotiate", "NTLM", 'Basic realm="mail.example.test"']
        elif self.path == "/":
            status, body, challenges = 200, b"<html><body>IIS test page</body></html>", []
        else:
            status, body, challenges = 404, b"not found", []
        self.send_response(status)
        for challenge in challenges:
            self.send_header("WWW-Authenticate", challenge)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if with_body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet (pytest shows stderr of failing tests only)."""


class HttpsServer(ThreadingHTTPServer):
    """An HTTP server on 127.0.0.1 with TLS done in each request's thread.

    Attributes:
        requests: ``(method, path, headers)`` of every request received.
        tls_errors: Handshake failures seen (a client refusing the certificate).
    """

    daemon_threads = True

    def __init__(self, ssl_context: ssl.SSLContext | None) -> None:
        super().__init__((LOOPBACK, 0), _RpcProxyHandler)
        self.ssl_context = ssl_context
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.tls_errors: list[str] = []
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def url(self, path: str = "/") -> str:
        """Return the URL of ``path`` on this server (``https://127.0.0.1:PORT/...``)."""
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://{LOOPBACK}:{self.port}{path}"

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(10)
        if self.ssl_context is None:
            super().finish_request(request, client_address)
            return
        try:
            tls = self.ssl_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            self.tls_errors.append(str(exc))
            return
        try:
            super().finish_request(tls, client_address)
        finally:
            tls.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore clients that hang up mid-request."""

    def __enter__(self) -> HttpsServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(10)


# --- IMAP -------------------------------------------------------------------------------


class _ImapHandler(socketserver.StreamRequestHandler):
    """Speaks just enough IMAP4rev1 (RFC 3501) for a banner check: CAPABILITY, STARTTLS, LOGOUT."""

    server: ImapServer

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.settimeout(10)
        tls = self.server.mode == "implicit"
        if tls:
            sock = self._wrap(sock)
        reader = sock.makefile("rb")
        sock.sendall(f"* OK {self.server.banner}\r\n".encode())
        while line := reader.readline():
            tag, _, rest = line.decode("ascii", "replace").strip().partition(" ")
            command = rest.split(" ")[0].upper()
            self.server.commands.append(command)
            if command == "CAPABILITY":
                extra = " STARTTLS" if self.server.mode == "starttls" and not tls else ""
                caps = f"IMAP4rev1{extra} LOGINDISABLED"
                sock.sendall(f"* CAPABILITY {caps}\r\n{tag} OK CAPABILITY completed\r\n".encode())
            elif command == "STARTTLS" and self.server.mode == "starttls" and not tls:
                sock.sendall(f"{tag} OK Begin TLS negotiation now\r\n".encode())
                sock = self._wrap(sock)
                reader, tls = sock.makefile("rb"), True
            elif command == "LOGOUT":
                sock.sendall(f"* BYE logging out\r\n{tag} OK LOGOUT completed\r\n".encode())
                break
            elif command == "NOOP":
                sock.sendall(f"{tag} OK NOOP completed\r\n".encode())
            else:
                sock.sendall(f"{tag} BAD unknown command\r\n".encode())
        if tls:
            sock.close()

    def _wrap(self, sock: socket.socket) -> ssl.SSLSocket:
        """Start TLS on ``sock`` as the server."""
        assert self.server.tls_context is not None
        return self.server.tls_context.wrap_socket(sock, server_side=True)


class ImapServer(socketserver.ThreadingTCPServer):
    """A tiny IMAP server on 127.0.0.1.

    Args:
        mode: ``"implicit"`` (TLS from the first byte), ``"starttls"`` or ``"none"``.
        ssl_context: Server context for the TLS modes.
        banner: Greeting text after ``* OK``.

    Attributes:
        commands: Every command received, upper-cased, in order.
    """

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, mode: str, ssl_context: ssl.SSLContext | None = None, banner: str = ""
    ) -> None:
        super().__init__((LOOPBACK, 0), _ImapHandler)
        self.mode = mode
        self.tls_context = ssl_context
        self.banner = banner or "[CAPABILITY IMAP4rev1] Microsoft Exchange IMAP4rev1 server ready"
        self.commands: list[str] = []
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore clients that fail the handshake or hang up."""

    def __enter__(self) -> ImapServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(10)


# --- SMTP -------------------------------------------------------------------------------


@dataclass
class RelayHandler:
    """aiosmtpd handler: an open relay, or one that refuses RCPT outside its local domains.

    Attributes:
        open_relay: Accept every recipient.
        local_domains: Domains accepted when not an open relay.
        events: ``(verb, argument)`` of every MAIL, RCPT, RSET and DATA received.
    """

    open_relay: bool
    local_domains: tuple[str, ...] = ("example.test",)
    events: list[tuple[str, str]] = field(default_factory=list)

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        self.events.append(("MAIL", address))
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Sender OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.events.append(("RCPT", address))
        domain = address.rpartition("@")[2].lower()
        if not self.open_relay and domain not in self.local_domains:
            return "550 5.7.1 Unable to relay"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Recipient OK"

    async def handle_RSET(self, server, session, envelope):
        self.events.append(("RSET", ""))
        return "250 2.0.0 Resetting"

    async def handle_DATA(self, server, session, envelope):
        self.events.append(("DATA", ",".join(envelope.rcpt_tos)))
        return "250 2.6.0 Queued"


@contextmanager
def smtp_server(
    handler: RelayHandler, tls_context: ssl.SSLContext | None = None
) -> Iterator[Controller]:
    """Run aiosmtpd on 127.0.0.1 (STARTTLS offered when ``tls_context`` is given)."""
    kwargs: dict[str, Any] = {"ident": "Microsoft ESMTP MAIL Service ready"}
    if tls_context is not None:
        kwargs["tls_context"] = tls_context
    controller = Controller(
        handler,
        hostname=LOOPBACK,
        port=free_port(),
        server_hostname="mail.example.test",
        **kwargs,
    )
    controller.start()
    try:
        yield controller
    finally:
        controller.stop()
