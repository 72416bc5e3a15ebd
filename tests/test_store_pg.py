"""Team mode against a real PostgreSQL: runs, gates, locks, evidence, schema and import.

Each "machine" is a ``runbook`` subprocess with its own HOME and state directory and only
the store's URL in common.  The server is ``RUNBOOK_TEST_PG`` (default
``postgresql://postgres@127.0.0.1:5432/postgres``); each test gets a fresh database
(``pg_url``, tests/conftest.py), dropped afterwards.  Without a server the tests skip,
saying so (``.ci/run`` starts one).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from stores import PG_SERVER as SERVER  # type: ignore[import-not-found]

psycopg = pytest.importorskip("psycopg", reason="team extra (psycopg) not installed")

from runbook_engine.errors import StateError  # noqa: E402
from runbook_engine.run.pgstore import schema  # noqa: E402
from runbook_engine.run.pgstore.store import PgStore  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures" / "run"
LINEAR = """---
id: linear
title: Two local steps
---
# Two local steps

```sh {#one title="Write one"}
echo one >> steps.log
```

```sh {#two title="Write two"}
echo two >> steps.log
```
"""


def _admin() -> Any:
    try:
        return psycopg.connect(SERVER, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL at {SERVER} (set RUNBOOK_TEST_PG): {exc}".strip())


@pytest.fixture
def book(tmp_path: Path) -> Path:
    shutil.copytree(FIXTURES, tmp_path / "book")
    (tmp_path / "book" / "linear.md").write_text(LINEAR, encoding="utf-8")
    return tmp_path / "book"


def machine(
    name: str, tmp: Path, url: str | None, *args: Any, cwd: Path
) -> subprocess.CompletedProcess[str]:
    """``runbook ARGS`` on machine ``name``: its own HOME and state directory, the store URL."""
    home = tmp / name
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNBOOK_", "XDG_"))}
    env.update(HOME=str(home), RUNBOOK_STATE_DIR=str(home / "state"), NO_COLOR="1")
    env.update(RUNBOOK_OPERATOR=f"operator on {name}", COLUMNS="200")
    if url:
        env["RUNBOOK_STORE"] = url
    return subprocess.run(
        [sys.executable, "-m", "runbook_engine", *(str(a) for a in args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )


def ok(proc: subprocess.CompletedProcess[str], status: int = 0) -> str:
    assert proc.returncode == status, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    return proc.stdout


def test_gate_passed_from_another_machine_and_evidence_from_the_database(
    pg_url: str, book: Path, tmp_path: Path
) -> None:
    run = ("run", "gate.md", "--env", "env-manual.yml", "--run-id", "g1", "--no-input")
    ok(machine("alice", tmp_path, pg_url, *run, cwd=book), 3)
    status = json.loads(ok(machine("bob", tmp_path, pg_url, "status", "g1", "--json", cwd=book)))
    assert {s["step_id"]: s["status"] for s in status["steps"]}["by-hand"] == "awaiting"
    assert not (tmp_path / "bob" / "state" / "state.db").exists()  # nothing local but a copy
    ok(machine("bob", tmp_path, pg_url, "confirm", "g1", "by-hand", "--as", "Bob", cwd=book))
    ok(machine("alice", tmp_path, pg_url, "resume", "g1", "--no-input", cwd=book), 3)
    ok(machine("carol", tmp_path, pg_url, "confirm", "g1", "on-web", "--as", "Carol", cwd=book))
    ok(machine("alice", tmp_path, pg_url, "resume", "g1", "--no-input", cwd=book))

    runs = json.loads(ok(machine("dave", tmp_path, pg_url, "runs", "--json", cwd=book)))
    assert [(r["run_id"], r["status"]) for r in runs] == [("g1", "succeeded")]
    from_db = json.loads(
        ok(machine("dave", tmp_path, pg_url, "evidence", "verify", "g1", "--json", cwd=book))
    )
    alice_copy = next((tmp_path / "alice" / "state").glob("team/*/runs/g1"))
    dave_copy = next((tmp_path / "dave" / "state").glob("team/*/runs/g1"))
    # The journal rebuilt from the rows is the file the runner wrote, byte for byte, and a
    # plain file verification of the runner's folder says the same as the database's.
    assert (dave_copy / "journal.jsonl").read_bytes() == (alice_copy / "journal.jsonl").read_bytes()
    from_file = json.loads(
        ok(machine("alice", tmp_path, None, "evidence", "verify", alice_copy, "--json", cwd=book))
    )
    for key in ("verdict", "events", "head", "files_checked"):
        assert from_db[key] == from_file[key], key
    assert from_db["events"] > 10 and from_db["files_checked"] >= 1
    events = [json.loads(line)["event"] for line in (dave_copy / "journal.jsonl").open()]
    assert events.count("gate-decision-recorded") == events.count("gate-passed") == 2
    assert events[-1] == "run-finished"

    bundle, record = tmp_path / "g1.zip", tmp_path / "g1.md"
    ok(machine("erin", tmp_path, pg_url, "evidence", "bundle", "g1", "-o", bundle, cwd=book))
    ok(machine("erin", tmp_path, None, "evidence", "verify", bundle, cwd=book))
    ok(
        machine(
            "erin",
            tmp_path,
            pg_url,
            "evidence",
            "export",
            "g1",
            "--to",
            "md",
            "-o",
            record,
            cwd=book,
        )
    )
    assert "Bob" in record.read_text(encoding="utf-8")


def test_two_operators_resuming_one_run(pg_url: str, book: Path, tmp_path: Path) -> None:
    run = ("run", "gate.md", "--env", "env-manual.yml", "--run-id", "c1", "--no-input")
    ok(machine("alice", tmp_path, pg_url, *run, cwd=book), 3)
    holder = PgStore(pg_url, tmp_path / "holder")
    try:
        with holder.lock_run("c1"):  # the first operator's resume holds the run
            proc = machine("bob", tmp_path, pg_url, "resume", "c1", "--no-input", cwd=book)
            assert proc.returncode == 2, proc.stderr
            assert "run c1 is being run by runbook " in proc.stderr
            assert f"pid {os.getpid()}" in proc.stderr
            other = PgStore(pg_url, tmp_path / "other")
            with pytest.raises(StateError, match="being run by"), other.lock_run("c1"):
                pass
            other.close()
        with holder.lock_run("c1"):  # let go: the next one proceeds
            pass
    finally:
        holder.close()
    proc = machine("bob", tmp_path, pg_url, "resume", "c1", "--no-input", cwd=book)
    ok(proc, 3)  # it goes on and stops at the gate again


def test_journal_table_is_append_only(pg_url: str, book: Path, tmp_path: Path) -> None:
    ok(machine("alice", tmp_path, pg_url, "run", "linear.md", "--run-id", "a1", cwd=book))
    with psycopg.connect(pg_url) as conn:
        for sql in ("DELETE FROM journal", "UPDATE journal SET line = 'x'"):
            with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
                conn.execute(sql)
            conn.rollback()


def test_store_upgrade_is_idempotent(pg_url: str, book: Path, tmp_path: Path) -> None:
    for _ in range(2):
        out = ok(machine("ops", tmp_path, pg_url, "store", "upgrade", "--json", cwd=book))
        assert json.loads(out)["before"] == json.loads(out)["after"] == schema.head_revision()
    text = ok(machine("ops", tmp_path, pg_url, "store", "upgrade", cwd=book))
    assert "already current" in text
    local = ok(machine("ops", tmp_path, None, "store", "upgrade", "--json", cwd=book))
    assert json.loads(local)["after"] == "4"  # the SQLite store's own schema


def test_known_revisions_are_alembics() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(schema.MIGRATIONS))
    heads = ScriptDirectory.from_config(config).get_heads()
    assert heads == [schema.head_revision()] and schema.known_revisions()[0] == "0001"


def test_newer_schema_is_refused(book: Path, tmp_path: Path) -> None:
    name = f"rbe_test_{secrets.token_hex(6)}"
    with _admin() as admin:
        admin.execute(f"CREATE DATABASE {name}")
    url = SERVER.rsplit("/", 1)[0] + "/" + name
    try:
        proc = machine("ops", tmp_path, url, "runs", cwd=book)
        assert proc.returncode == 2 and "store upgrade" in proc.stderr  # empty: upgrade first
        ok(machine("ops", tmp_path, url, "store", "upgrade", cwd=book))
        with psycopg.connect(url) as conn:
            conn.execute("UPDATE alembic_version SET version_num = '0999'")
        for args in (("runs",), ("store", "upgrade"), ("status", "x"), ("evidence", "verify", "x")):
            proc = machine("ops", tmp_path, url, *args, cwd=book)
            assert proc.returncode == 2, proc.stderr
            assert "schema 0999, newer than this runbook-engine knows" in proc.stderr
            assert f"(schema {schema.head_revision()})" in proc.stderr
            assert "Traceback" not in proc.stderr
    finally:
        with _admin() as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_store_import_of_a_state_directory(pg_url: str, book: Path, tmp_path: Path) -> None:
    solo = tmp_path / "solo" / "state"
    ok(machine("solo", tmp_path, None, "run", "linear.md", "--run-id", "i1", cwd=book))
    run = ("run", "gate.md", "--env", "env-manual.yml", "--run-id", "i2", "--no-input")
    ok(machine("solo", tmp_path, None, *run, cwd=book), 3)
    report = json.loads(
        ok(machine("ops", tmp_path, pg_url, "store", "import", solo, "--json", cwd=book))
    )
    assert {r["run_id"]: (r["action"], r["ok"]) for r in report} == {
        "i1": ("imported", True),
        "i2": ("imported", True),
    }
    assert all(r["copy"] == r["source"] for r in report)
    again = json.loads(
        ok(machine("ops", tmp_path, pg_url, "store", "import", solo, "--json", cwd=book))
    )
    assert {r["action"] for r in again} == {"skipped"}
    ok(machine("bob", tmp_path, pg_url, "evidence", "verify", "i1", cwd=book))
    # The imported paused run goes on from another machine.
    ok(machine("bob", tmp_path, pg_url, "confirm", "i2", "by-hand", "--as", "Bob", cwd=book))
    ok(machine("bob", tmp_path, pg_url, "resume", "i2", "--no-input", cwd=book), 3)


def test_a_process_not_holding_the_run_stores_nothing_of_its_working_copy(
    pg_url: str, book: Path, tmp_path: Path
) -> None:
    """A command that reads a run (here `evidence verify`) while another process on the same
    machine holds it and writes its working copy must not store the holder's records (two
    processes inserting the same records collided: a traceback) nor overwrite its
    signature file with the shorter stored one."""
    from runbook_engine.evidence.canonical import canonical_json, record_hash
    from runbook_engine.run.store_api import open_store

    ok(machine("alice", tmp_path, pg_url, "keys", "init", cwd=book))  # a signature file
    ok(machine("alice", tmp_path, pg_url, "run", "linear.md", "--run-id", "a1", cwd=book))
    holder = open_store(tmp_path / "alice" / "state", pg_url)
    try:
        with holder.lock_run("a1"):
            folder = holder.run_dir("a1")
            journal, sigs = folder / "journal.jsonl", folder / "journal.sig.jsonl"
            last = json.loads(journal.read_bytes().splitlines()[-1])
            note = {"event": "note", "seq": last["seq"] + 1, "prev": last["hash"]}
            note.update(run_id="a1", time=last["time"])
            note["hash"] = record_hash(note)
            with journal.open("a", encoding="utf-8") as out:  # written, not yet stored
                out.write(canonical_json(note) + "\n")
            grown = sigs.read_bytes() + b'{"pending":1}\n'
            sigs.write_bytes(grown)
            proc = machine("alice", tmp_path, pg_url, "evidence", "verify", "a1", cwd=book)
            # It reads the working copy as the holder left it (the made-up signature line
            # fails verification), not refused as a copy that "differs from the store".
            assert proc.returncode == 1 and "journal.sig.jsonl line" in proc.stdout, proc.stderr
            with psycopg.connect(pg_url) as conn:
                top = conn.execute("SELECT max(seq) FROM journal WHERE run_id='a1'").fetchone()
            assert top == (last["seq"],), "a process not holding the run stored its records"
            assert sigs.read_bytes() == grown, "the signature file was overwritten"
        with psycopg.connect(pg_url) as conn:  # the holder stored them on letting go
            top = conn.execute("SELECT max(seq) FROM journal WHERE run_id='a1'").fetchone()
        assert top == (note["seq"],)
    finally:
        holder.close()


def test_a_missing_database_is_one_line_saying_to_create_it(
    pg_url: str, book: Path, tmp_path: Path
) -> None:
    """A store URL naming no database: what to do (createdb, then store upgrade), no traceback."""
    missing = pg_url.rsplit("/", 1)[0] + f"/rbe_missing_{secrets.token_hex(4)}"
    for args in (("runs",), ("store", "upgrade")):
        proc = machine("alice", tmp_path, missing, *args, cwd=book)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        (line,) = proc.stderr.strip().splitlines()
        assert "does not exist" in line and "createdb rbe_missing_" in line, line
        assert "runbook store upgrade" in line, line


def test_rows_naming_the_journal_or_an_altered_blob_are_never_written_to_a_copy(
    pg_url: str, book: Path, tmp_path: Path
) -> None:
    """Rows added to ``run_files`` behind the tool's back: one naming the journal (which
    the store keeps as records), one whose blob's bytes are not its SHA-256.  A working
    copy filled from the database takes neither."""
    import hashlib

    run = ("run", "gate.md", "--env", "env-manual.yml", "--run-id", "t1", "--no-input")
    ok(machine("alice", tmp_path, pg_url, *run, cwd=book), 3)
    forged = b'{"event":"run-started","forged":true}\n'
    digest = hashlib.sha256(forged).hexdigest()
    claimed = hashlib.sha256(b"what the journal vouches for\n").hexdigest()
    with psycopg.connect(pg_url) as conn:
        for key, data in ((digest, forged), (claimed, b"something else\n")):
            conn.execute("INSERT INTO blobs VALUES (%s, %s, %s)", (key, len(data), data))
        for path, key in (("journal.jsonl", digest), ("lock", digest), ("notes/x.txt", claimed)):
            conn.execute("INSERT INTO run_files VALUES ('t1', %s, %s)", (path, key))
        stored = [r[0] for r in conn.execute(
            "SELECT line FROM journal WHERE run_id='t1' ORDER BY seq"
        )]  # fmt: skip
    copy = PgStore(pg_url, tmp_path / "bob")
    try:
        folder = copy.run_dir("t1")
        assert (folder / "journal.jsonl").read_text().splitlines() == stored
        assert not (folder / "lock").exists() or (folder / "lock").read_bytes() != forged
        assert not (folder / "notes" / "x.txt").exists()
    finally:
        copy.close()
