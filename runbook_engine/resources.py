"""Where templates and site assets are: the repository's ``templates/`` and ``site/`` folders.

In a checkout (or an editable install) they are the folders at the top of the
repository; in an installed wheel they travel inside the package as
``runbook_engine/templates`` and ``runbook_engine/site_assets`` (see
``pyproject.toml``).  ``RUNBOOK_TEMPLATES`` points at another templates folder.
"""

from __future__ import annotations

import os
from pathlib import Path

from runbook_engine.errors import InputError

_PACKAGE = Path(__file__).resolve().parent
TEMPLATES_ENV = "RUNBOOK_TEMPLATES"


def _find(repo_name: str, installed_name: str) -> Path | None:
    for candidate in (_PACKAGE.parent / repo_name, _PACKAGE / installed_name):
        if candidate.is_dir():
            return candidate
    return None


def templates_dir() -> Path:
    """Return the templates folder.

    Raises:
        InputError: ``RUNBOOK_TEMPLATES`` names a missing folder, or none is found.
    """
    configured = os.environ.get(TEMPLATES_ENV)
    if configured:
        folder = Path(configured)
        if not folder.is_dir():
            raise InputError.single(f"{TEMPLATES_ENV}={configured}: no such folder", code="RB251")
        return folder
    found = _find("templates", "templates")
    if found is None:
        raise InputError.single(
            "the templates folder is missing from this installation; "
            f"reinstall runbook-engine or set {TEMPLATES_ENV}",
            code="RB251",
        )
    return found


def site_assets_dir() -> Path:
    """Return the folder of site assets (CSS, JavaScript) for ``runbook site build``.

    Raises:
        InputError: none is found.
    """
    found = _find("site", "site_assets")
    if found is None:
        raise InputError.single(
            "the site assets folder is missing from this installation; reinstall runbook-engine",
            code="RB252",
        )
    return found
