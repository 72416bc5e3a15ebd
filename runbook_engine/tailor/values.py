"""Resolve a runbook's parameter values from an environment, flags and secret stores.

Every value is validated by its parameter's type before anything renders or
runs; all problems are collected and raised together.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runbook_engine.errors import EnvironmentFileError, Problem
from runbook_engine.source.model import Environment, Runbook, SecretRef
from runbook_engine.source.types import ControlCharacter, ValueProblem, check_characters, coerce


@dataclass(frozen=True, slots=True)
class Values:
    """Resolved, typed values for one runbook in one environment.

    Attributes:
        params: Parameter name to typed value (secrets hold a placeholder
            ``[secret:name]`` unless secrets were resolved).
        facts: Facts from the environment.
        secrets: Secret name to value; empty unless resolved for a run.
        sources: Parameter name to where its value came from
            (``environment``, ``default``, ``--set``, ``secret``).
    """

    params: dict[str, Any]
    facts: dict[str, Any]
    secrets: dict[str, str] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)


def resolve_values(
    runbook: Runbook,
    env: Environment | None,
    overrides: dict[str, str] | None = None,
    *,
    with_secrets: bool = False,
) -> Values:
    """Collect and type-check every parameter of ``runbook``.

    Args:
        runbook: The parsed runbook.
        env: The environment, or ``None`` (then only defaults and overrides count).
        overrides: ``--set name=value`` pairs from the command line.
        with_secrets: Fetch secret values (environment variable, prompt, keyring);
            otherwise secrets are placeholders.

    Raises:
        EnvironmentFileError: with every wrong-typed or missing value.
    """
    overrides = overrides or {}
    problems: list[Problem] = []
    params: dict[str, Any] = {}
    sources: dict[str, str] = {}
    secrets: dict[str, str] = {}
    env_values = env.values if env else {}
    for name in overrides:
        if name not in runbook.parameters:
            problems.append(
                Problem(
                    f"--set {name}: the runbook declares no parameter {name!r}",
                    None,
                    0,
                    code="RB220",
                )
            )
    for name, param in runbook.parameters.items():
        if param.secret:
            params[name] = f"[secret:{name}]"
            sources[name] = "secret"
            if with_secrets:
                value = _secret(name, env, runbook.path, param.line, problems)
                if value is not None:
                    secrets[name] = value
            continue
        if name in overrides:
            raw, source, path, line = overrides[name], "--set", None, 0
        elif name in env_values:
            raw, source = env_values[name], "environment"
            path, line = (env.path, env.lines.get(name, 0)) if env else (None, 0)
        elif env and name in env.facts:
            raw, source = env.facts[name], "environment"
            path, line = env.path, env.lines.get(name, 0)
        elif param.default is not None:
            params[name], sources[name] = param.default, "default"
            continue
        else:
            if param.required:
                where = f" in {env.path} under 'parameters'" if env else " with --env FILE"
                problems.append(
                    Problem(
                        f"parameter {name!r} ({param.type}) has no value: give it{where}",
                        runbook.path,
                        param.line,
                        code="RB221",
                    )
                )
            params[name], sources[name] = None, "unset"
            continue
        try:
            params[name] = coerce(
                param.type, raw, choices=param.choices, items=param.items, multiline=param.multiline
            )
            sources[name] = source
        except ValueProblem as exc:
            given = "given with --set" if source == "--set" else f"in environment {env.name!r}"
            problems.append(
                Problem(
                    f"parameter {name!r} ({param.type}), {given}: {exc}",
                    path,
                    line,
                    code="RB224" if isinstance(exc, ControlCharacter) else "RB222",
                    origin=f"--set {name}" if source == "--set" else None,
                )
            )
    if env is not None:
        problems.extend(_fact_problems(env, set(runbook.parameters)))
    if problems:
        raise EnvironmentFileError(problems[0].format(), problems)
    facts = dict(env.facts) if env else {}
    return Values(params, facts, secrets, sources)


def _fact_problems(env: Environment, parameters: set[str]) -> list[Problem]:
    """Facts (untyped, may span lines) hold no other control character (RB224)."""
    problems = []
    for name, fact in env.facts.items():
        if name in parameters:
            continue  # checked as the parameter's value
        for text in _texts(fact):
            try:
                check_characters(text, multiline=True)
            except ControlCharacter as exc:
                problems.append(
                    Problem(
                        f"fact {name!r}, in environment {env.name!r}: {exc}",
                        env.path,
                        env.lines.get(name, 0),
                        code="RB224",
                    )
                )
                break
    return problems


def _texts(value: Any) -> list[str]:
    """Every string in ``value`` (keys and values of mappings, items of lists)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [t for k, v in value.items() for t in (*_texts(k), *_texts(v))]
    if isinstance(value, (list, tuple)):
        return [t for item in value for t in _texts(item)]
    return []


def _secret(
    name: str, env: Environment | None, path: Path, line: int, problems: list[Problem]
) -> str | None:
    ref: SecretRef | None = env.secrets.get(name) if env else None
    if ref is None:
        ref = SecretRef(name, env=f"RUNBOOK_SECRET_{name.upper()}")
    return fetch_secret(
        ref, path if env is None else env.path, line if env is None else ref.line, problems
    )


def fetch_secret(
    ref: SecretRef, path: Path | None, line: int, problems: list[Problem]
) -> str | None:
    """Fetch the value a :class:`SecretRef` points to.

    Sources, in the order the reference names one: an environment variable,
    the system keyring (the ``keyring`` library), or a prompt on the terminal
    (refused without one).  Problems are appended, never raised; the value is
    never part of a message.
    """
    if ref.env:
        value = os.environ.get(ref.env)
        if not value:
            problems.append(
                Problem(
                    f"secret {ref.name!r}: environment variable {ref.env} is not "
                    "set; export it before running",
                    path,
                    line,
                    code="RB223",
                )
            )
        return value or None
    if ref.keyring:
        try:
            import keyring

            value = keyring.get_password(*ref.keyring)
        except Exception as exc:  # keyring backends raise their own types
            problems.append(
                Problem(
                    f"secret {ref.name!r}: keyring lookup failed ({type(exc).__name__})",
                    path,
                    line,
                    code="RB223",
                )
            )
            return None
        if value is None:
            problems.append(
                Problem(
                    f"secret {ref.name!r}: no keyring entry for service "
                    f"{ref.keyring[0]!r} user {ref.keyring[1]!r}",
                    path,
                    line,
                    code="RB223",
                )
            )
        return value
    if not sys.stdin.isatty():
        problems.append(
            Problem(
                f"secret {ref.name!r} is to be typed at a prompt, but there is no "
                "terminal; use {env: VAR} or a keyring entry",
                path,
                line,
                code="RB223",
            )
        )
        return None
    import getpass

    return getpass.getpass(f"Secret {ref.name}: ") or None
