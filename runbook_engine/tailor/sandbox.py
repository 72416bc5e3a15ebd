"""The sandbox runbook templates render in: runbook text is data, never code.

Prose, step bodies and ``when=`` conditions come from whoever wrote the runbook,
which may be someone who sent it to you.  They render in jinja2's
:class:`~jinja2.sandbox.ImmutableSandboxedEnvironment`: no attribute that starts
with ``_`` (``__class__``, ``__globals__``, ``__init__`` ...), no internals of
functions, types or frames, no method that changes a list, dict or set, and
``str.format`` goes through the same checks.  On top of that:

- the default globals that serve no runbook and have served exploits
  (``cycler``, ``joiner``, ``lipsum``) are removed; ``range``, ``dict`` and
  ``namespace`` stay (sandboxed: ``range`` is capped at 100 000 items);
- :func:`reaches_internals` finds ``x.__attr``, ``x['__attr']`` and
  ``x | attr('__attr')`` statically, so ``runbook lint`` and generic guides
  (which evaluate nothing) report them too (RB134).

A :class:`~jinja2.exceptions.SecurityError` at render time is reported as RB134
by :mod:`runbook_engine.tailor.tailoring`, with the runbook's file and line.

:func:`parse_template` parses each template text once per process: tailoring and
``runbook lint``'s rules share the syntax tree (issue 12, part 4).
"""

from __future__ import annotations

import functools
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

#: Default jinja2 globals removed from runbook templates.
REMOVED_GLOBALS = ("cycler", "joiner", "lipsum")

#: Problem code of a template that reaches for Python internals.
SANDBOX_CODE = "RB134"


def make_environment() -> ImmutableSandboxedEnvironment:
    """Build the environment runbook text renders in (strict, sandboxed, ``{## ##}`` comments)."""
    env = ImmutableSandboxedEnvironment(
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
        # Jinja's default comment marker {# would swallow Pandoc attribute lists ({#id}) in prose.
        comment_start_string="{##",
        comment_end_string="##}",
    )
    for name in REMOVED_GLOBALS:
        env.globals.pop(name, None)
    env.filters["inline"] = _inline
    env.filters["raw"] = _removed_raw
    return env


def _inline(value: Any) -> Any:
    """``{{ v | inline }}``: the value typed into the command itself (tailoring binds it)."""
    return value


def _removed_raw(value: Any) -> Any:
    raise jinja2.TemplateError(
        "'| raw' is gone: values reach commands as environment variables, so they need no "
        "quoting; write {{ v }} (or {{ v | inline }} for a hostname, fqdn, ip, port, int...)"
    )


_PARSER = make_environment()  # parse only: every environment above shares its grammar


def parse_template(source: str) -> nodes.Template:
    """Return the syntax tree of runbook template ``source``, parsed once per process.

    The tree is shared by every caller (tailoring, lint rules): never change it;
    ``copy.deepcopy`` it first (compiling folds constants in place).

    Raises:
        jinja2.TemplateSyntaxError: ``source`` is not a valid template (the same
            error again for the same text, without parsing again).
    """
    parsed = _parse_cached(source)
    if isinstance(parsed, jinja2.TemplateSyntaxError):
        raise parsed.with_traceback(None)
    return parsed


@functools.lru_cache(maxsize=8192)
def _parse_cached(source: str) -> nodes.Template | jinja2.TemplateSyntaxError:
    try:
        return _PARSER.parse(source)
    except jinja2.TemplateSyntaxError as exc:
        return exc


def reaches_internals(ast: nodes.Template) -> list[tuple[int, list[str]]]:
    """Return ``(template line, names)`` for lines that read attributes or keys starting with ``_``.

    Catches ``x.__class__``, ``x['__globals__']`` and ``x | attr('__init__')``
    (names in the order they are read); anything computed at render time is
    left to the sandbox.
    """
    found: dict[int, list[str]] = {}
    for node in ast.find_all((nodes.Getattr, nodes.Getitem, nodes.Filter)):
        name: object = None
        if isinstance(node, nodes.Getattr):
            name = node.attr
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            name = node.arg.value
        elif isinstance(node, nodes.Filter) and node.name == "attr" and node.args:
            first = node.args[0]
            name = first.value if isinstance(first, nodes.Const) else None
        if isinstance(name, str) and name.startswith("_"):
            found.setdefault(node.lineno, []).insert(0, name)
    return sorted(found.items())


def internals_message(names: list[str]) -> str:
    """The message of RB134 for attributes or keys ``names``."""
    return (
        f"template reaches for Python internals ({', '.join(names)}): runbook templates are "
        "sandboxed and may read only values, their items and public attributes; "
        "nothing in a runbook is run while rendering or planning"
    )
