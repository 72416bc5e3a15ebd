"""CSRF tokens, security headers and the login rate limit.

The CSRF token is random per session and compared in constant time on every POST form
(the token is a hidden field, ``csrf``).  Every response carries a Content-Security-Policy
without inline script; documents the console passes through (guides, change records) are
served sandboxed (no script at all).
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import defaultdict, deque
from typing import Any

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
#: For a document shown as is (a guide, a change record): its own styles, no script.
DOCUMENT_CSP = "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:"
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def csrf_token(session: dict[str, Any]) -> str:
    """The session's CSRF token (made on first use)."""
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return str(token)


def csrf_ok(session: dict[str, Any], given: Any) -> bool:
    """True when ``given`` is the session's token."""
    token = session.get("csrf")
    return bool(token) and isinstance(given, str) and hmac.compare_digest(token, given)


class LoginLimiter:
    """At most ``attempts`` failed logins per name and per client address in ``window``
    seconds; a success does not reset the count of the address."""

    def __init__(self, attempts: int = 5, window: float = 300.0) -> None:
        self.attempts, self.window = attempts, window
        self._failures: dict[str, deque[float]] = defaultdict(deque)

    def blocked(self, *keys: str) -> bool:
        """True when any of ``keys`` failed too often lately."""
        now = time.monotonic()
        for key in keys:
            seen = self._failures[key]
            while seen and now - seen[0] > self.window:
                seen.popleft()
            if len(seen) >= self.attempts:
                return True
        return False

    def failed(self, *keys: str) -> None:
        """Count a failed login for each of ``keys``."""
        now = time.monotonic()
        for key in keys:
            self._failures[key].append(now)
