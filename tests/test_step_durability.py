"""The per-step durability path (issue 12): the journal's anchor in the store, transitions
that do not wait for the disk, and what a kill or a lost checkpoint leaves behind.

Each test runs the real CLI in subprocesses (``RUNBOOK_FAULT`` kills it at a named point,
:mod:`runbook_engine.run.faults`) on a runbook whose steps append to a file, so a step run
twice shows.

A kill between the journal and the checkpoint, a lost checkpoint and a kill after a step
started run on both stores (``@both_stores``: on PostgreSQL the journal read is the
runner's working copy on this machine, the store's rows and anchor are read and changed
through the Store interface).  Head files, the SQLite schema 3 and cuts of the journal
file are the state folder's (``@sqlite_only``).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from stores import both_stores, sqlite_only, store  # type: ignore[import-not-found]
from test_evidence import Book

from runbook_engine.evidence.journal import head_path, read_journal, verify_journal, write_head
from runbook_engine.run.store_api import Store, open_store

pytestmark = pytest.mark.skipif(os.name != "posix", reason="SIGKILL")

RUNBOOK = """# Two steps

```sh {#one}
echo one >> count.txt
```

```sh {#two}
echo two >> count.txt
```
"""


def _book(tmp_path: Path, point: str | None = None) -> Book:
    (tmp_path / "two.md").write_text(RUNBOOK, encoding="utf-8")
    return Book(tmp_path, {"RUNBOOK_FAULT": point} if point else None)


def _db(book: Book) -> sqlite3.Connection:
    return sqlite3.connect(book.state / "state.db")


@contextlib.contextmanager
def _store(book: Book) -> Iterator[Store]:
    """The book's store, through the Store interface (either kind)."""
    opened = open_store(book.state, store())
    try:
        yield opened
    finally:
        opened.close()


def _status(book: Book, step: str) -> str:
    with _store(book) as db:
        (row,) = db.steps_of("r1", step)
    return row.status


def _anchor(book: Book) -> tuple[Any, Any]:
    with _store(book) as db:
        return db.anchor("r1") or (None, None)


def _journal(book: Book) -> Path:
    """The run's journal on this machine's disk: the run folder, or on PostgreSQL the
    runner's working copy (it may hold records a killed runner had not stored)."""
    with _store(book) as db:
        return db.run_dir("r1") / "journal.jsonl"


def _events(book: Book) -> list[dict[str, Any]]:
    return read_journal(_journal(book), verify=False)


def _count(book: Book) -> list[str]:
    path = book.root / "count.txt"
    return path.read_text().split() if path.exists() else []


def _verify(book: Book) -> Any:
    pub = book.keys / "signing.pub"
    where = "r1" if store() else book.run_dir()  # on PostgreSQL: the run in the store
    return book.st("evidence", "verify", where, "--public-key", pub, "--require-signature")


@both_stores
def test_a_kill_between_the_journal_and_the_checkpoint_is_reconciled_not_rerun(
    tmp_path: Path,
) -> None:
    book = _book(tmp_path)
    assert book.st("keys", "init").returncode == 0
    killed = _book(tmp_path, "after-step-finished").run("two.md")
    assert killed.returncode == -signal.SIGKILL
    assert _status(book, "one") == "running"  # the journal says finished, the store not yet
    assert [e["event"] for e in _events(book)][-1] == "step-finished"
    seq, digest = _anchor(book)  # the running checkpoint anchored the records before it
    assert _events(book)[seq - 1]["hash"] == digest and seq < len(_events(book))
    done = book.resume()
    assert done.returncode == 0, done.stdout + done.stderr
    assert _count(book) == ["one", "two"]  # not run twice
    changes = next(e for e in _events(book) if e["event"] == "store-reconciled")["changes"]
    assert "step one@operator: running -> succeeded" in changes
    assert _verify(book).stdout.startswith("VERIFIED:")


@sqlite_only
def test_a_step_end_is_shown_only_once_the_disk_holds_it(tmp_path: Path) -> None:
    """A step's end is written without ``fsync`` and acknowledged (checkpoint, terminal)
    with the next step's ``step-started``: killed before, nothing said it succeeded."""
    book = _book(tmp_path)
    assert book.st("keys", "init").returncode == 0
    killed = _book(tmp_path, "after-step-finished").run("two.md")
    assert killed.returncode == -signal.SIGKILL
    assert "succeeded" not in killed.stdout and _count(book) == ["one"]
    signed = [json.loads(s)["seq"] for s in _signatures(book).read_text().splitlines()]
    assert max(signed) < len(_events(book))  # the end is not signed yet: not synced


SLOW_TWO = RUNBOOK.replace("echo two >> count.txt", "sleep 1; echo two >> count.txt")


