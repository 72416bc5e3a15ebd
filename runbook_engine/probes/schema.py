"""JSON Schemas of the probe kinds (JSON Schema draft 2020-12, checked with jsonschema).

One schema per kind; every schema is closed (``additionalProperties: false``)
so a misspelt key is an error rather than a silently ignored expectation.
"""

from __future__ import annotations

from typing import Any

from .spec import TLS_VERSIONS

# A "description" says, in words, what a value must be: parse.py shows it in
# error messages ("port must be a TCP port (1-65535), not 0").
_HOST: dict[str, Any] = {
    "type": "string",
    "pattern": r"^[^\s/]+$",
    "description": "a host name or IP address (no spaces, no slashes)",
}
_PORT: dict[str, Any] = {
    "type": "integer",
    "minimum": 1,
    "maximum": 65535,
    "description": "a TCP port (1-65535)",
}
_TIMEOUT: dict[str, Any] = {
    "type": "number",
    "exclusiveMinimum": 0,
    "maximum": 3600,
    "description": "a number of seconds above 0, at most 3600",
}
_PATH: dict[str, Any] = {"type": "string", "minLength": 1, "description": "a file path"}
_REGEX: dict[str, Any] = {
    "type": "string",
    "minLength": 1,
    "format": "regex",
    "description": "a regular expression (Python re syntax)",
}
_EMAIL: dict[str, Any] = {
    "type": "string",
    "pattern": r"^[^@\s<>]+@[^@\s<>]+$",
    "description": "an e-mail address (user@domain, no angle brackets)",
}
_STATUS: dict[str, Any] = {"type": "integer", "minimum": 100, "maximum": 599}
_ADDRESS: dict[str, Any] = {"type": "string", "minLength": 2}


def _closed(required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    """Return a closed object schema with ``kind`` and ``timeout`` added."""
    props = {"kind": {"type": "string"}, "timeout": _TIMEOUT, **properties}
    return {
        "type": "object",
        "required": ["kind", *required],
        "properties": props,
        "additionalProperties": False,
    }


SCHEMAS: dict[str, dict[str, Any]] = {
    "tcp": _closed(
        ["host", "port"],
        {
            "host": _HOST,
            "port": _PORT,
            "expect": {"enum": ["open", "closed"]},
            "connect": _HOST,
        },
    ),
    "tls": _closed(
        ["host"],
        {
            "host": _HOST,
            "port": _PORT,
            "server_name": _HOST,
            "ca_file": _PATH,
            "min_days_valid": {
                "type": "integer",
                "minimum": 0,
                "description": "a number of days (0 or more)",
            },
            "min_version": {"enum": list(TLS_VERSIONS)},
            "connect": _HOST,
        },
    ),
    "http": _closed(
        ["url"],
        {
            "url": {
                "type": "string",
                "pattern": r"^[Hh][Tt][Tt][Pp][Ss]?://[^/\s]+",
                "description": "an http:// or https:// URL with a host",
            },
            "method": {"enum": ["GET", "HEAD"]},
            "expect_status": {
                "oneOf": [_STATUS, {"type": "array", "items": _STATUS, "minItems": 1}],
                "description": "an HTTP status code (100-599) or a list of them",
            },
            "expect_headers": {
                "type": "object",
                "propertyNames": {
                    "pattern": r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$",
                    "description": "an HTTP header name (RFC 9110 token)",
                },
                "additionalProperties": _REGEX,
            },
            "expect_body": _REGEX,
            "ca_file": _PATH,
            "verify": {"type": "boolean"},
            "connect": _HOST,
        },
    ),
    "imap": _closed(
        ["host"],
        {
            "host": _HOST,
            "port": _PORT,
            "tls": {"enum": ["implicit", "starttls", "none"]},
            "expect_banner": _REGEX,
            "ca_file": _PATH,
            "server_name": _HOST,
            "connect": _HOST,
        },
    ),
    "smtp": _closed(
        ["host"],
        {
            "host": _HOST,
            "port": _PORT,
            "starttls": {"type": "boolean"},
            "expect_banner": _REGEX,
            "ca_file": _PATH,
            "ehlo_name": _HOST,
            "relay_test": {
                "type": "object",
                "required": ["outside_from", "outside_to", "local_to"],
                "properties": {
                    "outside_from": _EMAIL,
                    "outside_to": _EMAIL,
                    "local_to": _EMAIL,
                },
                "additionalProperties": False,
            },
            "server_name": _HOST,
            "connect": _HOST,
        },
    ),
    "dns": _closed(
        ["name"],
        {
            "name": _HOST,
            "expect": {
                "oneOf": [_ADDRESS, {"type": "array", "items": _ADDRESS, "minItems": 1}],
                "description": "an IP address or a list of them",
            },
            "record": {"enum": ["A", "AAAA"]},
        },
    ),
}
