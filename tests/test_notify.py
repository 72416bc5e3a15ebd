"""Notifications (apprise) received by real servers on loopback: an SMTP server (aiosmtpd)
and webhook receivers (http.server), for runs made by the real ``runbook`` command.

Checked: a gate waiting and a run finished arrive by mail with the run page's link and
without the planted secret; a webhook gets JSON with ``text``; a receiver that fails
twice is retried until it takes the message; a dead receiver leaves the run to finish
and ``notification-failed`` journaled; an expired approval is told; a wrong settings file
never stops a run.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

pytest.importorskip("apprise")
pytest.importorskip("aiosmtpd")

from aiosmtpd.controller import Controller

from runbook_engine.evidence.journal import read_journal

FIXTURES = Path(__file__).parent / "fixtures" / "evidence"
CANARY = "Notify-Canary-9d41e7"
pytestmark = pytest.mark.skipif(os.name != "posix", reason="sh steps")

RUNBOOK = """---
id: notify-demo
title: A gate, then a change
parameters:
  token:
    type: string
    secret: true
    description: A token the person uses at the gate
---
# Notify demo

```manual {#login title="Sign in to the console"}
Sign in with the token {{ token }} and check the queue is empty.
```

```sh {#change title="Make the change"}
echo change >> steps.log
```
"""
ENV = {"name": "lab", "secrets": {"token": {"env": "NOTIFY_TOKEN"}}}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Mailbox:
    """Messages received by the SMTP server."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"

    def texts(self) -> list[tuple[str, str]]:
        """(subject, plain text) of each message."""
        found = []
        for mail in self.messages:
            plain = next(p for p in mail.walk() if p.get_content_type() == "text/plain")
            found.append((str(mail["Subject"]), plain.get_payload(decode=True).decode()))
        return found


@pytest.fixture
def smtp() -> Iterator[tuple[int, Mailbox]]:
    box, port = Mailbox(), free_port()
    server = Controller(box, hostname="127.0.0.1", port=port)
    server.start()
    try:
        yield port, box
    finally:
        server.stop()


class Receiver:
    """A webhook on loopback: answers 500 to the first ``failures`` POSTs, then 200."""

    def __init__(self, failures: int = 0) -> None:
        self.failures, self.posts, self.bodies = failures, 0, []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.posts += 1
                if receiver.posts <= receiver.failures:
                    self.send_response(500)
                else:
                    receiver.bodies.append(json.loads(data))
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    made: list[Receiver] = []
    yield made
    for receiver in made:
        receiver.close()


class Place:
    """A folder with the runbooks, a state directory and its ``notifications.yaml``."""

    def __init__(self, root: Path) -> None:
        self.root, self.state = root, root / "state"
        for item in FIXTURES.iterdir():
            if item.is_file():
                shutil.copy2(item, root / item.name)
        (root / "notify.md").write_text(RUNBOOK)
        (root / "lab.yml").write_text(yaml.safe_dump(ENV))
        self.state.mkdir()

    def settings(self, channels: list[dict[str, Any]], **more: Any) -> None:
        data = {
            "public_url": "https://console.example.test",
            "retry": {"attempts": 3, "backoff_seconds": 0.05, "wait_at_end_seconds": 60},
            "channels": channels,
            **more,
        }
        (self.state / "notifications.yaml").write_text(yaml.safe_dump(data))

    def cli(self, *args: Any) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RUNBOOK_")}
        env.update(RUNBOOK_OPERATOR="Olga Operator", NO_COLOR="1", NOTIFY_TOKEN=CANARY)
        env["SMTP_PASSWORD_FOR_TEST"] = "Smtp-Canary-pw-31"
        proc = subprocess.run(
            [sys.executable, "-m", "runbook_engine", *map(str, args), "--state-dir", self.state],
            cwd=self.root,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            stdin=subprocess.DEVNULL,
        )
        assert "Traceback" not in proc.stderr, proc.stderr
        return proc

    def run(
        self, runbook: str = "notify.md", env: str = "lab.yml"
    ) -> subprocess.CompletedProcess[str]:
        return self.cli("run", runbook, "--env", env, "--run-id", "r1", "--no-input")

    def events(self, *names: str) -> list[dict[str, Any]]:
        journal = self.state / "runs" / "r1" / "journal.jsonl"
        return [r for r in read_journal(journal) if r["event"] in names]


@pytest.fixture
def place(tmp_path: Path) -> Place:
    return Place(tmp_path)


def mail_channel(port: int) -> dict[str, Any]:
    return {
        "name": "ops-mail",
        "email": {
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            "security": "none",
            "from": "runbook@example.test",
            "to": ["ops@example.test"],
        },
    }


