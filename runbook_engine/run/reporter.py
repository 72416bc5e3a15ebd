"""Terminal output of a run (rich).  ``NO_COLOR`` is respected by rich itself."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.cells import cell_len
from rich.console import Console
from rich.markup import escape
from rich.markup import render as render_markup
from rich.panel import Panel

from runbook_engine.evidence.safeio import terminal_safe
from runbook_engine.run.gates import Decision
from runbook_engine.source.model import Host
from runbook_engine.tailor.tailoring import TailoredStep
from runbook_engine.transports.base import CommandResult

_TAIL_LINES = 20


class Reporter:
    """Shows progress of a run to a person.

    Args:
        quiet: Print nothing (tests, ``--json``).
        stderr: Print to standard error (keeps standard output for ``--json``).
        stream: Echo command output lines as they arrive.
    """

    def __init__(self, *, quiet: bool = False, stderr: bool = False, stream: bool = False) -> None:
        self.quiet = quiet
        self.stream = stream
        self.console = Console(
            stderr=stderr, highlight=False, soft_wrap=False, file=None if not quiet else open_null()
        )
        #: Output kept back until :meth:`release` (``None``: written at once).
        self._held: list[tuple[Callable[..., None], tuple[Any, ...], dict[str, Any]]] | None = None

    def hold(self) -> None:
        """Keep what is reported back until :meth:`release`: the terminal never says a
        step ended before the journal holds its end on the disk (the run's deferred
        acknowledgment, ARCHITECTURE.md "Durability of a step")."""
        if self._held is None:
            self._held = []

    def release(self) -> None:
        """Write what was held back, in order, and write at once from now on."""
        held, self._held = self._held, None
        for write, args, kwargs in held or ():
            write(*args, **kwargs)

    def _print(self, *args: Any, **kwargs: Any) -> None:
        if self.quiet:
            return
        if self._held is not None:
            self._held.append((self._print, args, kwargs))
            return
        args = tuple(terminal_safe(a) if isinstance(a, str) else a for a in args)
        if not (len(args) == 1 and isinstance(args[0], str) and self._plain(args[0], kwargs)):
            self.console.print(*args, **kwargs)  # control characters are shown escaped

    def _plain(self, markup: str, kwargs: dict[str, Any]) -> bool:
        """Write ``markup``'s text as it is when rich would write exactly that: output
        that is no terminal and has no colours, a line that needs no wrapping, no emoji
        code or tab.  Rich's rendering was a tenth of a no-op step's cost.  False: not
        written (rich prints it)."""
        console = self.console
        if console.is_terminal or console.color_system is not None or set(kwargs) - {"soft_wrap"}:
            return False
        if ":" in markup or "\t" in markup or "\n" in markup:
            return False
        plain = render_markup(markup).plain
        if cell_len(plain) > console.width and not kwargs.get("soft_wrap"):
            return False
        console.file.write(plain + "\n")
        return True

    def _command(self, body: str) -> None:
        """Print a command exactly, unwrapped and unpadded, so it can be copied."""
        if self.quiet:
            return
        if self._held is not None:
            self._held.append((self._command, (body,), {}))
            return
        self.console.print(
            terminal_safe(body.rstrip()), markup=False, highlight=False, soft_wrap=True
        )

    def warning(self, message: str) -> None:
        """Show a warning about the run as a whole."""
        self._print(f"[yellow]! {escape(message)}[/yellow]")

    def skipped(self, reason: str) -> None:
        """Report a step skipped by its condition."""
        self._print(f"  ↷ skipped [dim]({escape(reason)})[/dim]")

    def output_line(self, line: str) -> None:
        """Echo one line of command output (only with ``stream``)."""
        if self.stream and not self.quiet and self._held is not None:
            self._held.append((self.output_line, (line,), {}))
        elif self.stream and not self.quiet:
            self.console.print(f"  [dim]│[/dim] {escape(terminal_safe(line))}", soft_wrap=True)

    def step_header(self, ts: TailoredStep, host: Host, total: int) -> None:
        """Announce a step on a host."""
        where = (
            "operator machine"
            if host.transport == "local" and host.name == "operator"
            else (f"{host.name} ({host.address}, {host.transport})")
        )
        self._print(
            f"[bold]Step {ts.number}/{total}[/bold] {escape(ts.step.display_title())} "
            f"[dim]#{ts.id} on {escape(where)}[/dim]"
        )

    def gate(self, ts: TailoredStep, host: Host, kind: str) -> None:
        """Show what a person must do at a gate."""
        if kind == "manual":
            from rich.markdown import Markdown

            self._print(Panel(Markdown(ts.body.rstrip()), title="Do by hand", expand=False))
        else:
            self._print(f"  Run by hand on {escape(host.name)}:")
            if ts.env:
                from runbook_engine.tailor.binding import VALUES_NOTE

                self._print(f"  [dim]{escape(VALUES_NOTE)}[/dim]")
            self._command(ts.body)

    def check_hint(self, check: TailoredStep, host: Host) -> None:
        """Show the read-only check of a gated step (skip the step if it shows the change done)."""
        self._print("  [dim]Read-only check first (if it succeeds, the change is in place):[/dim]")
        self._command(check.body)

    def passed(self, ts: TailoredStep, host: Host, decision: Decision) -> None:
        """Report how a gate was passed."""
        mark = "✓" if decision.decision in ("confirm", "done") else "↷"
        self._print(
            f"  {mark} {decision.decision} by {escape(decision.by)} [dim]({decision.source})[/dim]"
        )

    def interrupted(self, ts: TailoredStep, host: Host) -> None:
        """Say that a step was found interrupted."""
        self._print("  [yellow]! this step was interrupted in an earlier attempt[/yellow]")

    def already_done(self, ts: TailoredStep, host: Host) -> None:
        """Report a step skipped because its check found it done."""
        self._print("  ✓ already done [dim](its check succeeded)[/dim]")

    def checked(self, ts: TailoredStep, host: Host, verdict: str, detail: str) -> None:
        """Report a step's verdict in check mode (already-done, would-change, ...)."""
        colour = {"would-change": "yellow", "failed": "red", "unknown": "magenta"}.get(
            verdict, "green"
        )
        self._print(
            f"  [{colour}]{escape(verdict)}[/{colour}] {escape(ts.id)}@{escape(host.name)}"
            f" [dim]({escape(detail)})[/dim]"
        )

    def result(self, ts: TailoredStep, host: Host, result: CommandResult, purpose: str) -> None:
        """Report a command's result with the tail of its output."""
        if purpose == "check":
            return
        status = (
            "[green]✓ succeeded[/green]"
            if result.ok
            else (
                "[red]✗ timed out[/red]"
                if result.timed_out
                else f"[red]✗ exit {result.exit_code}[/red]"
            )
        )
        self._print(f"  {status} [dim]on {escape(host.name)} in {result.duration:.2f} s[/dim]")
        if not self.stream:
            tail = (result.stdout[-16384:] + result.stderr[-16384:]).rstrip()
            lines = tail.splitlines()[-_TAIL_LINES:]
            for line in lines:
                self._print(f"  [dim]│[/dim] {escape(line)}", soft_wrap=True)

    def probe(self, ts: TailoredStep, result: Any) -> None:
        """Report a probe's result (``ProbeResult``)."""
        mark = "[green]✓[/green]" if result.ok else "[red]✗[/red]"
        self._print(f"  {mark} {escape(result.message)} [dim]({result.duration:.2f} s)[/dim]")

    def error(self, ts: TailoredStep, host: Host, message: str) -> None:
        """Report a command that could not run."""
        self._print(f"  [red]✗ {escape(message)}[/red]")

    def backout_offer(self, ts: TailoredStep, backout: TailoredStep, host: Host) -> None:
        """Show the backout of a failed step."""
        self._print(f"  Backout for #{ts.id} ({backout.id}) on {escape(host.name)}:")
        self._command(backout.body)

    def backout_done(self, ts: TailoredStep, result: CommandResult | None) -> None:
        """Report a backout that ran."""
        ok = result is not None and result.ok
        self._print(f"  backout {'[green]succeeded[/green]' if ok else '[red]failed[/red]'}")

    def finished(
        self,
        run_id: str,
        outcome: str,
        summary: dict[str, Any],
        note: str = "",
        known: dict[str, int] | None = None,
    ) -> None:
        """Report the end of a run: its outcome word, why, step counts by status and by
        how each result is known."""
        colour = "green" if outcome == "succeeded" else "red"
        if outcome.startswith("succeeded-") or outcome == "unverified":
            colour = "yellow"
        head, *more = finished_lines(run_id, outcome, summary, note, known)
        self._print(f"[bold {colour}]{escape(head)}[/bold {colour}]")
        for line in more:
            self._print(escape(line))


def finished_lines(
    run_id: str,
    outcome: str,
    summary: dict[str, Any],
    note: str = "",
    known: dict[str, int] | None = None,
) -> list[str]:
    """The plain-text lines that report a run's end: ``Run ID: OUTCOME (counts)``, then
    why (``note``) and how the results are known, when given."""
    counts = ", ".join(f"{v} {k}" for k, v in sorted(summary.get("steps", {}).items()))
    lines = [f"Run {run_id}: {outcome} ({counts})"]
    if note:
        lines.append(f"  {note}")
    if known:
        lines.append("  known: " + ", ".join(f"{n} {c}" for c, n in known.items()))
    return lines


def _lexer(kind: str) -> str:
    return {"cmd": "batch", "sh": "bash", "manual": "markdown"}.get(kind, kind)


def open_null() -> Any:
    """Return a writable file that discards everything."""
    import io

    return io.StringIO()
