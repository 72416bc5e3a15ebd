"""Commands suggested to the operator name the store the run is in.

A run kept in a state directory other than the default (``--state-dir .runbook-state``,
as the README's examples do) or in a team's store (``--store URL``) can only be
resumed, confirmed or approved by a command that names it again: every hint the
tool prints (``runbook resume R``, ``runbook confirm R STEP --as NAME`` …) gets
``--state-dir DIR`` or ``--store URL`` appended, so copying it works.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path
from typing import Any

from runbook_engine.run.records import default_state_dir

#: A command in backquotes (``runbook resume R``), or a plain ``runbook resume R``.
_QUOTED = re.compile(r"`(runbook [^`]*?)`")
_PLAIN = re.compile(r"(?<!`)\b(runbook resume [^\s`;,)]+?)(?=\.?(?:[\s;,)]|$))")


def location_args(store: Any) -> str:
    """`` --state-dir DIR`` or `` --store URL`` (password left out) when ``store`` is not
    the default one, else ``""``.

    Args:
        store: A checkpoint store (``state_dir``) or a team store (``url``).
    """
    url = getattr(store, "url", None)
    if url:
        from runbook_engine.run.pgstore.connection import shown_url

        if url == os.environ.get("RUNBOOK_STORE"):
            return ""
        return f" --store {shlex.quote(shown_url(url))}"
    return state_dir_args(getattr(store, "state_dir", None))


def state_dir_args(state_dir: Path | None) -> str:
    """`` --state-dir DIR`` when ``state_dir`` is not the default state directory."""
    if state_dir is None:
        return ""
    try:
        same = Path(state_dir).resolve() == default_state_dir().resolve()
    except OSError:
        same = False
    return "" if same else f" --state-dir {shlex.quote(str(state_dir))}"


def locate(text: str, args: str) -> str:
    """``text`` with ``args`` appended to every ``runbook …`` command it suggests."""
    if not args:
        return text
    text = _QUOTED.sub(lambda m: f"`{m.group(1)}{args}`", text)
    return _PLAIN.sub(lambda m: f"{m.group(1)}{args}", text)
