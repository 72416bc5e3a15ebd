"""Network-level probes: ``tcp``, ``tls`` and ``dns`` (Python standard library only).

Each function takes its spec and an ``observed`` dict it fills as it goes, and
returns ``(ok, message)``.  Network exceptions propagate to
:func:`runbook_engine.probes.run_probe`, which turns them into a failed result
and keeps what was observed before the failure.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import ssl
import threading
from typing import Any

from .spec import DnsProbe, TcpProbe, TlsProbe
from .tlsutil import certificate_facts, client_context, session_facts, version_at_least

_UNREACHABLE = {errno.EHOSTUNREACH, errno.ENETUNREACH}


def probe_tcp(spec: TcpProbe, observed: dict[str, Any]) -> tuple[bool, str]:
    """Connect to ``host:port`` (or ``connect:port``) and compare the port's state with ``expect``.

    States: ``open`` (connection accepted), ``closed`` (refused: RST),
    ``filtered`` (no answer within the timeout) and ``unreachable`` (ICMP host
    or network unreachable).  Every state but ``open`` satisfies ``expect: closed``.
    A name that does not resolve is a failure either way.
    """
    try:
        with socket.create_connection((spec.address, spec.port), timeout=spec.timeout) as sock:
            observed["peer"] = sock.getpeername()[0]
            state = "open"
    except ConnectionRefusedError:
        state = "closed"
    except TimeoutError:
        state = "filtered"
    except OSError as exc:
        if exc.errno not in _UNREACHABLE:
            raise
        state = "unreachable"
    observed["state"] = state
    ok = (state == "open") == (spec.expect == "open")
    if ok:
        return True, f"TCP {spec.target} is {state}, as expected"
    why = {
        "open": "is open (a connection was accepted)",
        "closed": "is closed (connection refused)",
        "filtered": f"does not answer within {spec.timeout:g} s",
        "unreachable": "is unreachable (no route to the host)",
    }[state]
    return False, f"TCP {spec.target} {why}; expected {spec.expect}"


def probe_tls(spec: TlsProbe, observed: dict[str, Any]) -> tuple[bool, str]:
    """Handshake, verify the chain for ``server_name``, check expiry and protocol.

    The connection goes to ``connect`` when given; the name sent in SNI and
    checked against the certificate is still ``server_name`` or ``host``.

    A chain that fails verification is fetched again without verification so
    the result still shows the certificate's subject, names and expiry.
    """
    ctx = client_context(spec, spec.ca_file, min_version=spec.min_version)
    observed["server_name"] = spec.sni
    try:
        der = _handshake(spec, ctx, observed)
        observed["verified"] = True
    except ssl.SSLCertVerificationError as exc:
        observed["verified"] = False
        observed["verify_error"] = exc.verify_message
        loose = client_context(spec, None, verify=False, min_version=spec.min_version)
        observed.update(certificate_facts(_handshake(spec, loose, {})))
        return False, _unverified_message(spec, exc, observed)
    observed.update(certificate_facts(der))
    failures = []
    days = observed.get("days_left")
    if spec.min_days_valid is not None and days is not None and days < spec.min_days_valid:
        failures.append(f"expires in {days} days (< {spec.min_days_valid})")
    if spec.min_version and not version_at_least(observed.get("protocol"), spec.min_version):
        failures.append(f"negotiated {observed.get('protocol')} (< {spec.min_version})")
    summary = f"{observed.get('protocol')}, certificate valid for {spec.sni}, {days} days left"
    if failures:
        return False, f"TLS {spec.target}: {'; '.join(failures)} ({summary})"
    return True, f"TLS {spec.target}: {summary}"


def _handshake(spec: TlsProbe, ctx: ssl.SSLContext, observed: dict[str, Any]) -> bytes | None:
    """Connect, handshake, record protocol and cipher; return the peer certificate (DER)."""
    with (
        socket.create_connection((spec.address, spec.port), timeout=spec.timeout) as raw,
        ctx.wrap_socket(raw, server_hostname=spec.sni) as sock,
    ):
        observed.update(session_facts(sock))
        return sock.getpeercert(binary_form=True)


def _unverified_message(
    spec: TlsProbe, exc: ssl.SSLCertVerificationError, observed: dict[str, Any]
) -> str:
    """Say why verification failed, with the certificate's expiry and names."""
    text = f"TLS {spec.target}: certificate not valid for {spec.sni}: {exc.verify_message}"
    if "not_after" in observed:
        text += f" (expires {observed['not_after'][:10]}, names: {', '.join(observed['names'])})"
    return text


def probe_dns(spec: DnsProbe, observed: dict[str, Any]) -> tuple[bool, str]:
    """Resolve ``name`` with :func:`socket.getaddrinfo` and look for the expected addresses."""
    family = socket.AF_INET6 if spec.record == "AAAA" else socket.AF_INET
    infos = _getaddrinfo(spec.name, family, spec.timeout)
    addresses = sorted({str(info[4][0]) for info in infos})
    observed["addresses"] = addresses
    found = {ipaddress.ip_address(a.split("%")[0]) for a in addresses}
    missing = [e for e in spec.expect if ipaddress.ip_address(e) not in found]
    shown = ", ".join(addresses) or "nothing"
    if missing:
        return False, f"DNS {spec.record} {spec.name} -> {shown}; missing {', '.join(missing)}"
    if not addresses:
        return False, f"DNS {spec.record} {spec.name} has no {spec.record} address"
    return True, f"DNS {spec.record} {spec.name} -> {shown}"


def _getaddrinfo(name: str, family: int, timeout: float) -> list[Any]:
    """Run :func:`socket.getaddrinfo` with a deadline (it has none of its own).

    Raises:
        TimeoutError: the resolver did not answer within ``timeout`` seconds.
        socket.gaierror: the name does not resolve.
    """
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["infos"] = socket.getaddrinfo(name, None, family, socket.SOCK_STREAM)
        except OSError as exc:
            box["error"] = exc

    thread = threading.Thread(target=work, name=f"probe-dns-{name}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"the resolver gave no answer for {name} within {timeout:g} s")
    if "error" in box:
        raise box["error"]
    return list(box["infos"])
