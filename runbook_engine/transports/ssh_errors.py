"""Turn what the OpenSSH client and sudo print on failure into one clear sentence.

The client exits 255 when the connection fails and prints one of a small set of
messages (OpenSSH ``ssh.c``, ``sshconnect.c``, ``sshconnect2.c``); sudo prints its own
(``sudo: a password is required``, ``sudo: N incorrect password attempts``).  Each maps
to a message naming the host, what failed and what to do.  The messages are built from
fixed text, the host's options and the client's own line: never a secret (the become
password never reaches the client's output, nor its command line).
"""

from __future__ import annotations

from runbook_engine.errors import ExecutionError
from runbook_engine.transports.ssh_options import SSHOptions

#: (pattern in stderr, what failed) in the order they are tried.
_CASES: tuple[tuple[str, str], ...] = (
    ("REMOTE HOST IDENTIFICATION HAS CHANGED", "host-key-changed"),
    ("Host key for", "host-key-changed"),
    ("No ED25519 host key is known", "host-key-unknown"),
    ("host key is known for", "host-key-unknown"),
    ("Host key verification failed", "host-key-unknown"),
    ("Permission denied", "auth"),
    ("Too many authentication failures", "auth"),
    ("Connection refused", "refused"),
    ("Connection timed out", "timeout"),
    ("Operation timed out", "timeout"),
    ("timed out during banner exchange", "timeout"),
    ("Could not resolve hostname", "resolve"),
    ("No route to host", "unreachable"),
    ("Network is unreachable", "unreachable"),
    ("Connection closed by", "closed"),
    ("Connection reset", "closed"),
)


def classify(stderr: str) -> str | None:
    """The kind of connection failure ``stderr`` reports, or ``None``."""
    for pattern, kind in _CASES:
        if pattern in stderr:
            return kind
    return None


class SSHConnectionError(ExecutionError):
    """The client could not connect or log in (it exited 255 before a command ran).

    Attributes:
        what: What failed, naming the host (the message's start).
        fix: What to do about it (the message's end).
    """

    def __init__(self, what: str, fix: str) -> None:
        super().__init__(f"{what}. {fix}" if fix else what)
        self.what, self.fix = what, fix


def connection_error(
    host: str, address: str, options: SSHOptions, stderr: str
) -> SSHConnectionError:
    """The error for a failed connection: :func:`connection_message`, with its fix apart."""
    return SSHConnectionError(*connection_parts(host, address, options, stderr))


def connection_message(host: str, address: str, options: SSHOptions, stderr: str) -> str:
    """One sentence for a failed connection (the client exited 255): what failed, then
    what to do (see :func:`connection_parts`)."""
    return connection_error(host, address, options, stderr).message


def connection_parts(host: str, address: str, options: SSHOptions, stderr: str) -> tuple[str, str]:
    """What failed (naming the host) and what to do, for a failed connection.

    Args:
        host: Host name shown to people.
        address: Address connected to.
        options: The host's ``ssh:`` options.
        stderr: What the client printed.
    """
    where = f"SSH host {host} ({options.user + '@' if options.user else ''}{address}:"
    where += f"{options.port})"
    kind = classify(stderr)
    known = options.known_hosts_file
    if kind == "host-key-changed":
        return (
            f"{where}: host key changed: the key the host offers differs from the one in {known}",
            "This may be an attack; if the host was rebuilt, check its new fingerprint out "
            "of band, then remove the old line (ssh-keygen -R) and retry",
        )
    if kind == "host-key-unknown":
        return (
            f"{where}: unknown host key: {address} is not in {known}",
            "Add its key after checking the fingerprint (ssh-keyscan), or set "
            "host_key_checking: accept-new to trust it on first use (journaled)",
        )
    if kind == "auth":
        key = options.private_key_file or "the client's default keys"
        return (
            f"{where}: authentication failed: the host refused {key}",
            "Check private_key_file, user, and the user's authorized_keys on the host",
        )
    if kind == "refused":
        return (
            f"{where}: connection refused: nothing listens on port {options.port}",
            "Check the address and port, and that sshd runs there",
        )
    if kind == "timeout":
        return (
            f"{where}: timeout: no answer within connect_timeout ({options.connect_timeout} s)",
            "Check the address, port and firewalls",
        )
    if kind == "resolve":
        return f"{where}: unknown host name {address!r}", "Check the address"
    if kind == "unreachable":
        return f"{where}: no route to the host", "Check the address and the network"
    last = _last_line(stderr) or "no message"
    if kind == "closed":
        return (
            f"{where}: the host closed the connection ({last})",
            "Check the host's sshd log (MaxStartups, AllowUsers, DenyUsers)",
        )
    return f"{where}: connection failed ({last})", "Check the host's ssh: options"


def become_message(host: str, options: SSHOptions, stderr: str) -> str | None:
    """One sentence when sudo refused to run the step, else ``None``."""
    where = f"SSH host {host}: become (sudo -u {options.become_user}) failed"
    if "incorrect password" in stderr or "Sorry, try again" in stderr:
        return f"{where}: the become_password was refused; check the secret it names"
    if "a password is required" in stderr or "no askpass program" in stderr:
        return f"{where}: sudo asks for a password; name a secret with become_password"
    if "is not in the sudoers file" in stderr or "is not allowed to execute" in stderr:
        return f"{where}: {options.user or 'the user'} may not run commands with sudo there"
    if "sudo: command not found" in stderr or "sudo: not found" in stderr:
        return f"{where}: sudo is not installed on the host"
    return None


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""
