"""Group commit for the hosts of a fanned-out step (``--forks N``): shared ``fsync``s, one
signature and one transaction for several hosts' records and transitions.

One host at a time, each record a step transition rests on is ``fsync``'d, signed and
followed by its own transaction (ARCHITECTURE.md, "Durability of a step").  When N hosts
run one step at once, their workers take turns under the run's lock
(:class:`~runbook_engine.run.heldlock.HeldLock`), and N ``fsync``s one after another would
make the fan-out as slow as a loop.  Here a worker writes its record under the lock (not
``fsync``'d, not signed: a write to the page cache), queues the transition that rests on
it, lets go of the lock and asks for the journal to be synced up to its record:

* the first to ask ``fsync``s the journal for every record written so far; those who ask
  meanwhile wait for that ``fsync`` (or the next one, which one of them does);
* back under the lock, the first worker whose record is on the disk signs the last synced
  record (one signature line, ``fsync``'d, covers every earlier record through the chain)
  and commits every queued transition whose record is synced, with the journal's anchor,
  in one transaction; the others find theirs done.

So every record is on the disk, and covered by a signature on the disk, before the
transition resting on it commits and before its worker goes on (starts the command, reports
the step), as one host at a time.  A signature line is only ever written for a record
already ``fsync``'d, so syncing the signature file never puts on the disk a signature of a
record that is not.  A step's end (``finish``) is deferred: its transition joins the next
group transaction, and :meth:`GroupCommit.flush` commits what is left before the runner
goes on to the next step (a kill before that loses nothing the journal does not say:
``run/reconcile.py`` sets it right on resume).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runbook_engine.errors import storage_error

if TYPE_CHECKING:
    from runbook_engine.evidence.signing import SignedJournal
    from runbook_engine.run.anchor import StoreAnchor
    from runbook_engine.run.heldlock import HeldLock
    from runbook_engine.run.store_api import Store

#: One step transition: ``(step_id, host, status, columns)``.
Move = tuple[str, str, str, dict[str, Any]]


def fsync_file(path: Path) -> None:
    """``fsync`` the file at ``path`` (any descriptor of it flushes all its written data).

    Raises:
        StorageError: the file cannot be opened or synced (exit 74).
    """
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise storage_error(f"journal {path}", exc) from exc


class GroupCommit:
    """The group commit of one run's fanned-out steps (see the module docstring).

    Args:
        journal: The run's journal (its records for the group are appended with
            ``sync=False, sign=False``).
        store: The checkpoint store (one transaction per group).
        run_id: The run.
        anchor: The run's journal anchor (moved to each synced record).
        lock: The run's lock the workers hold between commands.
    """

    def __init__(
        self,
        journal: SignedJournal,
        store: Store,
        run_id: str,
        anchor: StoreAnchor,
        lock: HeldLock,
    ) -> None:
        self._journal = journal
        self._store = store
        self._run_id = run_id
        self._anchor = anchor
        self._lock = lock
        self._cond = threading.Condition()
        self._written: dict[str, Any] | None = None  # the last record handed in (under the lock)
        self._synced: dict[str, Any] | None = None  # the last record known to be on the disk
        self._syncing = False
        self._queue: list[tuple[int, Move]] = []  # (seq of the record it rests on, move)

    def commit(self, record: dict[str, Any], move: Move | None = None) -> None:
        """Make ``record`` durable and signed, and commit ``move`` (which rests on it).

        Called with the run's lock held, right after ``record`` was appended unsynced and
        unsigned; returns with the lock held, once both are done.  The lock is let go of
        while the journal is ``fsync``'d.

        Raises:
            StorageError: the journal, the signatures or the store cannot be written.
        """
        self._written = record
        if move is not None:
            self._queue.append((record["seq"], move))
        with self._lock.released():
            self._sync_to(record["seq"])
        self._settle()

    def defer(self, move: Move) -> None:
        """Queue ``move``, whose record is durable and signed already (a step's end rests
        on its ``step-finished``), for the next group transaction or :meth:`flush`; called
        with the run's lock held."""
        self._queue.append((0, move))

    def flush(self) -> None:
        """Commit every queued move, its records durable and signed first (the fanned-out
        step is over); called with the run's lock held, or by the only thread left."""
        if self._written is not None:
            self._sync_to(self._written["seq"])
        self._settle(everything=True)

    def _sync_to(self, seq: int) -> None:
        """Return once the journal is ``fsync``'d up to ``seq`` (by this thread or another)."""
        with self._cond:
            while self._synced is None or self._synced["seq"] < seq:
                if self._syncing:
                    self._cond.wait()
                    continue
                self._syncing = True
                target = self._written  # every record up to it is written
                self._cond.release()
                try:
                    fsync_file(self._journal.path)
                finally:
                    self._cond.acquire()
                    self._syncing = False
                    self._cond.notify_all()
                synced = self._synced
                if target is not None and (synced is None or synced["seq"] < target["seq"]):
                    self._synced = target

    def _settle(self, *, everything: bool = False) -> None:
        """Under the run's lock: sign the last synced record, then commit the queued moves
        resting on synced records (all of them with ``everything``) in one transaction."""
        synced = self._synced
        if synced is None:
            return
        signer = self._journal.signer
        if signer is not None and signer.last_seq < synced["seq"]:
            signer.sign(synced)  # fsync'd: covers every record up to it through the chain
        elif signer is not None:
            signer.flush()  # a later signature covers it: make sure it is on the disk
        ready = [m for s, m in self._queue if everything or s <= synced["seq"]]
        if not ready:
            return
        self._queue = [(s, m) for s, m in self._queue if not (everything or s <= synced["seq"])]
        self._anchor.write(synced["seq"], synced["hash"])
        self._store.transitions(self._run_id, ready, anchor=self._anchor.pending, durable=False)
