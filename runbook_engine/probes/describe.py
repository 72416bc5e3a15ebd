"""One-line, human descriptions of probes for guides and plans."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .spec import DnsProbe, HttpProbe, ImapProbe, ProbeSpec, SmtpProbe, TcpProbe, TlsProbe


def describe_probe(spec: ProbeSpec) -> str:
    """Return one line saying what the probe checks.

    Example: ``HTTPS GET https://mail.example.com/rpc/rpcproxy.dll expects 401
    with WWW-Authenticate matching /Basic|NTLM|Negotiate/``.  A probe whose
    ``connect`` differs from its host says ``via ADDRESS`` after the target.
    """
    describe: Callable[[Any], str] = _DESCRIBERS[spec.kind]
    return describe(spec)


def _tcp(spec: TcpProbe) -> str:
    return f"TCP {spec.target} expects the port {spec.expect}"


def _tls(spec: TlsProbe) -> str:
    text = f"TLS {spec.target} expects a certificate valid for {spec.sni}"
    if spec.min_days_valid is not None:
        text += f" for at least {spec.min_days_valid} more days"
    if spec.min_version:
        text += f", {spec.min_version} or later"
    return text + _trust(spec.ca_file)


def _http(spec: HttpProbe) -> str:
    scheme = "HTTPS" if spec.is_https else "HTTP"
    text = (
        f"{scheme} {spec.method} {spec.target} expects {' or '.join(map(str, spec.expect_status))}"
    )
    parts = [f"{name} matching /{pattern}/" for name, pattern in spec.expect_headers.items()]
    if spec.expect_body:
        parts.append(f"a body matching /{spec.expect_body}/")
    if parts:
        text += " with " + " and ".join(parts)
    if spec.is_https and not spec.verify:
        text += " (certificate not verified)"
    return text


def _imap(spec: ImapProbe) -> str:
    how = {"implicit": " over implicit TLS", "starttls": " with STARTTLS", "none": ""}[spec.tls]
    text = f"IMAP {spec.target}{how} expects {_banner(spec.expect_banner)}"
    return text + (_certificate_name(spec.server_name, spec.host) if spec.tls != "none" else "")


def _smtp(spec: SmtpProbe) -> str:
    how = " with STARTTLS" if spec.starttls else ""
    text = f"SMTP {spec.target}{how} expects {_banner(spec.expect_banner)}"
    if spec.starttls:
        text += _certificate_name(spec.server_name, spec.host)
    if spec.relay_test:
        rt = spec.relay_test
        text += (
            f"; no open relay: RCPT TO {rt.outside_to} refused, RCPT TO {rt.local_to} "
            f"accepted (MAIL FROM {rt.outside_from}, no DATA sent)"
        )
    return text


def _dns(spec: DnsProbe) -> str:
    wanted = ", ".join(spec.expect) if spec.expect else f"any {spec.record} address"
    return f"DNS {spec.record} {spec.name} expects {wanted}"


def _banner(pattern: str | None) -> str:
    return f"a banner matching /{pattern}/" if pattern else "a greeting"


def _certificate_name(server_name: str | None, host: str) -> str:
    """Say which name the certificate is checked for, when it is not the host's."""
    if not server_name or server_name.lower() == host.lower():
        return ""
    return f" and a certificate valid for {server_name}"


def _trust(ca_file: str | None) -> str:
    return f" (trusting {ca_file})" if ca_file else ""


_DESCRIBERS: dict[str, Callable[[Any], str]] = {
    "tcp": _tcp,
    "tls": _tls,
    "http": _http,
    "imap": _imap,
    "smtp": _smtp,
    "dns": _dns,
}
