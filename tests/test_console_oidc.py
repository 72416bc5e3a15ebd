"""Single sign-on (OIDC, authlib) against a real provider on loopback
(``tests/oidc_provider.py``): the console's authorization-code flow, the ID token checked
by authlib, and an approval given after it journaled ``auth_method: oidc``.

The console is driven by Starlette's TestClient; the provider is a real HTTP server the
console's authlib client talks to (discovery, token, JWKS) and the browser step (the
redirect to the provider and back) is made with httpx.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

pytest.importorskip("starlette")
pytest.importorskip("authlib")
pytest.importorskip("joserfc")

import httpx
from oidc_provider import OidcProvider  # type: ignore[import-not-found]
from starlette.testclient import TestClient
from test_console import FIXTURES, Place, vote  # type: ignore[import-not-found]

from runbook_engine.console.settings import OidcSettings
from runbook_engine.console.users import UserFile, users_path


@pytest.fixture
def provider() -> Iterator[OidcProvider]:
    made = OidcProvider("runbook-console", "client-secret-for-test", "Alice Approver")
    yield made
    made.close()


def sign_in_by_sso(client: TestClient) -> httpx.Response:
    """The browser's part: the console sends it to the provider, which sends it back."""
    start = client.get("/login/oidc", follow_redirects=False)
    assert start.status_code == 302, start.text
    to_provider = start.headers["location"]
    query = parse_qs(urlsplit(to_provider).query)
    assert query["client_id"] == ["runbook-console"] and "nonce" in query
    back = httpx.get(to_provider, follow_redirects=False)
    assert back.status_code == 302
    target = urlsplit(back.headers["location"])
    assert target.path == "/auth/oidc"
    return client.get(f"{target.path}?{target.query}")


def test_sso_signs_in_and_the_vote_is_journaled_as_oidc(
    tmp_path: Path, provider: OidcProvider
) -> None:
    for item in FIXTURES.iterdir():
        if item.is_file():
            shutil.copy2(item, tmp_path / item.name)
    oidc = OidcSettings(provider.issuer, "runbook-console", "client-secret-for-test")
    place = Place(tmp_path, oidc=oidc)
    UserFile(users_path(place.state)).add("Alice Approver", ("approver",), None)
    place.start_paused_run()

    alice = TestClient(place.app)
    landed = sign_in_by_sso(alice)
    assert landed.url.path == "/runs", landed.text
    assert "signed in by oidc" in landed.text
    assert provider.tokens_issued == 1

    assert "1 of 2 approvals" in vote(alice, "approve", "via sso").text
    place.launcher.wait()
    (recorded,) = place.events("approval-recorded")
    assert (recorded["by"], recorded["authenticated"], recorded["auth_method"]) == (
        "Alice Approver",
        True,
        "oidc",
    )
    audit = (place.state / "console" / "audit.jsonl").read_text()
    assert '"method": "oidc"' in audit


def test_sso_for_a_person_without_an_account_is_refused(
    tmp_path: Path, provider: OidcProvider
) -> None:
    oidc = OidcSettings(provider.issuer, "runbook-console", "client-secret-for-test")
    place = Place(tmp_path, oidc=oidc)  # no accounts at all
    client = TestClient(place.app)
    refused = sign_in_by_sso(client)
    assert refused.url.path == "/login"
    assert "Alice Approver has no console account" in refused.text
    assert client.get("/runs").url.path == "/login"


def test_a_wrong_client_secret_gets_no_session(tmp_path: Path, provider: OidcProvider) -> None:
    oidc = OidcSettings(provider.issuer, "runbook-console", "not-the-secret")
    place = Place(tmp_path, oidc=oidc)
    UserFile(users_path(place.state)).add("Alice Approver", ("approver",), None)
    client = TestClient(place.app)
    failed = sign_in_by_sso(client)
    assert failed.url.path == "/login" and "single sign-on failed" in failed.text
    assert provider.tokens_issued == 0
    assert client.get("/runs").url.path == "/login"
