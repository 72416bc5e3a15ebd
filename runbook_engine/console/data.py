"""The console's one door to runs, gates and evidence.

Every read and write the pages make goes through :class:`ConsoleData`, which calls the
same library functions as the CLI (the checkpoint store, ``record_confirmation``,
``record_vote``, ``record_of``, ``build_bundle``), on the embedded store
(``STATE/state.db`` and ``STATE/runs/``) or the team's PostgreSQL store (its working
copies of run folders under ``STATE/team/``), both behind
:class:`~runbook_engine.run.store_api.Store`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runbook_engine.errors import InputError, RunbookError, StateError
from runbook_engine.evidence import JOURNAL_NAME
from runbook_engine.run.store import GateDecision, RunRecord, StepState
from runbook_engine.run.store_api import Store

#: Bytes of each output file shown on a run page.
TAIL_BYTES = 2000
#: Journal records shown on a run page (the latest).
RECENT_EVENTS = 30


@dataclass(frozen=True, slots=True)
class RunFilter:
    """Filters of the runs list; empty strings match everything.  ``date`` is a UTC day
    (``YYYY-MM-DD``) the run started on."""

    status: str = ""
    runbook: str = ""
    environment: str = ""
    operator: str = ""
    date: str = ""

    def matches(self, run: RunRecord) -> bool:
        """True when ``run`` passes every filter given."""
        word = run.outcome or run.status
        return (
            (not self.status or self.status in (word, run.status))
            and (not self.runbook or self.runbook == run.runbook_id)
            and (not self.environment or self.environment == (run.env_name or ""))
            and (not self.operator or self.operator.casefold() == run.operator.casefold())
            and (not self.date or run.created_at.startswith(self.date))
        )


@dataclass(frozen=True, slots=True)
class Gate:
    """A step the run waits at: ``kind`` is ``approval`` or ``manual`` (a manual step or a
    command to run by hand); ``approval`` holds the step's count so far."""

    step: str
    hosts: tuple[str, ...]
    kind: str
    instructions: str | None = None
    approval: dict[str, Any] | None = None
    decided: tuple[GateDecision, ...] = ()


@dataclass(frozen=True, slots=True)
class RunView:
    """What a run page shows."""

    record: RunRecord
    steps: tuple[StepState, ...]
    gates: tuple[Gate, ...]
    events: tuple[dict[str, Any], ...]
    outputs: tuple[tuple[str, str], ...]
    approvals: tuple[dict[str, Any], ...] = field(default=())

    @property
    def word(self) -> str:
        """The run's one word: its outcome once finished, else its status."""
        return self.record.outcome or self.record.status

    @property
    def finished(self) -> bool:
        """True once the run has an outcome."""
        return self.record.status in ("succeeded", "failed", "aborted", "unverified")


@dataclass(frozen=True, slots=True)
class LibraryEntry:
    """A runbook of the library: its path relative to the library, id, title, and its
    example environments (relative paths)."""

    path: str
    runbook_id: str
    title: str
    environments: tuple[str, ...]
    parameters: tuple[str, ...]


