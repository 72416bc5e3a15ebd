"""Cell output of a notebook run: the runner's progress as plain text on the cell's stdout.

Inside a kernel, rich would render HTML display data; the notebook wants
plain text streams (they read well in Jupyter, in the saved ``.ipynb`` and in
``nbconvert``), so the console writes to whatever ``sys.stdout`` is at that
moment (ipykernel's per-cell stream) with colour and Jupyter detection off.

Unlike the terminal reporter, a step's whole output is shown, redacted first:
the executed notebook is kept as evidence and must hold no secret.
"""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console
from rich.markup import escape

from runbook_engine.evidence.redact import Redactor
from runbook_engine.run.reporter import Reporter, finished_lines
from runbook_engine.run.store import StepState
from runbook_engine.source.model import Host
from runbook_engine.tailor.tailoring import TailoredStep
from runbook_engine.transports.base import CommandResult

#: Most output lines shown in a cell per command (the full output is in the run folder).
MAX_LINES = 2000


class _CurrentStdout:
    """A file that writes to the ``sys.stdout`` of the moment (ipykernel swaps streams per cell)."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        """Leave flushing to ipykernel (it flushes on an interval and at the cell's end), so a
        cell's lines become one output, not one output per line."""

    def isatty(self) -> bool:
        return False


class NotebookReporter(Reporter):
    """A :class:`~runbook_engine.run.reporter.Reporter` for notebook cells.

    Attributes:
        redactor: Set by the notebook run to its runner's redactor before any step runs.
    """

    def __init__(self) -> None:
        super().__init__(quiet=False, stderr=False, stream=False)
        self.console = Console(
            file=_CurrentStdout(),
            force_jupyter=False,
            force_terminal=False,
            no_color=True,
            highlight=False,
            width=110,
            soft_wrap=True,
        )
        self.redactor = Redactor.empty()

    def say(self, text: str) -> None:
        """Print plain text (no markup)."""
        self.console.print(text, markup=False)

    def gate(self, ts: TailoredStep, host: Host, kind: str) -> None:
        """Show what a person must do at a gate, as plain text."""
        head = "Do by hand:" if kind == "manual" else f"Run by hand on {host.name}:"
        self.say(f"  {head}")
        for line in ts.body.rstrip("\n").split("\n"):
            self.say(f"    {line}")

    def check_hint(self, check: TailoredStep, host: Host) -> None:
        """Show the read-only check of a gated step, as plain text."""
        self.say("  Read-only check first (if it succeeds, the change is in place):")
        for line in check.body.rstrip("\n").split("\n"):
            self.say(f"    {line}")

    def result(self, ts: TailoredStep, host: Host, result: CommandResult, purpose: str) -> None:
        """Show a command's result and its whole output (redacted)."""
        if purpose == "check":
            word = "found it done" if result.ok else "found it not done"
            self.say(f"  check #{ts.id}: {word} (exit {result.exit_code})")
            return
        status = (
            "✓ succeeded"
            if result.ok
            else "✗ timed out"
            if result.timed_out
            else f"✗ failed: exit {result.exit_code}"
        )
        self.say(f"  {status} in {result.duration:.2f} s")
        text = self.redactor.redact(result.stdout + result.stderr).rstrip("\n")
        if not text:
            return
        lines = text.split("\n")
        if len(lines) > MAX_LINES:
            self.say(f"  … {len(lines) - MAX_LINES} earlier lines are in the run folder's output/")
            lines = lines[-MAX_LINES:]
        for line in lines:
            self.say(f"  │ {line}")

    def earlier(self, ts: TailoredStep, states: list[StepState], total: int) -> None:
        """Say that a step finished before this notebook reached it (it is not run again)."""
        self._print(
            f"[bold]Step {ts.number}/{total}[/bold] {escape(ts.step.display_title())} "
            f"[dim]#{ts.id}[/dim]"
        )
        for state in states:
            why = f" ({state.reason})" if state.reason else ""
            self.say(f"  ✓ {state.status} on {state.host} earlier{why}; not run again")

    def table(self, states: list[StepState], titles: dict[str, str]) -> None:
        """Print every step's state, one line each."""
        for s in states:
            why = f"  {s.reason}" if s.reason else ""
            self.say(
                f"  {s.position:>3}  {s.status:<12} {s.step_id} @ {s.host}"
                f"{' - ' + titles[s.step_id] if s.step_id in titles else ''}{why}"
            )

    def finished(
        self,
        run_id: str,
        outcome: str,
        summary: dict[str, Any],
        note: str = "",
        known: dict[str, int] | None = None,
    ) -> None:
        """Report the end of a run: outcome, why, and how its results are known."""
        for line in finished_lines(run_id, outcome, summary, note, known):
            self.say(line)
