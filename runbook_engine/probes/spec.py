"""Value types of verification probes: one spec class per kind, and the result.

A ``probe`` step's YAML body (issue 3, part 3) becomes one of the frozen
dataclasses below through :func:`runbook_engine.probes.parse_probe`; running it
gives a :class:`ProbeResult`.  Every spec remembers the runbook file and line it
came from, so a configuration problem found at run time (an unreadable
``ca_file``) still names the runbook's own line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

#: Seconds a probe waits for any one network operation unless told otherwise.
DEFAULT_TIMEOUT: float = 10.0

#: TLS protocol names accepted by ``min_version``, oldest first (names as
#: :meth:`ssl.SSLSocket.version` reports them).
TLS_VERSIONS: tuple[str, ...] = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeSpec:
    """Fields every probe has.

    Attributes:
        timeout: Seconds allowed for each network operation (connect, read).
        path: Runbook file the probe was written in (``None`` when built in code).
        line: 1-based line of the probe body's first line in ``path``.
    """

    kind: ClassVar[str] = ""

    timeout: float = DEFAULT_TIMEOUT
    path: Path | None = None
    line: int = 0

    @property
    def target(self) -> str:
        """What the probe talks to, for messages (``host:port``, a URL, a name)."""
        raise NotImplementedError

    def location(self) -> str:
        """Return ``file:line`` of the probe body, or ``<probe>`` when unknown."""
        return f"{self.path}:{self.line}" if self.path else "<probe>"


@dataclass(frozen=True, slots=True, kw_only=True)
class TcpProbe(ProbeSpec):
    """A TCP port is open (a connection is accepted) or closed.

    Attributes:
        host: Host name or IP address.
        port: TCP port, 1-65535.
        expect: ``"open"`` or ``"closed"``; a port that does not answer within
            the timeout (filtered) counts as closed.
        connect: Host name or IP address to connect to instead of ``host``
            (a lab or loopback address); ``None``: ``host``.
    """

    kind: ClassVar[str] = "tcp"

    host: str
    port: int
    expect: str = "open"
    connect: str | None = None

    @property
    def address(self) -> str:
        """The host name or IP address the probe connects to."""
        return self.connect or self.host

    @property
    def target(self) -> str:
        return _host_port(self.host, self.port) + via(self.connect, self.host)


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsProbe(ProbeSpec):
    """A TLS server presents a certificate chain valid for a host name.

    Attributes:
        host: Host name or IP address of the server.
        port: TCP port (default 443).
        server_name: Name sent in SNI and checked against the certificate
            (default: ``host``).
        connect: Host name or IP address to connect to instead of ``host``
            (like ``curl --resolve``); ``None``: ``host``.
        ca_file: PEM file of trusted CAs; ``None`` for the system trust store.
        min_days_valid: Days the certificate must still be valid; ``None``: no check.
        min_version: Lowest acceptable negotiated protocol, one of :data:`TLS_VERSIONS`.
    """

    kind: ClassVar[str] = "tls"

    host: str
    port: int = 443
    server_name: str | None = None
    ca_file: str | None = None
    min_days_valid: int | None = None
    min_version: str | None = None
    connect: str | None = None

    @property
    def sni(self) -> str:
        """The name checked against the certificate."""
        return self.server_name or self.host

    @property
    def address(self) -> str:
        """The host name or IP address the probe connects to."""
        return self.connect or self.host

    @property
    def target(self) -> str:
        return _host_port(self.host, self.port) + via(self.connect, self.host)


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpProbe(ProbeSpec):
    """An HTTP(S) request gets an expected status, headers and body.

    Attributes:
        url: ``http://`` or ``https://`` URL; redirects are not followed.
        method: ``GET`` or ``HEAD``.
        expect_status: Acceptable status codes.
        expect_headers: Header name to a regular expression searched in its value
            (repeated headers are joined with ``", "`` first, RFC 9110 §5.3).
        expect_body: Regular expression searched in the first 64 KiB of the body.
        ca_file: PEM file of trusted CAs; ``None`` for the system trust store.
        verify: Whether the server certificate and name are verified.
        connect: Host name or IP address to connect to instead of the URL's
            host, which stays the name in SNI, the certificate check and the
            ``Host`` header (like ``curl --resolve``); ``None``: the URL's host.
    """

    kind: ClassVar[str] = "http"

    url: str
    method: str = "GET"
    expect_status: tuple[int, ...] = (200,)
    expect_headers: dict[str, str] = field(default_factory=dict)
    expect_body: str | None = None
    ca_file: str | None = None
    verify: bool = True
    connect: str | None = None

    @property
    def host(self) -> str:
        """The URL's host name (without port or brackets)."""
        return urlsplit(self.url).hostname or ""

    @property
    def address(self) -> str:
        """The host name or IP address the probe connects to."""
        return self.connect or self.host

    @property
    def target(self) -> str:
        return self.url + via(self.connect, self.host)

    @property
    def is_https(self) -> bool:
        """True for an ``https://`` URL."""
        return urlsplit(self.url).scheme.lower() == "https"