@sqlite_only
def test_a_kill_before_the_acknowledgment_is_reconciled_and_asks_for_the_next_step(
    tmp_path: Path,
) -> None:
    """Killed once the journal is durable and signed through step one's end (with step
    two's ``step-started``, or while two's command runs: its idle call), before step
    one's checkpoint and terminal line: one is brought forward (not run again), two was
    interrupted and a person decides."""
    book = _book(tmp_path)
    assert book.st("keys", "init").returncode == 0
    killer = _book(tmp_path, "before-acknowledge")
    (tmp_path / "two.md").write_text(SLOW_TWO, encoding="utf-8")
    killed = killer.run("two.md")
    assert killed.returncode == -signal.SIGKILL
    assert "succeeded" not in killed.stdout
    events = [e["event"] for e in _events(book)]
    assert events.count("step-finished") == 1 and events[-1] in ("step-started", "process-started")
    started_two = len(events) - events[::-1].index("step-started")  # its seq
    signed = [json.loads(s)["seq"] for s in _signatures(book).read_text().splitlines()]
    assert max(signed) >= started_two  # a signature on the disk covers one's end
    assert _status(book, "one") == "running" and _status(book, "two") in ("pending", "running")
    assert _count(book) == ["one"]
    paused = book.resume()
    assert paused.returncode == 3, paused.stdout + paused.stderr
    changes = next(e for e in _events(book) if e["event"] == "store-reconciled")["changes"]
    assert "step one@operator: running -> succeeded" in changes
    assert book.st("confirm", "r1", "two", "--as", "Ann Operator", "--rerun").returncode == 0
    done = book.resume()
    assert done.returncode == 0, done.stdout + done.stderr
    assert _count(book) == ["one", "two"]
    assert _verify(book).stdout.startswith("VERIFIED:")


@sqlite_only
def test_a_step_is_acknowledged_while_the_next_command_runs(tmp_path: Path) -> None:
    """Ends wait to be acknowledged together (one signature ``fsync`` for several steps),
    but never behind a command that runs on: its idle call acknowledges them."""
    book = _book(tmp_path)
    (tmp_path / "two.md").write_text(RUNBOOK.replace("echo two", "sleep 3; echo two"), "utf-8")
    assert book.st("keys", "init").returncode == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNBOOK_")}
    env.update(RUNBOOK_OPERATOR="Olga Operator", NO_COLOR="1", **book.extra_env)
    argv = [sys.executable, "-m", "runbook_engine", "run", "two.md", "--no-input"]
    argv += ["--state-dir", str(book.state), "--run-id", "r1"]
    with subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True) as proc:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (book.root / "count.txt").exists():
            time.sleep(0.05)
        time.sleep(1.0)  # step two's command runs (3 s): its idle call came after 0.2 s
        assert proc.poll() is None
        assert _status(book, "one") == "succeeded"
        assert _status(book, "two") == "running"
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0 and out.count("succeeded on") == 2, out
    assert _verify(book).stdout.startswith("VERIFIED:")


def _signatures(book: Book) -> Path:
    return book.run_dir() / "journal.sig.jsonl"


@both_stores
def test_a_checkpoint_the_disk_lost_is_brought_back_from_the_journal(tmp_path: Path) -> None:
    book = _book(tmp_path)
    assert book.st("keys", "init").returncode == 0
    assert _book(tmp_path, "after-step-finished").run("two.md").returncode == -signal.SIGKILL
    with _store(book) as db:  # as after a power loss: the uncommitted-to-disk transitions are gone
        (one,) = db.steps_of("r1", "one")
        db.transition("r1", "one", one.host, "pending", attempts=0)
    done = book.resume()
    assert done.returncode == 0, done.stdout + done.stderr
    assert _count(book) == ["one", "two"]
    changes = next(e for e in _events(book) if e["event"] == "store-reconciled")["changes"]
    assert "step one@operator: pending -> succeeded" in changes
    assert _verify(book).stdout.startswith("VERIFIED:")


@both_stores
def test_a_kill_after_step_started_is_an_interrupted_step_for_a_person(tmp_path: Path) -> None:
    book = _book(tmp_path)
    assert book.st("keys", "init").returncode == 0
    assert _book(tmp_path, "after-step-started").run("two.md").returncode == -signal.SIGKILL
    assert _status(book, "one") == "pending" and _count(book) == []
    paused = book.resume()
    assert paused.returncode == 3, paused.stdout + paused.stderr  # nobody can tell: ask
    assert "interrupted" in paused.stdout + paused.stderr
    assert _status(book, "one") == "running"
    assert book.st("confirm", "r1", "one", "--as", "Ann Operator", "--rerun").returncode == 0
    assert book.resume().returncode == 0
    assert _count(book) == ["one", "two"]
    assert _verify(book).stdout.startswith("VERIFIED:")


