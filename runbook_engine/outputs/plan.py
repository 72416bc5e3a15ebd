"""The plan: every step with its hosts, transport, action and command, without running."""

from __future__ import annotations

from typing import Any

from runbook_engine.source.kinds import errexit_mode
from runbook_engine.tailor.tailoring import TailoredRunbook, TailoredStep


def step_action(ts: TailoredStep, transport: str | None) -> str:
    """Return what the runner will do with a step on a host of ``transport``.

    ``skip`` (condition false), ``gate`` (manual step), ``gate-by-hand`` (a
    command on a ``manual`` host: shown for a person to run), ``run``, or
    ``conditional`` in the generic plan.
    """
    if ts.skip_reason:
        return "skip"
    if ts.step.is_manual:
        return "gate"
    if transport == "manual":
        return "gate-by-hand"
    if transport is None:
        return "conditional" if ts.condition else "run"
    return "run"


def build_plan(tailored: TailoredRunbook) -> dict[str, Any]:
    """Return the plan as JSON-ready data.

    Shape: ``{"runbook": {...}, "environment": name | None, "steps": [{"number", "id",
    "title", "kind", "phase", "target", "hosts": [{"name", "address", "transport",
    "action"}], "command" (values quoted for typing by hand), "command_as_run" (values as
    environment variable references), "values" (variable -> value), "check", "backout",
    "when", "skip_reason", "timeout_seconds", "errexit" (how a failing command stops the
    script: ``set -eo pipefail``, ``set -e``, ``$ErrorActionPreference = 'Stop'``; ``""``
    when off or the kind has none),
    "retries", "retry_delay_seconds", "on_failure", "source": "file:line"}]}``.
    """
    rb = tailored.runbook
    steps = []
    for ts in tailored.steps:
        step = ts.step
        hosts = [
            {
                "name": h.name,
                "address": h.address,
                "transport": h.transport,
                "action": step_action(ts, h.transport),
            }
            for h in ts.hosts
        ]
        if not ts.hosts:
            hosts = [
                {
                    "name": None,
                    "address": None,
                    "role": step.target or "operator",
                    "transport": None,
                    "action": step_action(ts, None),
                }
            ]
        steps.append(
            {
                "number": ts.number,
                "id": ts.id,
                "title": step.display_title(),
                "kind": step.kind,
                "phase": step.phase,
                "target": step.target,
                "hosts": hosts,
                "command": ts.body,
                "command_as_run": ts.run_body or ts.body,
                "values": dict(ts.env),
                "check": _helper(tailored, step.check),
                "backout": _helper(tailored, step.backout),
                "when": step.when,
                "skip_reason": ts.skip_reason,
                "timeout_seconds": step.timeout,
                "errexit": errexit_mode(step.kind, step.errexit),
                "retries": step.retries,
                "retry_delay_seconds": step.retry_delay,
                "on_failure": step.on_failure,
                "source": f"{step.span.path}:{step.span.start_line}",
                **_declarative(ts),
            }
        )
    env = tailored.environment
    return {
        "runbook": {
            "id": rb.id,
            "title": rb.title,
            "version": rb.version,
            "sha256": rb.content_hash,
            "path": str(rb.path),
        },
        "environment": None if tailored.generic or env is None else env.name,
        "gates": sum(1 for s in steps for h in s["hosts"] if h["action"].startswith("gate")),
        "steps": steps,
    }


def _declarative(ts: TailoredStep) -> dict[str, Any]:
    """For a registry/service step: ``ensures`` (one line), ``command`` (the exact commands:
    read, change, read back) and ``gui`` (the by-hand path); nothing for other kinds."""
    if ts.step.kind not in ("registry", "service"):
        return {}
    from runbook_engine.declarative import (
        change_commands,
        describe,
        gui_steps,
        parse_declarative,
        read_commands,
    )
    from runbook_engine.errors import InputError

    try:
        spec = parse_declarative(ts.step.kind, ts.body, ts.step.span.path, ts.step.body_line)
    except InputError:  # a generic plan's placeholder in a number: keep the YAML body
        return {}
    reads = read_commands(spec)
    return {
        "ensures": describe(spec),
        "body": ts.body,
        "command": "\n".join([*reads, *change_commands(spec), *reads]) + "\n",
        "gui": gui_steps(spec),
    }


def _helper(tailored: TailoredRunbook, step_id: str | None) -> dict[str, Any] | None:
    if step_id is None:
        return None
    helper = tailored.helpers[step_id]
    return {"id": step_id, "kind": helper.step.kind, "command": helper.body}
