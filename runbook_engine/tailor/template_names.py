"""Check a template before rendering: syntax, sandbox reach and undefined names.

Every problem of a template is collected (each with the runbook's file and line), so
one call reports them all; rendering happens only for a template that passes.
"""

from __future__ import annotations

from pathlib import Path

import jinja2
from jinja2 import nodes

from runbook_engine.errors import Problem
from runbook_engine.tailor.sandbox import (
    SANDBOX_CODE,
    internals_message,
    parse_template,
    reaches_internals,
)


def check_names(
    source: str, path: Path, line: int, known: set[str], problems: list[Problem]
) -> nodes.Template | None:
    """Parse ``source``; report syntax errors and undefined names; return the AST or ``None``.

    Args:
        source: The template text (a step body, a prose stretch or a condition).
        path: The runbook file, for messages.
        line: The file line of ``source``'s first line.
        known: Names the template may read (parameters, roles, facts, helpers).
        problems: Receives one :class:`Problem` per syntax error (RB130), sandbox
            reach (RB134) or undefined name (RB132).

    Returns:
        The parsed template, or ``None`` when any problem was found.
    """
    try:
        ast = parse_template(source)
    except jinja2.TemplateSyntaxError as exc:
        src = source.split("\n")
        problems.append(
            Problem(
                f"template syntax error: {exc.message}; a {{% if %}} must close before the "
                "next step "
                "(use when= on steps); write literal braces as {% raw %}...{% endraw %}",
                path,
                line + (exc.lineno or 1) - 1,
                code="RB130",
                source_line=src[exc.lineno - 1] if exc.lineno and exc.lineno <= len(src) else None,
            )
        )
        return None
    unsafe = reaches_internals(ast)
    for lineno, names in unsafe:
        problems.append(
            Problem(
                internals_message(names),
                path,
                line + lineno - 1,
                code=SANDBOX_CODE,
                source_line=source.split("\n")[lineno - 1],
            )
        )
    missing = _undeclared(ast) - known
    if not missing:
        return None if unsafe else ast
    for node in ast.find_all(nodes.Name):
        if node.ctx == "load" and node.name in missing:
            missing.discard(node.name)
            problems.append(
                Problem(
                    f"undefined parameter {node.name!r}: declare it under 'parameters' in the "
                    "front "
                    "matter (or give it as a fact in the environment)",
                    path,
                    line + node.lineno - 1,
                    code="RB132",
                    source_line=source.split("\n")[node.lineno - 1],
                )
            )
    return None


def _undeclared(ast: nodes.Template) -> set[str]:
    """Names a template reads but never sets (``{% set %}``, loop targets, macro arguments).

    A lighter stand-in for ``jinja2.meta.find_undeclared_variables``, which runs
    the compiler's frame analysis; here a name set anywhere counts as declared.
    """
    loaded: set[str] = set()
    stored: set[str] = set()
    for node in ast.find_all(nodes.Name):
        (loaded if node.ctx == "load" else stored).add(node.name)
    return loaded - stored - {"loop", "caller", "varargs", "kwargs"}
