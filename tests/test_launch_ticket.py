"""Launch tickets a worker issues (:func:`~runbook_engine.run.launch_ticket.issue_for_worker`):
only for a ``run-started`` that the team's key signed, never for one written into the store
by someone else and named by a forged job."""

from __future__ import annotations

from pathlib import Path

import pytest

from runbook_engine.evidence import JOURNAL_NAME
from runbook_engine.evidence.keys import init_keys, load_private_key
from runbook_engine.evidence.signatures import Signer
from runbook_engine.evidence.signing import SignedJournal
from runbook_engine.run.launch_ticket import issue_for_worker, redeem
from runbook_engine.run.store import CheckpointStore

STARTED = {
    "operator": "Alice Approver",
    "operator_authenticated": True,
    "operator_auth_method": "password",
}


def _journal(store: CheckpointStore, run_id: str, key: Path | None) -> None:
    """A journal whose ``run-started`` says Alice was signed in, signed with ``key``."""
    run_dir = store.run_dir(run_id)
    run_dir.mkdir(parents=True)
    signer = Signer(load_private_key(key), run_dir, run_id) if key else None
    journal = SignedJournal(run_dir / JOURNAL_NAME, None, signer, run_id)
    signing = {"signing": signer.describe()} if signer else {}
    journal.append("run-started", run_id=run_id, **STARTED, **signing)


def test_a_worker_tickets_only_a_run_started_its_key_signed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    team = init_keys(tmp_path / "team").private
    other = init_keys(tmp_path / "other").private
    monkeypatch.setenv("RUNBOOK_SIGNING_KEY", str(team))
    state = tmp_path / "state"
    state.mkdir()
    store = CheckpointStore(state)
    _journal(store, "good", team)
    _journal(store, "forged", None)  # written by hand into the store: no signature
    _journal(store, "elsewhere", other)  # signed, by a key that is not the team's
    ticket = issue_for_worker(store, "good", "Alice Approver")
    assert ticket is not None
    assert redeem(state, ticket, "resume", "good", "Alice Approver") == "password"
    assert issue_for_worker(store, "forged", "Alice Approver") is None
    assert issue_for_worker(store, "elsewhere", "Alice Approver") is None
    store.close()
