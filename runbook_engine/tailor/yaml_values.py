"""Values in YAML bodies (probe, registry, service, approval) as typed scalars.

The body is rendered with placeholders, composed into a node tree with PyYAML, and
every scalar node holding a placeholder gets its final value: the typed value when
the scalar is nothing but the placeholder (a string stays one string, a number a
number, a list a sequence), otherwise the node's text with each placeholder replaced
by the value's text.  Each such node is then written back in place as a JSON scalar
(JSON is YAML flow syntax) on the node's own lines, so a value can never add a key,
an item or a document, and line numbers of the rest of the body are kept for error
messages.  A placeholder outside any node (a comment) becomes a JSON string.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from runbook_engine.tailor.binding import BindingError, Slots, value_text
from runbook_engine.tailor.quoting import SecretValue


def _plain(value: Any) -> Any:
    if isinstance(value, SecretValue):
        return value.value if value.value is not None else str(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def bind_yaml(text: str, slots: Slots) -> str:
    """Return the YAML ``text`` with its placeholders replaced by typed scalars.

    Raises:
        BindingError: the body is not YAML even with placeholders for the values.
    """
    pattern = slots.pattern
    if not pattern.search(text):
        return text
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise BindingError(
            f"the YAML body is not valid with values in place: {exc}",
            (mark.line + 1) if mark is not None else 1,
        ) from None
    edits: list[tuple[int, int, str]] = []
    for node in _walk(root):
        if not isinstance(node, yaml.ScalarNode) or not pattern.search(node.value):
            continue
        whole = pattern.fullmatch(node.value)
        if whole:
            value = _plain(slots.items[int(whole.group(1))].value)
        else:
            value = pattern.sub(
                lambda m: value_text(_plain(slots.items[int(m.group(1))].value)), node.value
            )
        start, end = node.start_mark.index, node.end_mark.index
        lines = text.count("\n", start, end)
        edits.append((start, end, json.dumps(value, ensure_ascii=False) + "\n" * lines))
    out, pos = [], 0
    for start, end, new in sorted(edits):
        out += [text[pos:start], new]
        pos = end
    out.append(text[pos:])
    result = "".join(out)
    return pattern.sub(
        lambda m: json.dumps(value_text(_plain(slots.items[int(m.group(1))].value))), result
    )


def _walk(node: Any) -> list[Any]:
    found: list[Any] = []
    seen: set[int] = set()
    todo = [node] if node is not None else []
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        found.append(current)
        if isinstance(current, yaml.SequenceNode):
            todo += current.value
        elif isinstance(current, yaml.MappingNode):
            for key, value in current.value:
                todo += [key, value]
    return found
