"""JSON Schemas (draft 2020-12, checked with jsonschema) of ``registry`` and ``service`` bodies.

Both schemas are closed (``additionalProperties: false``): a misspelt key is an
error, never a silently ignored setting.  A ``description`` says in words what a
value must be; :mod:`runbook_engine.declarative.parse` shows it in messages
("data must be a 32-bit number (0 to 4294967295), not 'abc'").

Data rules per registry type: REG_DWORD is 32 bits and REG_QWORD 64 bits
unsigned ("Registry Value Types", Microsoft Learn); reg.exe separates
REG_MULTI_SZ items with the two characters ``\\0`` (``reg add /?``), so an item
cannot hold them, and an empty item would end the list; a value passed on a
command line cannot hold a line break.
"""

from __future__ import annotations

from typing import Any

from .spec import REG_TYPES, ROOTS, START_MODES, STATES

_ONE_LINE = r"^[^\r\n\x00]*$"
_ROOT_WORDS = "|".join([*ROOTS, *ROOTS.values()])

_STRING: dict[str, Any] = {
    "type": "string",
    "pattern": _ONE_LINE,
    "description": 'a string on one line (quote numbers: "1")',
}
_MULTI: dict[str, Any] = {
    "type": "array",
    "items": {
        "type": "string",
        "minLength": 1,
        "pattern": r"^(?!.*\\0)[^\r\n\x00]*$",
        "description": "a non-empty string on one line, without the characters \\0",
    },
    "description": "a YAML list of strings (one per line of the multi-string value)",
}
_DWORD: dict[str, Any] = {
    "type": "integer",
    "minimum": 0,
    "maximum": 2**32 - 1,
    "description": "a 32-bit number (0 to 4294967295, or 0x0 to 0xFFFFFFFF)",
}
_QWORD: dict[str, Any] = {
    "type": "integer",
    "minimum": 0,
    "maximum": 2**64 - 1,
    "description": "a 64-bit number (0 to 18446744073709551615)",
}
_BINARY: dict[str, Any] = {
    "type": "string",
    "pattern": r"^\s*(?:[0-9A-Fa-f]{2}[ ,]?)*\s*$",
    "description": 'hex bytes, two digits each, e.g. "01 00 ff" or "0100ff"',
}
_DATA_BY_TYPE: dict[str, dict[str, Any]] = {
    "REG_SZ": _STRING,
    "REG_EXPAND_SZ": _STRING,
    "REG_MULTI_SZ": _MULTI,
    "REG_DWORD": _DWORD,
    "REG_QWORD": _QWORD,
    "REG_BINARY": _BINARY,
}
_LEFT_OUT: dict[str, Any] = {"not": {}, "description": "left out when ensure is absent"}


def _when_type(reg_type: str) -> dict[str, Any]:
    return {
        "if": {"properties": {"type": {"const": reg_type}}, "required": ["type"]},
        "then": {"properties": {"data": _DATA_BY_TYPE[reg_type]}},
    }


REGISTRY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["key", "value"],
    "properties": {
        "key": {
            "type": "string",
            "pattern": rf"^(?i:{_ROOT_WORDS})(\\[^\\\r\n\x00]+)+$",
            "description": "a registry key under a root (HKLM, HKCU, HKCR, HKU, HKCC or the "
            "HKEY_ form), subkeys separated by single backslashes, no trailing "
            "backslash",
        },
        "value": {
            "type": "string",
            "pattern": _ONE_LINE,
            "description": 'a value name on one line ("" for the key\'s default value)',
        },
        "type": {"enum": list(REG_TYPES)},
        "data": {},
        "ensure": {"enum": ["present", "absent"]},
    },
    "additionalProperties": False,
    "allOf": [
        {
            "if": {"properties": {"ensure": {"const": "absent"}}, "required": ["ensure"]},
            "then": {"properties": {"type": _LEFT_OUT, "data": _LEFT_OUT}},
            "else": {"required": ["type", "data"]},
        },
        *(_when_type(t) for t in REG_TYPES),
    ],
}

SERVICE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {
            "type": "string",
            "pattern": r'^[^/\\"\r\n\x00]{1,256}$',
            "description": "a service name as sc takes it (the key name, e.g. IMAP4Svc; "
            '1-256 characters, no / \\ or ")',
        },
        "start": {"enum": list(START_MODES)},
        "state": {"enum": list(STATES)},
        "display_name": {"type": "string", "minLength": 1, "pattern": _ONE_LINE},
        "wait": {
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": 3600,
            "description": "a number of seconds above 0, at most 3600",
        },
    },
    "additionalProperties": False,
}

SCHEMAS: dict[str, dict[str, Any]] = {"registry": REGISTRY_SCHEMA, "service": SERVICE_SCHEMA}
