"""The PostgreSQL store: a team's runs in one database (psycopg 3 and its connection pool).

The same tables and the same methods as :class:`~runbook_engine.run.store.CheckpointStore`
(:class:`~runbook_engine.run.store_api.Store`), plus the run's journal and files
(:mod:`.sync`).  A run's lock is a session advisory lock on a hash of its id, held on a
connection of its own for as long as the command holds the run, so two operators (on any
machines) cannot resume one run together, and a confirmation waits for the runner.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import json
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

from runbook_engine.errors import StateError, StorageError
from runbook_engine.evidence import JOURNAL_NAME
from runbook_engine.run.pgstore import schema, sync
from runbook_engine.run.pgstore.connection import CONNECT_TIMEOUT, connect, shown_url
from runbook_engine.run.store import (
    DONE_STATUSES,
    STEP_STATUSES,
    Anchor,
    GateDecision,
    RunRecord,
    StepState,
    utcnow,
)


def lock_key(run_id: str) -> int:
    """The advisory lock key of a run: 63 bits of the SHA-256 of its id."""
    return int.from_bytes(hashlib.sha256(run_id.encode("utf-8")).digest()[:8], "big") >> 1


class PgStore:
    """Runs, steps, gates, journals and files of a team in one PostgreSQL database.

    Args:
        url: ``postgresql://user@host:port/dbname`` (a password may come from ``~/.pgpass``
            or ``PGPASSWORD``, as for ``psql``).
        work_dir: This machine's working copies of run folders (``work_dir/runs/RUN_ID``).

    Raises:
        StateError: the database cannot be reached, or its schema is not this
            runbook-engine's (older: `runbook store upgrade`; newer: refused).
    """

    #: The run lock (a session's advisory lock) can lapse without this process seeing it:
    #: the runner commits the step ends that wait before it starts the next command
    #: (:meth:`~runbook_engine.run.context.RunContext.run_command`), each commit checking
    #: the lock.
    lock_may_lapse = True

    def __init__(self, url: str, work_dir: Path, **_: Any) -> None:
        from psycopg.rows import dict_row
        from psycopg_pool import ConnectionPool

        self.url = url
        self.where = shown_url(url)
        self.state_dir = work_dir
        with contextlib.closing(connect(url)) as conn:
            schema.check_current(conn.execute, self.where)
        kwargs = {"row_factory": dict_row, "connect_timeout": CONNECT_TIMEOUT}
        self._pool = ConnectionPool(
            url, min_size=1, max_size=4, kwargs=kwargs, open=True, timeout=CONNECT_TIMEOUT
        )
        self._synced: set[str] = set()
        self._pushed: dict[str, sync.Pushed] = {}
        self._seen: dict[str, dict[str, sync.Stamp]] = {}
        self._locks: dict[str, list[Any]] = {}

    def close(self) -> None:
        """Close the pool (and any lock connection left open)."""
        for conn, _depth in self._locks.values():
            conn.close()
        self._locks.clear()
        self._pool.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Any]:
        """A connection of the pool in one transaction (committed on success).

        Raises:
            StorageError: the database cannot be reached or went away (exit 74; the
                transaction is not committed).
        """
        with self._reachable(), self._pool.connection() as conn, conn.transaction():
            yield conn

    @contextlib.contextmanager
    def _reachable(self) -> Iterator[None]:
        """Turn a lost or unreachable database into one clear :class:`StorageError`."""
        from psycopg import OperationalError
        from psycopg_pool import PoolTimeout

        try:
            yield
        except (OperationalError, PoolTimeout) as exc:
            text = str(exc).strip()
            reason = text.splitlines()[-1] if text else type(exc).__name__
            raise StorageError(
                f"the store {self.where} cannot be reached ({reason}). Nothing acknowledged "
                "was lost (the run folder's journal holds the rest); when the store "
                "answers again, `runbook resume` the run"
            ) from None

    def _one(self, sql: str, *args: Any) -> dict[str, Any] | None:
        with self._reachable(), self._pool.connection() as conn:
            return conn.execute(sql, args).fetchone()

    def _all(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        with self._reachable(), self._pool.connection() as conn:
            return conn.execute(sql, args).fetchall()

    # working copies ---------------------------------------------------------
    def run_dir(self, run_id: str) -> Path:
        """This machine's working copy of run ``run_id``'s folder, filled from the
        database the first time a process asks for it (copied to the database too only
        while this process holds the run: see :meth:`sync`)."""
        path = self.state_dir / "runs" / run_id
        if run_id not in self._synced and self.has_run(run_id):
            self.sync(run_id, push=run_id in self._locks)
        return path

    def sync(self, run_id: str, *, push: bool = True) -> None:
        """Copy what the working copy holds and the database lacks to the database, then
        the other way round (one transaction).

        Args:
            push: False for a process that does not hold the run: it only copies from the
                database.  Another process on this machine may hold the run and be writing
                the working copy; what it wrote is its to store (two processes storing the
                same records collide, and a copy must not overwrite its signatures).

        Raises:
            StateError: the working copy's journal differs from the database's.
        """
        folder = self.state_dir / "runs" / run_id
        path = folder / JOURNAL_NAME
        with self.transaction() as conn:
            if push:
                self._pushed[run_id] = sync.push_journal(conn, run_id, path)
                sync.push_files(conn, run_id, folder)
            sync.pull_journal(conn, run_id, path)
            sync.pull_files(conn, run_id, folder)
        self._synced.add(run_id)

    def _push(self, conn: Any, run_id: str, *, files: bool) -> dict[str, sync.Stamp]:
        """Store the working copy's new journal records and, with ``files``, its new files;
        return the stamps of the files stored, for :meth:`_stored` after the commit."""
        folder = self.state_dir / "runs" / run_id
        since = self._pushed.get(run_id)
        self._pushed[run_id] = sync.push_journal(conn, run_id, folder / JOURNAL_NAME, since)
        stamps: dict[str, sync.Stamp] = {}
        if files:
            sync.push_files(conn, run_id, folder, self._seen.get(run_id), stamps)
        return stamps

    def _stored(self, run_id: str, stamps: dict[str, sync.Stamp]) -> None:
        """The transaction that stored files with ``stamps`` committed: skip them next time."""
        self._seen.setdefault(run_id, {}).update(stamps)

    @contextlib.contextmanager
    def lock_run(self, run_id: str, *, wait: float = 0.0) -> Iterator[None]:
        """Hold run ``run_id`` (a session advisory lock); the working copy is brought up to
        date once it is held, and what the command wrote is stored before it is let go.

        Re-entrant within one process.

        Raises:
            StateError: another process (on any machine) holds the run beyond ``wait`` seconds.
        """
        entry = self._locks.get(run_id)
        if entry is not None:
            entry[1] += 1
            try:
                yield
            finally:
                entry[1] -= 1
            return
        holder = f"runbook {getpass.getuser()}@{socket.gethostname()} pid {os.getpid()}"[:63]
        conn = connect(self.url, autocommit=True, application_name=holder)
        key, deadline = lock_key(run_id), time.monotonic() + wait
        while not conn.execute("SELECT pg_try_advisory_lock(%s) AS got", (key,)).fetchone()["got"]:
            if time.monotonic() >= deadline:
                who = _holder(conn, key)
                conn.close()
                raise StateError(
                    f"run {run_id} is being run by {who} (or changed by it); try again "
                    "when it has paused or finished"
                )
            time.sleep(0.1)
        self._locks[run_id] = entry = [conn, 1]
        try:
            if self.has_run(run_id):
                self.sync(run_id)
            yield
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                del self._locks[run_id]
                try:
                    if self.has_run(run_id):
                        with self.transaction() as tx:
                            self._push(tx, run_id, files=True)
                finally:
                    conn.close()  # closing the session releases the lock

    # runs -------------------------------------------------------------------
    def create_run(self, record: RunRecord, steps: list[tuple[str, str, int]]) -> None:
        """Insert a run and its pending steps in one transaction.

        Raises:
            StateError: the run id exists already.
        """
        values = {f.name: getattr(record, f.name) for f in fields(RunRecord)}
        values["overrides"] = json.dumps(record.overrides, sort_keys=True)
        now = utcnow()
        with self.transaction() as conn:
            if conn.execute("SELECT 1 FROM runs WHERE run_id=%s", (record.run_id,)).fetchone():
                raise StateError(f"run {record.run_id} exists already")
            marks = ", ".join(["%s"] * len(values))
            conn.execute(
                f"INSERT INTO runs ({', '.join(values)}) VALUES ({marks})", tuple(values.values())
            )
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO steps (run_id, step_id, host, position, status, updated_at) "
                    "VALUES (%s, %s, %s, %s, 'pending', %s)",
                    [(record.run_id, s, h, p, now) for s, h, p in steps],
                )

    def has_run(self, run_id: str) -> bool:
        """True when run ``run_id`` is in the store."""
        return self._one("SELECT 1 FROM runs WHERE run_id=%s", run_id) is not None

    def get_run(self, run_id: str) -> RunRecord:
        """Return the run ``run_id``.

        Raises:
            StateError: no such run (exit 2).
        """
        row = self._one("SELECT * FROM runs WHERE run_id=%s", run_id)
        if row is None:
            raise StateError(
                f"no run {run_id!r} in the store {self.where}; `runbook runs` lists the runs"
            )
        return _run(row)

    def list_runs(self) -> list[RunRecord]:
        """Return every run, newest first."""
        rows = self._all("SELECT * FROM runs ORDER BY created_at DESC, run_id DESC")
        return [_run(r) for r in rows]

    def update_run(self, run_id: str, **changes: Any) -> None:
        """Set columns of a run in one go."""
        if "overrides" in changes:
            changes["overrides"] = json.dumps(changes["overrides"], sort_keys=True)
        changes["updated_at"] = utcnow()
        sets = ", ".join(f"{k}=%s" for k in changes)
        with self.transaction() as conn:
            conn.execute(f"UPDATE runs SET {sets} WHERE run_id=%s", (*changes.values(), run_id))

    # steps ------------------------------------------------------------------
    def steps(self, run_id: str) -> list[StepState]:
        """Return every step state of a run in flow order."""
        sql = "SELECT * FROM steps WHERE run_id=%s ORDER BY position, host"
        return [StepState(**r) for r in self._all(sql, run_id)]

    def step(self, run_id: str, step_id: str, host: str) -> StepState | None:
        """Return one step state, or ``None``."""
        sql = "SELECT * FROM steps WHERE run_id=%s AND step_id=%s AND host=%s"
        row = self._one(sql, run_id, step_id, host)
        return StepState(**row) if row else None

    def steps_of(self, run_id: str, step_id: str) -> list[StepState]:
        """Return the states of one step of a run (one per host, in host order)."""
        sql = "SELECT * FROM steps WHERE run_id=%s AND step_id=%s ORDER BY host"
        return [StepState(**r) for r in self._all(sql, run_id, step_id)]

    def done_keys(self, run_id: str) -> set[tuple[str, str]]:
        """Return ``(step id, host)`` of every done step of a run."""
        sql = "SELECT step_id, host FROM steps WHERE run_id=%s AND status = ANY(%s)"
        return {(r["step_id"], r["host"]) for r in self._all(sql, run_id, sorted(DONE_STATUSES))}

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
        """Move a step to ``status`` in one transaction; with ``anchor``, the journal's new
        records go into the database in the same transaction.

        Raises:
            ValueError: ``status`` is not a step status.
        """
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
        """Move steps, ``(step_id, host, status, columns)`` each, in one transaction (a
        fanned-out step's group commit), as :meth:`transition`.

        Raises:
            ValueError: a status is not a step status.
        """
        for _, _, status, _ in moves:
            if status not in STEP_STATUSES:
                raise ValueError(status)
        now = utcnow()
        with self.transaction() as conn:
            for step_id, host, status, changes in moves:
                values = {**changes, "status": status, "updated_at": now}
                sets = ", ".join(f"{k}=%s" for k in values)
                key = (run_id, step_id, host)
                conn.execute(
                    f"UPDATE steps SET {sets} WHERE run_id=%s AND step_id=%s AND host=%s",
                    (*values.values(), *key),
                )
                if clear_gate:
                    conn.execute(
                        "DELETE FROM gates WHERE run_id=%s AND step_id=%s AND host=%s", key
                    )
            stamps: dict[str, sync.Stamp] = {}
            self._still_held(conn, run_id)
            if anchor is not None:
                # A step that ended (or waits at a gate) has its files stored with the
                # transaction acknowledging it: a worker killed later loses none of them.
                ended = any(status not in ("pending", "running") for _, _, status, _ in moves)
                stamps = self._push(conn, run_id, files=ended)
                sync.set_anchor(conn, run_id, anchor)
        self._stored(run_id, stamps)

    def _still_held(self, conn: Any, run_id: str) -> None:
        """Within a transaction of a run this process holds: check that its lock's session
        still holds it (a restarted server or a cut connection drops it silently, and
        another process could take the run); else nothing is committed.

        Raises:
            StorageError: the lock is lost (exit 74; `runbook resume` continues).
        """
        entry = self._locks.get(run_id)
        if entry is None:
            return
        key = lock_key(run_id)
        held = conn.execute(
            "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = %s "
            "AND classid::bigint = %s AND objid::bigint = %s AND objsubid = 1",
            (entry[0].info.backend_pid, key >> 32, key & 0xFFFFFFFF),
        ).fetchone()
        if held is None:
            raise StorageError(
                f"run {run_id}: its lock in the store {self.where} was lost (the server "
                "restarted or cut the connection); the run stops here, nothing acknowledged "
                f"was lost: `runbook resume {run_id}` continues it"
            )

    def set_anchor(self, run_id: str, anchor: Anchor, *, durable: bool = True) -> None:
        """Store the journal's new records and keep ``anchor``; ``durable``: the run stops
        here, so its files are stored too."""
        with self.transaction() as conn:
            stamps = self._push(conn, run_id, files=durable)
            sync.set_anchor(conn, run_id, anchor)
        self._stored(run_id, stamps)

    def anchor(self, run_id: str) -> Anchor | None:
        """The run's journal anchor ``(seq, hash)``, or ``None``."""
        row = self._one("SELECT journal_seq, journal_hash FROM runs WHERE run_id=%s", run_id)
        if row is None or row["journal_seq"] is None or row["journal_hash"] is None:
            return None
        return int(row["journal_seq"]), str(row["journal_hash"])

    def ensure_step(self, run_id: str, step_id: str, host: str, position: int) -> None:
        """Add a pending step row if missing."""
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO steps (run_id, step_id, host, position, status, updated_at) "
                "VALUES (%s, %s, %s, %s, 'pending', %s) ON CONFLICT DO NOTHING",
                (run_id, step_id, host, position, utcnow()),
            )

    # gates ------------------------------------------------------------------
    def put_gate(self, decision: GateDecision) -> None:
        """Record a gate decision given outside the run (replaces an earlier one)."""
        values = tuple(getattr(decision, f.name) for f in fields(GateDecision))
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO gates VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (run_id, step_id, host) DO UPDATE SET decision=EXCLUDED.decision, "
                "by=EXCLUDED.by, note=EXCLUDED.note, source=EXCLUDED.source, at=EXCLUDED.at",
                values,
            )

    def peek_gate(self, run_id: str, step_id: str, host: str) -> GateDecision | None:
        """Return the decision recorded for a gate, if any, and keep it."""
        sql = "SELECT * FROM gates WHERE run_id=%s AND step_id=%s AND host=%s"
        row = self._one(sql, run_id, step_id, host)
        return GateDecision(**row) if row else None

    def gate_decisions(self, run_id: str) -> dict[tuple[str, str], GateDecision]:
        """The decisions recorded for gates of ``run_id`` and not yet taken by the runner."""
        rows = self._all("SELECT * FROM gates WHERE run_id=%s", run_id)
        return {(r["step_id"], r["host"]): GateDecision(**r) for r in rows}

    def drop_gate(self, run_id: str, step_id: str, host: str) -> None:
        """Delete the decision recorded for a gate."""
        with self.transaction() as conn:
            sql = "DELETE FROM gates WHERE run_id=%s AND step_id=%s AND host=%s"
            conn.execute(sql, (run_id, step_id, host))

    def take_gate(self, run_id: str, step_id: str, host: str) -> GateDecision | None:
        """Return and delete the decision recorded for a gate, if any."""
        with self.transaction() as conn:
            row = conn.execute(
                "DELETE FROM gates WHERE run_id=%s AND step_id=%s AND host=%s RETURNING *",
                (run_id, step_id, host),
            ).fetchone()
        return GateDecision(**row) if row else None


def _holder(conn: Any, key: int) -> str:
    """Who holds advisory lock ``key`` (the holder's application name), as far as visible."""
    row = conn.execute(
        "SELECT a.application_name AS name FROM pg_locks l JOIN pg_stat_activity a "
        "ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
        "AND l.classid::bigint = %s AND l.objid::bigint = %s AND l.objsubid = 1",
        (key >> 32, key & 0xFFFFFFFF),
    ).fetchone()
    return row["name"] if row and row["name"] else "another process"


def _run(row: dict[str, Any]) -> RunRecord:
    data = dict(row)
    data.pop("journal_seq", None)
    data.pop("journal_hash", None)
    data["overrides"] = json.loads(data["overrides"] or "{}")
    return RunRecord(**data)