class ConsoleData:
    """Runs, gates and evidence of one state directory, and the runbooks of one library."""

    def __init__(self, state_dir: Path, library: Path, store_url: str | None = None) -> None:
        self.state_dir = state_dir
        self.library = library.resolve()
        self.store_url = store_url

    @contextlib.contextmanager
    def _store(self, run_id: str | None = None) -> Iterator[Store]:
        store = self.open_store(run_id)
        try:
            yield store
        finally:
            store.close()

    def open_store(self, run_id: str | None = None) -> Store:
        """The store the console works on (the caller closes it): the team's PostgreSQL
        store of ``store_url``, else the state directory's.

        Raises:
            StateError: the store cannot be opened.
        """
        from runbook_engine.run.store_api import open_store

        return open_store(self.state_dir, self.store_url, create=False, run_id=run_id)

    def has_state(self) -> bool:
        """True when the store exists (a first start has no runs yet)."""
        return bool(self.store_url) or (self.state_dir / "state.db").is_file()

    # -- runs ---------------------------------------------------------------------------
    def runs(self, where: RunFilter = RunFilter()) -> list[RunRecord]:
        """The runs that pass ``where``, newest first."""
        if not self.has_state():
            return []
        with self._store() as store:
            return [r for r in store.list_runs() if where.matches(r)]

    def run(self, run_id: str) -> RunView:
        """Everything a run page shows.

        Raises:
            StateError: no such run.
        """
        from runbook_engine.evidence.journal import read_journal
        from runbook_engine.evidence.people import approvals

        with self._store(run_id) as store:
            record = store.get_run(run_id)
            steps = tuple(store.steps(run_id))
            decided = store.gate_decisions(run_id)
            run_dir = store.run_dir(run_id)
        journal = run_dir / JOURNAL_NAME
        try:
            records = read_journal(journal, verify=False) if journal.is_file() else []
        except (RunbookError, OSError, ValueError):
            records = []
        found = approvals(records)
        gates = _gates(steps, records, found, decided)
        return RunView(
            record,
            steps,
            gates,
            tuple(records[-RECENT_EVENTS:]),
            _tails(run_dir),
            tuple(found),
        )

    def operator_auth(self, run_id: str) -> str | None:
        """How the run's operator was signed in when the console started it (the
        ``operator_auth_method`` of ``run-started``), or ``None`` (a claimed name)."""
        from runbook_engine.evidence.journal import read_journal

        journal = self._run_dir(run_id) / JOURNAL_NAME
        try:
            first = read_journal(journal, verify=False)[0]
        except (RunbookError, OSError, ValueError, IndexError):
            return None
        if first.get("event") == "run-started" and first.get("operator_authenticated") is True:
            return str(first.get("operator_auth_method") or "") or None
        return None

    def operators(self, run_id: str) -> set[str]:
        """Everyone who operated the run (casefolded; separation of duties).

        Raises:
            StateError: no such run.
        """
        from runbook_engine.evidence.journal import read_journal
        from runbook_engine.run.approval import operators

        journal = self._run_dir(run_id) / JOURNAL_NAME
        return operators(read_journal(journal, verify=False)) if journal.is_file() else set()

    def operator_of(self, run_id: str) -> str:
        """Who started the run (the console continues it in their name)."""
        with self._store(run_id) as store:
            return store.get_run(run_id).operator

    # -- decisions ----------------------------------------------------------------------
    def decide(
        self,
        run_id: str,
        step: str,
        name: str,
        method: str,
        decision: str,
        note: str | None,
        attachments: tuple[Path, ...] = (),
        *,
        host: str | None = None,
        in_advance: bool = False,
    ) -> list[str]:
        """Confirm, skip (``note`` is the reason), abort or rerun a gate as a signed-in
        person; ``host`` limits it to one host, ``in_advance`` decides a step the run has
        not reached (``runbook confirm --host``, ``--in-advance``).

        Raises:
            InputError, StateError: as :func:`~runbook_engine.run.confirm.record_confirmation`.
        """
        from runbook_engine.run.confirm import record_confirmation

        if decision not in ("confirm", "skip", "abort", "rerun"):
            raise InputError(f"unknown decision {decision!r}")
        reason = note if decision == "skip" else None
        with self._store(run_id) as store:
            return record_confirmation(
                store,
                run_id,
                step,
                name,
                decision,
                None if decision == "skip" else note,
                reason,
                host,
                attachments,
                in_advance=in_advance,
                auth_method=method,
            )

    def vote(
        self,
        run_id: str,
        step: str,
        name: str,
        method: str,
        decision: str,
        note: str | None,
        attachments: tuple[Path, ...] = (),
    ) -> Any:
        """Approve or reject an approval step as a signed-in person, ``attachments``
        kept as its evidence.

        Returns:
            The :class:`~runbook_engine.run.approval.VoteRecorded`.

        Raises:
            InputError: the person operates the run, is not an approver, voted already.
            StateError: as :func:`~runbook_engine.run.approval.record_vote`.
        """
        from runbook_engine.run.approval import record_vote

        if decision not in ("approve", "reject"):
            raise InputError(f"unknown decision {decision!r}")
        with self._store(run_id) as store:
            return record_vote(
                store,
                run_id,
                step,
                name,
                decision,
                note,
                auth_method=method,
                attachments=attachments,
            )

    # -- evidence -----------------------------------------------------------------------
    def change_record(self, run_id: str, fmt: str = "html") -> tuple[bytes, str]:
        """The change record rendered as ``fmt`` and the verification verdict."""
        from runbook_engine.evidence.export import record_of, render_record

        record, check = record_of(self._run_dir(run_id), expected_run_id=run_id)
        return render_record(record, fmt), check.verdict

    def verdict(self, run_id: str) -> tuple[str, str]:
        """The verification verdict and its text (``runbook evidence verify``)."""
        from runbook_engine.evidence.verify import verify_run

        check = verify_run(self._run_dir(run_id), expected_run_id=run_id)
        return check.verdict, check.text()

    def bundle(self, run_id: str) -> bytes:
        """The evidence bundle's bytes (``runbook evidence bundle``)."""
        from runbook_engine.evidence.bundle import build_bundle

        data, _ = build_bundle(self._run_dir(run_id), expected_run_id=run_id)
        return data

    def _run_dir(self, run_id: str) -> Path:
        with self._store(run_id) as store:
            store.get_run(run_id)  # StateError for an unknown run
            return store.run_dir(run_id)

    # -- the library --------------------------------------------------------------------
    def library_entries(self) -> list[LibraryEntry]:
        """Every runbook under the library (files that parse and have steps)."""
        from runbook_engine.outputs.site import environments_for
        from runbook_engine.source.parser import parse_file

        found = []
        for path in sorted(self.library.rglob("*.md")):
            if any(part.startswith((".", "_")) for part in path.relative_to(self.library).parts):
                continue
            try:
                runbook = parse_file(path)
            except (RunbookError, OSError, ValueError):
                continue
            if not runbook.steps:
                continue
            envs = environments_for(path, self.library)
            found.append(
                LibraryEntry(
                    path.relative_to(self.library).as_posix(),
                    runbook.id,
                    runbook.title,
                    tuple(e.relative_to(self.library).as_posix() for e in envs),
                    tuple(runbook.parameters),
                )
            )
        return found

    def in_library(self, relative: str) -> Path:
        """The file ``relative`` names inside the library.

        Raises:
            InputError: a path that leaves the library or names no file.
        """
        path = (self.library / relative).resolve()
        if not path.is_relative_to(self.library) or not path.is_file():
            raise InputError(f"{relative}: no such file in the library")
        return path

    def guide(self, runbook: str, environment: str | None) -> bytes:
        """The guide of ``runbook`` tailored to ``environment`` (printable HTML)."""
        from runbook_engine.outputs.guide_html import render_html
        from runbook_engine.tailor.loading import load

        env = self.in_library(environment) if environment else None
        return render_html(load(self.in_library(runbook), env).tailored)

    def check_start(self, runbook: str, environment: str | None, sets: dict[str, str]) -> None:
        """Refuse a run that could not start (bad runbook, environment or values).

        Raises:
            InputError: the problem, as ``runbook run`` would say it.
        """
        from runbook_engine.tailor.loading import load

        env = self.in_library(environment) if environment else None
        load(self.in_library(runbook), env, sets, need_env=True)


