"""Parse a ``registry`` or ``service`` step body (YAML) into a spec, with file:line errors.

The body (already rendered by jinja) is composed with PyYAML to keep each key's
line, validated with jsonschema against :mod:`runbook_engine.declarative.schema`,
and every problem is reported at the runbook line of the offending key: the
body's first line plus the key's 0-based line inside the body.  All problems of
a body are reported together.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from runbook_engine.errors import Problem
from runbook_engine.source.yamlbody import duplicate_keys, input_error, line_of, load_mapping

from .schema import SCHEMAS
from .spec import DEFAULT_SERVICE_WAIT, ROOTS, DeclarativeSpec, RegistrySpec, RegValue, ServiceSpec

if TYPE_CHECKING:
    import jsonschema

#: Problem codes of declarative bodies (``runbook lint`` shows them).
CODE_SYNTAX = "RB411"
CODE_SCHEMA = "RB412"

_TYPE_WORDS = {
    "string": "a string",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "object": "a mapping",
    "array": "a list",
}
_LONG_TO_SHORT = {long: short for short, long in ROOTS.items()}
_EXAMPLES = {
    "registry": "key:, value:, type:, data: (or ensure: absent)",
    "service": "name: and start: and/or state:",
}


def parse_declarative(kind: str, body: str, path: Path | None, line: int) -> DeclarativeSpec:
    """Parse and validate the body of a ``registry`` or ``service`` step.

    Args:
        kind: ``"registry"`` or ``"service"``.
        body: The step body, YAML, already rendered by jinja.
        path: The runbook file, for error messages.
        line: 1-based line of the body's first line in ``path``.

    Returns:
        A :class:`RegistrySpec` or :class:`ServiceSpec` (key roots in short form,
        REG_BINARY data as upper-case hex, REG_MULTI_SZ data as a tuple).

    Raises:
        InputError: invalid YAML, a body that is not a mapping, a key given twice,
            an unknown or missing key, data that does not fit its registry type
            (a REG_DWORD that is not a 32-bit number, a REG_MULTI_SZ that is not a
            list...), a service step with neither ``start`` nor ``state``.
    """
    if kind not in SCHEMAS:
        raise ValueError(f"not a declarative kind: {kind!r}")
    root, data = load_mapping(
        body, path, line, what=f"{kind} body", hint=_EXAMPLES[kind], code=CODE_SYNTAX
    )
    problems = list(duplicate_keys(root, path, line, CODE_SCHEMA))
    problems += _schema_problems(kind, data, root, path, line)
    if kind == "service" and "start" not in data and "state" not in data:
        problems.append(
            Problem(
                "a service step needs start: (auto, demand, disabled), "
                "state: (running, stopped) or both",
                path,
                line,
                code=CODE_SCHEMA,
            )
        )
    if problems:
        raise input_error(problems)
    return _build(kind, data, path, line)


def _schema_problems(
    kind: str, data: dict[str, Any], root: yaml.MappingNode, path: Path | None, line: int
) -> list[Problem]:
    import jsonschema  # about 70 ms: imported only when a declarative body is parsed

    validator = jsonschema.Draft202012Validator(SCHEMAS[kind])
    problems: list[Problem] = []
    for error in validator.iter_errors(data):
        problems += _explain(kind, error, root, path, line)
    unique = {(p.line, p.message): p for p in problems}
    return [unique[k] for k in sorted(unique)]


def _explain(
    kind: str,
    error: jsonschema.ValidationError,
    root: yaml.MappingNode,
    path: Path | None,
    line: int,
) -> list[Problem]:
    """Turn one jsonschema error into problems with a readable message and a line."""
    if error.context:  # allOf/if-then: report the errors inside
        return [p for sub in error.context for p in _explain(kind, sub, root, path, line)]
    where = tuple(error.absolute_path)
    name = ".".join(str(p) for p in where) or f"{kind} body"
    at = line_of(root, where, line)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = sorted(error.schema.get("properties", {}))
        return [
            Problem(
                f"unknown key {key!r} in a {kind} step (allowed: {', '.join(allowed)})",
                path,
                line_of(root, (*where, key), line),
                code=CODE_SCHEMA,
            )
            for key in error.instance
            if key not in allowed
        ]
    if error.validator == "required":
        missing = error.message.replace(" is a required property", "")
        text = f"a {kind} step needs {missing} ({_EXAMPLES[kind]})"
    elif "description" in error.schema:
        text = f"{name} must be {error.schema['description']}, not {_shown(error.instance)}"
    elif error.validator == "type":
        types = error.validator_value
        names = [types] if isinstance(types, str) else types
        words = " or ".join(_TYPE_WORDS.get(t, t) for t in names)
        text = f"{name} must be {words}, not {_shown(error.instance)}"
    elif error.validator == "enum":
        text = (
            f"{name} must be one of {', '.join(map(str, error.validator_value))}, "
            f"not {_shown(error.instance)}"
        )
    else:
        text = f"{name}: {error.message}"
    return [Problem(text, path, at, code=CODE_SCHEMA)]


def _shown(value: Any) -> str:
    """A value as written in YAML: strings in double quotes without escaping backslashes."""
    if isinstance(value, str):
        return '"' + value + '"'
    if value is None:
        return "null (nothing)"
    return repr(value)


def _build(kind: str, data: dict[str, Any], path: Path | None, line: int) -> DeclarativeSpec:
    if kind == "service":
        return ServiceSpec(
            name=data["name"],
            start=data.get("start"),
            state=data.get("state"),
            display_name=data.get("display_name"),
            wait=float(data.get("wait", DEFAULT_SERVICE_WAIT)),
            path=path,
            line=line,
        )
    root, _, rest = data["key"].partition("\\")
    short = _LONG_TO_SHORT.get(root.upper(), root.upper())
    ensure = data.get("ensure", "present")
    want = None
    if ensure == "present":
        want = RegValue(data["type"], normalise_data(data["type"], data["data"]))
    return RegistrySpec(
        key=f"{short}\\{rest}", value=data["value"], ensure=ensure, want=want, path=path, line=line
    )


def normalise_data(reg_type: str, data: Any) -> str | int | tuple[str, ...]:
    """Return schema-valid ``data`` in the form :class:`RegValue` holds for ``reg_type``."""
    if reg_type == "REG_MULTI_SZ":
        return tuple(data)
    if reg_type == "REG_BINARY":
        return "".join(str(data).replace(",", " ").split()).upper()
    return data
