"""Seed runbooks end to end (issue 3, "Done when"): ``runbook run`` in a subprocess against two
loopback WinRM hosts standing in for the domain controller PDC and the Exchange server
EXCHANGE1, with the verification probes against loopback HTTPS, IMAP and SMTP servers, and a
run killed mid-step and resumed.

Real components only: the runner is the ``runbook`` CLI; pywinrm speaks HTTPS to
tests/wsman_server.py (PDC: Basic, EXCHANGE1: NTLM; certificates from a trustme CA given as
``ca_trust_path``; passwords from environment variables named by the environment file);
each server runs the cmd.exe text it receives on a scripted Windows Server 2003
(tests/e2e_support.py: registry, services, IIS metabase, files, listeners); the probes talk
to tests/probe_servers.py.

The environment is the article's lab (runbooks/exchange2003/environments/lab.yaml) with
both servers on WinRM, ``probes_reachable: true`` and ``probe_ca_file`` set.  The runbook
text is used unchanged: the environment points the probes at the loopback servers with the
runbooks' ``probe_connect`` (``localhost``) and port parameters (``https_port``,
``imaps_port``, ``imap_port``, ``smtp_port``, ``submission_port``), while ``external_host``
stays the name the probes check the certificates for (no two-label name resolves to
127.0.0.1 here, so the probes could not reach it by that name).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import yaml
from e2e_support import (  # type: ignore[import-not-found]
    NSPI,
    NTDS_KEY,
    OC_KEY,
    RPCPROXY_KEY,
    Win2003,
)
from fake_windows import FakeWindows, Service  # type: ignore[import-not-found]
from probe_servers import (  # type: ignore[import-not-found]
    HttpsServer,
    ImapServer,
    Pki,
    RelayHandler,
    _RpcProxyHandler,
    closed_port,
    make_pki,
    server_context,
    smtp_server,
)
from wsman_server import WindowsHost, wsman  # type: ignore[import-not-found]

from runbook_engine.source.parser import parse_file

__all__ = ["wsman"]  # the fixture, imported for pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
#: The seed library (an override lets a change be tried against another checkout).
LIBRARY = Path(os.environ.get("RBE_E2E_LIBRARY", ROOT / "runbooks" / "exchange2003"))
PASSWORDS = {"RBE_E2E_DC_PASSWORD": "Dc-S3cret!pass", "RBE_E2E_EXCHANGE_PASSWORD": "Ex-S3cret!pass"}
USER = "INTERNALDOMAIN\\svc-change"
EXCHANGE_DN = (
    "CN=EXCHANGE1,CN=Servers,CN=First Administrative Group,CN=Administrative Groups,"
    "CN=First Organization,CN=Microsoft Exchange,CN=Services,CN=Configuration,"
    "DC=internaldomain,DC=local"
)
GC_DN = (
    "CN=PDC,CN=Servers,CN=Default-First-Site-Name,CN=Sites,CN=Configuration,"
    "DC=internaldomain,DC=local"
)
IMAP_BANNER = (
    "Microsoft Exchange Server 2003 IMAP4rev1 server version 6.5.7638.1 "
    "(exchange1.internaldomain.local) ready."
)
EXTERNAL_HOST = "mail.example.test"  # in the probe servers' certificates (probe_servers.py)
RUN_SECONDS = 60


# -- the lab --------------------------------------------------------------------------------
def make_dc() -> Win2003:
    windows = FakeWindows(
        registry={(NTDS_KEY, "dsa working directory"): ("REG_SZ", "C:\\WINDOWS\\NTDS")}
    )
    return Win2003(
        "PDC",
        "pdc.internaldomain.local",
        windows,
        exchange_dn=EXCHANGE_DN,
        gc_dn=GC_DN,
        listen={53, 88, 135, 389, 445, 3268},
    )


def make_exchange() -> Win2003:
    sa = "HKLM\\SYSTEM\\CURRENTCONTROLSET\\SERVICES\\MSEXCHANGESA\\PARAMETERS"
    windows = FakeWindows(
        registry={
            (
                "HKLM\\SYSTEM\\CURRENTCONTROLSET\\SERVICES\\MSEXCHANGEIS\\PARAMETERSSYSTEM",
                "rpc/http port",
            ): ("REG_DWORD", 6001),
            (sa, "http port"): ("REG_DWORD", 6002),
            (sa, "rpc/http nspi port"): ("REG_DWORD", 6004),
        },
        services={
            "imap4svc": Service("disabled", "stopped", "Microsoft Exchange IMAP4"),
            "smtpsvc": Service("auto", "running", "Simple Mail Transfer Protocol (SMTP)"),
        },
    )
    return Win2003(
        "EXCHANGE1",
        "exchange1.internaldomain.local",
        windows,
        listen={80, 135, 443, 445, 6001, 6002, 6004},
    )


def install_rpc_proxy(host: Win2003) -> None:
    """What a person's Add/Remove Windows Components > Networking Services > RPC over HTTP
    Proxy leaves on the host (the runbook's gate rpcproxy-install): the component, its
    default ValidPorts, and the Rpc virtual directories with anonymous access."""
    registry = host.windows.registry
    registry[(OC_KEY, "netcis")] = ("REG_DWORD", 1)
    registry[(RPCPROXY_KEY, "enabled")] = ("REG_DWORD", 1)
    registry[(RPCPROXY_KEY, "validports")] = (
        "REG_SZ",
        f"{host.name}:100-5000;{host.fqdn}:100-5000",
    )
    for vdir in ("Rpc", "RpcWithCert"):
        host.metabase[f"W3SVC/1/Root/{vdir}/AuthFlags"] = 1
        host.metabase[f"W3SVC/1/Root/{vdir}/AccessSSLFlags"] = 0


class Lab:
    """Two WinRM servers on 127.0.0.1 with their scripted hosts, probe servers, and files."""

    def __init__(self, tmp: Path, wsman: Any, pki: Pki, probes: dict[str, int]) -> None:
        self.tmp, self.pki, self.probes = tmp, pki, probes
        self.dc, self.exchange = make_dc(), make_exchange()
        # The proxy is installed by a person at the gate rpcproxy-install; the next step with
        # commands on the Exchange server finds it installed.
        self.exchange.by_hand["validports-set"] = install_rpc_proxy
        winrm_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        pki.ca.issue_cert("127.0.0.1", "localhost").configure_cert(winrm_tls)
        self.servers = {
            "dc": wsman(
                WindowsHost(self.dc.handler),
                auth="basic",
                username=USER,
                password=PASSWORDS["RBE_E2E_DC_PASSWORD"],
                tls=winrm_tls,
            ),
            "exchange": wsman(
                WindowsHost(self.exchange.handler),
                auth="ntlm",
                username=USER,
                password=PASSWORDS["RBE_E2E_EXCHANGE_PASSWORD"],
                tls=winrm_tls,
            ),
        }
        # A restart ends every shell: the next Command finds its shell gone (the transport
        # opens a new one).
        self.dc.on_restart = lambda: self.servers["dc"].inject("Command", "shell_not_found")
        self.library = Path(shutil.copytree(LIBRARY, tmp / "library"))
        self.state = tmp / "state"

    def environment(self) -> Path:
        """lab.yaml with PDC and EXCHANGE1 on WinRM over HTTPS and the probes enabled."""
        env = yaml.safe_load((LIBRARY / "environments" / "lab.yaml").read_text("utf-8"))
        env["name"] = "lab-loopback"
        for role, auth, secret in (
            ("dc", "basic", "dc_admin"),
            ("exchange", "ntlm", "exchange_admin"),
        ):
            host = env["roles"][role][0]
            host.update(
                address="127.0.0.1",
                transport="winrm",
                winrm={
                    "scheme": "https",
                    "port": self.servers[role].port,
                    "transport": auth,
                    "username": USER,
                    "credential": secret,
                    "ca_trust_path": str(self.pki.ca_file),
                    "read_timeout_sec": 10,
                    "operation_timeout_sec": 5,
                },
            )
        env["facts"]["probes_reachable"] = True
        env["parameters"].update(
            external_host=EXTERNAL_HOST,
            probe_ca_file=str(self.pki.ca_file),
            probe_connect="localhost",
            https_port=self.probes["https"],
            imaps_port=self.probes["imaps"],
            imap_port=self.probes["closed"],
            smtp_port=self.probes["relay"],
            submission_port=self.probes["submission"],
        )
        env["secrets"] = {
            "dc_admin": {"env": "RBE_E2E_DC_PASSWORD"},
            "exchange_admin": {"env": "RBE_E2E_EXCHANGE_PASSWORD"},
        }
        path = self.tmp / "lab-loopback.yaml"
        path.write_text(yaml.safe_dump(env, sort_keys=False), "utf-8")
        return path

    def answers(self, runbook: str) -> Path:
        """Confirm every gate the plan shows: only manual steps (firewall, client, GUI)."""
        plan = json.loads(
            self.cli(
                "plan", str(self.library / runbook), "--env", str(self.environment()), "--json"
            ).stdout
        )
        gates: dict[str, str] = {}
        for step in plan["steps"]:
            actions = {h["action"] for h in step["hosts"]}
            assert "gate-by-hand" not in actions, f"{step['id']} would be done by hand"
            if "gate" in actions:
                assert step["kind"] == "manual", step["id"]
                gates[step["id"]] = "confirm"
        path = self.tmp / f"answers-{runbook}.yaml"
        path.write_text(yaml.safe_dump({"operator": "Jane Operator", "answers": gates}), "utf-8")
        return path

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "runbook_engine", *args, "--state-dir", str(self.state)]

    def process_env(self) -> dict[str, str]:
        return {
            **os.environ,
            **PASSWORDS,
            "RUNBOOK_OPERATOR": "Jane Operator",
            "NO_COLOR": "1",
            "COLUMNS": "200",
        }

    def cli(self, *args: str, state: bool = False) -> subprocess.CompletedProcess[str]:
        command = self.command(*args) if state else [sys.executable, "-m", "runbook_engine", *args]
        return subprocess.run(
            command,
            capture_output=True,
            text=True,
            env=self.process_env(),
            timeout=RUN_SECONDS,
            cwd=self.tmp,
            check=False,
        )

    def run(self, runbook: str, run_id: str) -> subprocess.CompletedProcess[str]:
        answers = self.answers(runbook)
        return self.cli(
            "run",
            str(self.library / runbook),
            "--env",
            str(self.environment()),
            "--answers",
            str(answers),
            "--no-input",
            "--run-id",
            run_id,
            state=True,
        )

    def journal(self, run_id: str) -> list[dict[str, Any]]:
        path = self.state / "runs" / run_id / "journal.jsonl"
        return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


class IisRpcHandler(_RpcProxyHandler):
    """IIS with the RPC proxy installed: /rpcwithcert/rpcproxy.dll answers as /rpc/ does."""

    def _answer(self, *, with_body: bool) -> None:
        asked = self.path
        if asked.lower().startswith("/rpcwithcert/"):
            self.path = "/rpc/" + asked[len("/rpcwithcert/") :]
        super()._answer(with_body=with_body)
        method, _, headers = self.server.requests[-1]
        self.server.requests[-1] = (method, asked, headers)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def probe_servers(pki: Pki) -> Iterator[dict[str, Any]]:
    """HTTPS (RPC proxy answering 401), IMAPS, SMTP submission with STARTTLS, a closed relay
    on the "port 25" server, and a closed port standing in for 143."""
    context = server_context(pki.good)
    relay = RelayHandler(open_relay=False, local_domains=("externaldomain.com",))
    submission = RelayHandler(open_relay=False, local_domains=("externaldomain.com",))
    with ExitStack() as stack:
        https = HttpsServer(context)
        https.RequestHandlerClass = IisRpcHandler
        stack.enter_context(https)
        imaps = stack.enter_context(ImapServer("implicit", context, banner=IMAP_BANNER))
        smtp_relay = stack.enter_context(smtp_server(relay))
        smtp_submission = stack.enter_context(smtp_server(submission, context))
        yield {
            "https": https,
            "imaps": imaps,
            "relay": relay,
            "submission": submission,
            "ports": {
                "https": https.port,
                "imaps": imaps.port,
                "relay": smtp_relay.port,
                "submission": smtp_submission.port,
                "closed": closed_port(),
            },
        }


@pytest.fixture
def lab(
    tmp_path: Path,
    wsman: Any,
    pki: Pki,
    probe_servers: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> Lab:
    ntlm_users = tmp_path / "ntlm-users"
    ntlm_users.write_text(f"INTERNALDOMAIN:svc-change:{PASSWORDS['RBE_E2E_EXCHANGE_PASSWORD']}\n")
    monkeypatch.setenv("NTLM_USER_FILE", str(ntlm_users))  # pyspnego's NTLM acceptor
    return Lab(tmp_path, wsman, pki, probe_servers["ports"])


# -- helpers --------------------------------------------------------------------------------
def named(events: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in events if e["event"] == name]


def assert_verifies(lab: Lab, run_id: str) -> None:
    verified = lab.cli("evidence", "verify", str(lab.state / "runs" / run_id))
    assert verified.returncode == 0, verified.stdout + verified.stderr


def assert_succeeded(lab: Lab, done: subprocess.CompletedProcess[str], run_id: str) -> None:
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    status = json.loads(lab.cli("status", run_id, "--json", state=True).stdout)
    assert status["status"] == "succeeded", status


def changes(host: Win2003) -> list[str]:
    """The command lines that change a host (reads, backups of what was found, and checks
    left out)."""
    verbs = (
        "reg add",
        "reg delete",
        "reg import",
        "sc config",
        "sc start",
        "sc stop",
        "sysocmgr",
        "shutdown",
    )
    return [c for c in host.commands() if c.lower().startswith(verbs) or " SET W3SVC/" in c]


def validports(lab: dict[str, Any]) -> str:
    """ValidPorts for a separate global catalog as Microsoft documents it (Exchange 2003 RPC
    over HTTP deployment: back-end NetBIOS and FQDN with 6001-6002 and 6004, global catalog
    NetBIOS and FQDN with 6004; no 593, no public name), from the lab's names."""
    p = lab["parameters"]
    exchange = [p["exchange_netbios"], p["exchange_fqdn"]]
    dc = [p["dc_netbios"], p["dc_fqdn"]]
    entries = [f"{h}:6001-6002" for h in exchange] + [f"{h}:6004" for h in exchange + dc]
    return ";".join(entries)


# -- tests ------------------------------------------------------------------------------------
def test_rpc_over_https_runs_end_to_end(lab: Lab, probe_servers: dict[str, Any]) -> None:
    done = lab.run("rpc-over-https.md", "e2e-rpc")
    assert_succeeded(lab, done, "e2e-rpc")
    events = lab.journal("e2e-rpc")
    lab_env = yaml.safe_load((LIBRARY / "environments" / "lab.yaml").read_text("utf-8"))

    # Domain controller: the NSPI value, then one restart; it listens on 6004 afterwards.
    assert lab.dc.reg(NTDS_KEY, "NSPI interface protocol sequences") == ["ncacn_http:6004"]
    assert lab.dc.restarts == 1 and 6004 in lab.dc.listening()
    # the preflight's own shell, then the run's: a new one after the restart
    assert lab.servers["dc"].count("Create") == 3
    assert lab.servers["exchange"].count("Create") == 2  # preflight, then one for the run
    assert changes(lab.dc) == [
        'reg add "HKLM\\SYSTEM\\CurrentControlSet\\Services\\NTDS\\Parameters" /v '
        '"NSPI interface protocol sequences" /t REG_MULTI_SZ /d "ncacn_http:6004" /f',
        'shutdown /r /t 60 /d p:4:1 /c "RPC over HTTP: NSPI interface protocol sequences '
        '(runbook rpc-over-https)"',
    ]
    # Exchange server: proxy installed, ValidPorts exactly the lab's string, Rpc directories
    # secured; what was found was saved first.
    ex = lab.exchange
    assert ex.reg(RPCPROXY_KEY, "ValidPorts") == validports(lab_env)
    assert (
        ex.reg(
            "HKLM\\SOFTWARE\\MICROSOFT\\WINDOWS\\CURRENTVERSION\\SETUP\\OC MANAGER\\SUBCOMPONENTS",
            "netcis",
        )
        == 1
    )
    assert ex.metabase == {
        "W3SVC/1/Root/Rpc/AuthFlags": 6,
        "W3SVC/1/Root/Rpc/AccessSSLFlags": 264,
        "W3SVC/1/Root/RpcWithCert/AuthFlags": 6,
        "W3SVC/1/Root/RpcWithCert/AccessSSLFlags": 264,
    }
    assert ex.files["c:\\runbook-backup\\iis-rpc-authflags-before.txt"].endswith("(INTEGER) 1\r\n")
    for change in changes(ex):
        assert changes(ex).count(change) == 1, change
    assert not any(c.startswith("sysocmgr") for c in changes(ex))  # installed by a person
    # The value found was saved for the backout; nothing of another server was in it.
    assert ex.files["c:\\runbook-backup\\validports-before.txt"] == (
        "ValidPorts=EXCHANGE1:100-5000;exchange1.internaldomain.local:100-5000\r\n"
    )
    assert ex.unmodelled == [] and lab.dc.unmodelled == []

    # Probes from the operator's machine, all passing, against the loopback servers.
    probes = {e["step"]: e for e in named(events, "probe-finished")}
    assert set(probes) == {
        "verify-443-open",
        "verify-certificate",
        "verify-rpc-401",
        "verify-rpcwithcert-401",
    }
    assert all(e["status"] == "succeeded" for e in probes.values()), probes
    assert probes["verify-certificate"]["result"]["observed"]["verified"] is True
    paths = [path for _, path, _ in probe_servers["https"].requests]
    assert "/rpc/rpcproxy.dll" in paths and "/rpcwithcert/rpcproxy.dll" in paths
    # Only the manual steps were gates; the WinRM steps ran on their hosts.
    assert {e["step"] for e in named(events, "gate-passed")} == {
        "certificate-check",
        "gc-restart-go",
        "rpcproxy-install",
        "rpc-backend",
        "firewall-443",
        "outlook-profile",
        "verify-proxy-url",
        "verify-rpcping",
        "verify-outlook-https",
    }
    hosts = {(e["step"], e["host"]) for e in named(events, "step-started")}
    assert ("iis-rpc-auth", "EXCHANGE1") in hosts and ("gc-restart", "PDC") in hosts
    assert_verifies(lab, "e2e-rpc")
    # The passwords never reached the journal or the output files.
    for path in (lab.state / "runs" / "e2e-rpc").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert all(p.encode() not in data for p in PASSWORDS.values()), path


def test_killed_run_resumes_and_reruns_only_the_interrupted_step(lab: Lab) -> None:
    # The Exchange host stalls in iis-rpc-auth, after the Rpc directory got AuthFlags 6 and
    # before RpcWithCert does; the runner is killed there.  Released, the host kills the
    # script (its process tree is gone), so the change is half made.
    stall = lab.exchange.stall_at("SET W3SVC/1/Root/RpcWithCert/AuthFlags")
    answers = lab.answers("rpc-over-https.md")
    command = lab.command(
        "run",
        str(lab.library / "rpc-over-https.md"),
        "--env",
        str(lab.environment()),
        "--answers",
        str(answers),
        "--no-input",
        "--run-id",
        "e2e-kill",
    )
    runner = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=lab.process_env(),
        cwd=lab.tmp,
        start_new_session=True,
    )
    try:
        assert stall.reached.wait(RUN_SECONDS), "the host never received the stalled command"
        os.killpg(runner.pid, signal.SIGKILL)
        runner.wait(RUN_SECONDS)
        # The step's command still runs on the host (its shell outlives the runner): the
        # marker it was started with is journaled, and a resume looks for it and refuses.
        started = named(lab.journal("e2e-kill"), "process-started")[-1]
        assert started["step"] == "iis-rpc-auth", started
        assert started["transport"] == "winrm" and started["marker"].startswith("rbe-")
        marker = started["marker"]
        before = len(lab.journal("e2e-kill"))
        refused = lab.cli("resume", "e2e-kill", "--answers", str(answers), "--no-input", state=True)
        assert refused.returncode == 75, refused.stdout + refused.stderr
        assert "still running on EXCHANGE1" in refused.stderr and marker in refused.stderr
        assert "(taskkill /T /F /PID " in refused.stderr  # WinRM's hint, from its transport
        # --assume-stopped does not override a command found running.
        insisted = lab.cli(
            "resume",
            "e2e-kill",
            "--answers",
            str(answers),
            "--no-input",
            "--assume-stopped",
            state=True,
        )
        assert insisted.returncode == 75, insisted.stdout + insisted.stderr
        # A host that cannot be asked refuses the resume too (nothing is rerun blindly).
        lab.servers["exchange"].inject("Create", "500")
        unreachable = lab.cli(
            "resume", "e2e-kill", "--answers", str(answers), "--no-input", state=True
        )
        assert unreachable.returncode == 75, unreachable.stdout + unreachable.stderr
        assert "cannot be asked" in unreachable.stderr and "--assume-stopped" in unreachable.stderr
        assert len(lab.journal("e2e-kill")) == before, "a refused resume must write nothing"
    finally:
        with contextlib.suppress(ProcessLookupError):  # killed already, unless it failed
            os.killpg(runner.pid, signal.SIGKILL)
        runner.wait(RUN_SECONDS)
        stall.release.set()
    assert runner.returncode == -signal.SIGKILL
    deadline = time.monotonic() + 10
    while not any(c.startswith("(killed") for c in lab.exchange.commands()):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert lab.exchange.metabase["W3SVC/1/Root/Rpc/AuthFlags"] == 6
    assert lab.exchange.metabase["W3SVC/1/Root/RpcWithCert/AuthFlags"] == 1
    before = changes(lab.exchange)

    # The command ended, but the host cannot be asked: the operator says it has ended.
    lab.servers["exchange"].inject("Create", "500")
    resumed = lab.cli(
        "resume",
        "e2e-kill",
        "--answers",
        str(answers),
        "--no-input",
        "--assume-stopped",
        state=True,
    )
    assert_succeeded(lab, resumed, "e2e-kill")
    events = lab.journal("e2e-kill")
    assumed = named(events, "process-assumed-stopped")
    assert [(e["step"], e["marker"], e["by"]) for e in assumed] == [
        ("iis-rpc-auth", marker, "Jane Operator")
    ]
    assert [e["step"] for e in named(events, "step-interrupted")] == ["iis-rpc-auth"]
    rerun = named(events, "step-rerun")
    assert [e["step"] for e in rerun] == ["iis-rpc-auth"]
    assert "check found the change not in place" in rerun[0]["reason"]
    # Every change reached its host once, except the interrupted step's first SET: it ran
    # before the kill and again in the rerun (setting the same value).
    ex = lab.exchange
    twice = (
        "cscript //nologo C:\\Inetpub\\AdminScripts\\adsutil.vbs SET W3SVC/1/Root/Rpc/AuthFlags 6"
    )
    for change in set(changes(ex)) | set(changes(lab.dc)):
        expected = 2 if change == twice else 1
        assert (changes(ex) + changes(lab.dc)).count(change) == expected, change
    assert changes(ex)[: len(before)] == before  # nothing before the kill ran again...
    assert not any(c.startswith("sysocmgr") for c in changes(ex)[len(before) :])  # ...not setup
    # The rerun kept the state found before the first attempt (backups are written once).
    assert ex.files["c:\\runbook-backup\\iis-rpc-authflags-before.txt"].endswith("(INTEGER) 1\r\n")
    assert all(v in (6, 264) for v in ex.metabase.values())
    assert ex.reg(RPCPROXY_KEY, "ValidPorts") == validports(
        yaml.safe_load((LIBRARY / "environments" / "lab.yaml").read_text("utf-8"))
    )
    assert lab.dc.restarts == 1
    assert_verifies(lab, "e2e-kill")


