"""Generic guides: a template shown without values, its expressions as placeholders."""

from __future__ import annotations

import jinja2


def generic_text(source: str, environment: jinja2.Environment) -> str:
    """Show a template without values: ``{{ x }}`` as ``‹x›``, conditions as markers.

    ``{% if c %}`` becomes ``*[if c:]*``, ``{% else %}`` ``*[otherwise:]*`` and
    ``{% endif %}`` ``*[end if]*``; raw blocks are kept literally.  ``environment`` is
    the tailoring environment (its delimiters; nothing is rendered or run).
    """
    out: list[str] = []
    expr: list[str] = []
    mode = None
    for _lineno, kind, value in environment.lex(source):
        if kind == "variable_begin":
            mode, expr = "var", []
        elif kind == "block_begin":
            mode, expr = "block", []
        elif kind == "variable_end":
            out.append("‹" + "".join(expr).strip() + "›")
            mode = None
        elif kind == "block_end":
            out.append(_marker("".join(expr).strip()))
            if value.endswith("\n"):
                out.append("\n")
            mode = None
        elif mode is not None:
            expr.append(value)
        elif kind == "data":
            out.append(value)
    return "".join(out)


def _marker(block: str) -> str:
    word, _, rest = block.partition(" ")
    return {
        "if": f"*[if {rest}:]*",
        "elif": f"*[else if {rest}:]*",
        "else": "*[otherwise:]*",
        "endif": "*[end if]*",
        "for": f"*[for {rest}:]*",
        "endfor": "*[end for]*",
    }.get(word, "")
