"""Approvals that expire while nobody looks: a periodic sweep of the waiting runs.

An approval step's ``expires_hours`` makes each approval count for that long
(:mod:`.approval`).  A run notices an approval past it when it looks at the step (it
resumes) and journals ``approval-expired`` once per approval, which its notifier turns
into the "expired" message.  A run paused at the step looks at nothing, so
``runbook serve`` and ``runbook worker`` call :func:`sweep` every so often: for each run
paused at an approval step, under the run's lock (a run being executed is skipped: it
looks itself), the same count (:func:`~.approval.tally` on the votes the journal holds,
with the approvers and expiry the run journaled in ``approval-requested``) and the same
records (:func:`expired_records`, used by the run as well), followed by the run's
notifications (:func:`~.notify.attach`: the settings in force for the run's store) and
their ``notification-sent``/``-failed`` records.  A record already journaled, by the run
or by another sweep, is never written twice: the message is sent once.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from runbook_engine.errors import RunbookError

#: The run statuses a sweep looks at: a run waiting for people.
WAITING = ("paused",)


@dataclass(frozen=True, slots=True)
class Expired:
    """An approval the sweep found expired and journaled."""

    run_id: str
    step: str
    by: str


def expired_records(
    step: str,
    host: str,
    records: list[dict[str, Any]],
    discarded: tuple[tuple[Any, str], ...],
    hours: float | None,
) -> list[dict[str, Any]]:
    """The ``approval-expired`` fields to journal for approval step ``step`` on ``host``:
    one per approval the count discarded as expired that the journal (``records``) does
    not name as expired yet.

    Args:
        discarded: :attr:`~.approval.Tally.discarded` of the step's count.
        hours: The step's ``expires_hours``.
    """
    told = {r.get("journal_seq") for r in records if r["event"] == "approval-expired"}
    return [
        {
            "step": step,
            "host": host,
            "by": vote.by,
            "given_at": vote.to_dict()["at"],
            "journal_seq": vote.seq,
            "expires_hours": hours,
        }
        for vote, why in discarded
        if why.startswith("expired") and vote.seq not in told
    ]


def sweep(store: Any, now: datetime | None = None) -> list[Expired]:
    """Journal (and notify) the approvals past their expiry in every run paused at an
    approval step of ``store``.

    Returns:
        What was journaled now (nothing when every expiry was journaled before).

    Never raises for one run (a run held by its process, a damaged journal, a runbook
    gone): that run is left for its own resume to notice; the others are swept.
    """
    found: list[Expired] = []
    when = now or datetime.now(UTC)
    for run in store.list_runs():
        if run.status not in WAITING:
            continue
        try:
            if not _due(store, run, when):  # looked at without the lock first: cheap
                continue
            with store.lock_run(run.run_id, wait=0.0):
                run = store.get_run(run.run_id)
                due = _due(store, run, when)  # again: the run may have moved on
                if due:
                    _journal(store, run, due)
                    found += [Expired(run.run_id, d["step"], d["by"]) for d in due]
        except (RunbookError, OSError, ValueError, KeyError):
            continue
    return found


def _due(store: Any, run: Any, now: datetime) -> list[dict[str, Any]]:
    """The ``approval-expired`` records run ``run`` lacks at ``now``."""
    from runbook_engine.evidence import JOURNAL_NAME
    from runbook_engine.evidence.journal import read_journal
    from runbook_engine.run.approval import ApprovalSpec, operators, person_key, tally, votes

    if run.status not in WAITING:
        return []
    waiting = {(s.step_id, s.host) for s in store.steps(run.run_id) if s.status == "awaiting"}
    if not waiting:
        return []
    path = store.run_dir(run.run_id) / JOURNAL_NAME
    records = read_journal(path, verify=False)
    requested = {
        r["step"]: r
        for r in records
        if r["event"] == "approval-requested" and r.get("expires_hours") is not None
    }
    due: list[dict[str, Any]] = []
    for step, host in sorted(waiting):
        asked = requested.get(step)
        if asked is None:
            continue
        hours = float(asked["expires_hours"])
        spec = ApprovalSpec(int(asked.get("required") or 1), (), hours)
        allowed = {person_key(name): name for name in asked.get("approvers") or ()}
        count = tally(spec, allowed, votes(records, step), operators(records), now)
        due += expired_records(step, host, records, count.discarded, hours)
    return due


def _journal(store: Any, run: Any, due: list[dict[str, Any]]) -> None:
    """Append ``due`` to the run's journal, its notifier listening, then journal how the
    messages went (as a run does when it stops)."""
    from runbook_engine.evidence.redact import Redactor
    from runbook_engine.evidence.signing import open_run_journal
    from runbook_engine.run.notify import attach
    from runbook_engine.run.reporter import Reporter

    redactor, shown = Redactor({}), SimpleNamespace(steps=[])
    with contextlib.suppress(RunbookError, OSError, ValueError):
        from runbook_engine.run.free_text import run_redactor
        from runbook_engine.tailor.loading import load

        env = Path(run.env_path) if run.env_path else None
        loaded = load(Path(run.runbook_path), env, run.overrides, need_env=True)
        shown = loaded.shown or loaded.tailored  # step titles as people see them
        redactor = run_redactor(run)
    journal = open_run_journal(store.state_dir, store.run_dir(run.run_id), run.run_id, redactor)
    notifier = attach(journal, store.state_dir, run, shown, redactor, Reporter(quiet=True))
    for fields in due:
        journal.append("approval-expired", **fields)
    if notifier is not None:
        notifier.flush(journal)
