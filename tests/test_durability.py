"""Durability: bounded output, a torn journal tail repaired, a full disk, and the store
reconciled from the journal.

Real runs of the CLI in subprocesses; the full disk is a small tmpfs (needs root to
mount, as in CI), the torn tail a journal cut in the middle of its last line.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
from test_runner import FIXTURES, Workspace

from runbook_engine.errors import EvidenceError
from runbook_engine.evidence.journal import Journal, read_journal, verify_journal
from runbook_engine.transports.capture import Capture


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    """A private copy of the run fixtures (as in test_runner)."""
    for item in FIXTURES.iterdir():
        if item.is_file():
            shutil.copy2(item, tmp_path / item.name)
    return Workspace(tmp_path)


def test_capture_keeps_head_and_tail_and_digests_everything() -> None:
    cap = Capture(10)
    data = b"".join(bytes([65 + i % 26]) for i in range(1000))
    for i in range(0, 1000, 7):
        cap.feed(data[i : i + 7])
    assert cap.total == 1000 and cap.dropped == 990
    assert cap.sha256 == hashlib.sha256(data).hexdigest()
    text = cap.text()
    assert text.startswith(data[:5].decode()) and text.endswith(data[-5:].decode())
    assert "990 bytes of output dropped" in text


def test_100_mb_of_y_is_capped_on_disk_and_digested_whole(ws: Workspace) -> None:
    size = 100 * 1024 * 1024
    (ws.root / "big.md").write_text(f"# Big\n\n```sh {{#big}}\nyes | head -c {size}\n```\n")
    proc = ws.run("big.md", "--max-output", str(1024 * 1024))
    assert proc.returncode == 0, proc.stderr
    [finished] = ws.events(name="step-finished", step="big")
    stdout = finished["output_streams"]["stdout"]
    assert stdout["bytes"] == size
    assert stdout["sha256"] == hashlib.sha256(b"y\n" * (size // 2)).hexdigest()
    [saved] = (ws.state / "runs" / "r1" / "output").iterdir()
    assert saved.stat().st_size < 1024 * 1024 + 1024
    assert "bytes of output dropped here" in saved.read_text()
    assert ws.verify().returncode == 0


# -- a torn journal tail ---------------------------------------------------------------------
def test_a_torn_unacknowledged_last_line_is_cut_and_the_repair_journaled(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    journal = Journal(path)
    journal.append("run-started", run_id="r")
    journal.append("step-started", step="a")
    good = path.read_bytes()
    with open(path, "ab") as fh:  # the writer died inside its next line
        fh.write(b'{"event":"step-finished","hash":"ab')
    assert not verify_journal(path).ok
    reopened = Journal(path)
    records = read_journal(path)
    assert [r["event"] for r in records] == ["run-started", "step-started", "journal-repaired"]
    assert records[-1]["dropped_bytes"] == 35 and records[-1]["line"] == 3
    assert path.read_bytes().startswith(good)
    assert reopened.head[0] == 3 and verify_journal(path).ok


def test_an_acknowledged_or_edited_last_line_is_never_cut(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    journal = Journal(path)
    journal.append("run-started", run_id="r")
    journal.append("step-started", step="a")
    data = path.read_bytes()
    path.write_bytes(data[:-10])  # the head file names record 2: it was acknowledged
    with pytest.raises(EvidenceError):
        Journal(path)
    path.write_bytes(data.replace(b'"step":"a"', b'"step":"b"'))  # a whole, edited line
    with pytest.raises(EvidenceError):
        Journal(path)


# -- a full disk -----------------------------------------------------------------------------
@pytest.fixture
def small_disk(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A 2 MiB tmpfs at ``tmp_path/disk`` (skipped where mounting is not permitted)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (needs root): {mounted.stderr.decode().strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _chatty(ws: Workspace) -> Path:
    """A runbook whose first step writes 200 kB of output, then a second step."""
    book = ws.root / "chatty.md"
    book.write_text(
        "# Chatty\n\n```sh {#one}\nhead -c 200000 /dev/zero | tr '\\\\0' x\n```\n\n"
        "```sh {#two}\necho two\n```\n"
    )
    return book


def _fill(disk: Path, free: int) -> Path:
    """Fill ``disk`` with one file, then leave ``free`` bytes; return the file."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    with contextlib.suppress(OSError):
        while True:
            os.write(fd, b"\0" * 4096)
    os.close(fd)
    os.truncate(filler, max(0, filler.stat().st_size - free))
    return filler


