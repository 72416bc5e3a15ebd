"""Front-matter schema: the keys a runbook (or fragment) may declare, checked.

A runbook's keys that are not ours (another tool's ``ms.author``, ``description``,
``weight``...) are kept as written in :attr:`MetaInfo.foreign` (guides and the site carry
them as metadata; ``runbook lint`` warns, RB320); a fragment allows only its own keys.

Problems are appended to a list, never raised one by one, so that one lint
run reports every problem of a file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runbook_engine.errors import Problem
from runbook_engine.source.frontmatter import key_lines
from runbook_engine.source.model import Parameter
from runbook_engine.source.types import TYPES, ValueProblem, coerce

RUNBOOK_KEYS = frozenset(
    {
        "id",
        "title",
        "version",
        "summary",
        "tags",
        "roles",
        "parameters",
        "references",
        "prerequisites",
        "approval",
        "lint",
    }
)
FRAGMENT_KEYS = frozenset({"parameters", "roles"})
PARAMETER_KEYS = frozenset(
    {
        "type",
        "description",
        "default",
        "example",
        "required",
        "secret",
        "choices",
        "items",
        "multiline",
    }
)
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ROLE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


@dataclass
class MetaInfo:
    """What the front matter declared (empty values when absent)."""

    id: str = ""
    title: str = ""
    version: str = ""
    summary: str = ""
    tags: tuple[str, ...] = ()
    roles: dict[str, str] = field(default_factory=dict)
    parameters: dict[str, Parameter] = field(default_factory=dict)
    references: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)
    foreign: dict[str, Any] = field(default_factory=dict)
    foreign_lines: dict[str, int] = field(default_factory=dict)


def read_meta(
    meta: dict[str, Any],
    text: str,
    body_line: int,
    path: Path,
    problems: list[Problem],
    allowed: frozenset[str] = RUNBOOK_KEYS,
) -> MetaInfo:
    """Check front matter ``meta`` against the schema and return what it declares.

    Args:
        meta: The parsed YAML mapping.
        text: The whole file (to find each key's line).
        body_line: First line after the front matter.
        path: The file, for problems.
        problems: Problems are appended here.
        allowed: Top-level keys allowed (fragments allow fewer).
    """
    lines = key_lines(text, body_line) if meta else {}
    info = MetaInfo()

    def add(message: str, key: str, code: str = "RB104") -> None:
        problems.append(Problem(message, path, lines.get(key, 2 if meta else 1), code=code))

    for key in meta:
        if allowed is RUNBOOK_KEYS and key not in allowed:
            # another tool's key (ms.author, description, weight...): kept, linted (RB320)
            info.foreign[str(key)] = meta[key]
            info.foreign_lines[str(key)] = lines.get(str(key), 2)
        elif key not in allowed:
            add(
                f"unknown front-matter key {key!r}; allowed: {', '.join(sorted(allowed))}", str(key)
            )
    for key in ("id", "title", "version", "summary"):
        if key in meta and key in allowed:
            value = meta[key]
            if not isinstance(value, (str, int, float)) or isinstance(value, bool):
                add(f"{key!r} must be text", key)
            else:
                setattr(info, key, str(value).strip())
    if info.id and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", info.id):
        add(f"id {info.id!r} must hold only letters, digits, '.', '-' and '_'", "id")
    info.tags = _strings(meta, "tags", add)
    info.references = _strings(meta, "references", add)
    roles = meta.get("roles") or {}
    if not isinstance(roles, dict):
        add("'roles' must map role names to descriptions", "roles")
        roles = {}
    for role, description in roles.items():
        if not _ROLE.match(str(role)):
            add(
                f"role name {role!r} must start with a letter (letters, digits, '-', '_')",
                f"roles.{role}",
            )
        if description is not None and not isinstance(description, (str, int, float)):
            add(f"role {role!r}: the description must be text", f"roles.{role}")
            description = None
        info.roles[str(role)] = "" if description is None else str(description)
    params = meta.get("parameters") or {}
    if not isinstance(params, dict):
        add("'parameters' must map names to declarations", "parameters")
        params = {}
    for name, decl in params.items():
        param = _parameter(str(name), decl, lines.get(f"parameters.{name}", 2), path, problems)
        if param is not None:
            info.parameters[param.name] = param
    info.extra = {k: meta[k] for k in ("approval", "lint") if k in meta and k in allowed}
    if "prerequisites" in meta and "prerequisites" in allowed:
        info.extra["prerequisites"] = _strings(meta, "prerequisites", add)
    approval = info.extra.get("approval")
    if approval is not None and approval not in ("required", "optional"):
        add("'approval' must be 'required' or 'optional'", "approval")
    return info


def _strings(meta: dict[str, Any], key: str, add: Any) -> tuple[str, ...]:
    value = meta.get(key)
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, (str, int, float)) for v in value):
        add(f"{key!r} must be a list of text items", key)
        return ()
    return tuple(str(v) for v in value)


def _parameter(
    name: str, decl: Any, line: int, path: Path, problems: list[Problem]
) -> Parameter | None:
    def add(message: str) -> None:
        problems.append(Problem(f"parameter {name!r}: {message}", path, line, code="RB105"))

    if not _NAME.match(name):
        add(
            "names must be identifiers (letters, digits, '_'), so templates can use {{ "
            + name
            + " }}"
        )
        return None
    if decl is None:
        decl = {}
    if isinstance(decl, str):
        decl = {"type": decl}
    if not isinstance(decl, dict):
        add("declare it as a mapping with 'type', 'description', ...")
        return None
    unknown = sorted(set(decl) - PARAMETER_KEYS)
    if unknown:
        add(
            f"unknown key(s) {', '.join(map(repr, unknown))}; "
            f"allowed: {', '.join(sorted(PARAMETER_KEYS))}"
        )
    type_name = str(decl.get("type", "string"))
    if type_name not in TYPES:
        add(f"unknown type {type_name!r}; types: {', '.join(sorted(TYPES))}")
        return None
    choices = decl.get("choices") or []
    if type_name == "choice" and (not isinstance(choices, list) or not choices):
        add("type 'choice' needs a non-empty 'choices' list")
        choices = []
    items = str(decl.get("items", "string"))
    if type_name == "list" and items not in TYPES:
        add(f"unknown item type {items!r}")
        items = "string"
    multiline = decl.get("multiline") is True
    if multiline and type_name != "string":
        add(f"'multiline' is for type 'string', not {type_name!r}")
        multiline = False
    for flag in ("required", "secret", "multiline"):
        if flag in decl and decl[flag] is not None and not isinstance(decl[flag], bool):
            add(f"{flag!r} must be true or false (a YAML boolean), not {decl[flag]!r}")
    description = decl.get("description", "")
    if description is not None and not isinstance(description, (str, int, float)):
        add("'description' must be text")
        description = ""
    secret = decl.get("secret") is True
    default = decl.get("default")
    if secret and default is not None:
        add("a secret has no default: secrets come from the environment, a prompt or a keyring")
        default = None
    if default is not None:
        try:
            default = coerce(
                type_name, default, choices=tuple(choices), items=items, multiline=multiline
            )
        except ValueProblem as exc:
            add(f"default: {exc}")
    required = decl.get("required")
    if not isinstance(required, bool):
        required = default is None
    return Parameter(
        name=name,
        type=type_name,
        description=str(description or ""),
        default=default,
        example=decl.get("example"),
        required=bool(required),
        secret=secret,
        choices=tuple(choices) if isinstance(choices, list) else (),
        items=items,
        line=line,
        multiline=multiline,
    )
