"""The reporter's plain path: with output that is no terminal, lines rich would write
unchanged are written directly, and the text is exactly what rich writes."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from runbook_engine.run.reporter import Reporter

LINES = [
    "[bold]Step 3/200[/bold] Restart the service [dim]#s3 on operator machine[/dim]",
    "  [green]✓ succeeded[/green] [dim]on operator in 0.01 s[/dim]",
    "  [red]✗ exit 2[/red] [dim]on web1 in 12.34 s[/dim]",
    "  [dim]│[/dim] a \\[literal] bracket and ünïcödé",
    "  [dim]│[/dim] wide 漢字 characters",
    "  [dim]│[/dim] " + "x" * 120,  # longer than the width: rich wraps it
    "  ↷ skipped [dim](:thumbs_up: emoji code)[/dim]",
    "tab\there",
    "a line with \x1b[31m an escape sequence",
]


def _pair(width: int = 80) -> tuple[Reporter, io.StringIO, Console, io.StringIO]:
    ours, theirs = io.StringIO(), io.StringIO()
    reporter = Reporter()
    reporter.console = Console(file=ours, highlight=False, soft_wrap=False, width=width)
    rich = Console(file=theirs, highlight=False, soft_wrap=False, width=width)
    return reporter, ours, rich, theirs


@pytest.mark.parametrize("soft_wrap", [False, True])
def test_plain_lines_are_what_rich_writes(soft_wrap: bool) -> None:
    from runbook_engine.evidence.safeio import terminal_safe

    reporter, ours, rich, theirs = _pair()
    for line in LINES:
        reporter._print(line, soft_wrap=soft_wrap)
        rich.print(terminal_safe(line), soft_wrap=soft_wrap)
    assert ours.getvalue() == theirs.getvalue()
    assert "✓ succeeded on operator in 0.01 s\n" in ours.getvalue()


def test_public_messages_match_rich() -> None:
    reporter, ours, rich, theirs = _pair(width=60)
    reporter.warning("disk [almost] full")
    reporter.skipped("condition false")
    rich.print("[yellow]! disk \\[almost] full[/yellow]")
    rich.print("  ↷ skipped [dim](condition false)[/dim]")
    assert (
        ours.getvalue()
        == theirs.getvalue()
        == "! disk [almost] full\n  ↷ skipped (condition false)\n"
    )
