"""YAML bodies of declarative steps (``probe``, ``registry``, ``service``, ``approval``).

One reader for all of them: the body is composed once (node tree for lines, data
for values), must be a mapping, and every key given twice is a problem; lines
are file lines (the body's first line plus the line inside the body).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from runbook_engine.errors import InputError, Problem
from runbook_engine.source.frontmatter import compose, repeated_keys


def input_error(problems: list[Problem]) -> InputError:
    """Return the :class:`InputError` carrying ``problems`` (message: all of them)."""
    return InputError("\n".join(p.format() for p in problems), problems)


def load_mapping(
    body: str, path: Path | None, line: int, *, what: str, hint: str, code: str
) -> tuple[yaml.MappingNode, dict[Any, Any]]:
    """Read a YAML body that must be a mapping.

    Args:
        body: The body (already rendered).
        path: The runbook, for messages.
        line: 1-based file line of the body's first line.
        what: What the body is, for messages (``"probe body"``).
        hint: What a good body looks like, shown when it is not a mapping.
        code: Problem code for syntax errors.

    Returns:
        ``(root, data)``: the node tree and the loaded data.

    Raises:
        InputError: invalid YAML (at its line), or not a mapping.
    """
    try:
        root, data = compose(body)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = line + (mark.line if mark else 0)
        message = f"{what} is not valid YAML: {exc.problem or exc}"
        raise input_error([Problem(message, path, where, code=code)]) from None
    except yaml.YAMLError as exc:
        message = f"{what} is not valid YAML: {exc}"
        raise input_error([Problem(message, path, line, code=code)]) from None
    if not isinstance(root, yaml.MappingNode) or not isinstance(data, dict):
        at = line + (root.start_mark.line if root is not None else 0)
        raise input_error([Problem(f"{what} must be a YAML mapping ({hint})", path, at, code=code)])
    return root, data


def duplicate_keys(node: yaml.Node, path: Path | None, line: int, code: str) -> Iterator[Problem]:
    """Yield a problem for every key given twice in one mapping (PyYAML keeps the last)."""
    for key, first, second in repeated_keys(node):
        yield Problem(
            f"key {key!r} given twice (first on line {line + first})",
            path,
            line + second,
            code=code,
        )


def line_of(root: yaml.Node, where: tuple[Any, ...], line: int) -> int:
    """Return the file line of the item at ``where`` (a key path, list indexes as ints) in the
    body starting on ``line``, or of its deepest existing parent."""
    node: yaml.Node = root
    found = node.start_mark.line
    for step in where:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == str(step):
                    found, child = key.start_mark.line, value
                    break
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(step, int) and step < len(node.value)
        ):
            child = node.value[step]
            found = child.start_mark.line
        if child is None:
            break
        node = child
    return line + found
