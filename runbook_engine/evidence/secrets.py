"""Every secret a run knows, so that all of them are redacted before anything is written.

A run's secrets are its secret parameters (resolved by
:func:`runbook_engine.tailor.values.resolve_values`) and the credentials its hosts name
(``winrm: {credential: NAME}``, ``ssh: {become_password: NAME}``; ENV-SPEC.md), fetched
the same way: the environment file's ``secrets:`` entry for NAME, else ``$RUNBOOK_SECRET_<NAME>``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from runbook_engine.errors import InputError, Problem
from runbook_engine.source.model import SecretRef
from runbook_engine.tailor.values import fetch_secret
from runbook_engine.transports import TRANSPORTS

if TYPE_CHECKING:
    from runbook_engine.tailor.loading import Loaded


def credential_names(loaded: Loaded) -> dict[str, int]:
    """Return the secret names the run's hosts' options name (WinRM ``credential``, SSH
    ``become_password``: each transport's ``secret_options``), name -> host's line."""
    names: dict[str, int] = {}
    tailored = loaded.tailored
    steps = list(tailored.steps) + list(tailored.helpers.values())
    for ts in steps:
        for host in ts.hosts:
            info = TRANSPORTS.get(host.transport)
            for key in info.secret_options if info is not None else ():
                if host.options.get(key):
                    names.setdefault(str(host.options[key]), host.line)
    return names


def run_secrets(loaded: Loaded) -> dict[str, str]:
    """Return secret parameters and WinRM credentials of a run: name -> value.

    Raises:
        InputError: a credential cannot be fetched (the message names the source,
            never a value).
    """
    found = dict(loaded.values.secrets) if loaded.values else {}
    env = loaded.environment
    problems: list[Problem] = []
    for name, line in credential_names(loaded).items():
        if name in found:
            continue
        ref = env.secrets.get(name) if env is not None else None
        if ref is None:
            ref = SecretRef(name, env=f"RUNBOOK_SECRET_{name.upper()}")
        value = fetch_secret(ref, env.path if env is not None else None, ref.line or line, problems)
        if value is not None:
            found[name] = value
    if problems:
        raise InputError(problems[0].format(), problems)
    return found
