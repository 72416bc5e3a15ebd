"""``runbook store import STATE_DIR``: copy a state directory's runs into the PostgreSQL store.

Each run goes in one transaction: its row, steps and waiting gate decisions, every journal
record (the canonical lines as they are) and every file of its folder.  The copy is then
verified as any run of the store is: a fresh working copy is built from the database
alone and checked by :func:`~runbook_engine.evidence.verify.verify_run`, and its verdict
must be the source folder's.  A run the store already holds is skipped when its journal is
the same, refused otherwise.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from runbook_engine.errors import StateError
from runbook_engine.evidence import JOURNAL_NAME
from runbook_engine.evidence.verify import verify_run
from runbook_engine.run.pgstore import sync
from runbook_engine.run.pgstore.store import PgStore
from runbook_engine.run.store import CheckpointStore, RunRecord


@dataclass(frozen=True, slots=True)
class Imported:
    """What became of one run: ``action`` is imported, skipped (already there, same
    journal) or refused; ``source``/``copy`` are the verdicts before and after."""

    run_id: str
    action: str
    source: str
    copy: str | None
    events: int
    message: str

    @property
    def ok(self) -> bool:
        """True when the run is in the store and verifies as its source did."""
        return self.action != "refused" and self.copy == self.source

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (``--json``)."""
        return {**asdict(self), "ok": self.ok}


def import_state_dir(state_dir: Path, store: PgStore) -> list[Imported]:
    """Copy every run of ``state_dir`` into ``store`` and verify each copy.

    Raises:
        StateError: ``state_dir`` holds no state.
    """
    source = CheckpointStore(state_dir, create=False)
    try:
        return [_import_one(source, store, r) for r in reversed(source.list_runs())]
    finally:
        source.close()


def _import_one(source: CheckpointStore, store: PgStore, record: RunRecord) -> Imported:
    run_id = record.run_id
    folder = source.run_dir(run_id)
    before = verify_run(folder, expected_run_id=run_id, anchor=source.anchor(run_id))
    events = before.events
    if store.has_run(run_id):
        with store.transaction() as conn:
            try:
                sync.push_journal(conn, run_id, folder / JOURNAL_NAME)
            except StateError as exc:
                return Imported(run_id, "refused", before.verdict, None, events, str(exc))
        action = "skipped"
    else:
        _copy(source, store, record, folder)
        action = "imported"
    with tempfile.TemporaryDirectory(prefix="runbook-import-") as tmp:
        copy = Path(tmp) / run_id
        with store.transaction() as conn:
            sync.pull_journal(conn, run_id, copy / JOURNAL_NAME)
            sync.pull_files(conn, run_id, copy)
        after = verify_run(copy, expected_run_id=run_id, anchor=store.anchor(run_id))
    same = after.verdict == before.verdict
    message = (
        f"{after.verdict} in the store, as in {folder}"
        if same
        else f"{after.verdict} in the store but {before.verdict} in {folder}"
    )
    return Imported(run_id, action, before.verdict, after.verdict, events, message)


def _copy(source: CheckpointStore, store: PgStore, record: RunRecord, folder: Path) -> None:
    """One transaction: the run's row, steps, gate decisions, journal and files."""
    run_id = record.run_id
    values = {f.name: getattr(record, f.name) for f in fields(RunRecord)}
    values["overrides"] = json.dumps(record.overrides, sort_keys=True)
    with store.transaction() as conn:
        cols = ", ".join(values)
        marks = ", ".join(["%s"] * len(values))
        conn.execute(f"INSERT INTO runs ({cols}) VALUES ({marks})", tuple(values.values()))
        for state in source.steps(run_id):
            row = asdict(state)
            names = ", ".join(row)
            conn.execute(
                f"INSERT INTO steps ({names}) VALUES ({', '.join(['%s'] * len(row))})",
                tuple(row.values()),
            )
        for decision in source.gate_decisions(run_id).values():
            row = asdict(decision)
            conn.execute(
                f"INSERT INTO gates ({', '.join(row)}) VALUES ({', '.join(['%s'] * len(row))})",
                tuple(row.values()),
            )
        sync.push_journal(conn, run_id, folder / JOURNAL_NAME)
        anchor = source.anchor(run_id)
        if anchor is not None:
            sync.set_anchor(conn, run_id, anchor)
        sync.push_files(conn, run_id, folder)