def test_phones_runbook_runs_end_to_end(lab: Lab, probe_servers: dict[str, Any]) -> None:
    # The submission virtual server is created by a person in Exchange System Manager
    # (gate submission-vs-create); the fake opens its port when the next command arrives
    # after that gate.
    port = lab.probes["submission"]
    lab.exchange.by_hand = {"verify-phone-services": lambda host: host.extra_listen.add(port)}
    done = lab.run("imap4-smtp-for-phones.md", "e2e-phones")
    assert_succeeded(lab, done, "e2e-phones")
    events = lab.journal("e2e-phones")
    services = lab.exchange.windows.services
    assert (services["imap4svc"].start, services["imap4svc"].state) == ("auto", "running")
    assert changes(lab.exchange) == ["sc config IMAP4Svc start= auto", "sc start IMAP4Svc"]
    assert [e["step"] for e in named(events, "step-already-done")] == ["smtpsvc-enable"]
    probes = {e["step"]: e for e in named(events, "probe-finished")}
    assert set(probes) == {
        "external-name-probe",
        "verify-imaps-probe",
        "verify-imap-143-closed",
        "verify-submission-probe",
        "verify-no-open-relay",
    }
    assert all(e["status"] == "succeeded" for e in probes.values()), probes
    relay = probe_servers["relay"].events
    assert ("RCPT", "relay-test@partner.example.org") in relay
    assert not any(verb == "DATA" for verb, _ in relay)  # the relay test never sends
    assert "LOGOUT" in probe_servers["imaps"].commands  # the IMAP probe spoke IMAP over TLS
    assert lab.dc.commands() == [] and lab.exchange.unmodelled == []
    assert_verifies(lab, "e2e-phones")


