"""Load everything a command needs: runbook, environment, values, tailored runbook.

Validation happens here, before anything renders or runs; every problem of
the runbook, then of the environment and values, is raised at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from runbook_engine.errors import InputError, Problem
from runbook_engine.source.model import Environment, Runbook
from runbook_engine.source.parser import parse_file
from runbook_engine.tailor.environment import load_environment
from runbook_engine.tailor.tailoring import TailoredRunbook, tailor
from runbook_engine.tailor.values import Values, resolve_values


@dataclass(frozen=True, slots=True)
class Loaded:
    """A runbook ready for a command.

    Attributes:
        runbook: The parsed runbook.
        environment: The environment (``None`` for the generic runbook).
        values: Resolved values (``None`` when generic).
        tailored: The runbook tailored for use (with secrets when loaded ``with_secrets``).
        shown: With ``with_secrets``: the same runbook as shown to people (secrets as
            placeholders), tailored from the same parse and values; else ``None``.
    """

    runbook: Runbook
    environment: Environment | None
    values: Values | None
    tailored: TailoredRunbook
    shown: TailoredRunbook | None = None


def load(
    runbook_path: Path,
    env_path: Path | None,
    overrides: dict[str, str] | None = None,
    *,
    with_secrets: bool = False,
    need_env: bool = False,
) -> Loaded:
    """Parse, validate and tailor.

    Args:
        runbook_path: The runbook file.
        env_path: The environment file, or ``None`` for the generic runbook.
        overrides: ``--set`` values.
        with_secrets: Resolve secrets now (for a run).
        need_env: For a run or a plan: refuse a file that is not a runbook or has no
            steps, and raise when ``env_path`` is ``None`` but the runbook needs one
            (required parameters without defaults, or steps that target roles).

    Raises:
        InputError: any problem in the runbook, the environment or the values.
    """
    if need_env:
        _check_runbook_file(runbook_path)
    runbook = parse_file(runbook_path)
    if need_env and not runbook.steps:
        raise InputError(
            f"{runbook_path}: no steps to run (a step is a fenced block with an id, for "
            "example ```sh {#restart-service}); nothing was run"
        )
    env = load_environment(env_path) if env_path is not None else None
    if env is None and need_env:
        _check_envless(runbook)
        values = resolve_values(runbook, None, overrides, with_secrets=with_secrets)
        return _loaded(runbook, None, _NO_ENV(runbook), values, with_secrets)
    if env is None and not overrides:
        return Loaded(runbook, None, None, tailor(runbook, None, None))
    values = resolve_values(runbook, env, overrides, with_secrets=with_secrets)
    target_env = env if env is not None else _NO_ENV(runbook)
    return _loaded(runbook, env, target_env, values, with_secrets)


#: File types people give by mistake where a runbook belongs, and what to do instead.
_NOT_RUNBOOKS = {
    ".ipynb": "is a notebook: run the runbook it was rendered from (`runbook run RUNBOOK.md` "
    "or `runbook notebook run RUNBOOK.md`)",
    ".yaml": "is YAML, not a runbook: an environment file goes after --env, an answers file "
    "after --answers",
    ".yml": "is YAML, not a runbook: an environment file goes after --env, an answers file "
    "after --answers",
    ".json": "is JSON, not a runbook (Markdown)",
}


def _check_runbook_file(path: Path) -> None:
    """Refuse a file that is clearly not a runbook before reading it as Markdown.

    Raises:
        InputError: a notebook, YAML or JSON file.
    """
    hint = _NOT_RUNBOOKS.get(path.suffix.lower())
    if hint is not None:
        raise InputError(f"{path} {hint}; nothing was run")


def _loaded(
    runbook: Runbook, env: Environment | None, target: Environment, values: Values, secrets: bool
) -> Loaded:
    """Tailor once for use and, when secrets are in play, once more for people."""
    tailored = tailor(runbook, target, values, secrets=secrets)
    shown = tailor(runbook, target, values) if secrets else None
    return Loaded(runbook, env, values, tailored, shown)


def _check_envless(runbook: Runbook) -> None:
    problems = [
        Problem(
            f"step {s.id!r} targets role {s.target!r}: give an environment with --env FILE "
            "that names its hosts",
            s.span.path,
            s.span.start_line,
            code="RB231",
        )
        for s in runbook.steps
        if s.target is not None
    ]
    if problems:
        raise InputError(problems[0].format(), problems)


def _NO_ENV(runbook: Runbook) -> Environment:
    """An empty environment for runbooks that need none (local steps only)."""
    return Environment(
        path=Path("<no environment>"),
        name="local",
        description="",
        values={},
        facts={},
        roles={},
        secrets={},
        lines={},
        content_hash="",
    )
