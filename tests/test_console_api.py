"""The console's API (``/api/v1``): bearer tokens (401 without, 403 when the roles or
separation of duties forbid), the flows the pages have, CSRF and session expiry for the
session-cookie callers, XSS payloads that stay text, the one-time launch ticket behind
an authenticated operator, and ``runbook ... --server`` against a real ``runbook serve``.

Real components: the ``runbook`` command makes runs in a copy of ``tests/fixtures/evidence``
(real store, journal, background runs); the application is driven by Starlette's
TestClient, or served by uvicorn (``runbook serve``) on a free loopback port.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette")
pytest.importorskip("argon2")
httpx = pytest.importorskip("httpx")

from starlette.testclient import TestClient  # noqa: E402

from runbook_engine.console.users import UserFile, users_path  # noqa: E402
from runbook_engine.run.launch_ticket import TICKET_ENV, issue  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from test_console import FIXTURES, OPERATOR, PASSWORD, Place, csrf  # noqa: E402

pytestmark = pytest.mark.skipif(os.name != "posix", reason="sh steps")


def _copy_fixtures(root: Path) -> None:
    for item in FIXTURES.iterdir():
        if item.is_file():
            shutil.copy2(item, root / item.name)


def _accounts(state: Path) -> dict[str, str]:
    """The accounts of the tests, and their API tokens by name."""
    accounts = UserFile(users_path(state))
    tokens = {}
    for name, roles in (
        (OPERATOR, ("operator", "approver")),
        ("Alice Approver", ("approver",)),
        ("Bob Board", ("approver",)),
        ("Vera Viewer", ("viewer",)),
    ):
        tokens[name] = accounts.add(name, roles, PASSWORD)[1]
    return tokens


@pytest.fixture
def place(tmp_path: Path) -> tuple[Place, dict[str, str]]:
    _copy_fixtures(tmp_path)
    here = Place(tmp_path)
    return here, _accounts(here.state)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def wait_for(what: Callable[[], Any], timeout: float = 90.0) -> Any:
    """``what()`` once it is truthy (polled; fails after ``timeout`` seconds)."""
    end = time.monotonic() + timeout
    while True:
        found = what()
        if found:
            return found
        assert time.monotonic() < end, "gave up waiting"
        time.sleep(0.2)


# -- tokens -----------------------------------------------------------------------------------
def test_users_add_prints_the_token_once_on_its_last_line_and_keeps_only_its_hash(
    tmp_path: Path,
) -> None:
    _copy_fixtures(tmp_path)
    place = Place(tmp_path)
    added = place.cli(
        "users", "add", "Alice Approver", "--role", "approver", "--state-dir", place.state
    )
    assert added.returncode == 0, added.stderr
    token = added.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token)
    kept = users_path(place.state).read_text()
    assert token not in kept and hashlib.sha256(token.encode()).hexdigest() in kept
    client = TestClient(place.app)
    assert client.get("/api/v1/me", headers=bearer(token)).json() == {
        "name": "Alice Approver",
        "roles": ["approver"],
        "method": "token",
    }
    renewed = place.cli("users", "token", "Alice Approver", "--state-dir", place.state)
    new = renewed.stdout.strip().splitlines()[-1]
    assert new != token
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 401  # the old one
    assert client.get("/api/v1/me", headers=bearer(new)).status_code == 200


def test_anonymous_and_bad_tokens_get_401(place: tuple[Place, dict[str, str]]) -> None:
    here, _ = place
    client = TestClient(here.app)
    for headers in ({}, bearer("not-a-token"), {"Authorization": "Basic YTpi"}):
        for method, url in (("GET", "/api/v1/runs"), ("POST", "/api/v1/runs/r1/steps/cab/approve")):
            answer = client.request(method, url, headers=headers, follow_redirects=False)
            assert answer.status_code == 401, (method, url, headers)
            assert answer.headers["www-authenticate"].startswith("Bearer")
            assert "error" in answer.json()
    spec = client.get("/openapi.json")  # the document is public
    assert spec.status_code == 200 and spec.json()["openapi"] == "3.1.0"


def test_forbidden_acts_get_403(place: tuple[Place, dict[str, str]]) -> None:
    here, tokens = place
    here.start_paused_run()
    client = TestClient(here.app)
    own = client.post(
        "/api/v1/runs/r1/steps/cab/approve", headers=bearer(tokens[OPERATOR]), json={"note": "mine"}
    )
    assert own.status_code == 403 and "separation of duties" in own.json()["error"]
    viewer = client.post(
        "/api/v1/runs/r1/steps/cab/approve", headers=bearer(tokens["Vera Viewer"]), json={}
    )
    assert viewer.status_code == 403 and "may not vote" in viewer.json()["error"]
    start = client.post(
        "/api/v1/runs",
        headers=bearer(tokens["Vera Viewer"]),
        json={"runbook": "approved.md", "environment": "env.yml"},
    )
    assert start.status_code == 403
    assert here.events("approval-recorded") == []  # nothing was journaled


def test_api_flows_record_the_token_user_as_authenticated(
    place: tuple[Place, dict[str, str]],
) -> None:
    here, tokens = place
    here.start_paused_run()
    client = TestClient(here.app)
    alice = bearer(tokens["Alice Approver"])
    listed = client.get("/api/v1/runs", headers=alice, params={"status": "paused"}).json()
    assert [r["run_id"] for r in listed["runs"]] == ["r1"]
    assert client.get("/api/v1/runs", headers=alice, params={"status": "failed"}).json() == {
        "runs": []
    }
    detail = client.get("/api/v1/runs/r1", headers=alice).json()
    (gate,) = detail["gates"]
    assert (gate["step"], gate["kind"], gate["approval"]["required"]) == ("cab", "approval", 2)
    payload = "<script>alert(1)</script>"
    voted = client.post("/api/v1/runs/r1/steps/cab/approve", headers=alice, json={"note": payload})
    assert voted.status_code == 200, voted.text
    assert voted.json()["approvals"] == 1 and voted.json()["auth_method"] == "token"
    again = client.post("/api/v1/runs/r1/steps/cab/approve", headers=alice, json={})
    assert again.status_code == 400 and "counts once" in again.json()["error"]
    here.launcher.wait()
    (recorded,) = here.events("approval-recorded")
    assert (recorded["by"], recorded["authenticated"], recorded["auth_method"]) == (
        "Alice Approver",
        True,
        "token",
    )
    # The payload is data: JSON in the API, escaped text on the page.
    page = here.client("Vera Viewer").get("/runs/r1").text
    assert payload not in page and "&lt;script&gt;alert(1)" in page
    assert client.get("/api/v1/runs/r1/evidence", headers=alice).json()["verdict"]
    zipped = client.get("/api/v1/runs/r1/bundle", headers=alice)
    assert zipped.headers["content-type"] == "application/zip" and zipped.content[:2] == b"PK"
    missing = client.get("/api/v1/runs/nope", headers=alice)
    assert missing.status_code == 404 and "no run" in missing.json()["error"]
    bad = client.post("/api/v1/runs/r1/steps/cab/approve", headers=alice, content=b"[1]")
    assert bad.status_code == 400


def test_session_callers_need_the_csrf_header_and_expire(tmp_path: Path) -> None:
    _copy_fixtures(tmp_path)
    here = Place(tmp_path)
    _accounts(here.state)
    here.start_paused_run()
    alice = here.client("Alice Approver")
    url = "/api/v1/runs/r1/steps/cab/approve"
    assert alice.post(url, json={}).status_code == 403  # no X-CSRF-Token
    assert alice.post(url, json={}, headers={"X-CSRF-Token": "wrong"}).status_code == 403
    ok = alice.post(url, json={}, headers={"X-CSRF-Token": csrf(alice, "/runs/r1")})
    assert ok.status_code == 200 and ok.json()["auth_method"] == "password"
    here.launcher.wait()
    # A session older than session_hours (8) is nobody: the API answers 401.
    client = TestClient(here.app)
    client.cookies.set("runbook_console", _session_cookie(here, "Bob Board", hours_ago=7.9))
    assert client.get("/api/v1/me").json()["name"] == "Bob Board"
    client.cookies.set("runbook_console", _session_cookie(here, "Bob Board", hours_ago=8.1))
    assert client.get("/api/v1/me").status_code == 401
    assert client.get("/runs", follow_redirects=False).headers["location"] == "/login"


def test_the_api_takes_the_session_cookie_with_its_csrf_header_and_tokens_without(
    place: tuple[Place, dict[str, str]],
) -> None:
    """The console's own script calls the API with the session cookie: every POST needs
    the session's token in X-CSRF-Token (a form field does not count); a bearer token
    needs none; a refused call journals nothing."""
    here, tokens = place
    here.start_paused_run()
    alice = here.client("Alice Approver")
    url = "/api/v1/runs/r1/steps/cab/approve"
    assert alice.get("/api/v1/runs/r1").json()["run_id"] == "r1"  # reads need no token
    token = csrf(alice, "/runs/r1")
    for headers, data in (
        ({}, {"note": "no header"}),
        ({"X-CSRF-Token": "wrong"}, {"note": "wrong header"}),
        ({"X-CSRF-Token": ""}, {"note": "empty header"}),
        ({}, {"note": "field only", "csrf": token}),  # the page's field is not the header
    ):
        refused = alice.post(url, headers=headers, data=data, files={"x": ("", b"")})
        assert refused.status_code == 403, (headers, refused.text)
        assert "X-CSRF-Token" in refused.json()["error"]
    # Another session's token is wrong too.
    bob = here.client("Bob Board")
    other = alice.post(url, headers={"X-CSRF-Token": csrf(bob, "/runs/r1")}, json={})
    assert other.status_code == 403
    assert here.events("approval-recorded") == []
    ok = alice.post(
        url,
        headers={"X-CSRF-Token": token},
        data={"note": "by cookie"},
        files={"attachments": ("minutes.txt", b"approved in the meeting\n", "text/plain")},
    )
    assert ok.status_code == 200, ok.text
    answer = ok.json()
    assert (answer["auth_method"], answer["attachments"]) == ("password", ["minutes.txt"])
    assert answer["message"].startswith("Recorded approval of cab by Alice Approver (1 of 2")
    # A bearer token needs no CSRF header, JSON or form alike; the session cookie sent
    # with it changes nothing (the token decides who calls).
    bob_token = bob.post(
        url, headers=bearer(tokens["Bob Board"]), data={"note": "by token"}, files={}
    )
    assert bob_token.status_code == 200 and bob_token.json()["auth_method"] == "token"
    here.launcher.wait()
    votes = here.events("approval-recorded")
    assert [(v["by"], v["auth_method"]) for v in votes] == [
        ("Alice Approver", "password"),
        ("Bob Board", "token"),
    ]
    (attached,) = here.events("attachment-added")
    assert attached["path"] == "attachments/cab/minutes.txt" and attached["by"] == "Alice Approver"
    assert votes[0]["attachments"] == [
        {"path": "attachments/cab/minutes.txt", "sha256": attached["sha256"]}
    ]
    verified = TestClient(here.app).get(
        "/api/v1/runs/r1/evidence", headers=bearer(tokens["Bob Board"])
    )
    assert verified.json()["verdict"] != "failed", verified.json()  # unsigned in this place
    assert "2 files match the journal" in verified.json()["text"]  # the attachment counts


def test_the_page_form_and_the_api_are_one_implementation(tmp_path: Path) -> None:
    """The same refusals, in the same words, whether the act comes as a page's form or
    an API call: upload type and size, a skip without its reason, a step not reached
    (409 from the API), decided in advance only when asked."""
    _copy_fixtures(tmp_path)
    here = Place(tmp_path, max_upload_bytes=64)
    tokens = _accounts(here.state)
    here.start_paused_run()
    olga = here.client(OPERATOR)
    api = TestClient(here.app)
    as_olga = bearer(tokens[OPERATOR])
    path = "/api/v1/runs/r1/steps/export-settings/"

    def page_says(decision: str, note: str = "", files: Any = None) -> str:
        token = csrf(olga, "/runs/r1")
        answer = olga.post(
            "/runs/r1/steps/export-settings/decide",
            data={"decision": decision, "note": note, "csrf": token},
            files=files or {"attachments": ("", b"")},
        )
        assert answer.status_code == 200, answer.text
        found = re.search(r'<p class="message"[^>]*>([^<]*)</p>', answer.text)
        assert found, answer.text
        return found.group(1)

    big = {"attachments": ("big.txt", b"x" * 65, "text/plain")}
    exe = {"attachments": ("tool.exe", b"MZ", "application/octet-stream")}
    for files, words in ((big, "big.txt: larger than 64 bytes"), (exe, "tool.exe: not an")):
        refused = api.post(path + "confirm", headers=as_olga, data={"note": "n"}, files=files)
        assert refused.status_code == 400 and refused.json()["error"].startswith(words)
        assert page_says("confirm", "n", files).startswith(words)
    skip = api.post(path + "skip", headers=as_olga, json={})
    assert skip.status_code == 400 and "a skip needs a note" in skip.json()["error"]
    assert "a skip needs a note" in page_says("skip")
    early = api.post(path + "confirm", headers=as_olga, json={"note": "n"})
    assert early.status_code == 409 and "has not been reached" in early.json()["error"]
    assert "has not been reached" in page_says("confirm", "n")
    elsewhere = api.post(
        path + "confirm", headers=as_olga, json={"host": "nope", "in_advance": True}
    )
    assert elsewhere.status_code == 409 and "host 'nope'" in elsewhere.json()["error"]
    rerun = api.post(path + "rerun", headers=as_olga, json={"in_advance": True})
    assert rerun.status_code == 400 and "in_advance" in rerun.json()["error"]
    on_vote = api.post(
        "/api/v1/runs/r1/steps/cab/approve", headers=bearer(tokens["Bob Board"]), json={"host": "x"}
    )
    assert on_vote.status_code == 400 and "gate decisions" in on_vote.json()["error"]
    assert here.events("gate-decision-recorded") == [] and here.events("attachment-added") == []
    ahead = api.post(
        path + "confirm",
        headers=as_olga,
        data={"note": "exported early", "in_advance": "true"},
        files={"attachments": ("settings.txt", b"k=v\n", "text/plain")},
    )
    assert ahead.status_code == 200, ahead.text
    assert ahead.json()["in_advance"] is True and "decided in advance" in ahead.json()["message"]
    (recorded,) = here.events("gate-decision-recorded")
    assert (recorded["source"], recorded["auth_method"]) == ("console-in-advance", "token")
    assert recorded["attachments"][0]["path"] == "attachments/export-settings/settings.txt"
    here.launcher.wait()
    assert TestClient(here.app).get("/api/v1/runs/r1", headers=as_olga).json()["status"] == (
        "paused"
    )  # decided ahead: the run still waits for its approvals


def _session_cookie(here: Place, name: str, hours_ago: float) -> str:
    """A session cookie signed with the console's key, as Starlette makes them."""
    import base64

    from itsdangerous import TimestampSigner

    data = {"user": name, "method": "password", "since": time.time() - hours_ago * 3600}
    packed = base64.b64encode(json.dumps(data).encode())
    return TimestampSigner(here.settings.secret_key).sign(packed).decode()


