"""Durability: bounded output, a torn journal tail repaired, a full disk, and the store
reconciled from the journal.

Real runs of the CLI in subprocesses; the full disk is a small tmpfs (needs root to
mount, as in CI), the torn tail a journal cut in the middle of its last line.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from test_runner import FIXTURES, Workspace

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
