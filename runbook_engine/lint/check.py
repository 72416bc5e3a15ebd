"""``runbook lint``: report every problem of every runbook as ``file:line:col: code message``.

Errors are what the parser and tailoring reject (RB1xx, RB13x) plus static probe
bodies that fail their schema (RB4xx); warnings are the authoring rules of
:mod:`runbook_engine.lint.rules` (RB301-RB307) and problems of the ``lint``
front-matter key (RB310-RB313).  Exit status 2 when any error (bad input, the
status ``runbook run`` gives the same problem; DESIGN.md §6), 0 with warnings only.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import click

from runbook_engine.errors import InputError, Problem
from runbook_engine.lint.rules import RULES, Finding, LintContext, read_settings
from runbook_engine.source.model import Runbook
from runbook_engine.source.parser import parse_file
from runbook_engine.tailor.tailoring import tailor


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
    """Return the problems of one runbook and its fragments (empty when clean), sorted by place.

    A file the parser rejects gets only its parse errors; otherwise tailoring
    errors, probe-body errors and every rule's warnings (less the disabled ones).
    """
    try:
        runbook = parse_file(path)
    except InputError as exc:
        return exc.problems or [Problem(exc.message, path)]
    problems: list[Problem] = []
    try:
        generic = tailor(runbook, None, None)
    except InputError as exc:
        problems.extend(exc.problems)
    else:
        problems.extend(_policy_problems(generic))
    problems.extend(_probe_problems(runbook))
    ctx = LintContext(runbook)
    settings, setting_problems = read_settings(ctx, frozenset(RULES))
    problems.extend(setting_problems)
    findings: list[Finding] = []
    for rule in RULES.values():
        findings.extend(rule.check(ctx))
    problems.extend(f.problem for f in findings if not settings.silenced(f))
    return sorted(problems, key=_place)


def _body_parsers() -> dict[str, Callable[[str, Path | None, int], object]]:
    from runbook_engine.declarative.parse import parse_declarative
    from runbook_engine.probes import parse_probe
    from runbook_engine.run.approval import parse_approval

    return {
        "probe": parse_probe,
        "approval": parse_approval,
        "registry": lambda body, path, line: parse_declarative("registry", body, path, line),
        "service": lambda body, path, line: parse_declarative("service", body, path, line),
    }


def _probe_problems(runbook: Runbook) -> list[Problem]:
    """Validate YAML bodies (probe, approval, registry, service) that hold no template
    (generic tailoring has no values to fill in templated ones)."""
    parsers = _body_parsers()
    problems: list[Problem] = []
    for step in runbook.steps:
        parse = parsers.get(step.kind)
        if parse is None or ("{" in step.body and step.template):
            continue
        try:
            parse(step.body, step.span.path, step.body_line)
        except InputError as exc:
            problems.extend(exc.problems)
    return problems


def _policy_problems(tailored: object) -> list[Problem]:
    """``approval: required`` without an approval step before the first change (RB411)."""
    from runbook_engine.run.approval import check_policy

    try:
        check_policy(tailored, emergency=False)  # type: ignore[arg-type]
    except InputError as exc:
        return exc.problems
    return []


def _place(p: Problem) -> tuple[str, int, int, str]:
    return (str(p.path), p.line, p.col, p.code)


def lint_paths(paths: list[Path]) -> tuple[list[Path], list[Problem]]:
    """Lint every runbook under ``paths``.

    Returns:
        ``(files, problems)``: the runbooks checked and their problems; a problem
        in a fragment included by several runbooks is listed once.
    """
    files = runbook_files(paths)
    problems: list[Problem] = []
    seen: set[tuple[object, ...]] = set()
    cwd = Path.cwd()
    for path in files:
        for p in lint_file(path):
            p = _relative(p, cwd)
            key = (str(p.path), p.line, p.col, p.code, p.message)
            if key not in seen:
                seen.add(key)
                problems.append(p)
    return files, problems


def _relative(problem: Problem, cwd: Path) -> Problem:
    """Show fragment paths (resolved by the parser) relative to the working directory ``cwd``."""
    path = problem.path
    if path is None or not path.is_absolute():
        return problem
    try:
        return replace(problem, path=path.relative_to(cwd))
    except ValueError:
        return problem


def print_rules(fmt: str) -> None:
    """Print the error codes (RB0xx-RB2xx, never disabled) and the warning rules (RB3xx,
    can be disabled with a reason), code, name and summary, as text or JSON."""
    from runbook_engine.lint.codes import ERROR_CODES

    rows = [(code, name, summary, "error") for code, (name, summary) in ERROR_CODES.items()]
    rows += [(r.code, r.name, r.summary, "warning") for r in RULES.values()]
    if fmt == "json":
        keys = ("code", "name", "summary", "severity")
        click.echo(json.dumps([dict(zip(keys, row, strict=True)) for row in rows], indent=2))
        return
    for code, name, summary, severity in rows:
        click.echo(f"{code}  {severity:<8} {name:<24} {summary}")


def run_lint(paths: list[Path], fmt: str) -> int:
    """Lint ``paths``; print problems (``text`` or ``json``); return 2 when any error, else 0.

    Raises:
        InputError: nothing to check under ``paths`` (exit 2, never "0 errors").
    """
    files, problems = lint_paths(paths)
    if not files:
        raise InputError(
            f"no runbooks under {', '.join(str(p) for p in paths)} (a runbook is a .md file; "
            "fragments starting with '_' are checked through the runbooks that include them)"
        )
    errors = sum(1 for p in problems if p.severity == "error")
    if fmt == "json":
        click.echo(
            json.dumps(
                [
                    {
                        "path": str(p.path),
                        "line": p.line,
                        "col": p.col,
                        "code": p.code,
                        "severity": p.severity,
                        "message": p.message,
                    }
                    for p in problems
                ],
                indent=2,
            )
        )
    else:
        for p in problems:
            click.echo(f"{p.path}:{p.line}:{p.col or 1}: {p.code} {p.message}")
        click.echo(
            f"{_count(len(files), 'runbook')} checked, {_count(errors, 'error')}, "
            f"{_count(len(problems) - errors, 'warning')}",
            err=True,
        )
    return 2 if errors else 0


def _count(n: int, word: str) -> str:
    """``1 runbook``, ``2 runbooks``."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