@dataclass(frozen=True, slots=True, kw_only=True)
class ImapProbe(ProbeSpec):
    """An IMAP server greets with an expected banner, optionally over TLS.

    Attributes:
        host: Host name or IP address.
        port: TCP port (``None``: 993 for implicit TLS, 143 otherwise).
        tls: ``"implicit"`` (IMAPS), ``"starttls"`` (RFC 3501 §6.2.1) or ``"none"``.
        expect_banner: Regular expression searched in the greeting.
        ca_file: PEM file of trusted CAs; ``None`` for the system trust store.
        server_name: Name sent in SNI and checked against the certificate
            (default: ``host``).
        connect: Host name or IP address to connect to instead of ``host``;
            ``None``: ``host``.
    """

    kind: ClassVar[str] = "imap"

    host: str
    port: int | None = None
    tls: str = "implicit"
    expect_banner: str | None = None
    ca_file: str | None = None
    server_name: str | None = None
    connect: str | None = None

    @property
    def sni(self) -> str:
        """The name checked against the certificate."""
        return self.server_name or self.host

    @property
    def address(self) -> str:
        """The host name or IP address the probe connects to."""
        return self.connect or self.host

    @property
    def effective_port(self) -> int:
        """The port used: ``port``, else 993 for implicit TLS and 143 otherwise."""
        if self.port is not None:
            return self.port
        return 993 if self.tls == "implicit" else 143

    @property
    def target(self) -> str:
        return _host_port(self.host, self.effective_port) + via(self.connect, self.host)


@dataclass(frozen=True, slots=True)
class RelayTest:
    """Addresses for the open-relay test of an SMTP probe.

    Attributes:
        outside_from: Sender in a domain the server is not responsible for.
        outside_to: Recipient in a domain the server is not responsible for;
            the server must refuse it (5xx).
        local_to: Recipient the server delivers locally; it must be accepted (250/251).
    """

    outside_from: str
    outside_to: str
    local_to: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SmtpProbe(ProbeSpec):
    """An SMTP server's banner, STARTTLS, and refusal to relay (RFC 5321, RFC 3207).

    Attributes:
        host: Host name or IP address.
        port: TCP port (default 25).
        starttls: Upgrade with STARTTLS after EHLO and fail if it is not offered.
        expect_banner: Regular expression searched in the 220 greeting.
        ca_file: PEM file of trusted CAs; ``None`` for the system trust store.
        ehlo_name: Name sent in EHLO (default: this machine's host name).
        relay_test: Addresses for the open-relay test; ``None`` skips it.
            The test never sends DATA, so no message is ever delivered.
        server_name: Name sent in SNI and checked against the certificate
            after STARTTLS (default: ``host``).
        connect: Host name or IP address to connect to instead of ``host``;
            ``None``: ``host``.
    """

    kind: ClassVar[str] = "smtp"

    host: str
    port: int = 25
    starttls: bool = False
    expect_banner: str | None = None
    ca_file: str | None = None
    ehlo_name: str | None = None
    relay_test: RelayTest | None = None
    server_name: str | None = None
    connect: str | None = None

    @property
    def sni(self) -> str:
        """The name checked against the certificate."""
        return self.server_name or self.host

    @property
    def address(self) -> str:
        """The host name or IP address the probe connects to."""
        return self.connect or self.host

    @property
    def target(self) -> str:
        return _host_port(self.host, self.port) + via(self.connect, self.host)


@dataclass(frozen=True, slots=True, kw_only=True)
class DnsProbe(ProbeSpec):
    """A name resolves (through the system resolver) to expected addresses.

    Attributes:
        name: Name to resolve.
        expect: Addresses that must all be among the answers (compared as IP
            addresses, so ``::1`` equals ``0::1``); empty: any answer will do.
        record: ``"A"`` (IPv4) or ``"AAAA"`` (IPv6).
    """

    kind: ClassVar[str] = "dns"

    name: str
    expect: tuple[str, ...] = ()
    record: str = "A"

    @property
    def target(self) -> str:
        return self.name


#: Spec class by probe kind.
SPEC_TYPES: dict[str, type[ProbeSpec]] = {
    cls.kind: cls for cls in (TcpProbe, TlsProbe, HttpProbe, ImapProbe, SmtpProbe, DnsProbe)
}


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """What running a probe found.

    Attributes:
        ok: True when every expectation held.
        kind: The probe kind (``tcp``, ``tls``, ...).
        target: What was probed (``host:port``, URL or name).
        observed: What the probe saw, JSON-serialisable (status codes, banner,
            protocol version, days to expiry, the error on failure ...).
        message: One line for people, saying what held or what did not.
        duration: Wall time in seconds.
    """

    ok: bool
    kind: str
    target: str
    observed: dict[str, Any]
    message: str
    duration: float

    def to_dict(self) -> dict[str, Any]:
        """Return the result as a plain dict (for the journal and ``--json``)."""
        return {
            "ok": self.ok,
            "kind": self.kind,
            "target": self.target,
            "observed": dict(self.observed),
            "message": self.message,
            "duration": self.duration,
        }


def via(connect: str | None, host: str) -> str:
    """Return ``" via ADDRESS"`` when a probe connects elsewhere than ``host``, else ``""``.

    ``connect`` equal to ``host`` (a runbook's ``connect: {{ lab or public_name }}``
    with no lab address) says nothing new and is left out.
    """
    if not connect or connect.lower() == host.lower():
        return ""
    return f" via {connect}"


def _host_port(host: str, port: int) -> str:
    """Return ``host:port``, bracketing IPv6 literals (``[::1]:443``)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
