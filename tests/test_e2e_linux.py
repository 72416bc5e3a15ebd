# ruff: noqa: F811
"""The Linux example end to end over SSH: runbooks/linux/tls-certificate-renew.md with
runbooks/linux/environments/lab.yaml pointed at the test sshd (tests/ssh_server.py), run
through the CLI with become (sudo with a password), against a small TLS service that
reloads its certificate on SIGHUP and whose certificates a lab CA issues.  In order: the
preflight passes; a check run (``--check``) before the change reads and changes nothing;
the real run issues the new certificate from the lab CA and the tls probe verifies it
against that CA; ``--only`` runs the verification again; the evidence verifies and the
change record names the SSH host with its address and transport."""

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
    ca: Path
    ca_key: Path
    pid_file: Path
    port: int
    proc: subprocess.Popen[str]

    def served(self) -> x509.Certificate:
        """The certificate the service presents now."""
        pem = ssl.get_server_certificate(("127.0.0.1", self.port), timeout=10)
        return x509.load_pem_x509_certificate(pem.encode())


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def _lab_ca(folder: Path) -> tuple[Path, Path]:
    """The lab CA: its certificate and key (the runbook issues from it, the probe trusts it)."""
    ca, key = folder / "ca.pem", folder / "ca.key"
    _openssl(
        *("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"),
        *("-days", "3650", "-subj", "/CN=Lab CA", "-keyout", str(key), "-out", str(ca)),
        *("-addext", "basicConstraints=critical,CA:TRUE"),
        *("-addext", "keyUsage=critical,keyCertSign,cRLSign"),
    )
    return ca, key


def _old_pair(folder: Path, ca: Path, ca_key: Path) -> tuple[Path, Path]:
    """The pair in place: issued by the lab CA, valid 10 more days (the runbook wants 30)."""
    cert, key, csr = folder / "cert.pem", folder / "key.pem", folder / "old.csr"
    ext = folder / "old.ext"
    ext.write_text(f"subjectAltName=DNS:{SERVER_NAME}\nauthorityKeyIdentifier=keyid\n", "utf-8")
    _openssl(
        *("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"),
        *("-subj", f"/CN={SERVER_NAME}/OU=old-pair", "-keyout", str(key), "-out", str(csr)),
    )
    _openssl(
        *("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key)),
        *("-set_serial", "1", "-days", "10", "-extfile", str(ext), "-out", str(cert)),
    )
    return cert, key


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    """The service, run by root (the runbook's steps reach it with become)."""
    folder = tmp_path / "tls"
    folder.mkdir()
    ca, ca_key = _lab_ca(folder)
    cert, key = _old_pair(folder, ca, ca_key)
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
        yield Service(folder, cert, key, ca, ca_key, pid_file, int(port_file.read_text()), proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)


def _environment(sshd: SSHServer, service: Service, path: Path) -> Path:
    """lab.yaml with web1 at the test sshd (become root with the test user's password)
    and the service's files and port; the lab CA issues, and the probe trusts it."""
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
        ca_cert_file=str(service.ca),
        ca_key_file=str(service.ca_key),
        probe_ca_file=str(service.ca),  # the host is this machine: the same file
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
    at_start = {f.name: f.read_bytes() for f in service.folder.iterdir()}

    # Preflight: web1 over SSH (host key, login, sh, setsid, sudo with the secret, the
    # programs the bodies call), the secret, the probe's target.
    checked = cli("preflight", runbook, "--env", str(env_file), "--json")
    assert checked.returncode == 0, checked.stdout[-4000:] + checked.stderr[-2000:]
    report = {(c["host"], c["check"]): c for c in json.loads(checked.stdout)["checks"]}
    assert report[("web1", "become (sudo -u root)")]["detail"] == "steps run as root"
    for check in ("connect and log in", "shell sh", "setsid", "tool openssl", "tool sleep"):
        assert report[("web1", check)]["ok"] is True, check
    assert report[("-", "probe target 127.0.0.1")]["ok"] is True
    assert sshd.password not in checked.stdout

    # Check mode before the change: the reads run, nothing changes on the host.
    check = cli(
        "run", runbook, "--env", str(env_file), "--no-input", "--check", "--json",
        "--run-id", "tls-check", "--state-dir", str(state),
    )  # fmt: skip
    # The served certificate expires in 10 days (30 wanted): that read fails, and a check
    # run whose reads fail exits 1, as ansible-playbook --check does.
    assert check.returncode == 1, check.stdout[-4000:] + check.stderr[-4000:]
    assert json.loads(check.stdout)["checked"] == {
        "would-change": 1, "unknown": 1, "passed": 3, "failed": 1,
    }  # fmt: skip
    verdicts = {e["step"]: e for e in _events(state, "tls-check") if e["event"] == "step-checked"}
    assert {k: v["verdict"] for k, v in verdicts.items()} == {
        "current-certificate": "passed",
        "issuing-ca": "passed",
        "service-running": "passed",
        "issue-certificate": "would-change",  # its check: not valid for 30 more days
        "reload-service": "unknown",  # changes state, no check= to read first
        "served-certificate": "failed",
    }
    assert {f.name: f.read_bytes() for f in service.folder.iterdir()} == at_start
    assert service.served() == old and service.proc.poll() is None

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

    assert seen["issuer"] == "CN=Lab CA", seen

    # Afterwards, --only the verification: one probe, a run of its own, partial.
    again = cli(
        "run", runbook, "--env", str(env_file), "--no-input", "--json", "--only",
        "served-certificate", "--run-id", "tls-verify", "--state-dir", str(state),
    )  # fmt: skip
    assert again.returncode == 0, again.stdout[-4000:] + again.stderr[-4000:]
    assert json.loads(again.stdout)["outcome"] == "partial"
    events = _events(state, "tls-verify")
    assert [e["step"] for e in events if e["event"] == "probe-finished"] == ["served-certificate"]
    assert [e for e in events if e["event"] == "process-started"] == []  # nothing on web1
    assert {e["step"] for e in events if e["event"] == "step-excluded"} >= {
        "issue-certificate", "reload-service"
    }  # fmt: skip
    assert service.served() == served

    for run_id in ("tls-check", "tls-renew", "tls-verify"):
        verified = cli(
            "evidence", "verify", str(state / "runs" / run_id), "--require-signature", "--json"
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
    assert "| web | web1 | 127.0.0.1 | ssh |" in record.stdout  # the host's address, transport
    html = cli(
        "evidence", "export", "tls-renew", "--to", "html", *pinned, "--state-dir", str(state)
    )
    assert html.returncode == 0, html.stderr
    assert "<td>web1</td><td>127.0.0.1</td><td>ssh</td>" in html.stdout
    data = cli(
        "evidence", "export", "tls-renew", "--to", "json", *pinned, "--state-dir", str(state)
    )
    assert data.returncode == 0, data.stderr
    change = json.loads(data.stdout)
    assert change["appendix"]["hosts"] == [
        {"role": "web", "name": "web1", "address": "127.0.0.1", "transport": "ssh",
         "steps": [1, 2, 3, 4, 5]}
    ]  # fmt: skip
    assert change["summary"]["evidence"]["verdict"] == "verified"
    prechecks = [r for r in change["steps"] if r["phase"] == "precheck"]
    assert {(r["host"], r["address"], r["transport"]) for r in prechecks} == {
        ("web1", "127.0.0.1", "ssh")
    }
