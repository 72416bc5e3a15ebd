"""Local console accounts: name, roles and an argon2 password hash, in one JSON file.

The file is ``STATE/console/users.json`` (mode 0600), written atomically.  Passwords are
hashed with argon2id (``argon2-cffi``'s defaults); the file never holds a password.

Roles (:data:`ROLES`): ``viewer`` reads; ``operator`` also starts runs and decides gates;
``approver`` also approves and rejects (the approval step's ``approvers:`` and the
environment's groups still decide whose vote counts); ``admin`` may do all of it.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from runbook_engine.errors import InputError

ROLES = ("viewer", "operator", "approver", "admin")
#: What each role may do beyond reading.
ABILITIES = {
    "viewer": frozenset(),
    "operator": frozenset({"start", "decide"}),
    "approver": frozenset({"vote"}),
    "admin": frozenset({"start", "decide", "vote"}),
}


@dataclass(frozen=True, slots=True)
class User:
    """One account: ``name`` as recorded in journals, its ``roles``, its argon2 hash."""

    name: str
    roles: tuple[str, ...]
    password_hash: str | None = None

    def may(self, ability: str) -> bool:
        """True when one of the roles grants ``ability`` (``start``, ``decide``, ``vote``)."""
        return any(ability in ABILITIES.get(r, ()) for r in self.roles)


def users_path(state_dir: Path) -> Path:
    """Where the accounts of the console of ``state_dir`` are kept."""
    return state_dir / "console" / "users.json"


def _hasher():  # type: ignore[no-untyped-def]
    from argon2 import PasswordHasher

    return PasswordHasher()


class UserFile:
    """The accounts file of one state directory."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, User]:
        """All accounts by name (empty when the file does not exist).

        Raises:
            InputError: the file is not the JSON this module writes.
        """
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise InputError(f"{self.path}: cannot read the console accounts ({exc})") from None
        return {
            u["name"]: User(u["name"], tuple(u["roles"]), u.get("password_hash"))
            for u in data.get("users", [])
        }

    def get(self, name: str) -> User | None:
        """The account called ``name``, or ``None``."""
        return self.load().get(name)

    def add(self, name: str, roles: tuple[str, ...], password: str | None) -> User:
        """Add or replace account ``name``; ``password`` is hashed (``None``: no password,
        for accounts that sign in only through OIDC or the proxy header).

        Raises:
            InputError: an empty or control-character name, an unknown role, a password
                shorter than 12 characters.
        """
        name = name.strip()
        if not name or any(ord(c) < 32 or ord(c) == 127 for c in name):
            raise InputError("a user name must be non-empty text without control characters")
        unknown = [r for r in roles if r not in ROLES]
        if unknown or not roles:
            raise InputError(f"--role {', '.join(unknown) or '?'}: use one of {', '.join(ROLES)}")
        if password is not None and len(password) < 12:
            raise InputError("the password must have at least 12 characters")
        user = User(name, roles, _hasher().hash(password) if password is not None else None)
        users = self.load()
        users[name] = user
        self._write(users)
        return user

    def verify(self, name: str, password: str) -> User | None:
        """The account when ``password`` is its password, else ``None`` (the same work is
        done for an unknown name, so the answer's time does not tell which names exist)."""
        from argon2.exceptions import InvalidHashError, VerificationError

        user = self.get(name)
        hasher = _hasher()
        stored = user.password_hash if user and user.password_hash else _DUMMY_HASH
        try:
            hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return None
        return user if user is not None and user.password_hash else None

    def _write(self, users: dict[str, User]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        data = {
            "users": [
                {"name": u.name, "roles": list(u.roles), "password_hash": u.password_hash}
                for u in users.values()
            ]
        }
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".users-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(data, out, indent=2)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            raise InputError(f"cannot write {self.path}: {exc.strerror}") from None


#: A hash of a random password, verified against when the name is unknown.
_DUMMY_HASH = (
    "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHRzb21lc2FsdA$"
    "0J6Xw0KpU4m6bq2Lq9bK3V0t0bXc8l3x2v0w8h1k6xY"
)
