"""The web console (``runbook serve``): sign-in, CSRF, separation of duties on signed-in
people, decisions journaled ``authenticated: true`` with their method, the change record
telling authenticated from claimed, evidence downloads, and starting runs.

Real components: the runs are made by the real ``runbook`` command in a copy of
``tests/fixtures/evidence`` (real SQLite store and journal), the application is driven by
Starlette's TestClient, and the console continues runs with real background processes
(:class:`BackgroundLauncher`, waited for before each check).
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette")
pytest.importorskip("argon2")

from starlette.testclient import TestClient

from runbook_engine.console.app import create_app
from runbook_engine.console.launcher import BackgroundLauncher
from runbook_engine.console.settings import Settings
from runbook_engine.console.users import UserFile, users_path
from runbook_engine.evidence.journal import read_journal

FIXTURES = Path(__file__).parent / "fixtures" / "evidence"
OPERATOR = "Olga Operator"
PASSWORD = "correct horse battery"
pytestmark = pytest.mark.skipif(os.name != "posix", reason="sh steps")


class Place:
    """A copy of the evidence fixtures, its state, its accounts and the console on it."""

    def __init__(self, root: Path, **settings: Any) -> None:
        self.root, self.state = root, root / "state"
        self.launcher = BackgroundLauncher(self.state)
        self.settings = Settings(self.state, root, "test-key-" + "x" * 32, **settings)
        self.app = create_app(self.settings, self.launcher)

    def cli(self, *args: Any, operator: str = OPERATOR) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RUNBOOK_")}
        env.update(RUNBOOK_OPERATOR=operator, NO_COLOR="1", RUNBOOK_CONSOLE_PASSWORD=PASSWORD)
        proc = subprocess.run(
            [sys.executable, "-m", "runbook_engine", *map(str, args)],
            cwd=self.root,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
        assert "Traceback" not in proc.stderr, proc.stderr
        return proc

    def start_paused_run(self) -> None:
        proc = self.cli(
            "run",
            "approved.md",
            "--env",
            "env.yml",
            "--state-dir",
            self.state,
            "--run-id",
            "r1",
            "--no-input",
            "--change",
            "CHG-9",
        )
        assert proc.returncode == 3, proc.stderr

    def client(self, name: str | None = None, **kwargs: Any) -> TestClient:
        client = TestClient(self.app, **kwargs)
        if name is not None:
            response = login(client, name, PASSWORD)
            assert response.status_code == 200 and response.url.path == "/runs", response.text
        return client

    def events(self, event: str) -> list[dict[str, Any]]:
        journal = self.state / "runs" / "r1" / "journal.jsonl"
        return [r for r in read_journal(journal) if r["event"] == event]


def csrf(client: TestClient, url: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', client.get(url).text)
    assert found, url
    return found.group(1)


def login(client: TestClient, name: str, password: str) -> Any:
    return client.post(
        "/login", data={"name": name, "password": password, "csrf": csrf(client, "/login")}
    )


def vote(client: TestClient, decision: str, note: str = "", step: str = "cab") -> Any:
    token = csrf(client, "/runs/r1")
    return client.post(
        f"/runs/r1/steps/{step}/vote", data={"decision": decision, "note": note, "csrf": token}
    )


@pytest.fixture
def place(tmp_path: Path) -> Place:
    for item in FIXTURES.iterdir():
        if item.is_file():
            shutil.copy2(item, tmp_path / item.name)
    (tmp_path / "environments").mkdir()
    shutil.copy2(FIXTURES / "env.yml", tmp_path / "environments" / "board.yaml")
    here = Place(tmp_path)
    accounts = UserFile(users_path(here.state))
    for name, roles in (
        (OPERATOR, ("operator", "approver")),
        ("Alice Approver", ("approver",)),
        ("Bob Board", ("approver",)),
        ("Vera Viewer", ("viewer",)),
    ):
        accounts.add(name, roles, PASSWORD)
    return here


def test_users_add_keeps_an_argon2_hash_never_the_password(place: Place) -> None:
    proc = place.cli(
        "users", "add", "Dana Lead", "--role", "approver", "--state-dir", place.state, "--json"
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["roles"] == ["approver"]
    stored = users_path(place.state).read_text()
    assert PASSWORD not in stored and "$argon2id$" in stored
    assert users_path(place.state).stat().st_mode & 0o777 == 0o600
    assert UserFile(users_path(place.state)).verify("Dana Lead", PASSWORD) is not None


def test_wrong_password_and_unknown_name_are_refused(place: Place) -> None:
    client = place.client()
    assert client.get("/runs").url.path == "/login"  # not signed in: sent to sign in
    wrong = login(client, "Alice Approver", "not the password")
    assert wrong.status_code == 401 and "Wrong name or password" in wrong.text
    assert login(client, "Nobody", PASSWORD).status_code == 401
    assert client.get("/runs").url.path == "/login"
    audit = (place.state / "console" / "audit.jsonl").read_text()
    assert audit.count('"login-failed"') == 2 and PASSWORD not in audit


def test_logins_are_rate_limited(place: Place) -> None:
    client = place.client()
    for _ in range(5):
        assert login(client, "Bob Board", "guess").status_code == 401
    assert login(client, "Bob Board", PASSWORD).status_code == 429  # even the right one


def test_a_post_without_the_csrf_token_is_refused(place: Place) -> None:
    place.start_paused_run()
    alice = place.client("Alice Approver")
    refused = alice.post("/runs/r1/steps/cab/vote", data={"decision": "approve"})
    assert refused.status_code == 403 and "CSRF" in refused.text
    forged = alice.post("/runs/r1/steps/cab/vote", data={"decision": "approve", "csrf": "x"})
    assert forged.status_code == 403
    assert place.events("approval-recorded") == []


def test_security_headers_and_session_cookie(place: Place) -> None:
    client = place.client()
    page = client.get("/login")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "unsafe-inline" not in page.headers["content-security-policy"]
    assert "httponly" in page.headers["set-cookie"].lower()


def test_separation_of_duties_on_signed_in_people(place: Place) -> None:
    place.start_paused_run()
    olga = place.client(OPERATOR)  # started the run: may not approve it
    own = vote(olga, "approve")
    assert "separation of duties" in own.text
    viewer = place.client("Vera Viewer")
    assert vote(viewer, "approve").status_code == 403  # the role does not allow it
    alice, alice_again = place.client("Alice Approver"), place.client("Alice Approver")
    assert "1 of 2 approvals" in vote(alice, "approve", "<script>alert(1)</script>").text
    twice = vote(alice_again, "approve")  # a second session of the same person
    assert "counts once" in twice.text
    place.launcher.wait()
    recorded = place.events("approval-recorded")
    assert [(r["by"], r["authenticated"], r["auth_method"], r["source"]) for r in recorded] == [
        ("Alice Approver", True, "password", "console")
    ]
    page = alice.get("/runs/r1").text
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)" in page


def test_two_approvers_and_a_confirmation_carry_the_run_to_its_end(place: Place) -> None:
    place.start_paused_run()
    assert "1 of 2" in vote(place.client("Alice Approver"), "approve", "fine").text
    place.launcher.wait()
    assert "2 of 2 approvals" in vote(place.client("Bob Board"), "approve").text
    place.launcher.wait()  # the console continued the run: now at the manual step
    passed = place.events("approval-passed")
    assert [a["by"] for a in passed[0]["approvals"]] == ["Alice Approver", "Bob Board"]
    resumed = place.events("run-resumed")
    assert {r["by"] for r in resumed} == {OPERATOR}  # continued in the operator's name

    olga = place.client(OPERATOR)
    page = olga.get("/runs/r1").text
    assert 'id="gate-export-settings"' in page
    token = csrf(olga, "/runs/r1")
    done = olga.post(
        "/runs/r1/steps/export-settings/decide",
        data={"decision": "confirm", "note": "exported", "csrf": token},
        files={"attachments": ("settings.txt", b"key=value\n", "text/plain")},
    )
    assert "Recorded confirm of export-settings" in done.text
    place.launcher.wait()
    gate = place.events("gate-passed")[0]
    assert (gate["by"], gate["authenticated"], gate["auth_method"], gate["source"]) == (
        OPERATOR,
        True,
        "password",
        "console",
    )
    attached = place.events("attachment-added")[0]
    assert attached["authenticated"] is True and attached["name"] == "settings.txt"

    # A claimed name (`--as`) beside them: the change record tells which is which.
    record = json.loads(
        place.cli("evidence", "export", "r1", "--state-dir", place.state, "--to", "json").stdout
    )
    people = {p["name"]: p["identity"] for p in record["summary"]["people"]}
    assert people["Alice Approver"]["authenticated"] is True
    assert people["Alice Approver"]["auth_methods"] == ["password"]
    assert people["Alice Approver"]["text"].startswith("authenticated (password)")
    olga_id = people[OPERATOR]
    assert olga_id["authenticated"] is False  # started the run by the CLI: a claimed name
    assert "authenticated (password)" in olga_id["text"]
    assert "claimed, not authenticated" in olga_id["text"]
    html = olga.get("/runs/r1/record")
    assert html.headers["content-security-policy"].startswith("sandbox")
    assert "authenticated (password): signed in to the web console" in html.text


def test_a_vote_by_the_cli_is_recorded_as_claimed(place: Place) -> None:
    place.start_paused_run()
    proc = place.cli("approve", "r1", "cab", "--as", "Dana Lead", "--state-dir", place.state)
    assert proc.returncode == 0, proc.stderr
    (recorded,) = place.events("approval-recorded")
    assert recorded["source"] == "cli" and "authenticated" not in recorded


def test_runs_list_filters_and_evidence_downloads(place: Place) -> None:
    from runbook_engine.evidence.bundle import verify_bundle

    place.start_paused_run()
    client = place.client("Vera Viewer")
    assert "r1" in client.get("/runs", params={"status": "paused"}).text
    assert "/runs/r1" not in client.get("/runs", params={"status": "failed"}).text
    assert "/runs/r1" in client.get("/runs", params={"operator": OPERATOR.lower()}).text
    assert "/runs/r1" not in client.get("/runs", params={"runbook": "other"}).text
    assert "/runs/r1" not in client.get("/runs", params={"date": "1999-01-01"}).text
    bundle = client.get("/runs/r1/bundle")
    assert bundle.headers["content-type"] == "application/zip"
    zipfile.ZipFile(io.BytesIO(bundle.content)).testzip()
    path = place.root / "r1.zip"
    path.write_bytes(bundle.content)
    assert verify_bundle(path).verdict in ("incomplete", "unsigned")  # paused: not sealed
    assert client.get("/runs/nope").status_code == 404


def test_library_guides_and_starting_a_run(place: Place) -> None:
    olga = place.client(OPERATOR)
    library = olga.get("/library").text
    assert "approved.md" in library and "board.yaml" in library
    guide = olga.get(
        "/library/guide", params={"runbook": "approved.md", "env": "environments/board.yaml"}
    )
    assert guide.status_code == 200 and "Change board approval" in guide.text
    assert olga.get("/library/guide", params={"runbook": "../../etc/passwd"}).status_code == 400
    token = csrf(olga, "/start")
    started = olga.post(
        "/start",
        data={
            "runbook": "approved.md",
            "environment": "environments/board.yaml",
            "change": "CHG-10",
            "csrf": token,
        },
    )
    assert "background process" in started.text
    run_id = started.url.path.rsplit("/", 1)[-1]
    place.launcher.wait()
    page = olga.get(f"/runs/{run_id}").text
    assert "paused" in page and 'id="gate-cab"' in page
    runs = place.cli("runs", "--state-dir", place.state, "--json")
    (run,) = [r for r in json.loads(runs.stdout) if r["run_id"] == run_id]
    assert (run["operator"], run["change_id"]) == (OPERATOR, "CHG-10")
    viewer = place.client("Vera Viewer")
    assert (
        viewer.post(
            "/start", data={"runbook": "approved.md", "csrf": csrf(viewer, "/start")}
        ).status_code
        == 403
    )


def test_proxy_header_only_when_enabled_and_only_from_the_trusted_proxy(tmp_path: Path) -> None:
    place = Place(tmp_path, proxy_header="X-Remote-User", trusted_proxies=("10.0.0.1",))
    UserFile(users_path(place.state)).add("Alice Approver", ("approver",), None)
    header = {"X-Remote-User": "Alice Approver"}
    trusted = TestClient(place.app, client=("10.0.0.1", 4000))
    page = trusted.get("/runs", headers=header)
    assert page.url.path == "/runs" and "signed in by proxy-header" in page.text
    untrusted = TestClient(place.app, client=("10.0.0.2", 4000))
    assert untrusted.get("/runs", headers=header).url.path == "/login"
    assert trusted.get("/runs", headers={"X-Remote-User": "Nobody"}).url.path == "/login"
    off = Place(tmp_path / "off")
    UserFile(users_path(off.state)).add("Alice Approver", ("approver",), None)
    plain = TestClient(off.app, client=("10.0.0.1", 4000))
    assert plain.get("/runs", headers=header).url.path == "/login"


def test_a_body_past_the_upload_bounds_is_refused_before_it_is_read(tmp_path: Path) -> None:
    """Starlette spools a form's file parts to disk whatever their size: the console
    refuses a larger body (413) before the form is parsed, also on ``/login`` where
    nobody is signed in, whether it says its length or not."""
    from runbook_engine.console.app import body_limit

    here = Place(tmp_path, max_upload_bytes=1000)
    limit = body_limit(here.settings)
    big = b"x" * (limit + 1)
    with TestClient(here.app) as client:
        client.get("/login")
        said = client.post("/login", files={"name": ("a.txt", big)})
        assert said.status_code == 413, said.text
        chunked = client.post(
            "/login",
            content=(big[i : i + 65536] for i in range(0, len(big), 65536)),
            headers={"content-type": "multipart/form-data; boundary=b"},
        )
        assert chunked.status_code == 413, chunked.text
        small = client.post("/login", files={"name": ("a.txt", b"x" * 10)})
        assert small.status_code == 403  # read, and refused for its missing CSRF token


def test_a_session_cookie_copied_before_sign_out_is_dead_after_it(place: Place) -> None:
    """The session cookie is signed, not stored: clearing it in the browser alone left a
    copy (a shared machine, a proxy log) valid until it expired.  Signing out ends every
    session of the person begun before; signing in again starts a live one."""
    alice = place.client("Alice Approver")
    copied = alice.cookies.get("runbook_console")
    assert copied
    out = alice.post("/logout", data={"csrf": csrf(alice, "/runs")}, follow_redirects=False)
    assert out.status_code == 303
    thief = TestClient(place.app)
    thief.cookies.set("runbook_console", copied)
    assert thief.get("/runs", follow_redirects=False).status_code == 303  # to /login
    assert thief.get("/api/v1/runs").status_code == 401
    again = place.client("Alice Approver")
    assert again.get("/runs", follow_redirects=False).status_code == 200
