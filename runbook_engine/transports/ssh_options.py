"""Options of the SSH transport (the ``ssh:`` mapping of a host in an environment file).

Option names are Ansible's ``ansible_ssh_*`` / ``ansible_become_*`` variables without the
prefix (``user``, ``port``, ``private_key_file``, ``common_args``, ``become``,
``become_user``, ``become_password``, ``connect_timeout``), plus ``known_hosts_file``
(OpenSSH's ``UserKnownHostsFile``) and ``host_key_checking``: ``strict`` (the default:
a host whose key is not in the known-hosts file is refused) or ``accept-new`` (trust on
first use: OpenSSH's ``StrictHostKeyChecking=accept-new``; the accepted key's
fingerprint is journaled).  Host key checking cannot be turned off.

``become_password`` names a secret of the environment file (as ``winrm: {credential:}``
does); the value never appears in the file.

No third-party imports: the environment loader imports this module.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runbook_engine.errors import Problem
from runbook_engine.source.model import Host

OPTION_NAMES: frozenset[str] = frozenset(
    {
        "user",
        "port",
        "private_key_file",
        "known_hosts_file",
        "host_key_checking",
        "common_args",
        "become",
        "become_user",
        "become_password",
        "connect_timeout",
    }
)
HOST_KEY_CHECKING: tuple[str, ...] = ("strict", "accept-new")
DEFAULT_CONNECT_TIMEOUT = 10
DEFAULT_KNOWN_HOSTS = "~/.ssh/known_hosts"
_STRINGS = ("user", "private_key_file", "known_hosts_file", "become_user", "become_password")
#: ``-o`` options ``common_args`` may set (ssh_config(5) names, compared case-blind).
#: An allow-list: the transport owns host key checking and connection reuse, and
#: options that run or load code on the operator's machine (``ProxyCommand``,
#: ``LocalCommand``, ``KnownHostsCommand``, ``PKCS11Provider``, ``Include``...) are never
#: an environment file's to set.
_ALLOWED_O = frozenset(
    k.lower()
    for k in (
        "AddressFamily", "BindAddress", "CertificateFile", "CheckHostIP", "Ciphers",
        "Compression", "ConnectionAttempts", "ConnectTimeout", "ForwardAgent",
        "GSSAPIAuthentication", "GSSAPIDelegateCredentials", "HashKnownHosts",
        "HostKeyAlgorithms", "HostKeyAlias", "IdentitiesOnly", "IdentityAgent",
        "IdentityFile", "IPQoS", "KbdInteractiveAuthentication", "KexAlgorithms", "LogLevel",
        "MACs", "NumberOfPasswordPrompts", "PasswordAuthentication", "Port",
        "PreferredAuthentications", "ProxyJump", "PubkeyAcceptedAlgorithms",
        "PubkeyAcceptedKeyTypes", "PubkeyAuthentication", "RekeyLimit",
        "ServerAliveCountMax", "ServerAliveInterval", "TCPKeepAlive", "User",
    )
)  # fmt: skip
#: Flags without a value, and flags with one, that ``common_args`` may give.
_ALLOWED_FLAGS = frozenset("46ACqvxXYKkTa")
_ALLOWED_WITH_VALUE = frozenset("cilpJmo")


def common_args_problem(args: list[str]) -> str | None:
    """Why the ssh arguments ``args`` (``common_args`` split with shlex) are refused, or
    ``None``.

    Only the flags in :data:`_ALLOWED_FLAGS` and :data:`_ALLOWED_WITH_VALUE` are taken,
    every spelling of ``-o`` (``-o K=V``, ``-oK=V``, ``-o "K V"``) with a key from
    :data:`_ALLOWED_O`; ``-F`` (another config file) and everything else is refused.
    """
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("-") or arg == "-" or arg.startswith("--"):
            return f"{arg!r} is not an ssh option"
        letters = arg[1:]
        while letters:
            flag, rest = letters[0], letters[1:]
            if flag in _ALLOWED_FLAGS:
                letters = rest
                continue
            if flag not in _ALLOWED_WITH_VALUE:
                return f"-{flag} is not taken in common_args (ssh flags allowed: " + (
                    ", ".join(f"-{c}" for c in sorted(_ALLOWED_FLAGS | _ALLOWED_WITH_VALUE))
                    + ")"
                )
            if rest:
                value = rest
            elif i + 1 < len(args):
                i += 1
                value = args[i]
            else:
                return f"-{flag} needs a value"
            if flag == "o":
                key = re.split(r"[=\s]", value.strip(), maxsplit=1)[0].lower()
                if key not in _ALLOWED_O:
                    return (
                        f"-o {key or value!r} is not taken in common_args: the transport sets "
                        "host key checking and connection reuse, and options that run or load "
                        "code are refused; use host_key_checking or known_hosts_file"
                    )
            letters = ""
        i += 1
    return None


_USER = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*\$?$")


@dataclass(frozen=True, slots=True)
class SSHOptions:
    """A host's ``ssh:`` mapping with defaults applied (see the module doc)."""

    user: str | None
    port: int
    private_key_file: str | None
    known_hosts_file: str
    host_key_checking: str
    common_args: tuple[str, ...]
    become: bool
    become_user: str
    become_password: str | None
    connect_timeout: int

    @classmethod
    def of(cls, host: Host) -> SSHOptions:
        """The options of ``host`` (assumed valid: see :func:`validate_ssh_options`)."""
        o = host.options
        return cls(
            user=o.get("user"),
            port=int(o.get("port", 22)),
            private_key_file=_expand(o.get("private_key_file")),
            known_hosts_file=_expand(o.get("known_hosts_file"))
            or _expand(DEFAULT_KNOWN_HOSTS)
            or DEFAULT_KNOWN_HOSTS,
            host_key_checking=str(o.get("host_key_checking", "strict")),
            common_args=tuple(shlex.split(str(o.get("common_args") or ""))),
            become=bool(o.get("become", False)),
            become_user=str(o.get("become_user") or "root"),
            become_password=o.get("become_password"),
            connect_timeout=int(o.get("connect_timeout", DEFAULT_CONNECT_TIMEOUT)),
        )


