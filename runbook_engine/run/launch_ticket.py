"""One-time launch tickets: how a run started (or continued) by the web console records
its operator as authenticated.

The console has signed the person in (password, OIDC, proxy header or API token), so it
knows who starts the run; the run itself is carried out by a ``runbook run`` child
process.  To tell that child "this operator is authenticated, by method M" without a
flag anyone could type, the console :func:`issue`\\ s a ticket: a random value handed to
the child in ``$RUNBOOK_LAUNCH_TICKET``, and a file named after the value's SHA-256 in
``STATE/console/tickets/`` (mode 0600) saying which run, which verb, which operator and
which method.  The child :func:`redeem`\\ s it: the file must exist and match the run,
the verb and the operator, and is deleted on first use.

Why a plain CLI cannot forge it: a value typed into the variable names no file (the
file's name is the hash of a value only the console and its child saw), and writing a
ticket file needs write access to the console's state folder, which is also what
signing and sealing the journal rests on (the journal key is kept there).  The ticket
adds no power beyond that; it keeps a name typed at ``--operator`` a claimed name.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from pathlib import Path

from runbook_engine.errors import InputError

#: The variable the console sets for its child process.
TICKET_ENV = "RUNBOOK_LAUNCH_TICKET"


def _folder(state_dir: Path) -> Path:
    return state_dir / "console" / "tickets"


def _path(state_dir: Path, value: str) -> Path:
    return _folder(state_dir) / (hashlib.sha256(value.encode("utf-8")).hexdigest() + ".json")


def issue(state_dir: Path, verb: str, run_id: str, operator: str, method: str) -> str:
    """Write a ticket for ``verb`` (``run`` or ``resume``) of ``run_id`` by ``operator``,
    signed in by ``method``; return the value to hand to the child process."""
    value = secrets.token_urlsafe(32)
    folder = _folder(state_dir)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    data = {"verb": verb, "run_id": run_id, "operator": operator, "method": method}
    fd = os.open(_path(state_dir, value), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(data, out)
    return value


def redeem(
    state_dir: Path, value: str | None, verb: str, run_id: str | None, operator: str
) -> str | None:
    """The sign-in method of ``operator`` when ``value`` is the console's ticket for this
    ``verb`` of ``run_id``; ``None`` without a value.  The ticket is used up.

    Raises:
        InputError: a value that names no ticket, or a ticket for another run, verb or
            operator (the run does not start rather than start as claimed).
    """
    if not value:
        return None
    path = _path(state_dir, value)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        path.unlink()  # one use
    except (OSError, ValueError):
        raise InputError(
            f"${TICKET_ENV} names no launch ticket of the console in {state_dir}; unset it "
            "(it is set by runbook serve for the runs it starts)"
        ) from None
    if (data.get("verb"), data.get("run_id"), data.get("operator")) != (verb, run_id, operator):
        raise InputError(
            f"${TICKET_ENV}: the console's ticket is for {data.get('verb')} of run "
            f"{data.get('run_id')} by {data.get('operator')}, not {verb} of {run_id} by {operator}"
        )
    return str(data["method"])
