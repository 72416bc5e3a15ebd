"""Draft runbooks as text: the runbook Markdown, the example environment and the report.

Inputs are the dataclasses of :mod:`.model`; outputs are strings, written by the caller.
YAML is written with PyYAML's ``safe_dump`` (never by hand), so every value is quoted as
YAML needs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

import yaml

from runbook_engine.source.importers.model import Draft, DraftStep, ImportResult, Param

_BACKTICKS = re.compile(r"^\s*(`{3,})", re.MULTILINE)


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def _quote_attr(value: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9_.:/\\-]+", value):
        return value
    return '"' + value.replace('"', '\\"') + '"'


def info_string(step: DraftStep) -> str:
    """``KIND {#id .class key=value}`` for ``step``."""
    parts = [f"#{step.id}", *(f".{c}" for c in step.classes)]
    if step.target:
        parts.append(f"target={step.target}")
    if step.title:  # a backtick cannot stand in a backtick fence's info string
        title = step.title.replace("`", "'").replace("**", "")
        parts.append(f"title={_quote_attr(title)}")
    parts += [f"{k}={_quote_attr(v)}" for k, v in step.attrs.items()]
    return f"{step.kind} {{{' '.join(parts)}}}"


def step_text(step: DraftStep) -> str:
    """The fenced block of ``step``, every line prefixed with its indentation."""
    runs = [len(m) for m in _BACKTICKS.findall(step.body)]
    fence = "`" * max(3, max(runs, default=0) + 1)
    body = step.body if step.body.endswith("\n") else step.body + "\n"
    lines = [f"{fence}{info_string(step)}", *body.splitlines(), fence]
    return "\n".join(f"{step.indent}{line}" if line else line for line in lines) + "\n"


def front_matter(draft: Draft) -> dict[str, Any]:
    """The front matter of ``draft`` as a mapping."""
    meta: dict[str, Any] = {"id": draft.id, "title": draft.title}
    if draft.summary:
        meta["summary"] = draft.summary
    if draft.tags:
        meta["tags"] = list(draft.tags)
    if draft.roles:
        meta["roles"] = dict(draft.roles)
    if draft.lint:
        meta["lint"] = {"disable": dict(draft.lint)}
    if draft.params:
        meta["parameters"] = {p.name: _param(p) for p in _ordered(draft.params.values())}
    return meta


def _ordered(params: Iterable[Param]) -> list[Param]:
    return sorted(params, key=lambda p: (p.line, p.name))


def _param(p: Param) -> dict[str, Any]:
    out: dict[str, Any] = {"type": p.type}
    if p.description:
        out["description"] = p.description
    if p.secret:
        out["secret"] = True
    elif p.example not in (None, ""):
        out["example"] = p.example
    return out


def runbook_text(draft: Draft) -> str:
    """The whole runbook: front matter, then prose and steps in source order."""
    chunks = [f"---\n{_dump(front_matter(draft))}---\n"]
    for part in draft.parts:
        text = step_text(part) if isinstance(part, DraftStep) else part.text
        chunks.append(text if text.endswith("\n") else text + "\n")
    return "\n".join(c.rstrip("\n") + "\n" for c in chunks if c.strip())


def environment_text(drafts: list[Draft], source_name: str) -> str:
    """An example environment serving every draft: the source's values, manual hosts."""
    params: dict[str, Any] = {}
    roles: dict[str, list[dict[str, str]]] = {}
    secrets: list[str] = []
    for draft in drafts:
        for p in _ordered(draft.params.values()):
            if p.secret:
                secrets.append(p.name)
            else:
                params.setdefault(p.name, "" if p.example is None else p.example)
        for role in draft.roles:
            roles.setdefault(role, [{"name": role, "transport": "manual"}])
    env: dict[str, Any] = {
        "name": "example",
        "description": f"The values {source_name} was written with (imported); replace them",
    }
    if params:
        env["parameters"] = params
    if roles:
        env["roles"] = roles
    text = _dump(env)
    for name in sorted(set(secrets)):
        text += f"# secret {name}: set RUNBOOK_SECRET_{name.upper()} before a run\n"
    return text


def report_data(result: ImportResult, written: list[str]) -> dict[str, Any]:
    """The import report as JSON-ready data (notes in source line order)."""
    notes = sorted(result.notes, key=lambda n: n.line)
    return {
        "format": result.source_format,
        "runbooks": [
            {
                "id": d.id,
                "title": d.title,
                "line": d.line,
                "steps": len(d.steps()),
                "numbered_instructions": d.instructions,
                "kinds": _kinds(d),
                "parameters": sorted(d.params),
            }
            for d in result.drafts
        ],
        "mapped": [{"line": n.line, "what": n.what, "became": n.became} for n in notes if n.mapped],
        "not_mapped": [
            {"line": n.line, "what": n.what, "why": n.became} for n in notes if not n.mapped
        ],
        "written": written,
    }


def _kinds(draft: Draft) -> dict[str, int]:
    counts: dict[str, int] = {}
    for step in draft.steps():
        counts[step.kind] = counts.get(step.kind, 0) + 1
    return dict(sorted(counts.items()))


def report_text(result: ImportResult, written: list[str], source_name: str) -> str:
    """The import report for people: runbooks, what became what, what was not mapped."""
    data = report_data(result, written)
    out = [f"# Import report: {source_name} ({result.source_format})", ""]
    for book in data["runbooks"]:
        kinds = ", ".join(f"{n} {k}" for k, n in book["kinds"].items()) or "no steps"
        extra = (
            f"; {book['numbered_instructions']} numbered instructions"
            if book["numbered_instructions"]
            else ""
        )
        out.append(f"- {book['id']} (line {book['line']}): {kinds}{extra}")
    out += ["", "## Mapped", ""]
    out += [f"- line {m['line']}: {m['what']} -> {m['became']}" for m in data["mapped"]]
    out += ["", "## Not mapped", ""]
    out += [f"- line {m['line']}: {m['what']}: {m['why']}" for m in data["not_mapped"]] or [
        "- nothing"
    ]
    if written:
        out += ["", "## Written", "", *(f"- {w}" for w in written)]
    return "\n".join(out) + "\n"


def report_json(result: ImportResult, written: list[str]) -> str:
    """:func:`report_data` as indented JSON."""
    return json.dumps(report_data(result, written), indent=2, ensure_ascii=False) + "\n"
