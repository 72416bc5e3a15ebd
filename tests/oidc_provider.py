"""A minimal OpenID Connect provider on loopback, for the console's single sign-on tests.

It serves discovery, an authorization endpoint that signs in one fixed person at once (no
form: the person is given when the provider starts), a token endpoint that checks the
client's secret, the code and the redirect URI, and the JWKS.  The ID token is an RS256
JWT signed with joserfc (authlib's JOSE library) and carries the request's nonce.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from joserfc import jwt
from joserfc.jwk import RSAKey


class OidcProvider:
    """Signs ``username`` in for client ``client_id``/``client_secret``; ``issuer`` is its
    address.  :meth:`close` stops it."""

    def __init__(self, client_id: str, client_secret: str, username: str) -> None:
        self.client_id, self.client_secret, self.username = client_id, client_secret, username
        self.key = RSAKey.generate_key(2048, parameters={"kid": "test-key"})
        self.codes: dict[str, dict[str, str]] = {}
        self.tokens_issued = 0
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                provider._get(self)

            def do_POST(self) -> None:
                provider._post(self)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @staticmethod
    def _json(handler: BaseHTTPRequestHandler, status: int, data: dict[str, Any]) -> None:
        body = json.dumps(data).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def _get(self, handler: BaseHTTPRequestHandler) -> None:
        url = urlsplit(handler.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/.well-known/openid-configuration":
            self._json(
                handler,
                200,
                {
                    "issuer": self.issuer,
                    "authorization_endpoint": f"{self.issuer}/authorize",
                    "token_endpoint": f"{self.issuer}/token",
                    "jwks_uri": f"{self.issuer}/jwks",
                    "response_types_supported": ["code"],
                    "subject_types_supported": ["public"],
                    "id_token_signing_alg_values_supported": ["RS256"],
                },
            )
        elif url.path == "/jwks":
            self._json(handler, 200, {"keys": [self.key.as_dict(private=False)]})
        elif url.path == "/authorize":
            if query.get("client_id") != self.client_id or query.get("response_type") != "code":
                self._json(handler, 400, {"error": "invalid_request"})
                return
            code = secrets.token_urlsafe(16)
            self.codes[code] = {"nonce": query.get("nonce", ""), "redirect": query["redirect_uri"]}
            back = f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query['state']})}"
            handler.send_response(302)
            handler.send_header("Location", back)
            handler.end_headers()
        else:
            self._json(handler, 404, {"error": "not_found"})

    def _post(self, handler: BaseHTTPRequestHandler) -> None:
        if urlsplit(handler.path).path != "/token":
            self._json(handler, 404, {"error": "not_found"})
            return
        length = int(handler.headers.get("Content-Length", 0))
        form = {k: v[0] for k, v in parse_qs(handler.rfile.read(length).decode()).items()}
        basic = handler.headers.get("Authorization", "")
        if basic.startswith("Basic "):
            who, _, secret = base64.b64decode(basic[6:]).decode().partition(":")
        else:
            who, secret = form.get("client_id", ""), form.get("client_secret", "")
        grant = self.codes.pop(form.get("code", ""), None)
        if (who, secret) != (self.client_id, self.client_secret):
            self._json(handler, 401, {"error": "invalid_client"})
            return
        if grant is None or grant["redirect"] != form.get("redirect_uri"):
            self._json(handler, 400, {"error": "invalid_grant"})
            return
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": "user-1",
            "aud": self.client_id,
            "iat": now,
            "exp": now + 300,
            "nonce": grant["nonce"],
            "preferred_username": self.username,
        }
        id_token = jwt.encode({"alg": "RS256", "kid": "test-key"}, claims, self.key)
        self.tokens_issued += 1
        self._json(
            handler,
            200,
            {
                "access_token": secrets.token_urlsafe(16),
                "token_type": "Bearer",
                "expires_in": 300,
                "id_token": id_token,
            },
        )
