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

A worker (``runbook worker``) executing a queued run the console started issues its
child such a ticket itself (:func:`issue_for_worker`), in the run's starter's name and
by the method the run's ``run-started`` journals; a run whose starter's name was claimed
gets none.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from pathlib import Path
from typing import Any

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


def issue_for_worker(store: Any, run_id: str, operator: str) -> str | None:
    """A ticket for a worker's ``runbook resume`` of queued run ``run_id`` in
    ``operator``'s name, when the run's ``run-started`` says the console signed that
    operator in (``operator_authenticated``); ``None`` otherwise (the resume records the
    name as claimed, as any other).

    A worker continues a queued run in the name its starter was signed in by, as the
    console does when it continues a run it started itself (a decision's resume, not a
    new sign-in): the method is the one ``run-started`` journals, never one a job says.
    The ticket is written where the resume's store looks (``store.state_dir``).
    ``run-started`` must be signed by this machine's signing key (the team's, as the
    console that started the run holds it): a record written into the store by anyone
    else, with a forged job naming it, gets no ticket.

    Raises:
        StateError: the store cannot be read.
    """
    from runbook_engine.errors import RunbookError
    from runbook_engine.evidence import JOURNAL_NAME
    from runbook_engine.evidence.journal import read_journal

    try:
        first = read_journal(store.run_dir(run_id) / JOURNAL_NAME, verify=False)[0]
    except (RunbookError, OSError, ValueError, IndexError):
        return None  # the resume itself reports a missing or damaged journal
    if first.get("event") != "run-started" or first.get("operator_authenticated") is not True:
        return None
    if not _signed_by_this_key(store, run_id, first):
        return None  # written by someone without the team's key (the database, a forged job)
    method = first.get("operator_auth_method")
    if not method or first.get("operator") != operator:
        return None
    return issue(store.state_dir, "resume", run_id, operator, str(method))


def _signed_by_this_key(store: Any, run_id: str, first: dict[str, Any]) -> bool:
    """True when the run's signature file signs ``first`` (the run's first record, its
    hash intact) with the key this machine signs with."""
    from runbook_engine.errors import RunbookError
    from runbook_engine.evidence import SIGNATURES_NAME
    from runbook_engine.evidence.canonical import GENESIS_HASH, record_hash
    from runbook_engine.evidence.keys import find_signing_key, load_private_key
    from runbook_engine.evidence.signatures import verify_signature

    try:
        if first.get("seq") != 1 or first.get("prev") != GENESIS_HASH:
            return False
        if record_hash(first) != first.get("hash"):
            return False
        path = find_signing_key(store.state_dir)
        if path is None:
            return False
        public = load_private_key(path).public_key()
        lines = (store.run_dir(run_id) / SIGNATURES_NAME).read_text(encoding="utf-8")
    except (RunbookError, OSError, ValueError, TypeError):
        return False
    for line in lines.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            return False
        if not isinstance(entry, dict) or entry.get("seq") != 1:
            continue
        return (
            entry.get("run_id") == run_id
            and entry.get("head") == first.get("hash")
            and verify_signature(public, entry)
        )
    return False
