"""TLS helpers shared by the probes: client contexts and certificate facts.

Contexts come from :func:`ssl.create_default_context` (certificate and host
name verification on).  Certificates are read with ``cryptography`` (already a
dependency of the package), imported only when a TLS probe runs.
"""

from __future__ import annotations

import socket
import ssl
from datetime import UTC, datetime
from typing import Any

from runbook_engine.errors import InputError

from .spec import TLS_VERSIONS, ProbeSpec

_TLS_ENUM: dict[str, ssl.TLSVersion] = {
    "TLSv1": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}


def client_context(
    spec: ProbeSpec,
    ca_file: str | None,
    *,
    verify: bool = True,
    min_version: str | None = None,
) -> ssl.SSLContext:
    """Return a client context for a probe.

    Args:
        spec: The probe (for the location in a configuration error).
        ca_file: PEM file of trusted CAs; ``None`` for the system trust store.
        verify: Verify the certificate chain and host name (``False`` only
            when the runbook says ``verify: false``, or to read a certificate
            that already failed verification).
        min_version: Lowest protocol to offer (one of :data:`TLS_VERSIONS`).
            Below TLSv1.2 the OpenSSL security level is lowered to 0, because
            OpenSSL 3 refuses TLS 1.0/1.1 otherwise (Windows Server 2003 speaks
            TLS 1.0 at most); the runbook author asked for it explicitly.

    Raises:
        InputError: ``ca_file`` cannot be read or holds no PEM certificate.
    """
    try:
        ctx = ssl.create_default_context(cafile=ca_file if verify else None)
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or exc
        raise InputError.single(
            f"ca_file {ca_file}: cannot be read as PEM CA certificates ({reason})",
            spec.path,
            spec.line,
            code="RB403",
        ) from None
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if min_version is not None:
        if TLS_VERSIONS.index(min_version) < TLS_VERSIONS.index("TLSv1.2"):
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        ctx.minimum_version = _TLS_ENUM[min_version]
    return ctx


def version_at_least(negotiated: str | None, minimum: str) -> bool:
    """True when ``negotiated`` (``SSLSocket.version()``) is ``minimum`` or later."""
    if negotiated not in TLS_VERSIONS:
        return False
    return TLS_VERSIONS.index(negotiated) >= TLS_VERSIONS.index(minimum)


def session_facts(sock: socket.socket | None) -> dict[str, Any]:
    """Return the negotiated protocol and cipher of a TLS connection (``{}`` if not TLS)."""
    if not isinstance(sock, ssl.SSLSocket):
        return {}
    cipher = sock.cipher()
    return {"protocol": sock.version(), "cipher": cipher[0] if cipher else None}


def certificate_facts(der: bytes | None, now: datetime | None = None) -> dict[str, Any]:
    """Return subject, issuer, names and validity of a DER certificate.

    Args:
        der: The peer certificate (``SSLSocket.getpeercert(binary_form=True)``).
        now: The time to count days from (default: now, UTC).

    Returns:
        ``subject``, ``issuer`` (RFC 4514 strings), ``names`` (DNS and IP
        subject alternative names), ``not_before``/``not_after`` (ISO 8601,
        UTC) and ``days_left`` (whole days until ``not_after``, negative once
        expired); empty when there is no certificate.
    """
    if not der:
        return {}
    from cryptography import x509

    cert = x509.load_der_x509_certificate(der)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [*san.get_values_for_type(x509.DNSName)]
        names += [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        names = []
    not_after = cert.not_valid_after_utc
    now = now or datetime.now(UTC)
    return {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "names": names,
        "not_before": cert.not_valid_before_utc.isoformat(),
        "not_after": not_after.isoformat(),
        "days_left": (not_after - now).days,
    }
