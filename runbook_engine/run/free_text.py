"""Free text people give on the command line (``--as``, ``--note``, and the old names
``--comment`` and ``--reason``) is redacted with the run's secrets before it is stored or
journaled."""

from __future__ import annotations

from pathlib import Path

from runbook_engine.errors import RunbookError, StateError
from runbook_engine.evidence.redact import Redactor
from runbook_engine.run.snapshot import Source, source_of_run
from runbook_engine.run.store import RunRecord
from runbook_engine.run.store_api import Store


def run_redactor(record: RunRecord, store: Store | None = None) -> Redactor:
    """The redactor of a run: its secret parameters and credentials, resolved again.

    With ``store``, a runbook or environment file not on this machine is read from the
    run's copy (:mod:`.snapshot`).

    Raises:
        StateError: the run's secrets cannot be resolved here, so free text cannot
            be checked for them (nothing is written).
    """
    from runbook_engine.evidence.secrets import run_secrets
    from runbook_engine.tailor.loading import load

    env_path = Path(record.env_path) if record.env_path else None
    source = Source(Path(record.runbook_path), env_path)
    if store is not None:
        source = source_of_run(store, record)
    try:
        with source.reading():
            loaded = load(
                source.runbook, source.env, record.overrides, with_secrets=True, need_env=True
            )
        return Redactor(run_secrets(loaded))
    except RunbookError as exc:
        raise StateError(
            f"run {record.run_id}: its secrets cannot be resolved here, so names and notes "
            f"cannot be redacted before they are written ({exc.format()}); run this where "
            "the run's secrets are available"
        ) from None
