"""Print a plan (from :func:`runbook_engine.outputs.plan.build_plan`) for people."""

from __future__ import annotations

import textwrap
from typing import Any

from rich.console import Console
from rich.markup import escape

from runbook_engine.source.kinds import errexit_mode
from runbook_engine.tailor.binding import VALUES_NOTE

_ACTIONS = {
    "run": "runs",
    "gate": "gate: a person does this and confirms",
    "gate-by-hand": "gate: run by hand on a manual host, then confirm",
    "skip": "skipped",
    "conditional": "runs if its condition holds",
}


def _errexit(step: dict[str, Any]) -> str:
    """``stops at the first error (set -e)`` for a shell step run by the tool; ``errexit
    off`` when the step turned it off; ``""`` for kinds without the mode."""
    if not errexit_mode(step["kind"]):
        return ""
    if step.get("errexit"):
        return f"stops at the first error ({step['errexit']})"
    return "errexit off"


def print_plan(plan: dict[str, Any]) -> None:
    """Print every step with its hosts, action, command, check and backout."""
    console = Console(highlight=False)
    rb = plan["runbook"]
    env = plan["environment"] or "generic (no environment)"
    console.print(
        f"[bold]{escape(rb['title'])}[/bold]  id={rb['id']} version={rb['version'] or '-'}"
        f"  environment={escape(env)}"
    )
    console.print(f"{len(plan['steps'])} steps, {plan['gates']} gates\n")
    for step in plan["steps"]:
        phase = {"precheck": " [cyan]pre-check[/cyan]", "verify": " [green]verification[/green]"}
        console.print(
            f"[bold]{step['number']}. {escape(step['title'])}[/bold] [dim]#{step['id']} "
            f"{step['kind']}{' ' + step['source'] if step.get('source') else ''}[/dim]"
            f"{phase.get(step['phase'], '')}"
        )
        for host in step["hosts"]:
            where = host["name"] and f"{host['name']} ({host['address']}, {host['transport']})"
            where = where or f"role {host.get('role')}"
            console.print(f"   on {escape(where)}: {_ACTIONS[host['action']]}")
        if step["skip_reason"]:
            console.print(f"   [yellow]{escape(step['skip_reason'])}[/yellow]")
        elif step["when"]:
            console.print(f"   only when: {escape(step['when'])}")
        extras = [
            f"timeout {step['timeout_seconds']:g} s" if step["timeout_seconds"] else "",
            f"retries {step['retries']}" if step["retries"] else "",
            "continues on failure" if step["on_failure"] == "continue" else "",
            _errexit(step),
        ]
        if any(extras):
            console.print("   " + ", ".join(e for e in extras if e))
        if not step["skip_reason"]:  # exactly as it will run: never wrapped, never padded
            body = step["command"].rstrip() or "(empty)"
            if step.get("values"):
                console.print(f"   [dim]{escape(VALUES_NOTE)}[/dim]")
            console.print(
                textwrap.indent(body, "   "), markup=False, highlight=False, soft_wrap=True
            )
        for label in ("check", "backout"):
            helper = step[label]
            if helper:
                console.print(f"   {label} #{helper['id']}: {escape(helper['command'].strip())}")
        console.print()
