"""Template checks shared by tailoring: syntax, undeclared names, internals, and the
slot rewrite that turns every expression output into a placeholder.

Every problem is appended to a list with the runbook's file and line, so one call
reports all of them (RB130 syntax, RB132 undeclared name, RB134 internals).
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

SLOTS = "_rb_slots"
TEMPLATE_NAME = "<template>"


def slot_outputs(ast: nodes.Template) -> nodes.Template:
    """Route every expression output of ``ast`` through ``_rb_slots.put`` (value,
    parameter name, ``| inline``, line), which returns a placeholder token."""
    for output in ast.find_all(nodes.Output):
        new: list[nodes.Node] = []
        for child in output.nodes:
            if isinstance(child, nodes.TemplateData):
                new.append(child)
                continue
            inline = isinstance(child, nodes.Filter) and child.name == "inline"
            inner = child.node if inline and isinstance(child, nodes.Filter) else child
            name = inner.name if isinstance(inner, nodes.Name) else None
            call = nodes.Call(
                nodes.Getattr(nodes.Name(SLOTS, "load"), "put", "load"),
                [inner, nodes.Const(name), nodes.Const(inline), nodes.Const(child.lineno)],
                [],
                None,
                None,
                lineno=child.lineno,
            )
            new.append(call)
        output.nodes = new
    return ast


def check_names(
    source: str, path: Path, line: int, known: set[str], problems: list[Problem]
) -> nodes.Template | None:
    """Parse ``source``; report syntax errors and undefined names; return the AST or ``None``."""
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


def template_line(exc: BaseException) -> int:
    lineno = getattr(exc, "lineno", None)
    if lineno:
        return int(lineno)
    tb = exc.__traceback__
    found = 1
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == TEMPLATE_NAME:
            found = tb.tb_lineno
        tb = tb.tb_next
    return found
