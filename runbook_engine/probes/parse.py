"""Parse a ``probe`` step's YAML body into a :class:`~runbook_engine.probes.spec.ProbeSpec`.

The body is YAML (already rendered by jinja).  It is composed with PyYAML to
keep each key's line, validated with jsonschema against the kind's schema
(:mod:`runbook_engine.probes.schema`), and every problem is reported at the
runbook line of the offending key: the body's first line plus the key's
0-based line inside the body.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import yaml

from runbook_engine.errors import Problem
from runbook_engine.source.yamlbody import duplicate_keys, input_error, line_of, load_mapping

from .schema import SCHEMAS
from .spec import SPEC_TYPES, ProbeSpec, RelayTest

if TYPE_CHECKING:
    import jsonschema

#: Problem codes of probe bodies (``runbook lint`` shows them).
CODE_SYNTAX = "RB401"
CODE_KIND = "RB402"
CODE_SCHEMA = "RB403"

_TYPE_WORDS = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "object": "a mapping",
    "array": "a list",
}


def parse_probe(body: str, path: Path | None, line: int) -> ProbeSpec:
    """Parse and validate a probe body.

    Args:
        body: The step body, YAML, already rendered by jinja.
        path: The runbook file, for error messages.
        line: 1-based line of the body's first line in ``path``.

    Returns:
        The spec of the body's kind (:class:`TcpProbe`, :class:`TlsProbe`, ...),
        with defaults filled in.

    Raises:
        InputError: YAML syntax error, a body that is not a mapping, a missing or
            unknown ``kind``, an unknown key, a missing key, a value of the wrong
            type or range, an invalid regular expression or IP address.  Each
            problem names ``path`` and the line of the offending key; all
            problems of the body are reported together.
    """
    root, data = load_mapping(
        body,
        path,
        line,
        what="probe body",
        code=CODE_SYNTAX,
        hint="starting with `kind:` (tcp, tls, http, imap, smtp or dns)",
    )
    problems = list(duplicate_keys(root, path, line, CODE_SCHEMA))
    kind = data.get("kind")
    if not isinstance(kind, str) or kind not in SCHEMAS:
        problems.append(_kind_problem(kind, root, path, line))
        raise input_error(problems)
    problems += _schema_problems(kind, data, root, path, line)
    if not problems:
        problems += _address_problems(data, root, path, line)
    if problems:
        raise input_error(problems)
    return _build(kind, data, path, line)


def _kind_problem(kind: Any, root: yaml.MappingNode, path: Path | None, line: int) -> Problem:
    """Describe a missing or unknown ``kind``."""
    known = ", ".join(sorted(SCHEMAS))
    if kind is None:
        return Problem(f"probe body has no `kind:` (one of {known})", path, line, code=CODE_KIND)
    return Problem(
        f"unknown probe kind {kind!r} (expected one of {known})",
        path,
        line_of(root, ("kind",), line),
        code=CODE_KIND,
    )


def _schema_problems(
    kind: str, data: dict[str, Any], root: yaml.MappingNode, path: Path | None, line: int
) -> list[Problem]:
    """Validate ``data`` against the kind's schema; one problem per violation, by line."""
    import jsonschema  # about 70 ms: imported only when a probe body is parsed

    schema = SCHEMAS[kind]
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    problems: list[Problem] = []
    for error in validator.iter_errors(data):
        problems += _explain(kind, error, root, path, line)
    return sorted(problems, key=lambda p: (p.line, p.message))


