"""The runbook library: the folder includes must stay in.

An include is spliced into guides, site pages and notebook downloads, so a runbook
someone sent you must not be able to pull in ``/etc/passwd``, ``/proc/self/environ``
or a fragment that is a symbolic link to either.  Paths are checked twice: as
written (absolute paths and ``..`` that climbs out are refused) and as resolved
(a file or any folder on the way that is a symbolic link pointing outside is refused).
"""

from __future__ import annotations

import os
from pathlib import Path, PureWindowsPath

#: Environment variable naming a wider library root (a folder holding the runbook).
LIBRARY_ENV = "RUNBOOK_LIBRARY"


def library_root(path: Path) -> Path:
    """Return the folder includes of the runbook ``path`` must stay in (resolved).

    The runbook's own folder; or ``RUNBOOK_LIBRARY`` when that is set and holds the
    runbook (so runbooks in sub-folders can share fragments above them).  The runbook
    cannot widen it: a runbook someone sent you must not reach the rest of the disk.
    """
    folder = path.parent.resolve()
    declared = os.environ.get(LIBRARY_ENV, "").strip()
    if declared:
        library = Path(declared).expanduser().resolve()
        if folder.is_relative_to(library):
            return library
    return folder


def outside_library(root: Path, path: Path, target: str) -> str | None:
    """Why ``target`` (included from ``path``) leaves ``root``, or ``None`` when it stays in."""
    if Path(target).is_absolute() or PureWindowsPath(target).drive or target[0] in "\\/~":
        return "is an absolute path: write it relative to this file"
    if "\0" in target:
        return "holds a NUL character"
    lexical = Path(os.path.normpath(path.parent.resolve() / target))
    if not lexical.is_relative_to(root):
        return "climbs out of the library with '..'"
    if not (path.parent / target).resolve().is_relative_to(root):
        return "is or passes through a symbolic link that points outside the library"
    return None
