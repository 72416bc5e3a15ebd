"""Verification probes: ``probe`` steps checked from the operator's machine (issue 3, part 3).

A ``probe`` step's body is YAML naming a ``kind`` and its expectations::

    kind: http
    url: https://{{ external_host }}/rpc/rpcproxy.dll
    expect_status: 401
    expect_headers: {WWW-Authenticate: "Basic|NTLM|Negotiate"}

Public API:

- :func:`parse_probe` turns a (jinja-rendered) body into a :class:`ProbeSpec`
  (:class:`TcpProbe`, :class:`TlsProbe`, :class:`HttpProbe`, :class:`ImapProbe`,
  :class:`SmtpProbe`, :class:`DnsProbe`) or raises :class:`InputError` naming
  the runbook line of the offending key.
- :func:`run_probe` runs a spec and returns a :class:`ProbeResult`; a network
  failure is a failed result with a clear message, never an exception.
- :func:`describe_probe` gives one line for guides.
"""

from __future__ import annotations

import http.client
import imaplib
import smtplib
import socket
import ssl
import time
from collections.abc import Callable
from typing import Any

from .describe import describe_probe
from .mail import probe_imap, probe_smtp
from .net import probe_dns, probe_tcp, probe_tls
from .parse import parse_probe
from .spec import (
    DEFAULT_TIMEOUT,
    DnsProbe,
    HttpProbe,
    ImapProbe,
    ProbeResult,
    ProbeSpec,
    RelayTest,
    SmtpProbe,
    TcpProbe,
    TlsProbe,
)
from .web import probe_http

__all__ = [
    "DEFAULT_TIMEOUT",
    "PROBE_KINDS",
    "DnsProbe",
    "HttpProbe",
    "ImapProbe",
    "ProbeResult",
    "ProbeSpec",
    "RelayTest",
    "SmtpProbe",
    "TcpProbe",
    "TlsProbe",
    "describe_probe",
    "parse_probe",
    "run_probe",
]

Runner = Callable[[Any, dict[str, Any]], tuple[bool, str]]

#: Probe function by kind: ``(spec, observed) -> (ok, message)``, filling ``observed``.
PROBE_KINDS: dict[str, Runner] = {
    "tcp": probe_tcp,
    "tls": probe_tls,
    "http": probe_http,
    "imap": probe_imap,
    "smtp": probe_smtp,
    "dns": probe_dns,
}

#: Exceptions that mean "the network or the server said no", turned into failed results.
_NETWORK_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # sockets, TLS (ssl.SSLError), timeouts, refused connections
    EOFError,
    http.client.HTTPException,
    imaplib.IMAP4.error,
    smtplib.SMTPException,
)


def run_probe(spec: ProbeSpec) -> ProbeResult:
    """Run one probe.

    Args:
        spec: A spec from :func:`parse_probe` (or built in code).

    Returns:
        The result; ``ok`` is false for an unmet expectation and for any network
        failure (refused, timed out, TLS handshake or certificate failure, a
        protocol error), with the reason in ``message`` and ``observed["error"]``.

    Raises:
        InputError: a configuration problem found only at run time (``ca_file``
            missing or not PEM), naming the probe's runbook line.
    """
    observed: dict[str, Any] = {}
    start = time.monotonic()
    try:
        ok, message = PROBE_KINDS[spec.kind](spec, observed)
    except _NETWORK_ERRORS as exc:
        ok = False
        observed["error"] = f"{type(exc).__name__}: {exc}"
        message = f"{spec.kind.upper()} {spec.target}: {explain_error(exc, spec.timeout)}"
    duration = time.monotonic() - start
    return ProbeResult(ok, spec.kind, spec.target, observed, message, duration)


def explain_error(exc: BaseException, timeout: float) -> str:
    """Return a short, human reason for a network exception (what failed, what to check)."""
    cause = exc.__cause__ or exc.__context__
    wrapper = isinstance(exc, smtplib.SMTPServerDisconnected | imaplib.IMAP4.abort)
    if wrapper and isinstance(cause, OSError):
        exc = cause  # smtplib/imaplib wrap socket errors ("Connection unexpectedly closed")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate not trusted: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed: {exc.reason or exc}"
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout:g} s (host down or a firewall drops the traffic)"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (nothing listens on the port, or a firewall rejects it)"
    if isinstance(exc, socket.gaierror):
        return f"the name does not resolve ({exc.strerror})"
    if isinstance(exc, ConnectionError | EOFError | smtplib.SMTPServerDisconnected):
        return "the server closed the connection unexpectedly"
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"server answered {exc.smtp_code} {_decode(exc.smtp_error)}"
    if isinstance(exc, imaplib.IMAP4.error):
        return f"IMAP protocol error: {exc}"
    if isinstance(exc, http.client.HTTPException):
        return f"not a valid HTTP answer ({type(exc).__name__}: {exc})"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return f"{type(exc).__name__}: {exc}"


def _decode(raw: bytes | str) -> str:
    """Decode a server reply for a message."""
    return raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
