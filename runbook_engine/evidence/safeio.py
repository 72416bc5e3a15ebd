"""Writing files and terminal text safely: exclusive temporary files, escaped control characters.

:func:`write_atomic` writes a file through a temporary file created with
``O_CREAT | O_EXCL | O_NOFOLLOW`` under a random name in the target's folder
(``tempfile.mkstemp``), so a symbolic link planted at a predictable name such as
``.NAME.tmp`` is never followed, then renames it over the target (``os.replace``
replaces a symbolic link at the target itself, never writes through it).

:func:`terminal_safe` replaces C0 and C1 control characters (ECMA-48: ESC, CSI,
OSC introducers, BEL, backspace, carriage return ...) except tab and newline with
``\\xNN`` / ``\\uNNNN`` escapes, so step output or a name given with ``--as``
cannot move the cursor, retitle the window or hide text in the operator's terminal.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def terminal_safe(text: str) -> str:
    """Return ``text`` with every control character but tab and newline escaped."""
    return _CONTROL.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` through an exclusively created temporary file.

    Raises:
        OSError: the folder or the file cannot be written (the temporary file is removed).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def utc_now() -> str:
    """The current UTC time as ISO-8601 with microseconds and ``Z`` (journal times)."""
    from datetime import UTC, datetime

    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd`` (``os.write`` may write less than asked).

    Raises:
        OSError: the write failed (a full disk: ``ENOSPC``).
    """
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def fsync_dir(directory: Path) -> None:
    """``fsync`` a folder so that a file created or renamed in it survives a power loss
    (POSIX; a no-op elsewhere).

    Raises:
        OSError: the folder cannot be opened or synced.
    """
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

