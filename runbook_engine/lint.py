"""``runbook lint``: report every problem of every runbook as ``file:line:col: code message``.

This is the parser's and tailoring's checking run over files; authoring rules
(warnings) come with their own issue.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from runbook_engine.errors import InputError, Problem
from runbook_engine.parser import parse_file
from runbook_engine.tailor import tailor


def runbook_files(paths: list[Path]) -> list[Path]:
    """Return the runbooks under ``paths``: ``*.md`` files, skipping fragments (``_*``),
    ``README.md``/``FORMAT.md`` and anything in a folder whose name starts with ``_`` or ``.``."""
    found: list[Path] = []
    for path in paths:
        if path.is_file():
            found.append(path)
            continue
        for md in sorted(path.rglob("*.md")):
            rel = md.relative_to(path)
            if any(part.startswith(("_", ".")) for part in rel.parts):
                continue
            if md.name.upper() in ("README.MD", "FORMAT.MD", "CHANGELOG.MD"):
                continue
            found.append(md)
    return found


def lint_file(path: Path) -> list[Problem]:
    """Return the problems of one runbook (empty when clean)."""
    try:
        runbook = parse_file(path)
        tailor(runbook, None, None)
    except InputError as exc:
        return exc.problems or [Problem(exc.message, path)]
    return []


def run_lint(paths: list[Path], fmt: str) -> int:
    """Lint ``paths``; print problems; return the exit status (1 when any error, else 0)."""
    problems: list[Problem] = []
    files = runbook_files(paths)
    for path in files:
        problems.extend(lint_file(path))
    if fmt == "json":
        click.echo(json.dumps([{"path": str(p.path), "line": p.line, "col": p.col, "code": p.code,
                                "severity": p.severity, "message": p.message} for p in problems],
                              indent=2))
    else:
        for p in problems:
            click.echo(f"{p.path}:{p.line}:{p.col or 1}: {p.code} {p.message}")
        errors = sum(1 for p in problems if p.severity == "error")
        click.echo(f"{len(files)} runbooks checked, {errors} errors, "
                   f"{len(problems) - errors} warnings", err=True)
    return 1 if any(p.severity == "error" for p in problems) else 0
