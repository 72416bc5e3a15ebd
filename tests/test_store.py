"""The store interface on real stores (no mocks): runs, step transitions, gate decisions.

The ``store`` fixture is each kind (``store_kind``): the state folder's SQLite database and
a fresh PostgreSQL database.  Tests of the SQLite file itself (WAL, its schema version,
the state folder) are ``@sqlite_only``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from stores import sqlite_only  # type: ignore[import-not-found]
from stores import store as store_url  # type: ignore[import-not-found]

from runbook_engine.errors import StateError
from runbook_engine.run.store import (
    SCHEMA_VERSION,
    CheckpointStore,
    GateDecision,
    RunRecord,
    default_state_dir,
    utcnow,
)
from runbook_engine.run.store_api import Store, open_store


def record(run_id: str = "r1", created_at: str | None = None, **changes: object) -> RunRecord:
    now = created_at or utcnow()
    values: dict[str, object] = dict(
        run_id=run_id,
        runbook_id="book",
        runbook_path="/books/book.md",
        content_hash="a" * 64,
        env_path="/envs/lab.yml",
        env_name="lab",
        env_hash="b" * 64,
        overrides={"port": "8080", "name": "x y"},
        status="running",
        outcome=None,
        operator="Olga",
        change_id="CHG-1",
        created_at=now,
        updated_at=now,
    )
    values.update(changes)
    return RunRecord(**values)  # type: ignore[arg-type]


STEPS = [
    ("first", "operator", 1),
    ("second", "WEB1", 2),
    ("second", "WEB2", 2),
    ("third", "operator", 3),
]


@pytest.fixture
def store(tmp_path: Path, store_kind: str) -> Iterator[Any]:
    """The store of the test's kind (``store_kind``), empty."""
    s = open_store(tmp_path / "state", store_url())
    yield s
    s.close()


