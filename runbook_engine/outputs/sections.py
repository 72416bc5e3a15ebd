"""The guide's fixed sections as Markdown snippets: change details, values,
hosts, prerequisites, verification summary and the appendices (code of the
automated checks, parameter descriptions).  The backout plan is
:mod:`runbook_engine.outputs.backout_plan`, the first page's contacts, time plan
and go/no-go points :mod:`runbook_engine.outputs.front_page`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import yaml

from runbook_engine.outputs.effort import automated_check
from runbook_engine.outputs.long_values import ValueRefs
from runbook_engine.outputs.mdtext import cell, code, escape
from runbook_engine.outputs.views import (
    APPENDIX_VALUES_NOTE,
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
class CodeView:
    """The code of one automated check, for appendix A.

    Attributes:
        id: Anchor the step's one line links to (``code-<step id>``).
        heading: ``Step N. Title`` (escaped).
        block: The command, as the tool runs it on the host.
    """

    id: str
    heading: str
    block: Block


def foreign_meta(tailored: TailoredRunbook) -> list[tuple[str, str]]:
    """The front-matter keys of other tools (``ms.author``...) as ``(name, text)`` pairs for
    the HTML guide's and the site page's ``<meta>`` (text: a string as written, anything
    lists and mappings as JSON, other scalars as text)."""
    return [
        (key, json.dumps(value, default=str) if isinstance(value, (list, dict)) else str(value))
        for key, value in tailored.runbook.foreign.items()
    ]


def front_matter(tailored: TailoredRunbook) -> str:
    """The front-matter keys of other tools as YAML for the Markdown guide, ``""`` if none."""
    foreign = tailored.runbook.foreign
    if not foreign:
        return ""
    return yaml.safe_dump(foreign, sort_keys=False, allow_unicode=True, default_flow_style=False)


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


def value_rows(
    tailored: TailoredRunbook, refs: ValueRefs | None = None
) -> list[tuple[str, str, str, str]]:
    """Rows (parameter, value, type, description) of the values table.

    Secrets show as ``[secret]``; a generic guide shows ``‹name›`` with the
    default or example; facts of the environment that are no parameter follow.
    A long value shows as its reference to the "Values to copy" box.
    """
    refs = refs or ValueRefs()
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
            shown = refs.sub(format_value(raw))
            # as the change record prints them: no value at all, or an empty text
            value = code(shown) if not empty else "*(not set)*" if raw is None else "*(empty)*"
            if not empty and refs.used(shown):
                value += " (see [Values to copy](#_values))"
            if values.sources.get(name) == "default" and not empty:
                value += " (default)"
        rows.append((code(name), value, escape(_type_text(param)), param.description))
    if values is not None:
        for name, raw in values.facts.items():
            if name not in tailored.runbook.parameters:
                rows.append((code(name), code(format_value(raw)), "fact", "Environment fact"))
    return [tuple(cell(c) for c in row) for row in rows]  # type: ignore[misc]


def host_rows(tailored: TailoredRunbook) -> list[tuple[str, str, str, str, str, str]]:
    """Rows (role, host, address, transport, steps, access) for the roles this runbook
    declares; ``access`` is a check box to tick when access to the host was checked
    before the window (a role without hosts has none)."""
    rows = []
    env = tailored.environment
    for role in tailored.runbook.roles:
        hosts = env.roles.get(role, ()) if env else ()
        numbers = [
            str(ts.number)
            for ts in tailored.steps
            if ts.step.target == role and ts.skip_reason is None
        ]
        steps = ", ".join(numbers) or "—"
        if not hosts:
            rows.append(
                (
                    code(role),
                    "*set by the environment*" if env is None else "—",
                    "—",
                    "—",
                    steps,
                    "—",
                )
            )
        for host in hosts:
            rows.append(
                (
                    code(role),
                    escape(host.name),
                    escape(host.address),
                    TRANSPORT_LABELS.get(host.transport, escape(host.transport)),
                    steps,
                    "☐",
                )
            )
    return [tuple(cell(c) for c in row) for row in rows]  # type: ignore[misc]


def prerequisites(tailored: TailoredRunbook) -> list[str]:
    """Bullet items: the runbook's own ``prerequisites`` (front matter, as written), access
    to the hosts of each role the environment gives none for (a host the environment names
    has its check box in the hosts table, :func:`host_rows`), and the operator machine if
    used."""
    items = [str(p) for p in tailored.runbook.meta.get("prerequisites") or ()]
    env = tailored.environment
    for role in tailored.runbook.roles:
        if not (env.roles.get(role, ()) if env else ()):
            items.append(f"Access to the hosts of role {code(role)}")
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
        where = (
            ", ".join(f"**{escape(h.name)}**" for h in ts.hosts)
            if ts.hosts and not tailored.generic and ts.step.target is not None
            else location_text(tailored, ts)
        )
        text = f"[Step {ts.number}. {escape(ts.step.display_title())}](#{ts.id}) — on {where}"
        if ts.skip_reason is not None:
            text += " — *skipped in this environment*"
        items.append(text)
    return items


def appendix_code(tailored: TailoredRunbook, refs: ValueRefs | None = None) -> list[CodeView]:
    """The code of every check the tool runs itself (shown as one line in the procedure)."""
    refs = refs or ValueRefs()
    return [
        CodeView(
            f"code-{ts.id}",
            f"Step {ts.number}. {escape(ts.step.display_title())}",
            command_block(
                ts, "On " + location_text(tailored, ts) + ":", refs.sub, APPENDIX_VALUES_NOTE
            ),
        )
        for ts in tailored.steps
        if automated_check(ts)
    ]


def role_descriptions(tailored: TailoredRunbook) -> list[str]:
    """Appendix items: each role and what it is."""
    return [
        f"{code(role)} — " + (escape(" ".join(text.split())) or "*no description*")
        for role, text in tailored.runbook.roles.items()
    ]


def descriptions(tailored: TailoredRunbook) -> list[str]:
    """Appendix items: ``name`` (type) and description of every parameter."""
    return [
        f"{code(name)} ({escape(_type_text(param))}) — "
        + (" ".join(param.description.split()) or "*no description*")
        for name, param in tailored.runbook.parameters.items()
    ]
