"""Plain Markdown: shell-like fenced blocks become steps, everything else stays prose.

A block whose language is a shell (``sh``, ``bash``, ``console``, ``powershell``, ``cmd``
...; see :data:`.fences.LANGS`) or that holds prompted lines (``$ ``, ``PS> ``) becomes a
step; its id comes from the heading above it (or its first command), made unique.  Output
after prompts is kept as an illustration below the step.  Front matter keys of today's
format (``title``, ``summary``/``description``, ``tags``) are kept; others are reported.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from runbook_engine.source.importers.fences import LANGS, Decision, Fence, Walker, split_prompts
from runbook_engine.source.importers.model import Draft, ImportResult
from runbook_engine.source.importers.names import slug

_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


def split_front(text: str, result: ImportResult) -> tuple[dict[str, Any], str, int]:
    """Front matter (a mapping, ``{}`` when none or unreadable), the body and its first line."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        return {}, text, 1
    for i, line in enumerate(lines[1:], start=1):
        if line.strip() in ("---", "..."):
            try:
                meta = yaml.safe_load("\n".join(lines[1:i])) or {}
            except yaml.YAMLError as exc:
                result.note(1, "front matter", f"not YAML ({exc.__class__.__name__})", mapped=False)
                meta = {}
            if not isinstance(meta, dict):
                result.note(1, "front matter", "not a mapping", mapped=False)
                meta = {}
            return meta, "\n".join(lines[i + 1 :]) + "\n", i + 2
    return {}, text, 1


def start_draft(text: str, path: Path, result: ImportResult) -> tuple[Draft, str, int, dict]:
    """A draft named after the front matter's title, the first heading or the file.

    Returns the draft, the Markdown body, the body's first source line and the front
    matter keys the caller has still to report on.
    """
    meta, body, line0 = split_front(text, result)
    heading = _HEADING.search(body)
    title = str(meta.pop("title", "") or (heading.group(1) if heading else path.stem))
    draft = Draft(id=slug(path.stem, limit=8, fallback="runbook"), title=title, line=1)
    summary = meta.pop("summary", None) or meta.pop("description", None)
    if isinstance(summary, str):
        draft.summary = " ".join(summary.split())
        result.note(1, "front matter summary", "summary")
    tags = meta.pop("tags", None)
    if isinstance(tags, list) and all(isinstance(t, str) for t in tags):
        draft.tags = list(tags)
        result.note(1, "front matter tags", "tags")
    meta.pop("id", None)
    return draft, body, line0, meta


def report_rest(meta: dict, result: ImportResult) -> None:
    """Report front matter keys nobody mapped."""
    for key in meta:
        result.note(
            1, f"front matter key {key!r}", "no such key in the runbook format", mapped=False
        )


def decide(fence: Fence, walker: Walker) -> Decision:
    """A shell-like or prompted block is a step; anything else an illustration."""
    if fence.lang in LANGS:
        return Decision(LANGS[fence.lang])
    if not fence.lang and split_prompts(fence.body)[2]:
        return Decision("sh")
    if not fence.lang:
        return Decision(None, why="no language and no prompt: kept as an illustration")
    return Decision(None)


def convert(text: str, path: Path) -> ImportResult:
    """Import plain Markdown (see the module docstring)."""
    result = ImportResult("markdown", [])
    draft, body, line0, meta = start_draft(text, path, result)
    report_rest(meta, result)
    Walker(body, draft, result, line0, decide).run()
    result.drafts.append(draft)
    return result


def detect(text: str, path: Path) -> bool:
    """Markdown (by name or by headings) with at least one shell-like or prompted block."""
    if path.suffix.lower() not in (".md", ".markdown") and not _HEADING.search(text):
        return False
    walker = Walker(
        split_front(text, ImportResult("markdown", []))[1],
        Draft("x", "x", 1),
        ImportResult("markdown", []),
        1,
        decide,
    )
    steps = sum(1 for f in walker.fences() if decide(f, walker).kind)
    numbered = len(re.findall(r"^\s{0,3}\d{1,3}[.)]\s", text, re.M))
    return steps > 0 and steps >= numbered
