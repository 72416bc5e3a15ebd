"""RB304: a parameter declared but never used.

A parameter is used when a template of the runbook or of one of its fragments
names it: prose, step bodies (unless ``template=false``) and ``when=``
expressions.  Names are found in each template's syntax tree: every name read
and set nowhere in it (the rule tailoring applies for RB132), without
``jinja2.meta.find_undeclared_variables``, whose compiler pass cost as much as the
parse itself; a template with an unknown filter or test counts as naming nothing,
as that pass would refuse it.  (A name used but not declared is a tailoring error,
RB132, reported by :func:`runbook_engine.tailor.tailoring.tailor`.)
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path

import jinja2
from jinja2 import nodes

from runbook_engine.errors import InputError, Problem
from runbook_engine.lint.rules.context import Finding, LintContext
from runbook_engine.source.frontmatter import split_front_matter
from runbook_engine.source.model import Prose
from runbook_engine.tailor.literal import protect
from runbook_engine.tailor.sandbox import make_environment, parse_template

_JINJA = make_environment()  # its filters and tests: the ones tailoring knows


@functools.lru_cache(maxsize=4096)
def template_names(source: str) -> frozenset[str]:
    """Return the names a Jinja template reads (empty on a syntax error, reported elsewhere).

    Cached by source text: fragments and conditions repeat across a library.  The
    syntax tree is tailoring's (:func:`~runbook_engine.tailor.sandbox.parse_template`):
    lint parses each template once.
    """
    if "{" not in source:
        return frozenset()
    try:
        ast = parse_template(source)
    except jinja2.TemplateSyntaxError:
        return frozenset()
    loaded: set[str] = set()
    stored: set[str] = set()
    for node in ast.find_all((nodes.Name, nodes.Filter, nodes.Test)):
        if isinstance(node, nodes.Name):
            (loaded if node.ctx == "load" else stored).add(node.name)
        elif node.name not in (_JINJA.filters if isinstance(node, nodes.Filter) else _JINJA.tests):
            return frozenset()  # the compiler refuses it (reported by tailoring when rendered)
    return frozenset(loaded - stored - {"loop", "caller", "varargs", "kwargs"})


def used_names(ctx: LintContext) -> set[str]:
    """Return every name read by a template of the runbook (fragments included)."""
    used: set[str] = set()
    rb = ctx.runbook
    known = set(rb.parameters) | {"environment", "roles"} | set(_JINJA.globals)
    for seg in rb.segments:
        if isinstance(seg, Prose):  # braces that are not ours are no use (tailor/literal.py)
            used |= template_names(protect(seg.text, known, strict=False, blocks=True).text)
            continue
        if seg.template:
            used |= template_names(protect(seg.body, known, strict=rb.templated).text)
        if seg.when:
            used |= template_names("{{ " + seg.when + " }}")
    return used


def unused_parameter(ctx: LintContext) -> Iterator[Finding]:
    """RB304: yield each declared parameter no template reads, at its declaration."""
    declared = ctx.runbook.parameters
    if not declared:
        return
    used = used_names(ctx)
    unused = [name for name in declared if name not in used]
    for name in unused:
        path = _declaring_file(ctx, name)
        line = declared[name].line
        lines = ctx.source_lines(path)
        source = lines[line - 1] if 0 < line <= len(lines) else None
        col = len(source) - len(source.lstrip()) + 1 if source else 0
        yield Finding(
            Problem(
                f"parameter {name!r} is declared but never used: reference it as {{{{ {name} }}}} "
                "in prose, a step body or a when= condition, or remove the declaration",
                path,
                line,
                col,
                "RB304",
                "warning",
                source,
            )
        )


def _declaring_file(ctx: LintContext, name: str) -> Path:
    """Return the file whose front matter declares ``name`` (the runbook first, then fragments)."""
    paths = [ctx.runbook.path]
    for seg in ctx.runbook.segments:
        if seg.span.path not in paths:
            paths.append(seg.span.path)
    for path in paths:
        try:
            mapping, _ = split_front_matter("\n".join(ctx.source_lines(path)), path)
        except InputError:
            continue
        params = (mapping or {}).get("parameters")
        if isinstance(params, dict) and name in params:
            return path
    return ctx.runbook.path
