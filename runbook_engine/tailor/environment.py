"""Environment files: values, hosts per role, facts and secret references.

See DESIGN.md §3.  The file is checked for shape here; values are checked
against a runbook's parameter types by :func:`runbook_engine.tailor.values.resolve`.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from runbook_engine.errors import EnvironmentFileError, Problem
from runbook_engine.source.model import Environment, Host, SecretRef
from runbook_engine.source.types import ValueProblem, coerce
from runbook_engine.source.yamlfile import line_of, load_yaml
from runbook_engine.tailor.contacts import load_contacts
from runbook_engine.transports import TRANSPORTS, TransportInfo

TOP_KEYS = frozenset(
    {"name", "description", "parameters", "facts", "roles", "secrets", "approvers", "contacts"}
)
#: Keys of a host: its own, plus each registered transport's options mapping (``winrm``).
HOST_KEYS = frozenset(
    {"name", "address", "transport"} | {t.options_key for t in TRANSPORTS.values() if t.options_key}
)
SECRET_KEYS = frozenset({"env", "prompt", "keyring"})
_SECRETISH = re.compile(r"(?i)(password|passwd|secret|token|api[_-]?key|private[_-]?key)")


def load_environment(path: Path) -> Environment:
    """Load and check the environment file at ``path``.

    Returns:
        The environment.

    Raises:
        EnvironmentFileError: with every problem in the file (unknown keys, a
            role with no host, a bad address, an unknown transport, a secret
            written into the file...), each with its line.
    """
    data, lines = load_yaml(path, EnvironmentFileError)
    problems: list[Problem] = []

    def add(message: str, *key: Any, code: str = "RB210") -> None:
        problems.append(Problem(message, path, line_of(lines, *key), code=code))

    if not isinstance(data, dict):
        raise EnvironmentFileError.single("an environment file is a YAML mapping", path, 1)
    for key in data:
        if key not in TOP_KEYS:
            add(f"unknown key {key!r}; allowed: {', '.join(sorted(TOP_KEYS))}", key)
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        add("'name' is required: a short name for this environment", "name")
        name = path.stem
    values = _mapping(data, "parameters", add)
    facts = _mapping(data, "facts", add)
    for key, value in values.items():
        if _SECRETISH.search(str(key)) and value not in (None, ""):
            add(
                f"parameter {key!r} looks like a secret; secrets never go in an environment file: "
                f"name where it comes from under 'secrets' ({{env: VAR}}, {{prompt: true}} or "
                "{keyring: ...})",
                "parameters",
                key,
                code="RB215",
            )
    roles = _roles(data.get("roles"), lines, add)
    secrets = _secrets(data.get("secrets"), lines, add)
    approvers = _approvers(data.get("approvers"), add)
    contacts = load_contacts(data.get("contacts"), lines, add)
    if problems:
        raise EnvironmentFileError(problems[0].format(), problems)
    key_lines = {str(k): line_of(lines, "parameters", k) for k in values}
    key_lines.update({str(k): line_of(lines, "facts", k) for k in facts})
    return Environment(
        path=path,
        name=name.strip(),
        description=str(data.get("description") or ""),
        values=values,
        facts=facts,
        roles=roles,
        secrets=secrets,
        lines=key_lines,
        content_hash=hashlib.sha256(path.read_bytes()).hexdigest(),
        approvers=approvers,
        contacts=contacts,
    )


def _mapping(data: dict[str, Any], key: str, add: Any) -> dict[str, Any]:
    value = data.get(key) or {}
    if not isinstance(value, dict):
        add(f"{key!r} must be a mapping of name: value", key)
        return {}
    return {str(k): v for k, v in value.items()}


def _roles(raw: Any, lines: dict, add: Any) -> dict[str, tuple[Host, ...]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        add("'roles' must map role names to hosts", "roles")
        return {}
    roles: dict[str, tuple[Host, ...]] = {}
    for role, hosts in raw.items():
        if isinstance(hosts, dict):
            hosts = [hosts]
        if not hosts:
            add(
                f"role {role!r} has no host; give at least one host (use transport: manual "
                "for a host you reach by hand)",
                "roles",
                role,
                code="RB211",
            )
            continue
        if not isinstance(hosts, list):
            add(f"role {role!r}: expected a list of hosts", "roles", role)
            continue
        found = [h for i in range(len(hosts)) if (h := _host(role, i, hosts[i], lines, add))]
        roles[str(role)] = tuple(found)
    return roles


def _host(role: str, index: int, raw: Any, lines: dict, add: Any) -> Host | None:
    key = ("roles", role, index)
    if not isinstance(raw, dict):
        add(
            f"role {role!r} host {index + 1}: expected a mapping with name, address, transport",
            *key,
        )
        return None
    for k in raw:
        if k not in HOST_KEYS:
            add(
                f"role {role!r} host {index + 1}: unknown key {k!r}; allowed: "
                f"{', '.join(sorted(HOST_KEYS))}",
                *key,
                k,
            )
    transport = str(raw.get("transport", "local"))
    if transport not in TRANSPORTS:
        add(
            f"role {role!r} host {index + 1}: unknown transport {transport!r}; use one of "
            f"{', '.join(sorted(TRANSPORTS))}",
            *key,
            "transport",
            code="RB212",
        )
    address = raw.get("address", raw.get("name"))
    name = raw.get("name", address)
    if address is None:
        add(f"role {role!r} host {index + 1}: give an 'address' (host name, FQDN or IP)", *key)
        return None
    try:
        address = coerce("ip", address) if _looks_ip(address) else coerce("hostname", address)
    except ValueProblem as exc:
        add(f"role {role!r} host {index + 1}: address {exc}", *key, "address", code="RB213")
    options: dict[str, Any] = {}
    for info in TRANSPORTS.values():
        found = raw.get(info.options_key) if info.options_key else None
        if found is not None and not isinstance(found, dict):
            add(
                f"role {role!r} host {index + 1}: {info.options_key!r} must be a mapping of "
                "options",
                *key,
                info.options_key,
            )
        elif info.name == transport and info.options_key:
            options = dict(found or {})
            _check_options(info, options, lines, key, add)
    return Host(str(name), str(address), transport, options, line_of(lines, *key))


def _check_options(
    info: TransportInfo, options: dict[str, Any], lines: dict, key: tuple, add: Any
) -> None:
    """Report the problems the transport's validator finds in a host's options mapping."""
    option_key = info.options_key or ""
    try:
        problems = info.validate(options, None, line_of(lines, *key, option_key))
    except ImportError:  # the transport's library is optional at import time
        return
    for problem in problems:
        add(problem.message, *key, option_key, code="RB214")


def _looks_ip(value: Any) -> bool:
    return isinstance(value, str) and (":" in value or re.fullmatch(r"[\d.]+", value) is not None)


def _secrets(raw: Any, lines: dict, add: Any) -> dict[str, SecretRef]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        add("'secrets' must map names to where each secret comes from", "secrets")
        return {}
    out: dict[str, SecretRef] = {}
    for name, ref in raw.items():
        key = ("secrets", name)
        if not isinstance(ref, dict) or len(set(ref) & SECRET_KEYS) != 1 or set(ref) - SECRET_KEYS:
            add(
                f"secret {name!r}: give exactly one of {{env: VAR}}, {{prompt: true}} or "
                "{keyring: {service: S, username: U}}; the value itself never goes in this file",
                *key,
                code="RB215",
            )
            continue
        keyring = ref.get("keyring")
        if keyring is not None and not (
            isinstance(keyring, dict) and set(keyring) == {"service", "username"}
        ):
            add(f"secret {name!r}: keyring needs 'service' and 'username'", *key, code="RB215")
            continue
        out[str(name)] = SecretRef(
            name=str(name),
            env=ref.get("env"),
            prompt=bool(ref.get("prompt", False)),
            keyring=(str(keyring["service"]), str(keyring["username"])) if keyring else None,
            line=line_of(lines, *key),
        )
    return out


def _approvers(raw: Any, add: Any) -> dict[str, tuple[str, ...]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(isinstance(v, list) for v in raw.values()):
        add("'approvers' must map group names to lists of people", "approvers")
        return {}
    return {str(k): tuple(str(p) for p in v) for k, v in raw.items()}
