"""Crash windows: a run killed (SIGKILL) at each named point resumes, exports and verifies.

The points are named by ``RUNBOOK_FAULT`` (:mod:`runbook_engine.run.faults`, test-only).
Each test runs the seed runbook (rpc-over-https in the article's lab, every command by
hand) through the real CLI in subprocesses, with a signing key outside the state folder,
kills it at one point, resumes it, exports a bundle, and checks that both the run folder
and the bundle verify with the pinned public key.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from test_evidence import OPERATOR, SEED, Book

from runbook_engine.evidence.journal import read_journal

pytestmark = pytest.mark.skipif(os.name != "posix", reason="SIGKILL, flock")
ANSWERS = SEED / "rpc-over-https-lab.yaml"
#: The first gate of the seed run without answers.
GATE = "exchange-version"
POINTS = (
    "after-create",
    "after-take-gate",
    "after-attach-copy",
    "after-attach-record",
    "after-final-status",
    "after-run-finished",
)


def _book(root: Path, point: str | None = None) -> Book:
    return Book(root, {"RUNBOOK_FAULT": point} if point else None)


def _run(book: Book, *args: Any) -> Any:
    return book.run(SEED / "rpc-over-https.md", "--env", SEED / "lab.yaml", *args)


def _events(book: Book, name: str) -> list[dict[str, Any]]:
    records = read_journal(book.run_dir() / "journal.jsonl", verify=False)
    return [r for r in records if r["event"] == name]


def _killed(proc: Any) -> None:
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, proc.stdout, proc.stderr)


def _verified(book: Book, tmp_path: Path) -> None:
    """The run folder and an exported bundle verify with the pinned key."""
    pub = book.keys / "signing.pub"
    proc = book("evidence", "verify", book.run_dir(), "--public-key", pub, "--require-signature")
    assert proc.returncode == 0 and proc.stdout.startswith("VERIFIED:"), proc.stdout
    bundle = tmp_path / "evidence.zip"
    assert book.st("evidence", "bundle", "r1", "-o", bundle, "--public-key", pub).returncode == 0
    proc = book("evidence", "verify", bundle, "--public-key", pub)
    assert proc.returncode == 0 and proc.stdout.startswith("VERIFIED:"), proc.stdout
    record = json.loads(book.st("evidence", "export", "r1", "--to", "json").stdout)
    assert record["summary"]["outcome"]["status"] in ("succeeded-pre-answered", "succeeded-attested")


@pytest.mark.parametrize("point", POINTS)
def test_a_seed_run_killed_at_a_named_point_resumes_and_verifies(
    tmp_path: Path, point: str
) -> None:
    book, faulty = _book(tmp_path), _book(tmp_path, point)
    assert book.st("keys", "init").returncode == 0
    (tmp_path / "version.txt").write_text("Version 6.5 (Build 7638.2: Service Pack 2)\n")
    if point in ("after-create", "after-final-status", "after-run-finished"):
        _killed(_run(faulty, "--answers", ANSWERS))
    else:
        assert _run(book).returncode == 3  # waits at the first gate
        confirm = ("confirm", "r1", GATE, "--as", OPERATOR, "--note", "SP2")
        if point.startswith("after-attach"):
            _killed(faulty.st(*confirm, "--attach", "version.txt"))
            assert book.resume().returncode == 3  # the confirmation never completed
            again = book.st(*confirm, "--attach", "version.txt")
        else:
            again = book.st(*confirm)
        assert again.returncode == 0, again.stderr
        if point == "after-take-gate":
            _killed(faulty.resume("--answers", ANSWERS))
    done = book.resume("--answers", ANSWERS)
    assert done.returncode == 0, done.stdout + done.stderr
    _verified(book, tmp_path)
    if point in ("after-take-gate", "after-attach-copy", "after-attach-record"):
        passed = [e for e in _events(book, "gate-passed") if e["step"] == GATE]
        assert [(e["source"], e["by"]) for e in passed] == [("cli", OPERATOR)]
    if point.startswith("after-attach"):
        added = _events(book, "attachment-added")
        assert added[0]["path"] == f"attachments/{GATE}/version.txt"
        assert all((book.run_dir() / a["path"]).is_file() for a in added)
        assert not (book.run_dir() / ".attaching").exists()


def test_a_kill_after_run_creation_leaves_a_run_that_resumes(tmp_path: Path) -> None:
    book = _book(tmp_path)
    assert book.st("keys", "init").returncode == 0
    _killed(_run(_book(tmp_path, "after-create"), "--answers", ANSWERS))
    assert not book.run_dir().exists()  # the row is written; the folder is not in place yet
    done = book.resume("--answers", ANSWERS)
    assert done.returncode == 0, done.stderr
    reconciled = _events(book, "store-reconciled")[0]["changes"]
    assert any("run folder: put in place" in c for c in reconciled), reconciled
    assert _events(book, "run-started")[0]["seq"] == 1


def test_a_kill_before_the_run_row_leaves_no_run(tmp_path: Path) -> None:
    book = _book(tmp_path)
    assert book.st("keys", "init").returncode == 0
    staging = book.state / "runs" / ".creating-r1"
    staging.mkdir(parents=True)  # what a kill before the row leaves: a staging folder only
    (staging / "journal.jsonl").write_text("")
    assert book.st("runs").returncode == 0
    assert "r1" not in book.st("runs", "--json").stdout
    done = _run(book, "--answers", ANSWERS)  # the same id starts afresh
    assert done.returncode == 0, done.stderr
    assert not staging.exists()


def test_a_run_row_without_a_journal_is_reported_not_resumed(tmp_path: Path) -> None:
    book = _book(tmp_path)
    assert _run(book).returncode == 3
    other = book.state / "runs" / "r1"
    shutil.rmtree(other)  # what an older version killed before run-started left
    proc = book.resume()
    assert proc.returncode == 2 and "was never started" in proc.stderr, proc.stderr


def test_a_finished_run_killed_before_its_signature_is_sealed_by_resume(tmp_path: Path) -> None:
    book = _book(tmp_path)
    assert book.st("keys", "init").returncode == 0
    _killed(_run(_book(tmp_path, "after-run-finished"), "--answers", ANSWERS))
    pub = book.keys / "signing.pub"
    before = book("evidence", "verify", book.run_dir(), "--public-key", pub)
    assert before.returncode == 1 and "not covered by any signature" in before.stdout
    done = book.resume()
    assert done.returncode == 0, done.stderr
    said = done.stdout + done.stderr
    assert "had finished" in said and "sealed" in said, said
    completed = _events(book, "evidence-completed")
    assert len(completed) == 1 and len(completed[0]["completed"]) == 2
    assert len(_events(book, "run-finished")) == 1
    again = book.resume()
    assert again.returncode == 2 and "is finished" in again.stderr


def test_the_store_status_before_run_finished_is_reconciled(tmp_path: Path) -> None:
    book = _book(tmp_path)
    assert book.st("keys", "init").returncode == 0
    _killed(_run(_book(tmp_path, "after-final-status"), "--answers", ANSWERS))
    with sqlite3.connect(book.state / "state.db") as db:
        (status,) = db.execute("SELECT status FROM runs WHERE run_id='r1'").fetchone()
    assert status == "succeeded" and not _events(book, "run-finished")
    done = book.resume("--answers", ANSWERS)
    assert done.returncode == 0, done.stderr
    changes = _events(book, "store-reconciled")[0]["changes"]
    assert any("no run-finished" in c for c in changes), changes
    assert len(_events(book, "run-finished")) == 1


def test_a_confirmation_taken_when_the_runner_died_is_not_asked_again(tmp_path: Path) -> None:
    book = _book(tmp_path)
    assert _run(book).returncode == 3
    assert book.st("confirm", "r1", GATE, "--as", OPERATOR).returncode == 0
    _killed(_book(tmp_path, "after-take-gate").resume())
    nxt = book.resume()  # no answers: the next gate waits, this one does not
    assert nxt.returncode == 3 and f"waiting at {GATE}" not in nxt.stderr, nxt.stderr
    assert [e["step"] for e in _events(book, "gate-passed")] == [GATE]
    assert len(_events(book, "gate-decision-recorded")) == 1
