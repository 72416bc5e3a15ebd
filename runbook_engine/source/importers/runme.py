"""Runme (runme.dev): cells are fenced blocks whose info string carries attributes.

Attributes come as JSON (``sh {"id":"01HF…","name":"setup"}``) or as ``key=value``
pairs (``bash {name=setup interactive=false}``); the front matter may hold a ``runme:``
mapping (``id``, ``version``) and ``shell``/``cwd``.  ``name`` becomes the step id,
``cwd`` the step's ``cwd``; ``excludeFromRunAll=true`` keeps the cell as an illustration
(it is not run by "run all"); other attributes (``interactive``, ``background`` ...) are
reported as not mapped.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

from runbook_engine.source.importers.fences import LANGS, Decision, Fence, Walker
from runbook_engine.source.importers.markdown import report_rest, split_front, start_draft
from runbook_engine.source.importers.model import ImportResult

_ATTRS = re.compile(r"^[^\s{]*\s*(\{.*\})\s*$")
_TRUE = ("true", "yes", "1")


def cell_attrs(info: str) -> dict[str, Any]:
    """The attributes of a Runme info string (JSON, or ``key=value`` pairs); ``{}`` if none."""
    match = _ATTRS.match(info.strip())
    if not match:
        return {}
    raw = match.group(1)
    try:
        data = json.loads(raw)
        return data if isinstance(data, dict) else {}
    except json.JSONDecodeError:
        pass
    out: dict[str, Any] = {}
    try:
        items = shlex.split(raw[1:-1].replace(",", " "))
    except ValueError:
        items = raw[1:-1].split()
    for item in items:
        key, sep, value = item.partition("=")
        if sep:
            out[key.strip()] = value.strip()
    return out


class _Cells:
    def __init__(self, result: ImportResult, shell: str) -> None:
        self.result, self.shell = result, shell

    def __call__(self, fence: Fence, walker: Walker) -> Decision:
        attrs = cell_attrs(fence.info)
        where = walker.line(fence.start)
        lang = fence.lang or self.shell
        if lang not in LANGS:
            why = f"a Runme {lang} cell: no step kind runs {lang}" if lang else ""
            return Decision(None, why=why)
        if str(attrs.pop("excludeFromRunAll", "")).lower() in _TRUE:
            return Decision(None, why="excludeFromRunAll: not run, kept as an illustration")
        decision = Decision(LANGS[lang], id_hint=str(attrs.pop("name", "") or ""))
        if attrs.get("cwd"):
            decision.attrs["cwd"] = str(attrs.pop("cwd"))
        cell_id = attrs.pop("id", None)
        if cell_id:
            self.result.note(where, f"Runme cell id {cell_id}", "kept in this report only")
        for key, value in attrs.items():
            self.result.note(
                where, f"Runme attribute {key}={value}", "no such attribute", mapped=False
            )
        return decision


def convert(text: str, path: Path) -> ImportResult:
    """Import a Runme notebook (see the module docstring)."""
    result = ImportResult("runme", [])
    draft, body, line0, meta = start_draft(text, path, result)
    runme = meta.pop("runme", None)
    if isinstance(runme, dict):
        result.note(
            1,
            f"runme front matter (id {runme.get('id')}, version {runme.get('version')})",
            "kept in this report only",
        )
    shell = str(meta.pop("shell", "") or "").lower()
    if shell:
        result.note(1, f"front matter shell: {shell}", "kind of cells without a language")
    report_rest(meta, result)
    Walker(body, draft, result, line0, _Cells(result, shell if shell in LANGS else "")).run()
    result.drafts.append(draft)
    return result


def detect(text: str, path: Path) -> bool:
    """A ``runme:`` front matter or a fence with Runme attributes."""
    meta = split_front(text, ImportResult("runme", []))[0]
    if "runme" in meta:
        return True
    return bool(
        re.search(r'^[ \t]*(`{3,}|~{3,})[\w-]*[ \t]*\{[ \t]*("\w+"[ \t]*:|\w+=)', text, re.M)
    )
