"""Flow rules: every change is verified and can be undone; every manual step says where.

- RB301: a changing step with no verification step (``.verify``) after it in the flow.
- RB302: a changing command step with no ``backout=`` (not manual steps: the tool cannot
  tell whether a person's instructions change anything, and many only look or tell).
- RB303: a ``manual`` step with no ``target=``: who does it, on which machine?

"Changing" means a step of the normal flow (not a check or backout helper), in
the change phase (no ``.precheck``/``.verify`` class), of a kind that changes
state (commands and manual steps; probes do not) — FORMAT.md §3.
"""

from __future__ import annotations

from collections.abc import Iterator

from runbook_engine.lint.rules.context import Finding, LintContext


def change_without_verify(ctx: LintContext) -> Iterator[Finding]:
    """RB301: yield each changing step that no ``.verify`` step follows."""
    flow = ctx.runbook.flow
    last_verify = max((i for i, s in enumerate(flow) if s.phase == "verify"), default=-1)
    for index, step in enumerate(flow):
        if index > last_verify and ctx.changing(step):
            yield ctx.step_finding(
                step,
                "RB301",
                f"step {step.id!r} changes state but no verification step follows it: add a "
                "step with class .verify after it that checks the change took effect",
            )


def change_without_backout(ctx: LintContext) -> Iterator[Finding]:
    """RB302: yield each changing step without ``backout=`` (declarative steps generate theirs;
    manual steps are left out: instructions for a person often change nothing)."""
    for step in ctx.runbook.flow:
        # registry and service steps generate their backout from the value they read first
        exempt = step.is_manual or step.kind in ("registry", "service")
        if ctx.changing(step) and step.backout is None and not exempt:
            yield ctx.step_finding(
                step,
                "RB302",
                f"step {step.id!r} changes state but has no backout=: add a step that undoes it "
                "(or disable RB302 for this step with the reason it cannot be undone)",
            )


def manual_without_target(ctx: LintContext) -> Iterator[Finding]:
    """RB303: yield each manual step (flow or helper) without ``target=``."""
    for step in ctx.runbook.steps:
        if step.is_manual and step.target is None:
            yield ctx.step_finding(
                step,
                "RB303",
                f"manual step {step.id!r} has no target: say who does it where - declare a role "
                "under 'roles' (e.g. 'client: an Outlook 2003 workstation') and set target=ROLE",
            )
