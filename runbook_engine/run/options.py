"""How a run is started (:class:`RunOptions`) and how it ended (:class:`RunResult`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runbook_engine.run.gates import Answers
from runbook_engine.run.reporter import Reporter
from runbook_engine.run.selection import Selection


@dataclass
class RunOptions:
    """How to run.

    Attributes:
        operator: Who runs the change (recorded in every event).
        operator_source: How that name was given (``option``, ``env``, ``login``,
            ``run``, ``notebook``; see ``lifecycle.operator_and_source``), journaled with
            it; ``None``: not known.
        answers: Pre-given gate decisions, or ``None``.
        interactive: Prompt at gates on the terminal.
        change_id: The change record's id (for example a ticket number).
        accept_changed: On resume, continue although the runbook changed.
        forks: How many hosts of one step run at once.
        max_failures: Start no further host of a step after this many of its hosts
            failed (``None``: 1 for steps that stop on failure, else no limit).
        reporter: Terminal output.
        reason: Why the change is made (recorded with the run).
        emergency: Bypass approval (``approval: required`` and approval steps);
            needs ``reason``; the journal and change record flag it.
        max_output: Bytes of each command's output kept (head and tail; ``None``:
            ``$RUNBOOK_MAX_OUTPUT`` or 10 MiB).
        assume_stopped: On resume, go on although the host of a step interrupted while
            its remote command ran cannot be asked whether it still runs (journaled as
            ``process-assumed-stopped``); a process found running still refuses.
        selection: The part of the runbook to run (``--only``, ``--from``, ``--to``,
            ``--limit``, ``--tags``, ``--skip-tags``; see :mod:`.selection`).
        check: Check mode (``--check``): only steps that read run; each other step
            reports already done, would change or unknown (see :mod:`.check`).
        preflight: What the preflight before the run found (journaled in ``run-started``;
            ``None``: none ran).
        operator_auth_method: How the web console signed the operator in (``password``,
            ``oidc``, ``proxy-header``, ``token``) when it starts or continues the run
            (:mod:`.launch_ticket`); journaled as ``operator_authenticated: true`` in
            ``run-started`` and ``authenticated: true`` in ``run-resumed``.  ``None``: the
            operator's name is claimed.
    """

    operator: str
    operator_source: str | None = None
    answers: Answers | None = None
    interactive: bool = False
    change_id: str | None = None
    accept_changed: bool = False
    reporter: Reporter | None = None
    forks: int = 1
    max_failures: int | None = None
    reason: str | None = None
    emergency: bool = False
    max_output: int | None = None
    assume_stopped: bool = False
    selection: Selection = field(default_factory=Selection)
    check: bool = False
    preflight: dict[str, Any] | None = None
    operator_auth_method: str | None = None


@dataclass(frozen=True, slots=True)
class RunResult:
    """How a run ended and where its files are.

    Attributes:
        run_id: The run.
        status: The run's stored status: ``succeeded``, ``unverified``, ``failed``,
            ``aborted`` (a rejection too: its outcome says ``rejected``), or ``running``
            after a partial notebook cell.
        journal: The run's journal file.
        state_dir: The state directory.
        outcome: The outcome word, which also says how the verification is known
            (``succeeded``, ``succeeded-attested``, ``succeeded-pre-answered``, ...; see
            :mod:`runbook_engine.evidence.knowledge`); ``None`` while running.
        note: Why that outcome, in one sentence.
        known: Step results counted by how they are known (``observed``, ...).
        checked: In check mode, step results counted by verdict (``already-done``,
            ``would-change``, ``unknown``, ``passed``, ``failed``).
    """

    run_id: str
    status: str
    journal: Path
    state_dir: Path
    outcome: str | None = None
    note: str = ""
    known: dict[str, int] = field(default_factory=dict)
    checked: dict[str, int] = field(default_factory=dict)
