"""Ed25519 signing keys (RFC 8032) for journals, with the ``cryptography`` library.

``runbook keys init`` writes a key pair into a folder (default
``$XDG_CONFIG_HOME/runbook-engine/keys/``, that is ``~/.config/runbook-engine/keys/``):

* ``signing.key``: the private key, PKCS #8 PEM, unencrypted, mode 0600, in a
  folder of mode 0700 (refused when group or others may read it, as OpenSSH does);
* ``signing.pub``: the public key, SubjectPublicKeyInfo PEM, to give to auditors.

A key is named by its *key id*: the SHA-256 (hex) of its 32 raw public bytes.
The runner signs with ``$RUNBOOK_SIGNING_KEY`` (a private key file) or, when that
is unset, ``signing.key`` in the default key folder if it exists; without a key runs
are unsigned.  The private key is kept *outside* the state directory on purpose:
whoever may edit a journal (the state directory) must not be able to re-sign it.
A key left in the old default, ``STATE/keys/signing.key``, is refused with a message
saying where to move it.  Signatures are Ed25519 (RFC 8032, section 5.1).
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from runbook_engine.errors import EvidenceError, InputError, StateError

PRIVATE_NAME = "signing.key"
PUBLIC_NAME = "signing.pub"
KEY_ENV = "RUNBOOK_SIGNING_KEY"
#: The folder the old versions kept the key in, inside the state directory (refused now).
LEGACY_DIR = "keys"


@dataclass(frozen=True, slots=True)
class KeyFiles:
    """A key pair on disk: ``private`` and ``public`` paths and the ``key_id``."""

    private: Path
    public: Path
    key_id: str


def key_id(public_key: Ed25519PublicKey) -> str:
    """Return the key id: SHA-256 (hex) of the 32 raw public-key bytes."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def public_pem(public_key: Ed25519PublicKey) -> bytes:
    """Return ``public_key`` as SubjectPublicKeyInfo PEM bytes."""
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def default_key_dir() -> Path:
    """Return the default key folder: ``$XDG_CONFIG_HOME/runbook-engine/keys``.

    ``$XDG_CONFIG_HOME`` defaults to ``~/.config`` (XDG Base Directory
    Specification); on Windows ``%APPDATA%`` is used when set.
    """
    base = os.environ.get("XDG_CONFIG_HOME") or (
        os.environ.get("APPDATA") if os.name == "nt" else None
    )
    root = Path(base) if base else Path.home() / ".config"
    return root / "runbook-engine" / "keys"


def legacy_key_path(state_dir: Path) -> Path:
    """Return where versions before 0.9 kept the private key: ``STATE/keys/signing.key``."""
    return state_dir / LEGACY_DIR / PRIVATE_NAME


def init_keys(directory: Path, *, force: bool = False) -> KeyFiles:
    """Create a new Ed25519 key pair in ``directory``.

    Args:
        directory: Folder for ``signing.key`` (0600) and ``signing.pub``; created 0700.
        force: Replace an existing key pair (runs signed with it stay verifiable
            with their own copy of the public key).

    Returns:
        The files written and the key id.

    Raises:
        InputError: a key exists already (without ``force``) or the folder cannot be written.
    """
    private_path, public_path = directory / PRIVATE_NAME, directory / PUBLIC_NAME
    if private_path.exists() and not force:
        raise InputError(
            f"{private_path} exists already; keep it (runs are signed with it) or "
            "pass --force to replace it"
        )
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(directory, 0o700)
        tmp = private_path.with_name(f".{PRIVATE_NAME}.tmp")
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, private_path)
        public_path.write_bytes(public_pem(key.public_key()))
    except OSError as exc:
        raise InputError(f"cannot write keys to {directory}: {exc.strerror}") from None
    return KeyFiles(private_path, public_path, key_id(key.public_key()))


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """Read a private key written by :func:`init_keys`.

    Raises:
        StateError: the file is missing, readable by group or others (POSIX), or
            not an unencrypted Ed25519 PEM key.
    """
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except OSError as exc:
        raise StateError(f"cannot read signing key {path}: {exc.strerror}") from None
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise StateError(
            f"signing key {path} is accessible by others (mode "
            f"{stat.S_IMODE(mode):04o}); run `chmod 600 {path}`"
        )
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise StateError(f"{path} is not an unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise StateError(f"{path} is not an Ed25519 key")
    return key


def load_public_key(data: bytes, where: str) -> Ed25519PublicKey:
    """Parse a PEM public key.

    Raises:
        EvidenceError: ``data`` is not an Ed25519 public key (``where`` names it).
    """
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise EvidenceError(f"{where} is not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise EvidenceError(f"{where} is not an Ed25519 public key")
    return key


def find_signing_key(state_dir: Path) -> Path | None:
    """Return the private key the runner signs with, or ``None`` (runs are then unsigned).

    ``$RUNBOOK_SIGNING_KEY`` wins; it must name an existing file.  Otherwise
    ``signing.key`` in :func:`default_key_dir` when it exists.

    Raises:
        StateError: ``$RUNBOOK_SIGNING_KEY`` names a missing file, or the only key is
            the old default inside the state directory (it must be moved out).
    """
    configured = os.environ.get(KEY_ENV)
    if configured:
        path = Path(configured)
        if not path.is_file():
            raise StateError(f"{KEY_ENV}={configured}: no such key file")
        return path
    path = default_key_dir() / PRIVATE_NAME
    if path.is_file():
        return path
    legacy = legacy_key_path(state_dir)
    if legacy.is_file():
        raise StateError(
            f"the signing key {legacy} is inside the state directory, where whoever can "
            "edit a journal could re-sign it; move it out (for example "
            f"`mkdir -p -m 700 {path.parent} && mv {legacy} {legacy.with_suffix('.pub')} "
            f"{path.parent}/`) or point {KEY_ENV} at it"
        )
    return None