# -- the authenticated starter ----------------------------------------------------------------
def test_a_launch_ticket_cannot_be_forged_or_reused(place: tuple[Place, dict[str, str]]) -> None:
    here, _ = place
    here.state.mkdir(parents=True, exist_ok=True)
    args = (
        "run",
        "approved.md",
        "--env",
        "env.yml",
        "--state-dir",
        here.state,
        "--run-id",
        "r9",
        "--no-input",
        "--operator",
        OPERATOR,
    )
    env_forged = _cli_env(here, {TICKET_ENV: "made-up"})
    typed = subprocess.run(
        [sys.executable, "-m", "runbook_engine", *map(str, args)],
        cwd=here.root,
        env=env_forged,
        capture_output=True,
        text=True,
    )
    assert typed.returncode == 2 and "names no launch ticket" in typed.stderr
    assert not (here.state / "runs" / "r9").exists()
    other = issue(here.state, "run", "r9", "Mallory", "password")
    wrong = subprocess.run(
        [sys.executable, "-m", "runbook_engine", *map(str, args)],
        cwd=here.root,
        env=_cli_env(here, {TICKET_ENV: other}),
        capture_output=True,
        text=True,
    )
    assert wrong.returncode == 2 and "by Mallory" in wrong.stderr
    good = issue(here.state, "run", "r9", OPERATOR, "password")
    first = subprocess.run(
        [sys.executable, "-m", "runbook_engine", *map(str, args)],
        cwd=here.root,
        env=_cli_env(here, {TICKET_ENV: good}),
        capture_output=True,
        text=True,
    )
    assert first.returncode == 3, first.stderr
    started = json.loads((here.state / "runs" / "r9" / "journal.jsonl").read_text().splitlines()[0])
    assert (started["operator_authenticated"], started["operator_auth_method"]) == (
        True,
        "password",
    )
    again = subprocess.run(
        [
            sys.executable,
            "-m",
            "runbook_engine",
            "resume",
            "r9",
            "--state-dir",
            str(here.state),
            "--no-input",
        ],
        cwd=here.root,
        env=_cli_env(here, {TICKET_ENV: good}),
        capture_output=True,
        text=True,
    )
    assert again.returncode == 2 and "names no launch ticket" in again.stderr  # used up