def _gates(
    steps: tuple[StepState, ...],
    records: list[dict[str, Any]],
    found: list[dict[str, Any]],
    decided: dict[tuple[str, str], GateDecision],
) -> tuple[Gate, ...]:
    waiting: dict[str, list[str]] = {}
    for state in steps:
        if state.status == "awaiting":
            waiting.setdefault(state.step_id, []).append(state.host)
    by_step = {a["step"]: a for a in found}
    gates = []
    for step, hosts in waiting.items():
        shown = [r for r in records if r["event"] == "gate-awaiting" and r.get("step") == step]
        approval = by_step.get(step)
        voting = approval is not None and approval["status"] == "waiting"
        gates.append(
            Gate(
                step,
                tuple(hosts),
                "approval" if voting else "manual",
                shown[-1].get("instructions") if shown else None,
                approval,
                tuple(d for (s, _), d in decided.items() if s == step),
            )
        )
    return tuple(gates)


def _tails(run_dir: Path) -> tuple[tuple[str, str], ...]:
    folder = run_dir / "output"
    if not folder.is_dir():
        return ()
    tails = []
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.is_symlink():
            continue
        with open(path, "rb") as f:
            size = f.seek(0, 2)
            f.seek(max(0, size - TAIL_BYTES))
            text = f.read().decode("utf-8", "replace")
        tails.append((path.relative_to(folder).as_posix(), text))
    return tuple(tails)


__all__ = ["ConsoleData", "Gate", "LibraryEntry", "RunFilter", "RunView", "StateError"]