def test_validports_merge_keeps_other_servers_entries(lab: Lab) -> None:
    # One RPC proxy for two back-end servers: ValidPorts already names EXCHANGE2.  The merge
    # keeps its entries (with a warning), replaces EXCHANGE1's 100-5000 range with the
    # documented entries, and the verification accepts the merged value.
    other = "EXCHANGE2:6001-6002;exchange2.internaldomain.local:6001-6002;EXCHANGE2:6004"

    def install_with_other_server(host: Win2003) -> None:
        install_rpc_proxy(host)
        host.windows.registry[(RPCPROXY_KEY, "validports")] = (
            "REG_SZ",
            f"EXCHANGE1:100-5000;{other};exchange1.internaldomain.local:100-5000",
        )

    lab.exchange.by_hand["validports-set"] = install_with_other_server
    done = lab.run("rpc-over-https.md", "e2e-merge")
    assert_succeeded(lab, done, "e2e-merge")
    lab_env = yaml.safe_load((LIBRARY / "environments" / "lab.yaml").read_text("utf-8"))
    assert lab.exchange.reg(RPCPROXY_KEY, "ValidPorts") == other + ";" + validports(lab_env)
    output = "".join(
        (lab.state / "runs" / "e2e-merge" / e["output_file"]).read_text("utf-8", "replace")
        for e in lab.journal("e2e-merge")
        if e.get("step") == "validports-set" and e.get("output_file")
    )
    for entry in other.split(";"):
        assert f"WARNING: ValidPorts holds {entry} for a server not in this environment" in output
    assert "100-5000" not in lab.exchange.reg(RPCPROXY_KEY, "ValidPorts")


