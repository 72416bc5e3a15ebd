"""Issue 16 parts 2-4 against the WinRM test server (tests/wsman_server.py): preflight
(connection, login, cmd.exe, the programs the steps call), check mode on ``registry`` and
``service`` steps (read, never write) and ``--limit`` over WinRM hosts.

pywinrm speaks real WS-Management over HTTP to loopback servers; behind them a scripted
Windows host (tests/fake_windows.py: registry, services, reg.exe and sc.exe) that also
answers the preflight's program look-ups from a list of installed programs.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fake_windows import FakeWindows, Service  # type: ignore[import-not-found]
from wsman_server import CommandCall, Reply, WindowsHost, wsman  # type: ignore[import-not-found]

from runbook_engine.cli import main
from runbook_engine.evidence.journal import read_journal

__all__ = ["wsman"]

PASSWORD = "S3cret!pass"
NTDS = "HKLM\\SYSTEM\\CURRENTCONTROLSET\\SERVICES\\NTDS\\PARAMETERS"
NSPI = "nspi interface protocol sequences"
ADSUTIL = "%SystemDrive%\\Inetpub\\AdminScripts\\adsutil.vbs"

BOOK = f"""---
id: wctl
roles:
  dc: domain controller
  exchange: Exchange server
---
# WinRM control

```registry {{#nspi target=dc}}
key: HKLM\\SYSTEM\\CurrentControlSet\\Services\\NTDS\\Parameters
value: NSPI interface protocol sequences
type: REG_MULTI_SZ
data: [ncacn_http:6004]
```

```service {{#imap4 target=exchange}}
name: IMAP4Svc
start: auto
state: running
wait: 5
```