def test_gate_and_finish_arrive_by_mail_with_the_link_and_no_secret(
    place: Place, smtp: tuple[int, Mailbox]
) -> None:
    port, box = smtp
    place.settings([mail_channel(port)])
    paused = place.run()
    assert paused.returncode == 3, paused.stderr
    ((subject, text),) = box.texts()
    assert subject == "Run r1 waits at step login"
    assert "Open: https://console.example.test/runs/r1" in text
    assert "Step: login (Sign in to the console) on operator" in text
    assert "Awaited: a person to do the manual step and confirm it" in text
    assert "Instructions: Sign in with the token" in text
    assert CANARY not in box.messages[0].as_string()
    (sent,) = place.events("notification-sent")
    assert (sent["channel"], sent["about"], sent["about_step"], sent["attempts"]) == (
        "ops-mail",
        "gate-awaiting",
        "login",
        1,
    )

    assert place.cli("confirm", "r1", "login", "--as", "Olga Operator").returncode == 0
    done = place.cli("resume", "r1", "--no-input")
    assert done.returncode == 0, done.stderr
    subject, text = box.texts()[1]
    assert subject.startswith("Run r1 finished: ")
    assert "Open: https://console.example.test/runs/r1" in text and "Steps: " in text
    assert all(CANARY not in m.as_string() for m in box.messages)
    assert [r["about"] for r in place.events("notification-sent")] == [
        "gate-awaiting",
        "run-finished",
    ]
    verified = place.cli("evidence", "verify", "r1")
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_webhook_gets_json_with_text_and_a_failing_one_is_retried(
    place: Place, receivers: list[Receiver]
) -> None:
    steady, flaky = Receiver(), Receiver(failures=2)
    receivers += [steady, flaky]
    place.settings(
        [
            {"name": "chat", "webhook": {"url": steady.url}},
            {"name": "flaky", "webhook": {"url": flaky.url, "format": "json"}},
        ],
        events=["approval-requested"],
    )
    assert place.run("approved.md", "env.yml").returncode == 3
    (body,) = steady.bodies
    assert body["title"] == "Run r1 waits for approval at step cab"
    assert "Awaited: 2 approval(s) from Alice Approver, Bob Board, Dana Lead" in body["text"]
    assert "https://console.example.test/runs/r1" in body["text"]
    assert "message" not in body  # chat format: Slack and Teams read "text"
    (flaky_body,) = flaky.bodies  # delivered on the third POST
    assert flaky.posts == 3 and "message" in flaky_body
    sent = {r["channel"]: r["attempts"] for r in place.events("notification-sent")}
    assert sent == {"chat": 1, "flaky": 3}


def test_a_dead_receiver_never_stops_the_run(place: Place) -> None:
    dead = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    place.settings([{"name": "gone", "webhook": {"url": dead}}], events=["run-finished"])
    (place.root / "quick.md").write_text(
        "---\nid: quick\ntitle: Quick\n---\n# Q\n\n```sh {#one}\necho one\n```\n"
    )
    done = place.run("quick.md", "lab.yml")
    assert done.returncode == 0, done.stderr
    assert place.events("run-finished")[0]["status"] == "succeeded"
    (failed,) = place.events("notification-failed")
    assert (failed["channel"], failed["about"], failed["attempts"]) == ("gone", "run-finished", 3)
    assert failed["reason"]


def test_an_expired_approval_is_told(place: Place, receivers: list[Receiver]) -> None:
    """expiring.md: an approval counts for about a second; the wait only makes it old."""
    import time
    from datetime import UTC, datetime, timedelta

    hook = Receiver()
    receivers.append(hook)
    place.settings([{"name": "chat", "webhook": {"url": hook.url}}], events=["approval-expired"])
    assert place.run("expiring.md", "env.yml").returncode == 3
    assert place.cli("approve", "r1", "cab", "--as", "Alice Approver").returncode == 0
    given = place.events("approval-recorded")[0]["time"]
    at = datetime.strptime(given, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    while datetime.now(UTC) - at < timedelta(seconds=2):
        time.sleep(0.2)
    assert place.cli("resume", "r1", "--no-input").returncode == 3
    (expired,) = place.events("approval-expired")
    assert expired["by"] == "Alice Approver"
    (body,) = hook.bodies
    assert body["title"] == "An approval of step cab in run r1 expired"
    assert "Awaited: a fresh approval" in body["text"]
    assert place.cli("resume", "r1", "--no-input").returncode == 3
    assert len(place.events("approval-expired")) == 1  # told once


def test_a_wrong_settings_file_is_reported_and_the_run_goes_on(place: Place) -> None:
    (place.state / "notifications.yaml").write_text(
        "channels:\n  - email: {smtp_host: x, from: a@b.c, to: d@e.f, password: hunter2}\n"
    )
    done = place.run("quick.md" if (place.root / "quick.md").exists() else "notify.md")
    assert done.returncode == 3
    assert "notifications are off" in done.stderr + done.stdout
    (failed,) = place.events("notification-failed")
    assert failed["channel"] == "settings" and "password_env" in failed["reason"]
    assert "hunter2" not in json.dumps(failed)
