"""YAML front matter: detected only when the first line is exactly ``---``.

A document that merely starts with ``-`` (a list), ``--8<--`` (a snippet
directive of another tool), ``----`` (a rule) or a template tag has no front
matter.  Invalid front matter is an error and is never rewritten.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from runbook_engine.errors import RunbookSyntaxError

_CLOSERS = ("---", "...")


def split_front_matter(text: str, path: Path) -> tuple[dict[str, Any] | None, int]:
    """Split the front matter off a runbook's text.

    Args:
        text: The whole file, newlines already normalised to LF.
        path: The file, for error messages.

    Returns:
        ``(mapping, body_line)``: the parsed YAML mapping, or ``None`` when the
        file has no front matter, and the 1-based line where the Markdown starts.

    Raises:
        RunbookSyntaxError: unclosed front matter, invalid YAML, or YAML that is
            not a mapping.
    """
    lines = text.split("\n")
    if not lines or lines[0].rstrip("\r") != "---":
        return None, 1
    for index in range(1, len(lines)):
        if lines[index].rstrip() in _CLOSERS:
            source = "\n".join(lines[1:index])
            return _load(source, path), index + 2
    raise RunbookSyntaxError.single(
        "front matter opened with '---' on line 1 is never closed; add a line '---' after it",
        path,
        1,
        code="RB102",
        source_line="---",
    )


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@lru_cache(maxsize=256)
def compose(source: str) -> tuple[yaml.Node | None, Any]:
    """Parse YAML ``source`` once into its node tree (for lines) and its data (safe types).

    Cached: the front matter is read by the parser and by the schema checks.
    Callers must not modify the returned data.

    Raises:
        yaml.YAMLError: the text is not YAML.
    """
    try:
        return _compose_with(_LOADER, source)
    except yaml.YAMLError:
        if _LOADER is yaml.SafeLoader:
            raise
        # libyaml's marks can point past the problem; the pure-Python parser's do not.
        return _compose_with(yaml.SafeLoader, source)


def _compose_with(loader_class: Any, source: str) -> tuple[yaml.Node | None, Any]:
    loader = loader_class(source)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()
    return node, data


def _load(source: str, path: Path) -> dict[str, Any]:
    try:
        data = compose(source)[1] if source.strip() else {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 2 if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        src = source.split("\n")
        source_line = src[line - 2] if 0 <= line - 2 < len(src) else None
        raise RunbookSyntaxError.single(
            f"invalid YAML front matter: {problem}",
            path,
            line,
            code="RB103",
            source_line=source_line,
        ) from None
    duplicate = duplicate_key(source)
    if duplicate is not None:
        key, first, second = duplicate
        raise RunbookSyntaxError.single(
            f"front-matter key {key!r} is given twice (lines {first} and {second}); keep one",
            path,
            second,
            code="RB103",
        )
    if not isinstance(data, dict):
        raise RunbookSyntaxError.single(
            f"front matter must be a YAML mapping (key: value), not {type(data).__name__}",
            path,
            2,
            code="RB103",
        )
    return data


def duplicate_key(source: str | yaml.Node | None, offset: int = 2) -> tuple[str, int, int] | None:
    """Return ``(key, first_line, second_line)`` of the first key repeated in one mapping.

    YAML 1.2 requires unique keys; PyYAML keeps the last silently, which would
    rewrite what the author wrote instead of reporting it.
    """
    if isinstance(source, str):
        try:
            root = compose(source)[0]
        except yaml.YAMLError:
            return None
    else:
        root = source
    for key, first, second in repeated_keys(root):
        return key, first + offset, second + offset
    return None


def repeated_keys(root: yaml.Node | None) -> Iterator[tuple[str, int, int]]:
    """Yield ``(key, first, second)`` for every key repeated in one mapping of ``root``;
    lines are 0-based inside the YAML text.  Each node is looked at once, so aliases
    cannot make the walk explode ("billion laughs").
    """
    stack = [root] if root is not None else []
    visited: set[int] = set()
    while stack:
        node = stack.pop()
        if id(node) in visited:
            continue
        visited.add(id(node))
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key, value in node.value:
                line = key.start_mark.line
                if isinstance(key, yaml.ScalarNode):
                    if key.value in seen:
                        yield key.value, seen[key.value], line
                    else:
                        seen[key.value] = line
                stack.append(value)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)


def key_lines(text: str, body_line: int) -> dict[str, int]:
    """Return the 1-based file line of each top-level and second-level front-matter key.

    Keys are given as ``"key"`` and ``"key.sub"``; used to point errors at the
    right line.  A best effort over the YAML node tree; unknown keys map to 2.
    """
    lines = text.split("\n")[1 : max(body_line - 2, 1)]
    result: dict[str, int] = {}
    try:
        node = compose("\n".join(lines))[0]
    except yaml.YAMLError:
        return result
    if not isinstance(node, yaml.MappingNode):
        return result
    for key, value in node.value:
        result[str(key.value)] = key.start_mark.line + 2
        if isinstance(value, yaml.MappingNode):
            for sub_key, sub_value in value.value:
                result[f"{key.value}.{sub_key.value}"] = sub_key.start_mark.line + 2
                if isinstance(sub_value, yaml.MappingNode):
                    for leaf, _ in sub_value.value:
                        result[f"{key.value}.{sub_key.value}.{leaf.value}"] = (
                            leaf.start_mark.line + 2
                        )
    return result
