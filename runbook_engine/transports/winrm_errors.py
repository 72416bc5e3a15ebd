"""Turn pywinrm, requests and socket errors into one clear sentence for the operator.

Every message names the host and endpoint, what failed and what to check; it never
holds a traceback or the password.  WS-Management fault codes are from [MS-WSMV]
§2.2.4.x and the WinRM error table (``winrm helpmsg <code>``):
``2150858843`` = 0x8033805B ERROR_WSMAN_SHELL_NOT_FOUND (``w:InvalidSelectors``).
"""

from __future__ import annotations

import re
from typing import Any

SHELL_NOT_FOUND_CODE = 2150858843


class ShellGone(Exception):
    """The server no longer knows our shell.

    Attributes:
        action: What we were doing.
        started: True when the step's own command may already have run.
    """

    def __init__(self, action: str, started: bool) -> None:
        super().__init__(action)
        self.action = action
        self.started = started


def is_shell_gone(exc: BaseException) -> bool:
    """True when ``exc`` is the WS-Management fault for an unknown shell id."""
    from winrm.exceptions import WSManFaultError

    if not isinstance(exc, WSManFaultError):
        return False
    subcode = (exc.fault_subcode or "").rsplit(":", 1)[-1]
    reason = (exc.reason or "").lower()
    return (
        exc.wsman_fault_code == SHELL_NOT_FOUND_CODE
        or subcode == "InvalidSelectors"
        or "shell not found" in reason
        or "shell was not found" in reason
    )


def describe_error(
    host: str,
    endpoint: str,
    options: dict[str, Any],
    action: str,
    exc: BaseException,
    *,
    secret: str | None,
) -> str:
    """Return ``WinRM host H (URL): ACTION failed: WHAT. Check: HINT`` for ``exc``.

    Args:
        host: Host name shown to people.
        endpoint: The WS-Management URL.
        options: The host's ``winrm:`` options (for hints naming them).
        action: What was being done ("open a shell (Create)").
        exc: The foreign exception.
        secret: The password, removed from the message if it appears anywhere.
    """
    what, hint = _classify(exc, options)
    text = f"WinRM host {host} ({endpoint}): {action} failed: {what}. Check {hint}"
    if secret:
        text = text.replace(secret, "***")
    return text


def _classify(exc: BaseException, options: dict[str, Any]) -> tuple[str, str]:
    import requests
    from winrm import exceptions as w

    auth = options.get("transport", "ntlm")
    if isinstance(exc, w.AuthenticationError):
        return (
            "the server rejected the credentials (HTTP 401)",
            f"the username ({options.get('username', 'not set')}) and the password of the "
            f"host's credential, and that {auth} authentication is enabled on the WinRM "
            "service (winrm get winrm/config/service/auth)",
        )
    if isinstance(exc, w.WSManFaultError):
        code = f" (WSManFault {exc.wsman_fault_code})" if exc.wsman_fault_code else ""
        return (
            f"the server answered with a fault: {_clean(exc.reason)}{code}",
            "the fault text above and the WinRM event log on the host",
        )
    if isinstance(exc, w.WinRMTransportError):
        body = _clean(exc.response_text) or "an empty body"
        return (
            f"HTTP {exc.code} with a reply that is not a WS-Management message: {body}",
            f"that the path ({options.get('path', '/wsman')}) and port belong to the WinRM "
            "listener, that no proxy stands in between, and the WinRM service's event log",
        )
    if isinstance(exc, requests.exceptions.SSLError):
        return _tls(exc, options)
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return (
            "the connection timed out",
            "the address, the port, and the firewalls on "
            "the way (TCP 5985 for http, 5986 for https)",
        )
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return (
            f"no reply within read_timeout_sec ({options.get('read_timeout_sec', 30)} s)",
            "the host's load and the WinRM service; raise read_timeout_sec if the host is slow",
        )
    if isinstance(exc, requests.exceptions.ChunkedEncodingError) or _dropped(exc):
        return (
            "the server dropped the connection before answering",
            "the WinRM service on the host (it may have restarted), MaxEnvelopeSizekb, "
            "and any proxy or load balancer in between",
        )
    if isinstance(exc, requests.exceptions.ConnectionError):
        return (
            f"cannot connect ({_connect_reason(exc)})",
            "the address and port, that the host is up, that the WinRM service listens "
            "(winrm enumerate winrm/config/listener) and that no firewall blocks the port",
        )
    if isinstance(exc, w.WinRMError):
        return (_clean(str(exc)), "the winrm options of this host in the environment file")
    if isinstance(exc, OSError):
        return (_clean(str(exc)), "the files named by ca_trust_path, cert_pem and cert_key_pem")
    return (
        f"unexpected reply ({type(exc).__name__}: {_clean(str(exc))})",
        "that the endpoint is a WinRM listener",
    )


def _tls(exc: BaseException, options: dict[str, Any]) -> tuple[str, str]:
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        reason = re.search(r"certificate verify failed: ([^(')]+)", text)
        detail = f" ({reason.group(1).strip()})" if reason else ""
        ca = options.get("ca_trust_path", "the system CA store")
        return (
            f"the server's TLS certificate is not trusted{detail}",
            f"that ca_trust_path ({ca}) holds the CA that issued the listener's certificate "
            "and that the certificate names this address; server_cert_validation: ignore "
            "is for labs only",
        )
    return (
        "the TLS handshake failed",
        "that scheme https and the port match an HTTPS listener, and the client "
        "certificate (cert_pem, cert_key_pem) if the listener requires one",
    )


def _dropped(exc: BaseException) -> bool:
    text = repr(exc)
    return any(
        s in text
        for s in (
            "RemoteDisconnected",
            "Connection aborted",
            "ConnectionResetError",
            "BadStatusLine",
            "IncompleteRead",
        )
    )


def _connect_reason(exc: BaseException) -> str:
    text = repr(exc)
    if "Connection refused" in text or "ConnectionRefused" in text or "Errno 111" in text:
        return "connection refused"
    if "NameResolution" in text or "getaddrinfo" in text or "Name or service" in text:
        return "the host name does not resolve"
    if "unreachable" in text.lower():
        return "host unreachable"
    return "no connection"


def _clean(text: str | None, limit: int = 200) -> str:
    """Collapse markup and whitespace, keep the first ``limit`` characters."""
    text = re.sub(r"<[^>]+>", " ", text or "")
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."
