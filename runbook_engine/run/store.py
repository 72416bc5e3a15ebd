"""The checkpoint store: run and step state in SQLite (pre-commit's shape).

One database file per state directory, created atomically (built under a
temporary name, then renamed), opened in WAL mode.  Every state transition is
one transaction, so a run killed at any moment leaves a consistent store:
each step is exactly in the last state committed for it.

The journal is the truth, the store a cache that :mod:`~runbook_engine.run.reconcile`
sets right on resume: the runner's step transitions (``durable=False``) do not wait for
the disk (WAL, ``synchronous=NORMAL``); the rest does (``FULL``).  The ``runs`` row keeps
the journal's anchor (``journal_seq``, ``journal_hash``).  ARCHITECTURE.md, "Durability
of a step", gives the argument.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

from runbook_engine.errors import StateError, StorageError
from runbook_engine.run.records import (  # re-exported: the store's vocabulary
    DONE_STATUSES,
    RUN_STATUSES,
    STEP_STATUSES,
    Anchor,
    GateDecision,
    RunRecord,
    StepState,
    default_state_dir,
    utcnow,
)

__all__ = [
    "DONE_STATUSES",
    "RUN_STATUSES",
    "STEP_STATUSES",
    "Anchor",
    "CheckpointStore",
    "GateDecision",
    "RunRecord",
    "StepState",
    "default_state_dir",
    "utcnow",
]

SCHEMA_VERSION = 4
#: Columns added since schema 1: a local command's pid, start time and group (2), a remote
#: one's marker (3), the journal's anchor (4).
_ADDED_COLUMNS = (
    ("steps", "pid", "INTEGER"),
    ("steps", "pid_start", "INTEGER"),
    ("steps", "pgid", "INTEGER"),
    ("steps", "marker", "TEXT"),
    ("runs", "journal_seq", "INTEGER"),
    ("runs", "journal_hash", "TEXT"),
)
_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE runs (
    run_id TEXT PRIMARY KEY, runbook_id TEXT NOT NULL, runbook_path TEXT NOT NULL,
    content_hash TEXT NOT NULL, env_path TEXT, env_name TEXT, env_hash TEXT,
    overrides TEXT NOT NULL DEFAULT '{}', status TEXT NOT NULL, outcome TEXT,
    operator TEXT NOT NULL, change_id TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    journal_seq INTEGER, journal_hash TEXT
);
CREATE TABLE steps (
    run_id TEXT NOT NULL REFERENCES runs(run_id), step_id TEXT NOT NULL, host TEXT NOT NULL,
    position INTEGER NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    exit_code INTEGER, started_at TEXT, finished_at TEXT, reason TEXT, output_digest TEXT,
    updated_at TEXT NOT NULL, pid INTEGER, pid_start INTEGER, pgid INTEGER, marker TEXT,
    PRIMARY KEY (run_id, step_id, host)
);
CREATE TABLE gates (
    run_id TEXT NOT NULL, step_id TEXT NOT NULL, host TEXT NOT NULL, decision TEXT NOT NULL,
    by TEXT NOT NULL, note TEXT, source TEXT NOT NULL, at TEXT NOT NULL,
    PRIMARY KEY (run_id, step_id, host)
);
"""