```cmd {{#users target=dc}}
dsquery user -limit 1
cscript //nologo {ADSUTIL} GET W3SVC/1/Root/Rpc/AuthFlags
```
"""


@dataclass
class Host:
    """A scripted Windows host: FakeWindows, plus the programs the preflight finds."""

    windows: FakeWindows
    programs: set[str] = field(
        default_factory=lambda: {"reg.exe", "sc.exe", "dsquery.exe", "cscript.exe", ADSUTIL}
    )
    preflights: int = 0

    def handler(self, kind: str, text: str, call: CommandCall) -> Reply:
        if "RBE-FOUND" not in text:
            return self.windows.handler(kind, text, call)
        self.preflights += 1
        out = ["", "Microsoft Windows [Version 5.2.3790]", ""]
        for line in text.splitlines():
            match = re.match(r'for %%i in \((\S+)\) do|if exist "([^"]+)"', line)
            if match:
                name = match.group(1) or match.group(2)
                out.append(f"RBE-{'FOUND' if name in self.programs else 'MISSING'} {name}")
        return Reply("\r\n".join(out) + "\r\n")


class Lab:
    def __init__(self, tmp: Path, wsman: Any) -> None:
        self.tmp = tmp
        self.dc = Host(FakeWindows())
        self.exchange = Host(FakeWindows(services={"imap4svc": Service("disabled", "stopped")}))
        self.servers = {
            "dc": wsman(WindowsHost(self.dc.handler)),
            "exchange": wsman(WindowsHost(self.exchange.handler)),
        }
        (tmp / "book.md").write_text(BOOK, "utf-8")

    def env(self, manual: tuple[str, ...] = ()) -> Path:
        lines = ["name: loopback", "roles:"]
        for role, name in (("dc", "PDC"), ("exchange", "EXCHANGE1")):
            lines += [f"  {role}:", f"    - name: {name}", "      address: 127.0.0.1"]
            if role in manual:
                lines.append("      transport: manual")
                continue
            lines += [
                "      transport: winrm",
                f"      winrm: {{scheme: http, port: {self.servers[role].port}, "
                "transport: basic, username: admin, credential: winrm_password, "
                "read_timeout_sec: 4, operation_timeout_sec: 1, allow_basic_over_http: true}",
            ]
        lines += ["secrets:", "  winrm_password: {env: RBE_TEST_WINRM_PASSWORD}"]
        path = self.tmp / f"env-{'-'.join(manual) or 'winrm'}.yml"
        path.write_text("\n".join(lines) + "\n", "utf-8")
        return path

    def cli(self, capsys: pytest.CaptureFixture[str], *args: Any) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as exc:
            main([str(a) for a in args])
        out = capsys.readouterr()
        code = exc.value.code
        return (code if isinstance(code, int) else 0), out.out, out.err


@pytest.fixture
def lab(tmp_path: Path, wsman: Any, monkeypatch: pytest.MonkeyPatch) -> Lab:
    monkeypatch.setenv("RBE_TEST_WINRM_PASSWORD", PASSWORD)
    monkeypatch.setenv("RUNBOOK_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("RUNBOOK_SIGNING_KEY", raising=False)
    return Lab(tmp_path, wsman)


def checks(report: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(c["host"], c["check"]): c for c in report["checks"]}


def test_preflight_connects_logs_in_and_finds_the_programs(
    lab: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = lab.cli(
        capsys, "preflight", lab.tmp / "book.md", "--env", lab.env(("exchange",)), "--json"
    )
    assert code == 0, err
    found = checks(json.loads(out))
    assert found[("PDC", "connect and log in")]["ok"] is True
    assert "5.2.3790" in found[("PDC", "shell cmd")]["detail"]
    for tool in ("reg.exe", "dsquery.exe", "cscript.exe", ADSUTIL):
        assert found[("PDC", f"tool {tool}")]["ok"] is True, tool
    assert found[("EXCHANGE1", "connect")]["ok"] is None  # manual: by hand
    assert "by hand" in found[("EXCHANGE1", "connect")]["detail"]
    assert found[("-", "secrets")]["ok"] is True
    assert lab.dc.windows.argvs == []  # the preflight ran no reg or sc command


def test_preflight_names_the_host_and_the_missing_program(
    lab: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    lab.dc.programs -= {"dsquery.exe", ADSUTIL}
    env = lab.env()
    code, out, _ = lab.cli(capsys, "preflight", lab.tmp / "book.md", "--env", env)
    assert code == 2
    assert "FAIL PDC (winrm) tool dsquery.exe: not found" in out
    assert "fix: install dsquery.exe on PDC or put it on its PATH (step users calls it)" in out
    assert f"FAIL PDC (winrm) tool {ADSUTIL}" in out
    assert "ok   EXCHANGE1 (winrm) tool sc.exe" in out
    code, _, err = lab.cli(capsys, "run", lab.tmp / "book.md", "--env", env, "--no-input")
    assert code == 2 and "preflight: PDC (winrm) tool dsquery.exe" in err
    assert not (lab.tmp / "state" / "runs").exists()
    assert lab.dc.windows.argvs == [] and lab.exchange.windows.argvs == []


def test_preflight_wrong_password_fails_login_and_leaves_no_run(
    lab: Lab, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RBE_TEST_WINRM_PASSWORD", "wrong")
    code, _, err = lab.cli(capsys, "run", lab.tmp / "book.md", "--env", lab.env(), "--no-input")
    assert code == 2
    assert "preflight: PDC (winrm) connect and log in:" in err and "401" in err
    assert "EXCHANGE1" in err
    assert not (lab.tmp / "state" / "runs").exists()


def test_check_mode_reads_registry_and_service_and_writes_nothing(
    lab: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    lab.dc.windows.registry[(NTDS, NSPI)] = ("REG_MULTI_SZ", ["ncacn_http:6004"])
    code, out, _ = lab.cli(
        capsys, "run", lab.tmp / "book.md", "--env", lab.env(), "--no-input", "--check", "--json"
    )
    assert code == 0
    result = json.loads(out)
    assert result["status"] == "checked"
    records = read_journal(Path(result["journal"]), verify=False)
    verdicts = {r["step"]: r for r in records if r["event"] == "step-checked"}
    assert verdicts["nspi"]["verdict"] == "already-done"
    assert verdicts["imap4"]["verdict"] == "would-change"
    assert verdicts["imap4"]["observed"]["start"] == "disabled"
    assert verdicts["users"]["verdict"] == "unknown"
    assert result["checked"] == {"already-done": 1, "would-change": 1, "unknown": 1}
    verbs = [a[1].lower() for a in lab.dc.windows.commands() + lab.exchange.windows.commands()]
    assert set(verbs) <= {"query", "qc"}, verbs  # reads only: no add, delete, config, start
    assert lab.exchange.windows.services["imap4svc"].start == "disabled"


def test_limit_runs_one_host_and_journals_the_other_as_left_out(
    lab: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = lab.cli(
        capsys,
        "run",
        lab.tmp / "book.md",
        "--env",
        lab.env(),
        "--no-input",
        "--json",
        "--limit",
        "pdc",
        "--skip-tags",
        "cmd",
    )
    assert code == 0
    result = json.loads(out)
    assert result["outcome"] == "partial"
    assert lab.dc.windows.registry[(NTDS, NSPI)] == ("REG_MULTI_SZ", ["ncacn_http:6004"])
    assert lab.exchange.windows.commands() == []  # not even a read
    assert lab.exchange.preflights == 0  # its host was left out: not preflighted either
    records = read_journal(Path(result["journal"]), verify=False)
    left = {(r["step"], r["host"]): r["reason"] for r in records if r["event"] == "step-excluded"}
    assert left == {
        ("imap4", "EXCHANGE1"): "host EXCHANGE1 not in --limit pdc",
        ("users", "PDC"): "tagged cmd (--skip-tags)",
    }
