"""The guide's fixed sections as Markdown snippets: change details, values,
hosts, prerequisites, verification summary and backout plan.
"""

from __future__ import annotations

from dataclasses import dataclass

from runbook_engine.outputs.mdtext import cell, code, escape
from runbook_engine.outputs.views import (
    HASH_CHARS,
    TRANSPORT_LABELS,
    Block,
    command_block,
    format_value,
    location_text,
    rendered_at,
)
from runbook_engine.source.model import Parameter
from runbook_engine.tailor.tailoring import TailoredRunbook


@dataclass(frozen=True, slots=True)
class BackoutView:
    """One entry of the backout plan.

    Attributes:
        heading: ``If step N fails`` with the step's title, escaped.
        where: Where the backout runs (Markdown).
        block: The backout command or instructions.
    """

    heading: str
    where: str
    block: Block


def details(tailored: TailoredRunbook, change_id: str | None) -> list[tuple[str, str]]:
    """Rows of the "Change details" table: (label, Markdown value).

    Raises:
        InputError: ``SOURCE_DATE_EPOCH`` is malformed.
    """
    rb = tailored.runbook
    env = tailored.environment
    rows = [
        ("Runbook", code(rb.id)),
        ("Version", escape(rb.version) if rb.version else "—"),
        ("Content hash", code(rb.content_hash[:HASH_CHARS]) + " (SHA-256, first characters)"),
        (
            "Environment",
            escape(env.name) if env else "*generic: no environment, placeholders shown as ‹name›*",
        ),
    ]
    if change_id:
        rows.append(("Change id", escape(change_id)))
    rows.append(("Rendered at", rendered_at()))
    return [(label, cell(value)) for label, value in rows]


def _type_text(param: Parameter) -> str:
    if param.type == "list":
        return f"list of {param.items}"
    if param.type == "choice" and param.choices:
        return "choice: " + ", ".join(format_value(c) for c in param.choices)
    return param.type


def value_rows(tailored: TailoredRunbook) -> list[tuple[str, str, str, str]]:
    """Rows (parameter, value, type, description) of the values table.

    Secrets show as ``[secret]``; a generic guide shows ``‹name›`` with the
    default or example; facts of the environment that are no parameter follow.
    """
    rows = []
    values = tailored.values
    for name, param in tailored.runbook.parameters.items():
        if param.secret:
            value = "[secret]"
        elif values is None:
            value = code(f"‹{name}›")
            if param.default is not None:
                value += f" (default {code(format_value(param.default))})"
            elif param.example is not None:
                value += f" (e.g. {code(format_value(param.example))})"
        else:
            raw = values.params.get(name)
            empty = raw is None or raw == ""
            value = "*(not set)*" if empty else code(format_value(raw))
            if values.sources.get(name) == "default" and not empty:
                value += " (default)"
        rows.append((code(name), value, escape(_type_text(param)), param.description))
    if values is not None:
        for name, raw in values.facts.items():
            if name not in tailored.runbook.parameters:
                rows.append((code(name), code(format_value(raw)), "fact", "Environment fact"))
    return [tuple(cell(c) for c in row) for row in rows]  # type: ignore[misc]


def host_rows(tailored: TailoredRunbook) -> list[tuple[str, str, str, str]]:
    """Rows (role, host, address, transport) for the roles this runbook declares."""
    rows = []
    env = tailored.environment
    for role in tailored.runbook.roles:
        hosts = env.roles.get(role, ()) if env else ()
        if not hosts:
            rows.append((code(role), "*set by the environment*" if env is None else "—", "—", "—"))
        for host in hosts:
            rows.append(
                (
                    code(role),
                    escape(host.name),
                    escape(host.address),
                    TRANSPORT_LABELS.get(host.transport, escape(host.transport)),
                )
            )
    return [tuple(cell(c) for c in row) for row in rows]  # type: ignore[misc]


def prerequisites(tailored: TailoredRunbook) -> list[str]:
    """Bullet items: access to each role's hosts, and the operator machine if used."""
    items = []
    env = tailored.environment
    for role, description in tailored.runbook.roles.items():
        text = f"Access to role {code(role)}"
        if description:
            text += f" — {escape(description)}"
        hosts = env.roles.get(role, ()) if env else ()
        if hosts:
            text += ": " + ", ".join(
                f"{escape(h.name)} ({TRANSPORT_LABELS.get(h.transport, h.transport)})"
                for h in hosts
            )
        items.append(text)
    if any(ts.step.target is None for ts in tailored.steps):
        items.append("The operator machine, for the steps that run locally")
    if any(p.secret for p in tailored.runbook.parameters.values()):
        names = ", ".join(code(n) for n, p in tailored.runbook.parameters.items() if p.secret)
        items.append(
            f"The secrets {names}, from where the environment names them "
            "(never written in this guide)"
        )
    return [" ".join(i.split("\n")) for i in items]


def references(tailored: TailoredRunbook) -> list[str]:
    """The runbook's references as written (Markdown, one line each)."""
    return [" ".join(r.split("\n")) for r in tailored.runbook.references]


def verification(tailored: TailoredRunbook) -> list[str]:
    """Bullet items: each ``.verify`` flow step with a link to it and where it runs."""
    items = []
    for ts in tailored.steps:
        if ts.step.phase != "verify":
            continue
        text = (
            f"[Step {ts.number}. {escape(ts.step.display_title())}](#{ts.id}) — on "
            f"{location_text(tailored, ts)}"
        )
        if ts.skip_reason is not None:
            text += " — *skipped in this environment*"
        items.append(text)
    return items


def backouts(tailored: TailoredRunbook) -> list[BackoutView]:
    """For every changing flow step with a backout (and not skipped): what undoes it."""
    out = []
    for ts in tailored.steps:
        if not (ts.step.changes_state and ts.step.backout) or ts.skip_reason is not None:
            continue
        helper = tailored.helpers.get(ts.step.backout)
        if helper is None:
            continue
        heading = f"If step {ts.number} fails ({escape(ts.step.display_title())}):"
        out.append(
            BackoutView(heading, "On " + location_text(tailored, helper), command_block(helper, ""))
        )
    return out