def test_nspi_merge_keeps_other_protocol_sequences(lab: Lab) -> None:
    # The global catalog's NSPI value already holds another protocol sequence (as Windows
    # Server 2003's reg query prints a multi-string: entries joined by \0, ending in \0\0).
    # The merge keeps it (with a warning), adds ncacn_http:6004 after it, and the backout
    # file holds the value as found.
    registry = lab.dc.windows.registry
    registry[(NTDS_KEY, NSPI)] = ("REG_MULTI_SZ", ["ncacn_ip_tcp:6005", "ncalrpc"])
    lab.dc._booted = dict(registry)  # the directory service started with it
    done = lab.run("rpc-over-https.md", "e2e-nspi")
    assert_succeeded(lab, done, "e2e-nspi")
    assert lab.dc.reg(NTDS_KEY, NSPI) == ["ncacn_ip_tcp:6005", "ncalrpc", "ncacn_http:6004"]
    saved = lab.dc.files["c:\\runbook-backup\\nspi-before.txt"]
    assert saved.rstrip("\r\n") == "NSPI=ncacn_ip_tcp:6005\\0ncalrpc"  # no trailing \0\0
    # The backout, run on the host, writes back the value as found: no empty entries.
    book = parse_file(lab.library / "rpc-over-https.md")
    backout = next(s for s in book.steps if s.id == "nspi-backout")
    out, code = lab.dc.run_script(backout.body.replace("{{ backup_dir }}", "c:\\runbook-backup"))
    assert code == 0, out
    assert lab.dc.reg(NTDS_KEY, NSPI) == ["ncacn_ip_tcp:6005", "ncalrpc"]
    output = "".join(
        (lab.state / "runs" / "e2e-nspi" / e["output_file"]).read_text("utf-8", "replace")
        for e in lab.journal("e2e-nspi")
        if e.get("step") == "nspi-set" and e.get("output_file")
    )
    for entry in ("ncacn_ip_tcp:6005", "ncalrpc"):
        assert f"WARNING: NSPI interface protocol sequences holds {entry}; the entry is kept" in (
            output
        )
    assert 6004 in lab.dc.listening()
