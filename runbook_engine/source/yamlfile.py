"""Load YAML files keeping the line of every key (for file:line messages)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from runbook_engine.errors import InputError

KeyPath = tuple[Any, ...]


def not_utf8(data: bytes, start: int) -> str:
    """The message for ``data`` that is not UTF-8 from byte ``start`` on: where, and what to do."""
    column = start - (data.rfind(b"\n", 0, start) + 1) + 1
    return (
        f"file is not UTF-8 text: byte 0x{data[start]:02x} at column {column} of this line; "
        "save the file as UTF-8 (an editor's 'Save with encoding', or iconv -f cp1252 -t utf-8)"
    )


def load_yaml(path: Path, error: type[InputError] = InputError) -> tuple[Any, dict[KeyPath, int]]:
    """Read a YAML file.

    Args:
        path: The file.
        error: The error class to raise (a subclass of :class:`InputError`).

    Returns:
        ``(data, lines)``: the data (safe-loaded) and the 1-based line of each
        mapping key and list item, keyed by its path (``("roles", "dc", 0, "name")``).

    Raises:
        InputError: (or ``error``) the file is missing, unreadable or not YAML.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise error.single(f"file not found: {path}", path, 0, code="RB201") from None
    except OSError as exc:
        raise error.single(f"cannot read {path}: {exc}", path, 0, code="RB201") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise error.single(not_utf8(data, exc.start), path, line, code="RB201") from None
    from runbook_engine.source.frontmatter import compose, duplicate_key

    try:
        node, data = compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 0
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise error.single(f"invalid YAML: {problem}", path, line, code="RB202") from None
    lines: dict[KeyPath, int] = {}
    if node is not None:
        _index(node, (), lines)
    duplicate = duplicate_key(node, offset=1)
    if duplicate is not None:
        key, first, second = duplicate
        raise error.single(
            f"key {key!r} is given twice (lines {first} and {second}); keep one",
            path,
            second,
            code="RB202",
        )
    return data, lines


def _index(node: yaml.Node, prefix: KeyPath, lines: dict[KeyPath, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            path = (*prefix, key.value)
            lines[path] = key.start_mark.line + 1
            _index(value, path, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            path = (*prefix, index)
            lines[path] = item.start_mark.line + 1
            _index(item, path, lines)


def line_of(lines: dict[KeyPath, int], *path: Any) -> int:
    """Return the line of ``path``, or of its nearest known parent, or 0."""
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return 0
