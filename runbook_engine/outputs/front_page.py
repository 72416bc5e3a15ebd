"""The guide's first page for the change manager and the operator: contacts, the
time plan per phase and the go/no-go points.

Facts come from the environment file (``contacts:``), the steps' ``estimate=``
attributes or their kinds' defaults (:mod:`runbook_engine.outputs.effort`), and
the runbook's approval steps and phases.
"""

from __future__ import annotations

from dataclasses import dataclass

from runbook_engine.outputs.effort import by_hand, clock_text, duration_text, step_seconds
from runbook_engine.outputs.mdtext import cell, escape
from runbook_engine.source.model import Contact
from runbook_engine.tailor.tailoring import TailoredRunbook

PHASE_NAMES = {"precheck": "Pre-checks", "change": "Change", "verify": "Verification"}
#: Rows of the contacts table printed empty (to fill in) when the environment names nobody.
CONTACT_ROLES = ("Change owner", "Approver", "Escalation")


@dataclass(frozen=True, slots=True)
class PhaseRow:
    """One row of the time plan.

    Attributes:
        phase: ``Pre-checks``, ``Change``, ``Verification``.
        steps: Step numbers (``1–7``), Markdown.
        count: Steps that run in this environment.
        seconds: Their expected total.
    """

    phase: str
    steps: str
    count: int
    seconds: int

    @property
    def duration(self) -> str:
        """The total as text."""
        return duration_text(self.seconds) if self.seconds else "—"


def contact_rows(tailored: TailoredRunbook) -> list[tuple[str, str, str, str]]:
    """Rows (role, name, phone, e-mail) of the contacts table, escaped.

    Without contacts in the environment (or in a generic guide): one empty row per
    role, to be filled in by hand.
    """
    env = tailored.environment
    contacts = env.contacts if env else None
    if not contacts:
        return [(role, " ", " ", " ") for role in CONTACT_ROLES]
    rows: list[tuple[str, Contact]] = []
    if contacts.change_owner:
        rows.append(("Change owner", contacts.change_owner))
    rows += [("Approver", c) for c in contacts.approvers]
    rows += [(f"Escalation {i}", c) for i, c in enumerate(contacts.escalation, start=1)]
    return [
        (role, cell(escape(c.name)), cell(escape(c.phone)), cell(escape(c.email)))
        for role, c in rows
    ]


def change_owner(tailored: TailoredRunbook) -> str:
    """The change owner's name (escaped), ``""`` when the environment names none."""
    env = tailored.environment
    owner = env.contacts.change_owner if env else None
    return escape(owner.name) if owner else ""


def time_plan(tailored: TailoredRunbook) -> list[PhaseRow]:
    """One row per phase that has steps, in the order they run."""
    rows = []
    for phase, name in PHASE_NAMES.items():
        steps = [ts for ts in tailored.steps if ts.step.phase == phase]
        if not steps:
            continue
        running = [ts for ts in steps if ts.skip_reason is None]
        numbers = _ranges([ts.number for ts in steps])
        rows.append(PhaseRow(name, numbers, len(running), sum(map(step_seconds, running))))
    return rows


def go_no_go(tailored: TailoredRunbook) -> list[str]:
    """The decision points of the change, in order, as Markdown list items.

    Before the first change (every pre-check passed, nothing changed yet), at each
    approval step and each step marked ``go-no-go=true``, and after the last verification
    (keep the change or back out).
    """
    items = []
    elapsed = 0
    first_change = True
    for ts in tailored.steps:
        if ts.skip_reason is not None:
            continue
        link = f"[step {ts.number}](#{ts.id})"
        if ts.step.kind == "approval":
            items.append(
                f"**{clock_text(elapsed)} — {link}, {escape(ts.step.display_title())}:** "
                "the run waits for the approvers; no approval, no go."
            )
        elif ts.step.go_no_go:
            items.append(
                f"**{clock_text(elapsed)} — {link}, {escape(ts.step.display_title())}:** "
                "the run waits for a person: go = confirm the gate; no-go = abort, or leave "
                "it unanswered and resume later."
            )
        elif ts.step.changes_state and first_change:
            first_change = False
            items.append(
                f"**{clock_text(elapsed)} — before {link}, the first change:** every "
                "pre-check before it passed, the change window is open and the contacts can be "
                "reached. No-go: stop here; nothing has been changed yet."
            )
        elapsed += step_seconds(ts)
    verifications = [
        ts for ts in tailored.steps if ts.step.phase == "verify" and ts.skip_reason is None
    ]
    if verifications:
        last = verifications[-1]
        items.append(
            f"**{clock_text(elapsed)} — after [step {last.number}](#{last.id}), the last "
            "verification:** every verification passed: keep the change and sign off. "
            "Otherwise decide with the change owner: fix and verify again, or run the "
            "[backout plan](#_backout-plan)."
        )
    return items


def _ranges(numbers: list[int]) -> str:
    """``1–7, 9, 11–12`` from sorted step numbers."""
    out: list[str] = []
    start = prev = None
    for n in [*numbers, None]:
        if n is not None and prev is not None and n == prev + 1:
            prev = n
            continue
        if start is not None:
            out.append(str(start) if start == prev else f"{start}–{prev}")
        start = prev = n
    return ", ".join(out)


#: How a person tells that a command typed by hand succeeded, by the step's kind.
_EXIT_CHECK = {
    "cmd": "`echo %errorlevel%` right after it prints 0",
    "powershell": "`$LASTEXITCODE` right after it is 0 (or empty)",
    "sh": "`echo $?` right after it prints 0",
    "bash": "`echo $?` right after it prints 0",
}


def by_hand_note(tailored: TailoredRunbook, numbered: bool = False) -> str:
    """How to read the steps done by hand on paper, or ``""`` when there are none.

    Says when a typed command succeeded (exit code 0, and how to see it for the kinds
    used), that a ``find`` prints what it found, and (``numbered``: the printed HTML
    numbers command lines) how to read a wrapped command line.
    """
    kinds = sorted(
        {
            ts.step.kind
            for ts in tailored.steps
            if ts.skip_reason is None and by_hand(ts) and not ts.step.is_manual
        }
    )
    if not kinds:
        return ""
    checks = "; ".join(f"{k}: {_EXIT_CHECK[k]}" for k in kinds if k in _EXIT_CHECK)
    text = (
        "**Commands typed by hand** run on the host named in the step. A command succeeded "
        "when it ends with exit code 0"
        + (f" ({checks})" if checks else "")
        + '; one ending in `| find "..."` prints the line it found, and nothing when it '
        "fails."
        + (
            " In a command box each numbered line is one line to type: a line without a "
            "number continues the line above."
            if numbered
            else ""
        )
        + " Fill in a step's box before ticking Done."
    )
    return text
