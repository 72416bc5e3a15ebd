"""A private PostgreSQL cluster for one test: stopped and started at will, shared with nobody.

Tests that restart the database must not restart the server others use (port 5432), so
this fixture makes a cluster of its own with Debian's PostgreSQL binaries
(``/usr/lib/postgresql/*/bin``, or ``RUNBOOK_TEST_PG_BIN``): ``initdb`` in a temporary
folder, ``pg_ctl start`` on a free port of 127.0.0.1, trust authentication.  Run as root
(CI), the cluster belongs to the ``postgres`` OS user (``runuser -u postgres --``), since
PostgreSQL refuses to run as root.

Missing binaries or a missing ``postgres`` user fail the test, saying what to install;
the test is never skipped silently.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


def _bin_dir() -> Path:
    """The folder of ``initdb`` and ``pg_ctl`` (the newest installed version)."""
    given = os.environ.get("RUNBOOK_TEST_PG_BIN")
    found = [Path(given)] if given else []
    found += sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    for folder in found:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    pytest.fail(
        "a private PostgreSQL cluster needs initdb and pg_ctl: install Debian's PostgreSQL "
        "server (apt-get install postgresql; .ci/run does) or set RUNBOOK_TEST_PG_BIN to "
        "the folder holding them",
        pytrace=False,
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivatePg:
    """A PostgreSQL cluster in a temporary folder, on a free port of 127.0.0.1.

    Attributes:
        url: ``postgresql://postgres@127.0.0.1:PORT/postgres``.
        log: The server's log file.
    """

    def __init__(self, root: Path) -> None:
        self.bin = _bin_dir()
        self.root = root
        self.data = root / "data"
        self.log = root / "server.log"
        self.port = _free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._as: list[str] = []
        if os.geteuid() == 0:
            if shutil.which("runuser") is None:
                pytest.fail("a private PostgreSQL cluster run as root needs runuser", pytrace=False)
            try:
                import pwd

                owner = pwd.getpwnam("postgres")
            except KeyError:
                pytest.fail(
                    "a private PostgreSQL cluster run as root needs the postgres OS user "
                    "(Debian's postgresql package creates it)",
                    pytrace=False,
                )
            os.chown(root, owner.pw_uid, owner.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")

    def _run(self, tool: str, *args: str) -> None:
        done = subprocess.run(
            [*self._as, str(self.bin / tool), *args],
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            pytest.fail(f"{tool} {' '.join(args)}: {done.stderr.strip()}\n{log}", pytrace=False)

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: sessions are cut; ``immediate``: as a crash would)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()


@pytest.fixture
def private_pg() -> Iterator[PrivatePg]:
    """A started private cluster (see the module); stopped and removed after the test."""
    root = Path(tempfile.mkdtemp(prefix="rbe-pg-"))
    try:
        cluster = PrivatePg(root)
        cluster.start()
        try:
            yield cluster
        finally:
            if cluster.running():
                cluster.stop("immediate")
    finally:
        shutil.rmtree(root, ignore_errors=True)