def _explain(
    kind: str,
    error: jsonschema.ValidationError,
    root: yaml.MappingNode,
    path: Path | None,
    line: int,
) -> list[Problem]:
    """Turn one jsonschema error into problems with a readable message and a line."""
    where = tuple(error.absolute_path)
    name = ".".join(str(p) for p in where) or "probe body"
    at = line_of(root, where, line)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = sorted(error.schema.get("properties", {}))
        extra = [k for k in error.instance if k not in allowed]
        owner = f"{name} of the {kind} probe" if where else f"{kind} probe"
        return [
            Problem(
                f"unknown key {key!r} in {owner} (allowed: {', '.join(allowed)})",
                path,
                line_of(root, (*where, key), line),
                code=CODE_SCHEMA,
            )
            for key in extra
        ]
    if error.validator == "required":
        text = f"{kind} probe needs {error.message.replace(' is a required property', '')}"
        if where:
            text += f" in {name}"
    elif "propertyNames" in error.schema_path:
        at = line_of(root, (*where, error.instance), line)
        text = f"{name}: key {error.instance!r} is not {error.schema.get('description', 'allowed')}"
    elif "description" in error.schema:
        text = f"{name} must be {error.schema['description']}, not {error.instance!r}"
    elif error.validator == "type":
        text = f"{name} must be {_type_words(error.validator_value)}, not {error.instance!r}"
    elif error.validator == "enum":
        choices = ", ".join(str(c) for c in error.validator_value)
        text = f"{name} must be one of {choices}, not {error.instance!r}"
    else:
        text = f"{name}: {error.message}"
    return [Problem(text, path, at, code=CODE_SCHEMA)]


def _type_words(types: str | Iterable[str]) -> str:
    """Return ``"an integer"`` for ``"integer"``, ``"a string or a list"`` for two."""
    names = [types] if isinstance(types, str) else list(types)
    return " or ".join(_TYPE_WORDS.get(t, t) for t in names)


def _address_problems(
    data: dict[str, Any], root: yaml.MappingNode, path: Path | None, line: int
) -> list[Problem]:
    """Check a dns probe's ``expect`` values are IP addresses of the record's family,
    and an http probe's URL port is a number."""
    if data.get("kind") == "http":
        return _url_problems(data["url"], root, path, line)
    if data.get("kind") != "dns" or "expect" not in data:
        return []
    version = 6 if data.get("record", "A") == "AAAA" else 4
    at = line_of(root, ("expect",), line)
    record = data.get("record", "A")
    problems = []
    for value in _as_list(data["expect"]):
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            problems.append(f"expect: {value!r} is not an IP address")
            continue
        if address.version != version:
            problems.append(f"expect: {value} is not an IPv{version} address ({record} record)")
    return [Problem(text, path, at, code=CODE_SCHEMA) for text in problems]


def _url_problems(url: str, root: yaml.MappingNode, path: Path | None, line: int) -> list[Problem]:
    """Check the URL's port (``urlsplit`` raises on ``host:x`` and on ports above 65535)."""
    try:
        urlsplit(url).port  # noqa: B018 - the property validates
    except ValueError as exc:
        at = line_of(root, ("url",), line)
        return [Problem(f"url {url!r} has a bad port ({exc})", path, at, code=CODE_SCHEMA)]
    return []


def _as_list(value: Any) -> list[Any]:
    """Return ``value`` as a list (a scalar becomes a one-item list)."""
    return list(value) if isinstance(value, list) else [value]


def _build(kind: str, data: dict[str, Any], path: Path | None, line: int) -> ProbeSpec:
    """Build the spec dataclass from schema-valid data."""
    fields = {k: v for k, v in data.items() if k != "kind"}
    if "timeout" in fields:
        fields["timeout"] = float(fields["timeout"])
    if kind == "http":
        if "expect_status" in fields:
            fields["expect_status"] = tuple(_as_list(fields["expect_status"]))
        if "expect_headers" in fields:
            fields["expect_headers"] = {str(k): v for k, v in fields["expect_headers"].items()}
    elif kind == "dns" and "expect" in fields:
        fields["expect"] = tuple(_as_list(fields["expect"]))
    elif kind == "smtp" and "relay_test" in fields:
        fields["relay_test"] = RelayTest(**fields["relay_test"])
    return SPEC_TYPES[kind](**fields, path=path, line=line)