@sqlite_only
def test_new_store_is_a_wal_database_with_the_schema_version(tmp_path: Path) -> None:
    state = tmp_path / "nested" / "state"
    CheckpointStore(state).close()
    assert (state / "state.db").is_file()
    assert not [p for p in state.iterdir() if p.name.startswith(".state-")]  # temp file gone
    with sqlite3.connect(state / "state.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        version = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0]
    assert int(version) == SCHEMA_VERSION


def test_run_round_trip_and_steps_in_flow_order(store: Any) -> None:
    rec = record()
    store.create_run(rec, STEPS)
    assert store.get_run("r1") == rec
    steps = store.steps("r1")
    assert [(s.step_id, s.host, s.position) for s in steps] == STEPS
    assert {s.status for s in steps} == {"pending"}
    assert all(s.attempts == 0 and s.exit_code is None for s in steps)


def test_duplicate_run_id_is_refused_and_nothing_changes(store: Any) -> None:
    store.create_run(record(), STEPS)
    with pytest.raises(StateError, match="exists already"):
        store.create_run(record(runbook_id="other"), [("x", "operator", 1)])
    assert store.get_run("r1").runbook_id == "book"
    assert len(store.steps("r1")) == len(STEPS)


def test_unknown_run_is_a_state_error_with_exit_2(store: Any) -> None:
    with pytest.raises(StateError) as exc:
        store.get_run("nope")
    assert exc.value.exit_status == 2
    assert "nope" in exc.value.message


def test_transitions_are_committed_and_seen_by_another_connection(
    tmp_path: Path, store_kind: str
) -> None:
    state = tmp_path / "state"
    writer: Store = open_store(state, store_url())
    reader: Store = open_store(state, store_url())
    try:
        writer.create_run(record(), STEPS)
        writer.transition("r1", "first", "operator", "running", attempts=1, started_at=utcnow())
        seen = reader.step("r1", "first", "operator")
        assert seen is not None and seen.status == "running" and seen.attempts == 1
        writer.transition("r1", "first", "operator", "succeeded", exit_code=0, finished_at=utcnow())
    finally:
        writer.close()
    reopened = open_store(state, store_url())
    try:
        step = reopened.step("r1", "first", "operator")
        assert step is not None
        assert (step.status, step.exit_code, step.attempts) == ("succeeded", 0, 1)
        assert step.started_at and step.finished_at
        other = reopened.step("r1", "second", "WEB1")
        assert other is not None and other.status == "pending"
    finally:
        reopened.close()
        reader.close()


def test_unknown_status_is_refused_without_a_change(store: Any) -> None:
    store.create_run(record(), STEPS)
    with pytest.raises(ValueError):
        store.transition("r1", "first", "operator", "half-done")
    step = store.step("r1", "first", "operator")
    assert step is not None and step.status == "pending"


def test_transaction_rolls_back_on_error(store: Any) -> None:
    store.create_run(record(), STEPS)
    with pytest.raises(RuntimeError), store.transaction() as db:
        db.execute("UPDATE steps SET status='failed' WHERE run_id='r1'")
        raise RuntimeError("boom")
    assert {s.status for s in store.steps("r1")} == {"pending"}


def test_ensure_step_adds_missing_rows_only(store: Any) -> None:
    store.create_run(record(), STEPS)
    store.transition("r1", "first", "operator", "succeeded")
    store.ensure_step("r1", "first", "operator", 1)
    store.ensure_step("r1", "fourth", "operator", 4)
    first = store.step("r1", "first", "operator")
    assert first is not None and first.status == "succeeded"
    fourth = store.step("r1", "fourth", "operator")
    assert fourth is not None and fourth.status == "pending" and fourth.position == 4


def test_update_run(store: Any) -> None:
    store.create_run(record(), STEPS)
    before = store.get_run("r1")
    store.update_run("r1", status="paused", overrides={"a": "1"})
    after = store.get_run("r1")
    assert after.status == "paused"
    assert after.overrides == {"a": "1"}
    assert after.updated_at >= before.updated_at
    assert after.content_hash == before.content_hash


def test_gate_decisions_are_taken_once(store: Any) -> None:
    store.create_run(record(), STEPS)
    first = GateDecision("r1", "second", "WEB1", "skip", "Carla", "not needed", "cli", utcnow())
    store.put_gate(first)
    replaced = GateDecision("r1", "second", "WEB1", "confirm", "Dora", "done", "cli", utcnow())
    store.put_gate(replaced)
    assert store.take_gate("r1", "second", "WEB2") is None
    assert store.take_gate("r1", "second", "WEB1") == replaced
    assert store.take_gate("r1", "second", "WEB1") is None


def test_a_peeked_decision_stays_until_the_step_transition_clears_it(
    store: Any,
) -> None:
    store.create_run(record(), STEPS)
    decision = GateDecision("r1", "second", "WEB1", "confirm", "Dora", "done", "cli", utcnow())
    store.put_gate(decision)
    assert store.peek_gate("r1", "second", "WEB1") == decision
    assert store.peek_gate("r1", "second", "WEB1") == decision  # a kill here loses nothing
    store.transition("r1", "second", "WEB2", "succeeded", clear_gate=True)
    assert store.peek_gate("r1", "second", "WEB1") == decision  # another host's stays
    store.transition("r1", "second", "WEB1", "succeeded", clear_gate=True)
    assert store.peek_gate("r1", "second", "WEB1") is None
    store.put_gate(decision)
    store.drop_gate("r1", "second", "WEB1")
    assert store.peek_gate("r1", "second", "WEB1") is None


def test_list_runs_newest_first(store: Any) -> None:
    store.create_run(record("old", created_at="2024-01-01T00:00:00.000000Z"), [])
    store.create_run(record("new", created_at="2025-01-01T00:00:00.000000Z"), [])
    store.create_run(record("mid", created_at="2024-06-01T00:00:00.000000Z"), [])
    assert [r.run_id for r in store.list_runs()] == ["new", "mid", "old"]


def test_run_dir_is_under_the_state_dir(store: Any) -> None:
    assert store.run_dir("r1") == store.state_dir / "runs" / "r1"


@sqlite_only
def test_database_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "state"
    CheckpointStore(state).close()
    with sqlite3.connect(state / "state.db") as db:
        db.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION + 1),))
    with pytest.raises(StateError, match="newer"):
        CheckpointStore(state)


@sqlite_only
def test_state_dir_that_cannot_be_created(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StateError, match="cannot create state directory"):
        CheckpointStore(blocker / "state")


@sqlite_only
def test_default_state_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RUNBOOK_STATE_DIR", str(tmp_path / "explicit"))
    assert default_state_dir() == tmp_path / "explicit"
    monkeypatch.delenv("RUNBOOK_STATE_DIR")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert default_state_dir() == tmp_path / "xdg" / "runbook-engine"
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_state_dir() == tmp_path / "home" / ".local" / "state" / "runbook-engine"
