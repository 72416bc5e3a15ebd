# ruff: noqa: F811
"""The Linux example end to end over SSH: runbooks/linux/tls-certificate-renew.md with
runbooks/linux/environments/lab.yaml pointed at the test sshd (tests/ssh_server.py), run
through the CLI with become (sudo with a password), against a small TLS service that
reloads its certificate on SIGHUP; the tls probe verifies the new certificate, the
evidence verifies, and the change record names the SSH host."""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from ssh_server import SSHServer, sshd  # type: ignore[import-not-found]  # noqa: F401

pytestmark = pytest.mark.timeout(240)

LIBRARY = Path(__file__).resolve().parent.parent / "runbooks" / "linux"
SERVER_NAME = "intranet.example.org"

#: The service: serves TLS with the pair on disk, loads it again on SIGHUP.
SERVICE = r"""
import os, signal, socket, ssl, sys
cert, key, pid_file, port_file = sys.argv[1:5]

def load():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx

state = {"ctx": load()}

def reload(signum, frame):
    state["ctx"] = load()
    print("reloaded", flush=True)

signal.signal(signal.SIGHUP, reload)
server = socket.create_server(("127.0.0.1", 0))
with open(pid_file, "w") as f:
    f.write(f"{os.getpid()}\n")
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.getsockname()[1]))
os.replace(port_file + ".tmp", port_file)
while True:
    conn, _ = server.accept()
    conn.settimeout(5)
    try:
        with state["ctx"].wrap_socket(conn, server_side=True) as tls:
            tls.sendall(b"hello\n")
    except OSError:
        pass
"""


@dataclass
class Service:
    """The running TLS service and its files."""

    folder: Path
    cert: Path
    key: Path
    pid_file: Path
    port: int
    proc: subprocess.Popen[str]

    def served(self) -> x509.Certificate:
        """The certificate the service presents now."""
        pem = ssl.get_server_certificate(("127.0.0.1", self.port), timeout=10)
        return x509.load_pem_x509_certificate(pem.encode())


def _old_pair(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subject, names = f"/CN={SERVER_NAME}/OU=old-pair", f"subjectAltName=DNS:{SERVER_NAME}"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"),
            *("-nodes", "-days", "10", "-subj", subject, "-addext", names),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    """The service, run by root (the runbook's steps reach it with become)."""
    folder = tmp_path / "tls"
    folder.mkdir()
    cert, key = _old_pair(folder)
    pid_file, port_file = folder / "service.pid", folder / "service.port"
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVICE, str(cert), str(key), str(pid_file), str(port_file)],
        stdout=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not port_file.exists():
        assert proc.poll() is None and time.monotonic() < deadline, "the service did not start"
        time.sleep(0.05)
    try:
        yield Service(folder, cert, key, pid_file, int(port_file.read_text()), proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)


def _environment(sshd: SSHServer, service: Service, path: Path) -> Path:
    """lab.yaml with web1 at the test sshd (become root with the test user's password)
    and the service's files, port and certificate as the probe's CA."""
    env = yaml.safe_load((LIBRARY / "environments" / "lab.yaml").read_text("utf-8"))
    env["name"] = "linux-loopback"
    web1 = env["roles"]["web"][0]
    ssh = web1["ssh"]
    ssh.update({k: v for k, v in sshd.options().items() if k != "connect_timeout"})
    assert ssh["become"] is True and ssh["become_password"] == "web1_sudo"
    web1["address"] = "127.0.0.1"
    env["parameters"].update(
        cert_file=str(service.cert),
        key_file=str(service.key),
        pid_file=str(service.pid_file),
        service_port=service.port,
        probe_connect="127.0.0.1",
        probe_ca_file=str(service.cert),  # the new pair is self-signed: trust exactly it
    )
    path.write_text(yaml.safe_dump(env, sort_keys=False), "utf-8")
    return path


def _events(state: Path, run_id: str) -> list[dict[str, Any]]:
    text = (state / "runs" / run_id / "journal.jsonl").read_text("utf-8")
    return [json.loads(line) for line in text.splitlines() if line]