@pytest.mark.parametrize("free", [0, 9000, 60000, 120000, 180000, 230000, 300000])
def test_a_full_disk_gives_one_message_and_the_run_resumes_when_space_is_freed(
    ws: Workspace, small_disk: Path, free: int
) -> None:
    book = _chatty(ws)
    state = small_disk / "state"
    first = ws.runbook("run", book, "--state-dir", state, "--run-id", "r1", "--no-input")
    assert first.returncode == 0, first.stderr  # fits: now fill the disk and go again
    filler = _fill(small_disk, free)
    proc = ws.runbook("run", book, "--state-dir", state, "--run-id", "r2", "--no-input")
    assert "Traceback" not in proc.stderr
    if proc.returncode != 0:
        assert proc.returncode == 74, proc.stderr
        assert "free space" in proc.stderr
        assert proc.stderr.count("cannot write") == 1, proc.stderr
        filler.unlink()
        if (state / "runs" / "r2" / "journal.jsonl").exists():
            again = ws.runbook("resume", "r2", "--state-dir", state, "--no-input")
            assert again.returncode in (0, 3), again.stderr
        else:  # nothing of r2 was acknowledged: start it again
            again = ws.runbook("run", book, "--state-dir", state, "--run-id", "r3", "--no-input")
            assert again.returncode == 0, again.stderr
    runs = [p.name for p in (state / "runs").iterdir()]
    for run in runs:
        if verify_journal(state / "runs" / run / "journal.jsonl").ok:
            continue
        pytest.fail(f"journal of {run} does not verify")


@pytest.mark.parametrize("free", [0, 9000, 60000, 120000])
def test_a_full_disk_never_leaves_a_torn_signature_line(
    ws: Workspace, small_disk: Path, free: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Signed runs on a filling disk: exit 0 or 74, and every run's evidence still verifies
    with the pinned key (complete, or incomplete where the disk cut the run short)."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))  # the key: off the disk
    assert ws.runbook("keys", "init").returncode == 0
    public = next((tmp_path / "config").rglob("*.pub"))
    book = _chatty(ws)
    state = small_disk / "state"
    first = ws.runbook("run", book, "--state-dir", state, "--run-id", "r1", "--no-input")
    assert first.returncode == 0, first.stderr
    filler = _fill(small_disk, free)
    proc = ws.runbook("run", book, "--state-dir", state, "--run-id", "r2", "--no-input")
    assert "Traceback" not in proc.stderr
    assert proc.returncode in (0, 74), proc.stderr
    filler.unlink()
    for run in (state / "runs").iterdir():
        if run.name.startswith("."):
            continue
        checked = ws.runbook("evidence", "verify", run, "--public-key", public)
        assert checked.returncode in (0, 3), checked.stdout + checked.stderr  # 3: incomplete


# -- the store reconciled from the journal ---------------------------------------------------
def test_an_edited_state_db_cannot_make_a_signed_lie(ws: Workspace) -> None:
    (ws.root / "fails.md").write_text(
        "# Fails\n\n```sh {#bad}\nexit 7\n```\n\n```sh {#next}\necho next\n```\n"
    )
    first = ws.run("fails.md")
    assert first.returncode == 1, first.stderr
    with sqlite3.connect(ws.state / "state.db") as db:
        db.execute("UPDATE steps SET status='succeeded', exit_code=0 WHERE step_id='bad'")
        db.execute("UPDATE runs SET status='succeeded', outcome='succeeded'")
    again = ws.resume()
    assert again.returncode == 1, again.stderr
    [fixed] = ws.events(name="store-reconciled")
    assert any("bad@" in c and "-> failed" in c for c in fixed["changes"])
    assert ws.events(name="run-finished")[-1]["status"] == "failed"
    assert ws.step("bad")["status"] == "failed"
    assert ws.verify().returncode == 0
