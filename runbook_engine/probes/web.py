"""The ``http`` probe: one request with :mod:`http.client`, no redirects, no credentials.

:mod:`http.client` rather than :mod:`urllib.request` because a probe must see
a 401 or a 302 as it is (urllib raises on the first and follows the second).
"""

from __future__ import annotations

import http.client
import re
import socket
from typing import Any
from urllib.parse import urlsplit

from .spec import HttpProbe
from .tlsutil import client_context, session_facts

#: Bytes of the body read for ``expect_body`` (64 KiB).
BODY_LIMIT = 64 * 1024
#: Characters of the body kept in ``observed``.
EXCERPT = 200


def probe_http(spec: HttpProbe, observed: dict[str, Any]) -> tuple[bool, str]:
    """Send ``method url`` and check status, headers and body against the spec."""
    parts = urlsplit(spec.url)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    conn = _connection(spec, parts.hostname or "", parts.port)
    try:
        conn.request(spec.method, path, headers={"User-Agent": "runbook-engine-probe"})
        observed.update(session_facts(conn.sock))
        response = conn.getresponse()
        body = response.read(BODY_LIMIT) if spec.method != "HEAD" else b""
    finally:
        conn.close()
    headers = _joined_headers(response.getheaders())
    observed.update(status=response.status, reason=response.reason, headers=headers)
    text = body.decode("utf-8", errors="replace")
    if spec.expect_body is not None:
        observed["body_excerpt"] = text[:EXCERPT]
    failures = _failures(spec, response.status, headers, text)
    seen = f"{spec.method} {spec.target} -> {response.status} {response.reason}".rstrip()
    if failures:
        return False, f"{seen}; {'; '.join(failures)}"
    return True, f"{seen}, as expected"


def _connection(spec: HttpProbe, host: str, port: int | None) -> http.client.HTTPConnection:
    """Return an unopened connection for the URL's scheme.

    With ``connect`` the socket goes to that address while ``host`` stays the
    name in SNI, the certificate check and the ``Host`` header: http.client
    opens its socket through the ``_create_connection`` attribute (set to
    :func:`socket.create_connection` in its constructor), which is replaced.
    """
    conn: http.client.HTTPConnection
    if spec.is_https:
        ctx = client_context(spec, spec.ca_file, verify=spec.verify)
        conn = http.client.HTTPSConnection(host, port, timeout=spec.timeout, context=ctx)
    else:
        conn = http.client.HTTPConnection(host, port, timeout=spec.timeout)
    if spec.connect:
        address = spec.connect

        def create(where: tuple[str, int], *args: Any) -> socket.socket:
            return socket.create_connection((address, where[1]), *args)

        conn._create_connection = create  # type: ignore[attr-defined]
    return conn


def _joined_headers(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """Merge headers by lower-case name, joining repeats with ``", "`` (RFC 9110 §5.3)."""
    merged: dict[str, list[str]] = {}
    for name, value in pairs:
        merged.setdefault(name.lower(), []).append(value)
    return {name: ", ".join(values) for name, values in merged.items()}


def _failures(spec: HttpProbe, status: int, headers: dict[str, str], body: str) -> list[str]:
    """Return one phrase per unmet expectation."""
    failures = []
    if status not in spec.expect_status:
        wanted = " or ".join(str(s) for s in spec.expect_status)
        failures.append(f"expected status {wanted}")
    for name, pattern in spec.expect_headers.items():
        value = headers.get(name.lower())
        if value is None:
            failures.append(f"no {name} header (expected /{pattern}/)")
        elif not re.search(pattern, value):
            failures.append(f"{name}: {value!r} does not match /{pattern}/")
    if spec.expect_body is not None and not re.search(spec.expect_body, body):
        failures.append(f"body does not match /{spec.expect_body}/")
    return failures