def _expand(value: Any) -> str | None:
    return str(Path(value).expanduser()) if isinstance(value, str) and value else None


def validate_ssh_options(options: Any, path: Any, line: int) -> list[Problem]:
    """Check a host's ``ssh:`` mapping from an environment file.

    Args:
        options: The mapping as loaded from YAML.
        path: The environment file (``Path`` or ``None``), for the problems.
        line: 1-based line of the mapping (or of the host).

    Returns:
        Every problem found (empty when the options are usable), each naming the key.
    """
    problems: list[Problem] = []

    def bad(message: str) -> None:
        problems.append(Problem(f"ssh: {message}", path, line, code="RB214"))

    if not isinstance(options, dict):
        bad("expected a mapping of options")
        return problems
    for key in options:
        if key not in OPTION_NAMES:
            bad(f"unknown option {key!r}; known options: {', '.join(sorted(OPTION_NAMES))}")
    for key in _STRINGS:
        if key in options and (not isinstance(options[key], str) or not options[key]):
            bad(f"{key}: expected a non-empty string")
    for key in ("user", "become_user"):
        value = options.get(key)
        if isinstance(value, str) and value and not _USER.match(value):
            bad(f"{key}: {value!r} is not a user name")
    port = options.get("port", 22)
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        bad(f"port: {port!r} is not a TCP port (1-65535)")
    timeout = options.get("connect_timeout", DEFAULT_CONNECT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 1:
        bad(f"connect_timeout: {timeout!r} must be a whole number of seconds, 1 or more")
    checking = options.get("host_key_checking", "strict")
    if checking not in HOST_KEY_CHECKING:
        bad(
            f"host_key_checking: {checking!r} is not one of {', '.join(HOST_KEY_CHECKING)}; "
            "host keys are always checked (accept-new trusts a host's first key, journaled)"
        )
    if "become" in options and not isinstance(options["become"], bool):
        bad(f"become: {options['become']!r} must be true or false")
    if options.get("become_password") and not options.get("become"):
        bad("become_password is set but become is not true")
    args = options.get("common_args")
    if args is not None:
        if not isinstance(args, str):
            bad("common_args: expected a string of ssh arguments")
        else:
            try:
                why = common_args_problem(shlex.split(args))
            except ValueError as exc:
                why = str(exc)
            if why:
                bad(f"common_args: {why}")
    return problems


def file_problems(host: Host) -> list[Problem]:
    """A problem for ``private_key_file`` naming a file that does not exist."""
    value = _expand(host.options.get("private_key_file"))
    if value and not Path(value).exists():
        return [
            Problem(
                f"ssh: host {host.name}: private_key_file {value!r} does not exist",
                None,
                host.line,
                code="RB214",
            )
        ]
    return []