@sqlite_only
def test_records_cut_from_the_end_are_caught_by_the_store_anchor(tmp_path: Path) -> None:
    book = _book(tmp_path)  # unsigned: only the anchor can show the cut
    assert book.run("two.md").returncode == 0
    journal = book.run_dir() / "journal.jsonl"
    records = _events(book)
    assert _anchor(book) == (len(records), records[-1]["hash"])  # the run's last record
    lines = journal.read_bytes().splitlines(keepends=True)
    journal.write_bytes(b"".join(lines[:-3]))  # the tamperer cuts the end ...
    write_head(journal, len(lines) - 3, records[-4]["hash"])  # ... and the head file with it
    assert verify_journal(journal).ok  # the folder alone cannot tell
    proc = book("evidence", "verify", book.run_dir())
    assert proc.returncode == 1 and "the end was cut off" in proc.stdout, proc.stdout
    assert book.resume().returncode != 0  # nothing is appended to a cut journal


@sqlite_only
def test_a_run_without_a_store_anchor_verifies_by_its_head_file(tmp_path: Path) -> None:
    book = _book(tmp_path)
    assert book.run("two.md").returncode == 0
    with _db(book) as db:  # a run of an older version: the head file is its only anchor
        db.execute("UPDATE runs SET journal_seq=NULL, journal_hash=NULL")
    journal = book.run_dir() / "journal.jsonl"
    assert head_path(journal).is_file()
    proc = book("evidence", "verify", book.run_dir())
    assert proc.returncode == 0 and proc.stdout.startswith("UNSIGNED:"), proc.stdout
    lines = journal.read_bytes().splitlines(keepends=True)
    journal.write_bytes(b"".join(lines[:-1]))
    proc = book("evidence", "verify", book.run_dir())
    assert proc.returncode == 1 and "the end was cut off" in proc.stdout, proc.stdout


@sqlite_only
def test_a_head_file_run_of_schema_3_is_upgraded_and_resumes(tmp_path: Path) -> None:
    book = _book(tmp_path)
    assert book.st("keys", "init").returncode == 0
    assert _book(tmp_path, "after-step-finished").run("two.md").returncode == -signal.SIGKILL
    journal = book.run_dir() / "journal.jsonl"
    records = _events(book)
    write_head(journal, len(records), records[-1]["hash"])  # as the old writer left it
    with _db(book) as db:  # back to schema 3: no anchor columns
        db.execute("ALTER TABLE runs DROP COLUMN journal_seq")
        db.execute("ALTER TABLE runs DROP COLUMN journal_hash")
        db.execute("UPDATE meta SET value='3' WHERE key='schema_version'")
    done = book.resume()
    assert done.returncode == 0, done.stdout + done.stderr
    assert _count(book) == ["one", "two"]
    assert _anchor(book)[0] == len(_events(book))
    assert _verify(book).stdout.startswith("VERIFIED:")


def _cut(path: Path, keep: int) -> None:
    path.write_bytes(b"".join(path.read_bytes().splitlines(keepends=True)[:keep]))


@sqlite_only
@pytest.mark.parametrize(
    "point", ["after-step-started", "after-process-started", "after-step-finished"]
)
def test_what_a_power_loss_may_take_resumes_and_verifies(tmp_path: Path, point: str) -> None:
    """``step-started`` is fsync'd before the command starts, its signature is not;
    ``process-started`` and ``step-finished`` are neither fsync'd nor signed (their
    durability comes with the next step's start, which acknowledges the step).  Cut what
    a power loss may take: the run resumes, signs the unsigned record and verifies."""
    book = _book(tmp_path)
    assert book.st("keys", "init").returncode == 0
    assert _book(tmp_path, point).run("two.md").returncode == -signal.SIGKILL
    journal = book.run_dir() / "journal.jsonl"
    signatures = book.run_dir() / "journal.sig.jsonl"
    events = [e["event"] for e in _events(book)]
    last = {"after-step-started": "step-started", "after-process-started": "process-started"}
    assert events[-1] == last.get(point, "step-finished")
    started = events.index("step-started") + 1  # its seq: the last record on the disk
    _cut(journal, started)
    kept = [s for s in signatures.read_text().splitlines() if f'"seq":{started},' not in s]
    kept = [s for s in kept if f'"seq":{started + 1},' not in s]
    signatures.write_text("".join(f"{line}\n" for line in kept))
    assert (_anchor(book)[0] or 0) <= started  # the store never anchors a record not synced
    paused = book.resume()
    assert paused.returncode == 3, paused.stdout + paused.stderr  # the step may have run
    assert book.st("confirm", "r1", "one", "--as", "Ann Operator", "--rerun").returncode == 0
    done = book.resume()
    assert done.returncode == 0, done.stdout + done.stderr
    assert _count(book)[-1] == "two"
    assert _verify(book).stdout.startswith("VERIFIED:")
