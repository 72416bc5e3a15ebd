"""Mail probes: ``imap`` (imaplib) and ``smtp`` with an open-relay test (smtplib).

The relay test follows the usual manual check (RFC 5321 §3.3, §4.2): EHLO,
``MAIL FROM`` an outside address, ``RCPT TO`` an outside address must be
refused with 5xx; then RSET, ``MAIL FROM`` the outside address again and
``RCPT TO`` a local address must be accepted (250, or 251 "will forward").  It
never sends DATA, so no message can be delivered, and ends with RSET and QUIT.
"""

from __future__ import annotations

import contextlib
import imaplib
import re
import smtplib
import socket
import ssl
from typing import Any

from .spec import ImapProbe, RelayTest, SmtpProbe
from .tlsutil import client_context, session_facts


def probe_imap(spec: ImapProbe, observed: dict[str, Any]) -> tuple[bool, str]:
    """Read the IMAP greeting (over implicit TLS, after STARTTLS, or in clear) and match it.

    The socket goes to ``connect`` when given; imaplib's ``host`` (the name in
    SNI and the certificate check, also after STARTTLS) is ``server_name`` or ``host``.
    """
    ctx = client_context(spec, spec.ca_file) if spec.tls != "none" else None
    port = spec.effective_port
    if spec.tls == "implicit":
        conn: imaplib.IMAP4 = _Imap4Ssl(spec.sni, port, spec.address, ctx, spec.timeout)
    else:
        conn = _Imap4(spec.sni, port, spec.address, spec.timeout)
    try:
        observed["banner"] = _text(conn.welcome)
        observed["capabilities"] = sorted(conn.capabilities)
        if spec.tls == "starttls":
            if "STARTTLS" not in conn.capabilities:
                return False, f"IMAP {spec.target} does not offer STARTTLS"
            conn.starttls(ssl_context=ctx)
            observed["capabilities_tls"] = sorted(conn.capabilities)
        if spec.tls != "none":
            observed.update(session_facts(conn.sock))
    finally:
        with contextlib.suppress(OSError, imaplib.IMAP4.error, EOFError):
            conn.logout()
    return _banner_verdict("IMAP", spec.target, spec.expect_banner, observed, _tls_note(spec.tls))


class _Imap4(imaplib.IMAP4):
    """IMAP4 whose socket goes to ``address``; ``host`` stays the server's name."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        self._address = address
        super().__init__(host, port, timeout)

    def _create_socket(self, timeout: float | None) -> socket.socket:
        return socket.create_connection((self._address, self.port), timeout)


class _Imap4Ssl(imaplib.IMAP4_SSL):
    """IMAP4 over implicit TLS to ``address``; ``host`` is the SNI and certificate name."""

    def __init__(
        self, host: str, port: int, address: str, ctx: ssl.SSLContext | None, timeout: float
    ) -> None:
        self._address = address
        super().__init__(host, port, ssl_context=ctx, timeout=timeout)

    def _create_socket(self, timeout: float | None) -> socket.socket:
        sock = socket.create_connection((self._address, self.port), timeout)
        return self.ssl_context.wrap_socket(sock, server_hostname=self.host)


def probe_smtp(spec: SmtpProbe, observed: dict[str, Any]) -> tuple[bool, str]:
    """Check the SMTP greeting, optionally STARTTLS, and optionally that relaying is refused."""
    smtp = smtplib.SMTP(timeout=spec.timeout, local_hostname=spec.ehlo_name or socket.gethostname())
    # smtplib takes the STARTTLS server_hostname from _host, which only its
    # constructor sets; connecting in the constructor would hide the banner.
    # connect() goes to the address, so _host stays the name the certificate is for.
    smtp._host = spec.sni  # type: ignore[attr-defined]
    try:
        code, reply = smtp.connect(spec.address, spec.port)
        observed.update(banner_code=code, banner=_text(reply))
        observed["ehlo_code"] = smtp.ehlo()[0]
        if spec.starttls:
            if not smtp.has_extn("starttls"):
                return False, f"SMTP {spec.target} does not offer STARTTLS"
            observed["starttls_code"] = smtp.starttls(context=client_context(spec, spec.ca_file))[0]
            observed.update(session_facts(smtp.sock))
            observed["ehlo_tls_code"] = smtp.ehlo()[0]
        ok, message = _banner_verdict(
            "SMTP", spec.target, spec.expect_banner, observed, " with STARTTLS" * spec.starttls
        )
        if ok and spec.relay_test is not None:
            ok, message = _relay_test(smtp, spec, spec.relay_test, observed)
    finally:
        with contextlib.suppress(OSError, smtplib.SMTPException):
            observed["quit_code"] = smtp.quit()[0]
        smtp.close()
    return ok, message


def _relay_test(
    smtp: smtplib.SMTP, spec: SmtpProbe, test: RelayTest, observed: dict[str, Any]
) -> tuple[bool, str]:
    """Run the relay test on an open session (see module doc); never sends DATA."""
    name = f"SMTP {spec.target}"
    code, reply = smtp.mail(test.outside_from)
    observed["mail_from_code"] = code
    if code != 250:
        return False, (
            f"{name}: MAIL FROM:<{test.outside_from}> got {code} {_text(reply)}; "
            "cannot test relaying (choose a sender the server accepts)"
        )
    code, reply = smtp.rcpt(test.outside_to)
    observed.update(rcpt_outside_code=code, rcpt_outside_reply=_text(reply))
    observed["rset_code"] = smtp.rset()[0]
    if 200 <= code < 400:
        return False, f"{name} is an open relay: RCPT TO:<{test.outside_to}> got {code}"
    if code < 500:
        return False, (
            f"{name}: RCPT TO:<{test.outside_to}> got temporary {code}; relay test "
            "inconclusive (expected a 5xx refusal)"
        )
    observed["mail_from_again_code"] = smtp.mail(test.outside_from)[0]
    code, reply = smtp.rcpt(test.local_to)
    observed.update(rcpt_local_code=code, rcpt_local_reply=_text(reply))
    observed["rset_again_code"] = smtp.rset()[0]
    if code not in (250, 251):
        return False, (
            f"{name}: refuses relaying, but RCPT TO:<{test.local_to}> (local) got "
            f"{code} {_text(reply)}; expected 250"
        )
    return True, (
        f"{name} is not an open relay: outside RCPT refused with "
        f"{observed['rcpt_outside_code']}, local RCPT accepted with {code}"
    )


def _banner_verdict(
    proto: str, target: str, pattern: str | None, observed: dict[str, Any], how: str
) -> tuple[bool, str]:
    """Match the banner against ``pattern`` (``None``: any banner will do)."""
    banner = observed.get("banner", "")
    if pattern is not None and not re.search(pattern, banner):
        return False, f"{proto} {target}{how}: banner {banner!r} does not match /{pattern}/"
    return True, f"{proto} {target}{how}: banner {banner!r}"


def _tls_note(mode: str) -> str:
    """Return a phrase for the IMAP TLS mode."""
    return {"implicit": " (implicit TLS)", "starttls": " with STARTTLS", "none": ""}[mode]


def _text(raw: bytes | str | None) -> str:
    """Decode a protocol line for ``observed`` (errors replaced)."""
    if raw is None:
        return ""
    return raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
