"""A run's journal anchor, kept in the checkpoint store instead of a head file per record.

The journal's anchor ``(seq, hash)`` lets verification see records cut from its end
(:mod:`runbook_engine.evidence.journal`).  Rewriting ``journal.jsonl.head`` after every
record (create, ``fsync``, rename) was a third of a step's cost, so the runner's journal
keeps it in the ``runs`` row instead, in the same transaction as the step transition that
acknowledges the record (:meth:`RunContext.transition`).  The order is always: the
record is written and ``fsync``'d, then the transaction naming it commits, so the anchor
never names a record the disk might not hold.

A record no transition follows (a retry, a backout offer, the run's end) is anchored by
the next transaction of the run or, at the latest, when the run stops: :meth:`StoreAnchor.rest`
commits the anchor durably and writes the head file once, so a run folder (or a bundle
made of it) carries its own anchor for offline verification.  Between two transactions
of a killed run the journal may be longer than its anchor, which is accepted, as it was
for a kill between a record and its head file.
"""

from __future__ import annotations

import json
from pathlib import Path

from runbook_engine.evidence.journal import head_path, write_head
from runbook_engine.run.store import Anchor
from runbook_engine.run.store_api import Store


class StoreAnchor:
    """The anchor of run ``run_id``'s journal at ``journal_path`` in ``store``.

    Implements :class:`~runbook_engine.evidence.journal.JournalAnchor`.
    """

    def __init__(self, store: Store, run_id: str, journal_path: Path) -> None:
        self.store = store
        self.run_id = run_id
        self.path = Path(journal_path)
        #: The last record this process wrote (``fsync``'d); the next transaction keeps it.
        self.pending: Anchor | None = None
        self._rested: Anchor | None = None

    def expected(self) -> Anchor | None:
        """The later of the stored anchor and the last record written here."""
        stored = self.store.anchor(self.run_id)
        if self.pending is None or (stored is not None and stored[0] >= self.pending[0]):
            return stored
        return self.pending

    def write(self, seq: int, digest: str) -> None:
        """Remember the record just written; the run's next transaction commits it."""
        self.pending = (seq, digest)

    def rest(self) -> None:
        """The run stops (finished, paused, interrupted): commit the anchor durably and
        write it to the head file (unless another writer's head file is later).

        Raises:
            StorageError: the store cannot be written (exit 74).
            OSError: the head file cannot be written.
        """
        if self.pending is None or self.pending == self._rested:
            return
        self.store.set_anchor(self.run_id, self.pending, durable=True)
        if _head_seq(self.path) < self.pending[0]:
            write_head(self.path, *self.pending)
        self._rested = self.pending


def _head_seq(path: Path) -> int:
    """The ``seq`` the head file names (-1 when it is missing or unreadable)."""
    try:
        seq = json.loads(head_path(path).read_text(encoding="utf-8")).get("seq")
    except (OSError, ValueError, AttributeError):
        return -1
    return seq if isinstance(seq, int) else -1
