"""Approvals that expire while nobody looks: ``runbook serve`` sweeps its store every
``--sweep-seconds``, journals ``approval-expired`` (once) and sends the "expired" mail to
a real SMTP server (aiosmtpd); the journal still verifies against the pinned key, and the
run's own resume does not journal or tell it again.

Real components: the run is made by the real ``runbook`` command (a signed journal), the
console is a real ``runbook serve`` process on loopback, the mail goes through apprise.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette")
pytest.importorskip("apprise")
pytest.importorskip("aiosmtpd")

from aiosmtpd.controller import Controller
from test_notify import Mailbox, Place, free_port, mail_channel

pytestmark = pytest.mark.skipif(os.name != "posix", reason="sh steps")

#: An approval counts for about a second (the wait only makes it old); Bob can reject.
EXPIRING = """---
id: expiring-two
title: Approvals that expire after about a second
approval: required
---
# Expiring approval

```approval {#cab title="Change board approval"}
required: 1
approvers: [Alice Approver, Bob Board]
expires_hours: 0.0003
```

```sh {#change}
echo change >> steps.log
```
"""


HOLD = """
import sys
from pathlib import Path
from runbook_engine.run.store import CheckpointStore

store = CheckpointStore(Path(sys.argv[1]), create=False)
with store.lock_run("r1"):
    print("held", flush=True)
    sys.stdin.read()
"""


def wait_until(check: Any, limit: float = 60.0) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return bool(check())


class Signed(Place):
    """:class:`test_notify.Place` whose runs are signed: a key pair in the test's own
    configuration home (``runbook keys init``; every process of the test finds it)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        (root / "expiring-two.md").write_text(EXPIRING)
        made = subprocess.run(
            [sys.executable, "-m", "runbook_engine", "keys", "init", "--json"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert made.returncode == 0, made.stderr
        self.public_key = Path(os.environ["XDG_CONFIG_HOME"]) / "runbook-engine/keys/signing.pub"
        assert self.public_key.is_file()


@pytest.fixture
def smtp() -> Iterator[tuple[int, Mailbox]]:
    """A real SMTP server on loopback (aiosmtpd) and what it received."""
    box, port = Mailbox(), free_port()
    server = Controller(box, hostname="127.0.0.1", port=port)
    server.start()
    try:
        yield port, box
    finally:
        server.stop()


@pytest.fixture
def place(tmp_path: Path) -> Signed:
    return Signed(tmp_path)


@pytest.fixture
def console(place: Signed) -> Iterator[subprocess.Popen[bytes]]:
    """``runbook serve`` on the place's state, sweeping every half second."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "RUNBOOK_OPERATOR"}
    env.update(NO_COLOR="1", RUNBOOK_CONSOLE_SECRET="k" * 40)
    log = open(place.root / "serve.log", "wb")  # noqa: SIM115
    command = [sys.executable, "-m", "runbook_engine", "serve", "--port", str(port)]
    command += ["--library", str(place.root), "--state-dir", str(place.state)]
    command += ["--sweep-seconds", "0.5"]
    server = subprocess.Popen(
        command,
        cwd=place.root,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError((place.root / "serve.log").read_text()) from None
                time.sleep(0.1)
        yield server
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def test_an_approval_expiring_while_nobody_looks_is_journaled_once_and_mailed(
    place: Signed, smtp: tuple[int, Mailbox], console: subprocess.Popen[bytes]
) -> None:
    port, box = smtp
    place.settings([mail_channel(port)], events=["approval-expired"])
    assert place.run("expiring-two.md", "env.yml").returncode == 3
    approved = place.cli("approve", "r1", "cab", "--as", "Alice Approver")
    assert approved.returncode == 0, approved.stderr
    given = place.events("approval-recorded")[0]["time"]
    at = datetime.strptime(given, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)

    # Nobody resumes the run: the console's sweep finds the approval expired.
    assert wait_until(lambda: len(box.messages) >= 1), (place.root / "serve.log").read_text()
    (expired,) = place.events("approval-expired")
    assert expired["by"] == "Alice Approver" and expired["step"] == "cab"
    noticed = datetime.strptime(expired["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert noticed - at > timedelta(hours=0.0003)  # not before it expired
    ((subject, text),) = box.texts()
    assert subject == "An approval of step cab in run r1 expired"
    assert "Alice Approver" in text and "https://console.example.test/runs/r1" in text
    assert wait_until(lambda: place.events("notification-sent"))  # journaled once sent
    (sent,) = place.events("notification-sent")
    assert (sent["channel"], sent["about"], sent["about_step"]) == (
        "ops-mail",
        "approval-expired",
        "cab",
    )
    time.sleep(1.5)  # three more sweeps: nothing new
    assert len(place.events("approval-expired")) == 1 and len(box.messages) == 1

    # The run itself notices nothing new when it looks: the same record, told once.
    assert place.cli("resume", "r1", "--no-input").returncode == 3
    assert len(place.events("approval-expired")) == 1 and len(box.messages) == 1
    # Bob rejects (a rejection does not expire); the run ends and is sealed.
    assert place.cli("reject", "r1", "cab", "--as", "Bob Board").returncode == 0
    assert place.cli("resume", "r1", "--no-input").returncode == 1
    assert len(place.events("approval-expired")) == 1 and len(box.messages) == 1
    verified = place.cli("evidence", "verify", "r1", "--public-key", place.public_key)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.startswith("VERIFIED") and "sealed; key pinned" in verified.stdout
    audit = (place.state / "console" / "audit.jsonl").read_text()
    assert '"approval-expired"' in audit


def test_a_run_being_executed_is_left_to_notice_its_own_expiry(place: Signed) -> None:
    """The sweep takes the run's lock without waiting: a run its process holds is skipped."""
    from runbook_engine.run.expiry import sweep
    from runbook_engine.run.store import CheckpointStore

    assert place.run("expiring-two.md", "env.yml").returncode == 3
    assert place.cli("approve", "r1", "cab", "--as", "Alice Approver").returncode == 0
    time.sleep(1.5)
    holder = subprocess.Popen(  # as the run's own process: holds the run's lock
        [sys.executable, "-c", HOLD, str(place.state)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    store = CheckpointStore(place.state, create=False)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        assert sweep(store) == []
        holder.communicate("", timeout=30)  # lets it go
        assert [e.by for e in sweep(store)] == ["Alice Approver"]
        assert sweep(store) == []  # journaled already
    finally:
        store.close()
        if holder.poll() is None:
            holder.kill()
    assert len(place.events("approval-expired")) == 1
