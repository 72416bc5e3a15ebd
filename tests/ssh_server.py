"""A real OpenSSH server for the SSH transport tests: Debian's ``sshd -D -f CONFIG`` on a
loopback port, with generated host keys and key authentication for a test user.

Running as root, the fixture creates a dedicated user (``useradd``) with a password and
a sudoers drop-in requiring it (removed afterwards); otherwise the server lets in the
current user and the sudo cases are skipped.  :meth:`SSHServer.accepted` counts the
connections the server authenticated (its VERBOSE log), for the connection reuse test.
A second port (:attr:`SSHServer.bare_port`) gives its sessions a ``PATH`` holding only
what a step's staging needs (``sh``, ``setsid``, ``mktemp``, ``dd``, ``cat``, ``rm``):
``bash`` and ``python3`` are missing there, for the preflight's missing-interpreter case
(sshd's ``SetEnv`` in a ``Match LocalPort`` block).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SSHD = "/usr/sbin/sshd"
# useradd, userdel and chpasswd live in the sbin folders, which a CI job's PATH may leave out.
for _sbin in ("/usr/sbin", "/sbin"):
    if _sbin not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = os.environ.get("PATH", "") + os.pathsep + _sbin
TEST_USER = "rbe-ssh-test"
SUDOERS = Path("/etc/sudoers.d/rbe-ssh-test")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def keygen(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path


@dataclass
class SSHServer:
    """The running server and what a client needs to reach it."""

    folder: Path
    port: int
    user: str
    password: str | None
    client_key: Path
    host_key: Path
    known_hosts: Path
    log: Path
    proc: subprocess.Popen[bytes]
    bare_port: int = 0

    def options(self, **extra: object) -> dict[str, object]:
        """A host's ``ssh:`` mapping for this server."""
        return {
            "user": self.user,
            "port": self.port,
            "private_key_file": str(self.client_key),
            "known_hosts_file": str(self.known_hosts),
            "connect_timeout": 5,
            **extra,
        }

    def accepted(self) -> int:
        """Connections the server authenticated so far."""
        return self.log.read_text("utf-8", errors="replace").count("Accepted publickey for")

    def run_as_user(self, command: str) -> str:
        """Run ``command`` on the host as the test user (plain ssh, no reuse)."""
        done = subprocess.run(
            [
                "ssh",
                "-i",
                str(self.client_key),
                "-o",
                "BatchMode=yes",
                "-o",
                f"UserKnownHostsFile={self.known_hosts}",
                "-p",
                str(self.port),
                "-l",
                self.user,
                "127.0.0.1",
                command,
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        return done.stdout


def _user(folder: Path) -> tuple[str, str | None]:
    if os.geteuid() != 0:
        return pwd.getpwuid(os.getuid()).pw_name, None
    if shutil.which("useradd") is None:
        pytest.skip("running as root without useradd: cannot create the SSH test user")
    password = "pw-" + secrets.token_hex(8)
    subprocess.run(["userdel", "-r", TEST_USER], capture_output=True, check=False)
    made = subprocess.run(
        ["useradd", "-m", "-s", "/bin/sh", TEST_USER], capture_output=True, text=True
    )
    if made.returncode != 0:
        pytest.skip(f"cannot create the SSH test user: {made.stderr.strip()}")
    subprocess.run(["chpasswd"], input=f"{TEST_USER}:{password}", text=True, check=True)
    if shutil.which("sudo") is not None:
        SUDOERS.write_text(f"{TEST_USER} ALL=(ALL) ALL\n", "utf-8")
        SUDOERS.chmod(0o440)
    return TEST_USER, password


#: The one server of this test process: each test module that imports :func:`sshd` holds
#: its own copy of the fixture (one test user name, so one server), and all share it.
_SHARED: list[SSHServer] = []


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHServer]:
    """Start sshd for the session (skipped where Debian's openssh-server is missing);
    modules that import this fixture share one server."""
    if _SHARED:  # the later fixtures are torn down first: the server outlives them
        yield _SHARED[0]
        return
    with start_sshd(tmp_path_factory.mktemp("sshd")) as server:
        _SHARED.append(server)
        try:
            yield server
        finally:
            _SHARED.clear()


@contextlib.contextmanager
def start_sshd(folder: Path) -> Iterator[SSHServer]:
    """Start sshd with its files in ``folder`` and stop it on leaving (benchmarks use this
    too); skips the test where Debian's openssh-server is missing."""
    if not Path(SSHD).exists() or shutil.which("ssh") is None:
        pytest.skip("openssh-server and openssh-client are needed (apt install openssh-server)")
    folder.chmod(0o755)
    user, password = _user(folder)
    host_key, client_key = keygen(folder / "host_key"), keygen(folder / "client_key")
    # sshd reads authorized keys as the user: outside pytest's 0700 temporary folder.
    keys = Path(tempfile.mkdtemp(prefix="rbe-sshd-keys-"))
    (keys / user).write_text((folder / "client_key.pub").read_text("utf-8"), "utf-8")
    os.chmod(keys, 0o755)
    os.chmod(keys / user, 0o644)
    port, bare_port = free_port(), free_port()
    bare = keys / "bare-bin"  # outside the 0700 folder too: the user runs from it
    bare.mkdir()
    for tool in ("sh", "setsid", "mktemp", "dd", "cat", "rm", "id", "uname"):
        found = shutil.which(tool)
        if found:
            (bare / tool).symlink_to(found)
    os.chmod(bare, 0o755)
    log = folder / "sshd.log"
    config = folder / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\n"
        f"PidFile {folder / 'sshd.pid'}\nAuthorizedKeysFile {keys}/%u\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
        "StrictModes no\nLogLevel VERBOSE\nMaxSessions 200\nMaxStartups 100\n"
        f"Port {bare_port}\nMatch LocalPort {bare_port}\n  SetEnv PATH={bare}\n",
        "utf-8",
    )
    Path("/run/sshd").mkdir(exist_ok=True) if os.geteuid() == 0 else None
    known = folder / "known_hosts"
    public = (folder / "host_key.pub").read_text("utf-8")
    known.write_text(f"[127.0.0.1]:{port} {public}[127.0.0.1]:{bare_port} {public}")
    with log.open("wb") as out:
        proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stderr=out)
    deadline = time.monotonic() + 20
    while log.read_text("utf-8", errors="replace").count("Server listening") < 2:
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.skip(f"sshd did not start: {log.read_text('utf-8', errors='replace')[-500:]}")
        time.sleep(0.05)
    server = SSHServer(
        folder, port, user, password, client_key, host_key, known, log, proc, bare_port
    )
    try:
        yield server
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(keys, ignore_errors=True)
        if password is not None:
            SUDOERS.unlink(missing_ok=True)
            subprocess.run(["userdel", "-f", "-r", TEST_USER], capture_output=True, check=False)