class CheckpointStore:
    """Run and step state in ``state_dir/state.db``.

    Args:
        state_dir: The state directory; created when missing.
        create: Create the directory and database when missing; ``False`` for
            commands that only read or continue runs (a mistyped directory then
            gives an error instead of a stray empty database).

    Raises:
        StateError: the directory cannot be created, has no state (``create=False``),
            or the database is from a newer version.
    """

    #: A state folder's run lock (a file lock of this process) cannot lapse unseen.
    lock_may_lapse = False

    def __init__(self, state_dir: Path, *, create: bool = True, run_id: str | None = None) -> None:
        self.state_dir = state_dir
        self.db_path = state_dir / "state.db"
        if not create and not self.db_path.is_file():
            what = f"no run {run_id!r}" if run_id else "no runs"
            raise StateError(
                f"{what} in {state_dir} (it holds no state.db); use --state-dir or "
                "RUNBOOK_STATE_DIR to name the state directory of the run"
            )
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StateError(f"cannot create state directory {state_dir}: {exc.strerror}") from None
        if not self.db_path.exists():
            self._create()
        self._sync = "FULL"
        try:
            # One connection, used by one thread at a time (the runner serialises host fan-out).
            self._db = sqlite3.connect(
                self.db_path, timeout=30, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
        except sqlite3.OperationalError as exc:
            if create and _disk_trouble(exc):
                raise StorageError(
                    f"cannot write the state in {state_dir} ({exc}); free space (or fix "
                    "the disk) and try again"
                ) from None
            if create:
                raise StateError(
                    f"cannot write the state in {state_dir} ({exc}); check its "
                    "permissions or name another with --state-dir"
                ) from None
            # Read-only copy (an auditor's): read it as it is, without WAL bookkeeping.
            uri = f"{self.db_path.resolve().as_uri()}?immutable=1"
            self._db = sqlite3.connect(uri, uri=True, isolation_level=None)
            self._sync = "immutable"
        self._db.row_factory = sqlite3.Row
        version = int(self._scalar("SELECT value FROM meta WHERE key='schema_version'") or 0)
        if version > SCHEMA_VERSION:
            raise StateError(
                f"{self.db_path} was written by a newer runbook-engine "
                f"(schema {version}); upgrade runbook-engine"
            )
        if version < SCHEMA_VERSION and self._sync != "immutable":  # resume upgrades too
            with contextlib.nullcontext() if create else contextlib.suppress(StorageError):
                self._upgrade()

    def _upgrade(self) -> None:
        """Add the columns of newer schemas to an older database (one transaction)."""
        with self.transaction() as db:
            for table, column, sql_type in _ADDED_COLUMNS:
                have = {r[1] for r in db.execute(f"PRAGMA table_info({table})")}
                if column not in have:
                    db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {sql_type}")
            db.execute(
                "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )

    def _create(self) -> None:
        try:
            fd, tmp = tempfile.mkstemp(prefix=".state-", suffix=".db", dir=self.state_dir)
        except OSError as exc:
            raise StateError(
                f"cannot write the state in {self.state_dir}: {exc.strerror}; "
                "check its permissions or name another with --state-dir"
            ) from None
        os.close(fd)
        try:
            with contextlib.closing(sqlite3.connect(tmp)) as db:
                db.executescript(_SCHEMA)
                db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                db.commit()
            if not self.db_path.exists():
                os.replace(tmp, self.db_path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def close(self) -> None:
        """Close the database connection."""
        self._db.close()

    def run_dir(self, run_id: str) -> Path:
        """Return the folder of a run's files (journal, outputs)."""
        return self.state_dir / "runs" / run_id

    def lock_run(
        self, run_id: str, *, wait: float = 0.0
    ) -> contextlib.AbstractContextManager[None]:
        """Hold run ``run_id``'s file lock (:func:`~runbook_engine.run.runlock.run_lock`);
        wait up to ``wait`` seconds for another process.

        Raises:
            StateError: another process holds the run.
        """
        from runbook_engine.run.runlock import run_lock

        return run_lock(self.run_dir(run_id), run_id, wait=wait)

    @contextlib.contextmanager
    def transaction(self, *, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """One immediate transaction: committed on success, rolled back on error.

        Args:
            durable: Wait for the disk (``synchronous=FULL``); false for what the journal holds.

        Raises:
            StorageError: the disk is full or failing (exit 74; nothing was committed).
        """
        try:
            if self._sync != (mode := "FULL" if durable else "NORMAL"):
                self._db.execute(f"PRAGMA synchronous={mode}")
                self._sync = mode
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except (sqlite3.OperationalError, sqlite3.DatabaseError) as exc:
            if not _disk_trouble(exc):
                raise
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            raise StorageError(
                f"cannot write the state {self.db_path}: {exc}. Nothing acknowledged was "
                "lost; free space (or fix the disk), then `runbook resume` the run"
            ) from None

    def _scalar(self, sql: str, *args: Any) -> Any:
        row = self._db.execute(sql, args).fetchone()
        return row[0] if row else None

    # runs -----------------------------------------------------------------
    def create_run(self, record: RunRecord, steps: list[tuple[str, str, int]]) -> None:
        """Insert a run and its steps (``(step_id, host, position)``, pending) in one transaction.

        Raises:
            StateError: the run id exists already.
        """
        values = {f.name: getattr(record, f.name) for f in fields(RunRecord)}
        values["overrides"] = json.dumps(record.overrides, sort_keys=True)
        now = utcnow()
        with self.transaction() as db:
            if db.execute("SELECT 1 FROM runs WHERE run_id=?", (record.run_id,)).fetchone():
                raise StateError(f"run {record.run_id} exists already")
            cols = ", ".join(values)
            db.execute(
                f"INSERT INTO runs ({cols}) VALUES ({', '.join('?' * len(values))})",
                tuple(values.values()),
            )
            db.executemany(
                "INSERT INTO steps (run_id, step_id, host, position, status, updated_at) "
                "VALUES (?, ?, ?, ?, 'pending', ?)",
                [(record.run_id, s, h, p, now) for s, h, p in steps],
            )

    def has_run(self, run_id: str) -> bool:
        """True when run ``run_id`` is in the store."""
        return self._scalar("SELECT 1 FROM runs WHERE run_id=?", run_id) is not None

    def get_run(self, run_id: str) -> RunRecord:
        """Return the run ``run_id``.

        Raises:
            StateError: no such run in this state directory (exit status 2).
        """
        row = self._db.execute("SELECT * FROM runs WHERE run_id=?", (run_id,)).fetchone()
        if row is None:
            raise StateError(
                f"no run {run_id!r} in {self.state_dir}; `runbook runs` lists the runs "
                "(use --state-dir or RUNBOOK_STATE_DIR for another state directory, --store "
                "or RUNBOOK_STORE for a team's PostgreSQL store)"
            )
        return _run(row)

    def list_runs(self) -> list[RunRecord]:
        """Return every run, newest first."""
        rows = self._db.execute("SELECT * FROM runs ORDER BY created_at DESC, run_id DESC")
        return [_run(r) for r in rows]

    def update_run(self, run_id: str, **changes: Any) -> None:
        """Set columns of a run (``status``, ``outcome``, ``content_hash``...) in one go."""
        if "overrides" in changes:
            changes["overrides"] = json.dumps(changes["overrides"], sort_keys=True)
        changes["updated_at"] = utcnow()
        sets = ", ".join(f"{k}=?" for k in changes)
        with self.transaction() as db:
            db.execute(f"UPDATE runs SET {sets} WHERE run_id=?", (*changes.values(), run_id))

    # steps ----------------------------------------------------------------
    def steps(self, run_id: str) -> list[StepState]:
        """Return every step state of a run in flow order."""
        rows = self._db.execute(
            "SELECT * FROM steps WHERE run_id=? ORDER BY position, host", (run_id,)
        )
        return [StepState(**dict(r)) for r in rows]

    def step(self, run_id: str, step_id: str, host: str) -> StepState | None:
        """Return one step state, or ``None``."""
        row = self._db.execute(
            "SELECT * FROM steps WHERE run_id=? AND step_id=? AND host=?", (run_id, step_id, host)
        ).fetchone()
        return StepState(**dict(row)) if row else None

    def transition(
        self,
        run_id: str,
        step_id: str,
        host: str,
        status: str,
        *,
        clear_gate: bool = False,
        anchor: Anchor | None = None,
        durable: bool = True,
        **changes: Any,
    ) -> None:
        """Move a step to ``status`` (and set other columns) in one committed transaction;
        ``clear_gate`` also deletes its stored decision (journaled).  See :meth:`transitions`."""
        move = (step_id, host, status, changes)
        self.transitions(run_id, [move], anchor=anchor, durable=durable, clear_gate=clear_gate)

    def transitions(
        self,
        run_id: str,
        moves: list[tuple[str, str, str, dict[str, Any]]],
        *,
        anchor: Anchor | None = None,
        durable: bool = True,
        clear_gate: bool = False,
    ) -> None:
        """Move steps, ``(step_id, host, status, columns)`` each, in one transaction (the
        hosts of a fanned-out step share theirs: group commit).

        Args:
            anchor: The journal record (already ``fsync``'d) this acknowledges: the run's anchor.
            durable: See :meth:`transaction` (the runner's transitions: false).

        Raises:
            ValueError: a status is not a step status.
        """
        if any(status not in STEP_STATUSES for _, _, status, _ in moves):
            raise ValueError(next(m[2] for m in moves if m[2] not in STEP_STATUSES))
        now = utcnow()
        with self.transaction(durable=durable) as db:
            for step_id, host, status, changes in moves:
                values = {**changes, "status": status, "updated_at": now}
                sets = ", ".join(f"{k}=?" for k in values)
                key = (run_id, step_id, host)
                sql = f"UPDATE steps SET {sets} WHERE run_id=? AND step_id=? AND host=?"
                db.execute(sql, (*values.values(), *key))
                if clear_gate:
                    db.execute("DELETE FROM gates WHERE run_id=? AND step_id=? AND host=?", key)
            if anchor is not None:
                _set_anchor(db, run_id, anchor)

    def set_anchor(self, run_id: str, anchor: Anchor, *, durable: bool = True) -> None:
        """Keep ``anchor`` (seq, hash) as the run's journal anchor (never moved back)."""
        with self.transaction(durable=durable) as db:
            _set_anchor(db, run_id, anchor)

    def anchor(self, run_id: str) -> Anchor | None:
        """The run's journal anchor ``(seq, hash)``; ``None`` for older runs (head file only)."""
        sql = "SELECT journal_seq, journal_hash FROM runs WHERE run_id=?"
        row = self._db.execute(sql, (run_id,)).fetchone()
        return None if row is None or None in tuple(row) else (int(row[0]), str(row[1]))

    def ensure_step(self, run_id: str, step_id: str, host: str, position: int) -> None:
        """Add a pending step row if missing (an accepted changed runbook may add steps)."""
        with self.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO steps (run_id, step_id, host, position, status, "
                "updated_at) VALUES (?, ?, ?, ?, 'pending', ?)",
                (run_id, step_id, host, position, utcnow()),
            )

    # gates ----------------------------------------------------------------
    def put_gate(self, decision: GateDecision) -> None:
        """Record a gate decision given outside the run (replaces an earlier one)."""
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO gates VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    decision.run_id,
                    decision.step_id,
                    decision.host,
                    decision.decision,
                    decision.by,
                    decision.note,
                    decision.source,
                    decision.at,
                ),
            )

    def peek_gate(self, run_id: str, step_id: str, host: str) -> GateDecision | None:
        """Return the decision recorded for a gate, if any, and keep it: the runner deletes
        it only once the journal holds what it did with it (``transition(clear_gate=True)``
        or :meth:`drop_gate`), so a kill in between loses no decision."""
        row = self._db.execute(
            "SELECT * FROM gates WHERE run_id=? AND step_id=? AND host=?", (run_id, step_id, host)
        ).fetchone()
        return GateDecision(**dict(row)) if row else None

    def gate_decisions(self, run_id: str) -> dict[tuple[str, str], GateDecision]:
        """The decisions recorded for gates of ``run_id`` and not yet taken by the runner,
        by ``(step_id, host)`` (``runbook status`` shows them)."""
        rows = self._db.execute("SELECT * FROM gates WHERE run_id=?", (run_id,)).fetchall()
        return {(r["step_id"], r["host"]): GateDecision(**dict(r)) for r in rows}

    def drop_gate(self, run_id: str, step_id: str, host: str) -> None:
        """Delete the decision recorded for a gate (after the journal says what became of it)."""
        with self.transaction() as db:
            db.execute(
                "DELETE FROM gates WHERE run_id=? AND step_id=? AND host=?", (run_id, step_id, host)
            )

    def take_gate(self, run_id: str, step_id: str, host: str) -> GateDecision | None:
        """Return and delete the decision recorded for a gate, if any."""
        with self.transaction() as db:
            row = db.execute(
                "SELECT * FROM gates WHERE run_id=? AND step_id=? AND host=?",
                (run_id, step_id, host),
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "DELETE FROM gates WHERE run_id=? AND step_id=? AND host=?", (run_id, step_id, host)
            )
        return GateDecision(**dict(row))

    def steps_of(self, run_id: str, step_id: str) -> list[StepState]:
        """Return the states of one step of a run (one per host, in host order)."""
        rows = self._db.execute(
            "SELECT * FROM steps WHERE run_id=? AND step_id=? ORDER BY host", (run_id, step_id)
        )
        return [StepState(**dict(r)) for r in rows]

    def done_keys(self, run_id: str) -> set[tuple[str, str]]:
        """Return ``(step id, host)`` of every done step of a run (one light query)."""
        marks = ", ".join("?" * len(DONE_STATUSES))
        rows = self._db.execute(
            f"SELECT step_id, host FROM steps WHERE run_id=? AND status IN ({marks})",
            (run_id, *sorted(DONE_STATUSES)),
        )
        return {(r[0], r[1]) for r in rows}


def _set_anchor(db: sqlite3.Connection, run_id: str, anchor: Anchor) -> None:
    db.execute(
        "UPDATE runs SET journal_seq=?, journal_hash=? WHERE run_id=? "
        "AND (journal_seq IS NULL OR journal_seq < ?)",
        (anchor[0], anchor[1], run_id, anchor[0]),
    )


def _disk_trouble(exc: sqlite3.Error) -> bool:
    """True when SQLite failed because of the disk (full, I/O error, read-only)."""
    text = str(exc).lower()
    return any(w in text for w in ("disk is full", "disk i/o", "readonly", "read-only"))


def _run(row: sqlite3.Row) -> RunRecord:
    data = dict(row)
    data.pop("journal_seq", None)
    data.pop("journal_hash", None)
    data["overrides"] = json.loads(data["overrides"] or "{}")
    return RunRecord(**data)
