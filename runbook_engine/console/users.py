"""Local console accounts: name, roles, an argon2 password hash and an API token hash,
in one JSON file.

The file is ``STATE/console/users.json`` (mode 0600), written atomically.  Passwords are
hashed with argon2id (``argon2-cffi``'s defaults); the file never holds a password.  API
bearer tokens (``secrets.token_urlsafe(32)``: 256 random bits, so a fast hash is enough)
are kept as their SHA-256; the token itself is shown once, when issued.

Roles (:data:`ROLES`): ``viewer`` reads; ``operator`` also starts runs and decides gates;
``approver`` also approves and rejects (the approval step's ``approvers:`` and the
environment's groups still decide whose vote counts); ``admin`` may do all of it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
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
    """One account: ``name`` as recorded in journals, its ``roles``, its argon2 hash, the
    SHA-256 (hex) of its API token."""

    name: str
    roles: tuple[str, ...]
    password_hash: str | None = None
    token_sha256: str | None = None

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
            u["name"]: User(
                u["name"], tuple(u["roles"]), u.get("password_hash"), u.get("token_sha256")
            )
            for u in data.get("users", [])
        }

    def get(self, name: str) -> User | None:
        """The account called ``name``, or ``None``."""
        return self.load().get(name)

    def add(self, name: str, roles: tuple[str, ...], password: str | None) -> tuple[User, str]:
        """Add or replace account ``name``; ``password`` is hashed (``None``: no password,
        for accounts that sign in only through OIDC or the proxy header).

        Returns:
            The account and its new API token (shown once; only its hash is kept).

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
        token = new_token()
        user = User(
            name,
            roles,
            _hasher().hash(password) if password is not None else None,
            token_hash(token),
        )
        users = self.load()
        users[name] = user
        self._write(users)
        return user, token

    def new_token(self, name: str) -> str:
        """Issue a new API token for ``name`` (the old one stops working).

        Raises:
            InputError: no such account.
        """
        users = self.load()
        if name not in users:
            raise InputError(f"no console account {name!r}: add it with runbook users add")
        token = new_token()
        old = users[name]
        users[name] = User(old.name, old.roles, old.password_hash, token_hash(token))
        self._write(users)
        return token

    def by_token(self, token: str) -> User | None:
        """The account whose API token is ``token``, or ``None``."""
        wanted = token_hash(token)
        found = None
        for user in self.load().values():
            if user.token_sha256 and hmac.compare_digest(user.token_sha256, wanted):
                found = user
        return found

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
                {
                    "name": u.name,
                    "roles": list(u.roles),
                    "password_hash": u.password_hash,
                    "token_sha256": u.token_sha256,
                }
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


def new_token() -> str:
    """A new API bearer token: 32 random bytes, URL-safe base64."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """The SHA-256 (hex) kept for ``token``."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


#: A hash of a random password, verified against when the name is unknown.
_DUMMY_HASH = (
    "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHRzb21lc2FsdA$"
    "0J6Xw0KpU4m6bq2Lq9bK3V0t0bXc8l3x2v0w8h1k6xY"
)