def _cli_env(here: Place, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNBOOK_")}
    return {**env, "NO_COLOR": "1", **extra}


# -- a real server ----------------------------------------------------------------------------
class Served:
    """``runbook serve`` on a free loopback port, in a copy of the evidence fixtures."""

    def __init__(self, root: Path) -> None:
        _copy_fixtures(root)
        self.root, self.state = root, root / "state"
        self.tokens: dict[str, str] = {}
        for name, role in (
            (OPERATOR, "operator"),
            ("Alice Approver", "approver"),
            ("Bob Board", "approver"),
            ("Vera Viewer", "viewer"),
        ):
            added = self.cli("users", "add", name, "--role", role)
            assert added.returncode == 0, added.stderr
            self.tokens[name] = added.stdout.strip().splitlines()[-1]
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(root / "serve.log", "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "runbook_engine",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--library",
                str(root),
                "--state-dir",
                str(self.state),
            ],
            cwd=root,
            env=_cli_env_plain(),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        wait_for(self._up, timeout=60)

    def _up(self) -> bool:
        assert self.process.poll() is None, (self.root / "serve.log").read_text()
        try:
            return httpx.get(self.url + "/openapi.json", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def cli(self, *args: Any, token: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {**_cli_env_plain(), "RUNBOOK_CONSOLE_PASSWORD": PASSWORD}
        if token:
            env["RUNBOOK_TOKEN"] = token
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "runbook_engine",
                *map(str, args),
                "--state-dir",
                str(self.state),
            ]
            if args[0] in ("users", "evidence")
            else [sys.executable, "-m", "runbook_engine", *map(str, args)],
            cwd=self.root,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
        assert "Traceback" not in proc.stderr, proc.stderr
        return proc

    def api(self, name: str) -> Any:
        return httpx.Client(base_url=self.url, headers=bearer(self.tokens[name]), timeout=30)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log.close()


def _cli_env_plain() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNBOOK_")}
    return {**env, "NO_COLOR": "1"}


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    server = Served(tmp_path)
    yield server
    server.stop()


def test_three_authenticated_people_carry_a_two_person_change_end_to_end(
    served: Served,
) -> None:
    """Done when (issue 18): an operator and two approvers, through the console and the
    CLI; the change record names each as authenticated."""
    olga = served.api(OPERATOR)
    started = olga.post(
        "/api/v1/runs",
        json={"runbook": "approved.md", "environment": "env.yml", "change_id": "CHG-18"},
    )
    assert started.status_code == 202, started.text
    run_id = started.json()["run_id"]

    def waiting_at(step: str) -> Callable[[], bool]:
        def check() -> bool:
            found = olga.get(f"/api/v1/runs/{run_id}")
            return found.status_code == 200 and step in [g["step"] for g in found.json()["gates"]]

        return check

    wait_for(waiting_at("cab"))
    # Approver 1 through the console's pages (password sign-in, CSRF form).
    with httpx.Client(base_url=served.url, timeout=30, follow_redirects=True) as page:
        token = re.search(r'name="csrf" value="([^"]+)"', page.get("/login").text).group(1)
        signed = page.post(
            "/login", data={"name": "Alice Approver", "password": PASSWORD, "csrf": token}
        )
        assert signed.url.path == "/runs", signed.text
        token = re.search(r'name="csrf" value="([^"]+)"', page.get(f"/runs/{run_id}").text)
        voted = page.post(
            f"/runs/{run_id}/steps/cab/vote", data={"decision": "approve", "csrf": token.group(1)}
        )
        assert "1 of 2 approvals" in voted.text
    # Approver 2 through the CLI, acting through the server with a token.
    claimed = served.cli(
        "approve",
        run_id,
        "cab",
        "--server",
        served.url,
        "--as",
        "Dana Lead",
        token=served.tokens["Bob Board"],
    )
    assert claimed.returncode == 2 and "token of $RUNBOOK_TOKEN is Bob Board's" in claimed.stderr
    bob = served.cli(
        "approve",
        run_id,
        "cab",
        "--server",
        served.url,
        "--note",
        "ok",
        token=served.tokens["Bob Board"],
    )
    assert bob.returncode == 0, bob.stderr
    assert "2 of 2 approvals" in bob.stdout and "authenticated: token" in bob.stdout
    assert "Recorded approval of cab" in bob.stdout and "quorum reached" in bob.stdout
    wait_for(waiting_at("export-settings"))
    status = served.cli("status", run_id, "--server", served.url, token=served.tokens[OPERATOR])
    assert "waits at export-settings" in status.stdout
    done = served.cli(
        "confirm",
        run_id,
        "export-settings",
        "--server",
        served.url,
        "--note",
        "exported",
        token=served.tokens[OPERATOR],
    )
    assert done.returncode == 0, done.stderr
    wait_for(lambda: olga.get(f"/api/v1/runs/{run_id}").json()["finished"])
    runs = served.cli("runs", "--server", served.url, "--json", token=served.tokens[OPERATOR])
    (run,) = [r for r in json.loads(runs.stdout) if r["run_id"] == run_id]
    assert run["status"] == "succeeded" and run["operator"] == OPERATOR

    record = json.loads(served.cli("evidence", "export", run_id, "--to", "json").stdout)
    people = {p["name"]: p["identity"] for p in record["summary"]["people"]}
    assert people[OPERATOR]["authenticated"] is True, people[OPERATOR]
    assert people[OPERATOR]["auth_methods"] == ["token"]
    assert people["Alice Approver"]["authenticated"] is True
    assert people["Alice Approver"]["auth_methods"] == ["password"]
    assert people["Bob Board"]["authenticated"] is True
    assert people["Bob Board"]["auth_methods"] == ["token"]
    assert set(people) == {OPERATOR, "Alice Approver", "Bob Board"}
    olga.close()


def test_the_cli_server_path_refuses_without_a_token_or_with_a_viewer(served: Served) -> None:
    none = served.cli("runs", "--server", served.url)
    assert none.returncode == 2 and "RUNBOOK_TOKEN" in none.stderr
    bad = served.cli("runs", "--server", served.url, token="wrong")
    assert bad.returncode == 2 and "refused (401)" in bad.stderr
    vera = served.cli(
        "approve", "r1", "cab", "--server", served.url, token=served.tokens["Vera Viewer"]
    )
    assert vera.returncode == 2 and "refused (403)" in vera.stderr


def test_the_cli_server_path_decides_in_advance_attaches_and_reruns(served: Served) -> None:
    """``confirm --in-advance``, ``--rerun`` and ``approve``/``confirm`` ``--attach``
    through a real ``runbook serve``: recorded as the token's account, files kept as
    evidence; a refusal is one line on standard error with the local command's exit
    status."""
    paused = served.cli(
        "run",
        "approved.md",
        "--env",
        "env.yml",
        "--state-dir",
        served.state,
        "--run-id",
        "r1",
        "--no-input",
        "--operator",
        OPERATOR,
    )
    assert paused.returncode == 3, paused.stderr
    (served.root / "minutes.txt").write_text("approved in the meeting\n")
    (served.root / "settings.txt").write_text("key=value\n")
    (served.root / "tool.exe").write_bytes(b"MZ")
    olga, alice = served.tokens[OPERATOR], served.tokens["Alice Approver"]
    remote = ("--server", served.url)

    def local(*args: str) -> subprocess.CompletedProcess[str]:
        return served.cli(*args, "--as", OPERATOR, "--state-dir", served.state)

    # Refusals: one line, and the exit status the local command has for the same thing.
    for args in (
        ("approve", "r1", "cab", "--attach", "tool.exe"),
        ("confirm", "r1", "export-settings", "--note", "too early"),
        ("confirm", "r1", "export-settings", "--rerun"),
        ("confirm", "r1", "export-settings", "--skip"),
    ):
        there = served.cli(*args, *remote, token=alice if args[0] == "approve" else olga)
        lines = there.stderr.strip().splitlines()
        assert len(lines) == 1 and "refused (4" in lines[0], (args, there.stderr)
        assert there.returncode == local(*args).returncode == 2, (args, there.stderr)
    assert (
        "tool.exe: not an accepted type"
        in served.cli("approve", "r1", "cab", "--attach", "tool.exe", *remote, token=alice).stderr
    )
    voted = served.cli(
        "approve", "r1", "cab", "--note", "seen", "--attach", "minutes.txt", *remote, token=alice
    )
    assert voted.returncode == 0, voted.stderr
    assert "1 of 2 approvals" in voted.stdout and "attached minutes.txt" in voted.stdout
    ahead = served.cli(
        "confirm",
        "r1",
        "export-settings",
        "--in-advance",
        "--note",
        "exported early",
        "--attach",
        "settings.txt",
        "--json",
        *remote,
        token=olga,
    )
    assert ahead.returncode == 0, ahead.stderr
    answer = json.loads(ahead.stdout)
    assert answer["in_advance"] is True and answer["attachments"] == ["settings.txt"]
    journal = served.state / "runs" / "r1" / "journal.jsonl"
    events = [json.loads(line) for line in journal.read_text().splitlines()]
    (vote,) = [e for e in events if e["event"] == "approval-recorded"]
    (early,) = [e for e in events if e["event"] == "gate-decision-recorded"]
    assert (vote["by"], vote["auth_method"], vote["attachments"][0]["path"]) == (
        "Alice Approver",
        "token",
        "attachments/cab/minutes.txt",
    )
    assert (early["by"], early["source"], early["attachments"][0]["path"]) == (
        OPERATOR,
        "console-in-advance",
        "attachments/export-settings/settings.txt",
    )
    assert (served.state / "runs" / "r1" / "attachments" / "cab" / "minutes.txt").is_file()

    # --rerun: a step interrupted while running (its runner killed), rerun by the console.
    shutil.copy2(Path(__file__).parent / "fixtures" / "run" / "interrupt.md", served.root)
    runner = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "runbook_engine",
            "run",
            "interrupt.md",
            "--state-dir",
            str(served.state),
            "--run-id",
            "r2",
            "--no-input",
            "--operator",
            OPERATOR,
        ],
        cwd=served.root,
        env=_cli_env_plain(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: (served.root / "child.pid").exists() or runner.poll() is not None)
        assert runner.poll() is None, "the run ended before step 'slow' started sleeping"
        started = served.state / "runs" / "r2" / "journal.jsonl"
        wait_for(lambda: started.is_file() and '"process-started"' in started.read_text())
    finally:
        runner.kill()
        runner.wait(timeout=30)
    asks = served.cli("resume", "r2", "--state-dir", served.state, "--no-input")
    assert asks.returncode == 3 and "--rerun" in asks.stderr, asks.stderr
    rerun = served.cli("confirm", "r2", "slow", "--rerun", *remote, token=olga)
    assert rerun.returncode == 0, rerun.stderr
    assert "Recorded rerun of slow" in rerun.stdout and "authenticated: token" in rerun.stdout
    api = served.api(OPERATOR)
    wait_for(lambda: api.get("/api/v1/runs/r2").json()["finished"])
    assert api.get("/api/v1/runs/r2").json()["status"] == "succeeded"
    api.close()


@pytest.mark.parametrize(
    ("decision", "approvals", "said", "not_said"),
    [
        (
            "approve",
            1,
            "Recorded approval of cab by Bob Board (1 of 2 approvals; 1 more needed",
            "continues",
        ),
        (
            "approve",
            2,
            "(2 of 2 approvals; quorum reached; the console continues the run)",
            "more needed",
        ),
        ("reject", 0, "Recorded rejection of cab", "quorum"),
    ],
)
def test_the_cli_server_path_says_what_a_vote_did(
    capsys: pytest.CaptureFixture[str], decision: str, approvals: int, said: str, not_said: str
) -> None:
    """A vote that leaves the quorum short does not claim the run goes on (it waits)."""
    from runbook_engine.cli.remote import show_decision

    answer = {
        "run_id": "r1",
        "step": "cab",
        "by": "Bob Board",
        "decision": decision,
        "approvals": approvals,
        "required": 2,
        "auth_method": "token",
        "attachments": [],
    }
    show_decision(answer, as_json=False)
    out = capsys.readouterr().out
    assert said in out and not_said not in out, out


def _address_not_loopback() -> str | None:
    """An address of this machine that is not loopback (``None`` when it has none)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: the route picks the address
            address = str(probe.getsockname()[0])
        except OSError:
            return None
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def test_the_cli_server_path_never_sends_the_token_over_plain_http_to_another_machine(
    tmp_path: Path,
) -> None:
    address = _address_not_loopback()
    if address is None:
        pytest.skip("this machine has no address but loopback")
    received = bytearray()
    with socket.socket() as listener:
        listener.bind((address, 0))
        listener.listen(1)
        listener.settimeout(15)
        url = f"http://{address}:{listener.getsockname()[1]}"
        env = {**_cli_env_plain(), "RUNBOOK_TOKEN": "tok-s3cret-never-in-clear"}
        cmd = [sys.executable, "-m", "runbook_engine", "runs", "--server", url]
        proc = subprocess.Popen(
            cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        listener.settimeout(0.2)
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:  # read what the CLI sends, then hang up
                conn.settimeout(5)
                with contextlib.suppress(OSError):
                    received += conn.recv(65536)
        out, err = proc.communicate(timeout=60)
    assert b"tok-s3cret" not in received
    assert proc.returncode == 2 and "https://" in err and "Traceback" not in err, out + err
    for bad in ("ftp://example.org", "example.org", "http://"):
        refused = subprocess.run(
            [sys.executable, "-m", "runbook_engine", "runs", "--server", bad],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert refused.returncode == 2 and "https://" in refused.stderr, refused.stderr
