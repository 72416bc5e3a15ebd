"""Find the runbook and environment a rendered notebook was made from.

A notebook rendered by ``runbook render --to ipynb`` (or for the site) names its files in
its metadata (``metadata.runbook_engine.runbook.path`` and ``.environment.path``) relative to
the runbook library, with their SHA-256.  :func:`locate` looks for the library in
``RUNBOOK_LIBRARY``, the current folder, and the notebook's folder and its parents, and
takes the first folder where the runbook is found with the recorded SHA-256.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from runbook_engine.errors import InputError
from runbook_engine.source.library import LIBRARY_ENV


def locate(notebook: Path, env_path: Path | None) -> tuple[Path, Path | None]:
    """Return ``(runbook, environment)`` for ``notebook``; ``env_path`` (``--env``) wins
    over the notebook's own environment.

    Raises:
        InputError: the file is not a notebook rendered by runbook-engine, or its runbook
            (or environment) is not found with the SHA-256 it was rendered from.
    """
    meta = _metadata(notebook)
    runbook = meta.get("runbook") or {}
    env = meta.get("environment") or None
    rel, digest = runbook.get("path"), runbook.get("sha256")
    if not isinstance(rel, str) or Path(rel).is_absolute():
        raise InputError(
            f"{notebook}: its metadata names no runbook path relative to a library; "
            "render the notebook again with this version of runbook render"
        )
    candidates = [Path(p) for p in (os.environ.get(LIBRARY_ENV), ".") if p]
    candidates += [notebook.resolve().parent, *notebook.resolve().parents]
    for root in candidates:
        found = root / rel
        if found.is_file() and _sha256(found) == digest:
            if env_path is None and env is not None:
                env_path = _environment(notebook, root, env)
            return found, env_path
    raise InputError(
        f"{notebook}: runbook {rel!r} (SHA-256 {str(digest)[:12]}…) is not found under "
        f"{LIBRARY_ENV}, the current folder or the notebook's folders; set {LIBRARY_ENV} to "
        "the library folder, or give the runbook itself (runbook notebook run RUNBOOK.md)"
    )


def _metadata(notebook: Path) -> dict[str, Any]:
    try:
        data = json.loads(notebook.read_text(encoding="utf-8"))
        meta = data["metadata"]["runbook_engine"]
    except (OSError, ValueError, KeyError, TypeError):
        raise InputError(
            f"{notebook}: not a notebook rendered by runbook-engine (no "
            "metadata.runbook_engine); give the runbook (.md) instead"
        ) from None
    if not isinstance(meta, dict):
        raise InputError(f"{notebook}: metadata.runbook_engine is not a mapping")
    return meta


def _environment(notebook: Path, root: Path, env: dict[str, Any]) -> Path:
    found = root / str(env.get("path"))
    if found.is_file() and _sha256(found) == env.get("sha256"):
        return found
    raise InputError(
        f"{notebook}: environment {env.get('path')!r} is not found in {root} as it was when "
        "the notebook was rendered; give it with --env"
    )


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