def test_tls_certificate_renew_runs_end_to_end_over_ssh(
    sshd: SSHServer, service: Service, tmp_path: Path
) -> None:
    if sshd.password is None:
        pytest.skip("the runbook needs become (sudo with a password): run as root")
    env_file = _environment(sshd, service, tmp_path / "linux-loopback.yaml")
    state = tmp_path / "state"
    penv = {
        **os.environ,
        "RUNBOOK_WEB1_SUDO_PASSWORD": sshd.password,
        "RUNBOOK_OPERATOR": "Jane Operator",
        "XDG_CONFIG_HOME": str(tmp_path / "config"),  # the signing key, pinned by verify
        "NO_COLOR": "1",
        "COLUMNS": "200",
    }

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "runbook_engine", *args],
            capture_output=True,
            text=True,
            env=penv,
            timeout=180,
            check=False,
        )

    assert cli("keys", "init").returncode == 0
    old = service.served()
    assert "OU=old-pair" in old.subject.rfc4514_string()
    answers = tmp_path / "answers.yaml"  # no gate in this runbook: an empty answers file
    answers.write_text(yaml.safe_dump({"operator": "Jane Operator", "answers": {}}), "utf-8")
    runbook = str(LIBRARY / "tls-certificate-renew.md")
    done = cli(
        "run", runbook, "--env", str(env_file), "--answers", str(answers), "--no-input",
        "--run-id", "tls-renew", "--change", "CHG-1042", "--state-dir", str(state),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]

    # The service presents the new pair, read again on SIGHUP (same process).
    served = service.served()
    on_disk = x509.load_pem_x509_certificate(service.cert.read_bytes())
    assert served == on_disk and served != old
    assert service.proc.poll() is None
    assert (service.folder / "cert.pem.previous").read_bytes() != service.cert.read_bytes()
    assert service.proc.stdout is not None
    assert service.proc.stdout.readline() == "reloaded\n"
    # The steps ran on web1 over SSH (with become: the files are in root's 0700 folder);
    # the probe saw the new certificate.
    events = _events(state, "tls-renew")
    started = [e for e in events if e["event"] == "process-started"]
    assert {e["transport"] for e in started} == {"ssh"} and {e["host"] for e in started} == {"web1"}
    finished = {e["step"]: e for e in events if e["event"] == "step-finished"}
    for step in ("current-certificate", "service-running", "issue-certificate"):
        assert finished[step]["status"] == "succeeded", finished[step]
    assert "OU = old-pair" in finished["current-certificate"]["output_excerpt"]
    probe = next(e for e in events if e["event"] == "probe-finished")
    assert probe["step"] == "served-certificate" and probe["status"] == "succeeded", probe
    seen = probe["result"]["observed"]
    assert seen["verified"] is True and "OU=intranet-web" in seen["subject"]
    assert seen["not_after"] == on_disk.not_valid_after_utc.isoformat()
    assert sshd.password not in (state / "runs" / "tls-renew" / "journal.jsonl").read_text()

    verified = cli(
        "evidence", "verify", str(state / "runs" / "tls-renew"), "--require-signature", "--json"
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert json.loads(verified.stdout)["verdict"] == "verified", verified.stdout
    pinned = ("--public-key", str(tmp_path / "config" / "runbook-engine" / "keys" / "signing.pub"))
    record = cli(
        "evidence", "export", "tls-renew", "--to", "md", *pinned, "--state-dir", str(state)
    )
    assert record.returncode == 0, record.stderr
    assert "CHG-1042" in record.stdout and "NOT PINNED" not in record.stdout
    rows = [ln for ln in record.stdout.splitlines() if ln.startswith("| ") and " web1 " in ln]
    assert {r.split(" | ")[1] for r in rows} >= {"issue-certificate", "reload-service"}
    data = cli(
        "evidence", "export", "tls-renew", "--to", "json", *pinned, "--state-dir", str(state)
    )
    assert data.returncode == 0, data.stderr
    change = json.loads(data.stdout)
    assert change["appendix"]["hosts"] == [
        {"role": "web", "address": "127.0.0.1", "name": "web1", "transport": "ssh"}
    ]
    assert change["summary"]["evidence"]["verdict"] == "verified"
    prechecks = [s for s in change["steps"] if s["phase"] == "precheck"]
    assert prechecks and {(s["host"], s["transport"]) for s in prechecks} == {("web1", "ssh")}
