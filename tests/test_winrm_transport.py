"""WinRMTransport against a real WS-Management server on 127.0.0.1 (tests/wsman_server.py).

pywinrm speaks real HTTP(S) to the server; nothing of pywinrm or requests is mocked.
"""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import trustme
from wsman_server import (  # type: ignore[import-not-found]
    TERMINATE,
    CommandCall,
    Reply,
    WindowsHost,
    WSManServer,
    wsman,
)

from runbook_engine.errors import EnvironmentFileError, ExecutionError
from runbook_engine.source.model import Host
from runbook_engine.transports.base import Transport
from runbook_engine.transports.winrm import WinRMTransport, validate_winrm_options
from runbook_engine.transports.winrm_scripts import MAX_COMMAND_LINE, decode_clixml

__all__ = ["wsman"]  # the fixture, imported for pytest

PASSWORD = "S3cret!pass"


def echo(kind: str, text: str, call: CommandCall) -> Reply:
    """Default scripted step: print what ran; exit with the number after 'exit ' if any."""
    codes = re.findall(r"\bexit (\d+)", text)
    code = int(codes[-1]) if codes else 0
    return Reply(f"{kind}:{text.strip()}\r\n", "", code)


def slow(kind: str, text: str, call: CommandCall) -> Reply:
    """A step that runs until terminated (or 30 s)."""
    call.terminated.wait(30)
    return Reply("partial\r\n", "", 1)


def make_host(server: WSManServer, **options: Any) -> Host:
    base: dict[str, Any] = {
        "scheme": "https" if server.tls else "http",
        "port": server.port,
        "transport": server.auth,
        "username": server.username,
        "read_timeout_sec": 4,
        "operation_timeout_sec": 1,
    }
    if server.auth == "certificate":
        base.pop("username")
    if server.auth == "basic" and not server.tls:
        base["allow_basic_over_http"] = True  # a loopback test server
    base.update(options)
    return Host("EXCHANGE1", "127.0.0.1", "winrm", base, line=7)


@pytest.fixture
def win() -> WindowsHost:
    return WindowsHost(echo)


@pytest.fixture
def server(wsman: Any, win: WindowsHost) -> WSManServer:
    return wsman(win)


@pytest.fixture
def transport(server: WSManServer) -> Any:
    t = WinRMTransport(make_host(server), PASSWORD)
    yield t
    t.close()


# -- running --------------------------------------------------------------------------
def test_is_a_transport(transport: WinRMTransport) -> None:
    assert isinstance(transport, Transport)
    assert transport.name == "winrm"


def test_cmd_step_runs_in_cmd_with_utf8_codepage(transport: Any, server: Any, win: Any) -> None:
    result = transport.run("cmd", "dir C:\\ & exit 3\n")
    assert result.exit_code == 3
    assert result.stdout == "cmd:dir C:\\ & exit 3\n"
    assert win.scripts == [("cmd", "dir C:\\ & exit 3")]
    assert server.commands[0].codepage == "65001"
    assert "dir C:\\ & exit 3" in result.command


def test_multiline_cmd_body_runs_as_temp_script(transport: Any, win: Any) -> None:
    result = transport.run("cmd", "echo one\r\necho two\n")
    assert result.ok
    kind, text = win.scripts[-1]
    assert kind == "cmd"
    assert text == "@echo off\r\necho one\r\necho two\r\n"
    assert win.files == {}  # the script and its base64 were deleted


def test_powershell_step_is_encoded_utf16(transport: Any, server: Any, win: Any) -> None:
    body = "Get-Service | Where-Object { $_.Status -eq 'Running' } # ünïcode\n"
    result = transport.run("powershell", body)
    assert result.ok
    line = server.commands[0].command
    assert "powershell -NoProfile -NonInteractive -EncodedCommand " in line
    encoded = line.rsplit(" ", 1)[1]
    script = base64.b64decode(encoded).decode("utf-16-le")
    assert script == "$ErrorActionPreference = 'Stop'\n" + body.rstrip("\n")
    assert server.commands[0].stdin_closed.is_set()  # PowerShell 2.0 must not wait on stdin


def test_env_goes_up_as_data_and_cwd_into_the_script_not_the_command(
    transport: Any, server: Any, win: Any
) -> None:
    seen: dict[str, bytes] = {}

    def keep(kind: str, text: str, call: Any) -> Reply:
        seen.update(call.files)
        return Reply("ok\r\n")

    win.handler = keep
    result = transport.run("cmd", "echo %TOKEN%\n", cwd="C:\\Temp", env={"TOKEN": 'a&b"%c!^'})
    assert result.ok
    assert 'a&b"%c' not in result.command
    text = win.scripts[-1][1]
    assert "a&b" not in text  # the value is data, never script text
    assert 'for /f "usebackq delims=" %%L in ("%TEMP%\\' in text and 'do set "%%L"' in text
    assert 'cd /d "C:\\Temp" || exit /b 1' in text
    (data,) = [v for k, v in seen.items() if k.endswith(".env")]
    assert data == b'TOKEN=a&b"%c!^\r\n'
    seen.clear()
    ps = transport.run("powershell", "$env:TOKEN\n", env={"TOKEN": "it's\n“x”"})
    assert "it's" not in ps.command and "it's" not in win.scripts[-1][1]
    assert "[Convert]::FromBase64String" in win.scripts[-1][1]
    (data,) = [v for k, v in seen.items() if k.endswith(".env")]
    name, _, encoded = data.decode().strip().partition("=")
    assert name == "TOKEN" and base64.b64decode(encoded).decode() == "it's\n“x”"
    assert win.files == {}  # script, data and their base64 were deleted


def test_output_callback_receives_lines(server: Any, win: Any) -> None:
    win.handler = lambda kind, text, call: Reply("one\r\ntwo ü\r\nthree", "err\r\n", 0)
    seen: list[str] = []
    t = WinRMTransport(make_host(server), PASSWORD, on_output=seen.append)
    result = t.run("cmd", "ver\n")
    t.close()
    assert result.stdout == "one\ntwo ü\nthree"
    assert seen == ["one", "two ü", "err", "three"]  # complete lines first, the rest at the end


def test_broken_output_callback_does_not_break_the_step(server: Any) -> None:
    def broken(line: str) -> None:
        raise RuntimeError("display gone")

    t = WinRMTransport(make_host(server), PASSWORD, on_output=broken)
    assert t.run("cmd", "ver\n").ok
    t.close()


def test_unsupported_kind_is_a_clear_error(transport: Any) -> None:
    with pytest.raises(ExecutionError, match="cannot run a 'sh' step"):
        transport.run("sh", "ls\n")


# -- shell life -----------------------------------------------------------------------
def test_one_shell_for_many_steps(transport: Any, server: Any) -> None:
    for i in range(5):
        assert transport.run("cmd", f"echo {i}\n").ok
    assert server.count("Create") == 1
    assert {c.shell_id for c in server.commands} == {server.commands[0].shell_id}
    transport.close()
    transport.close()
    assert server.count("Delete") == 1


def test_shell_reopened_after_server_lost_it(transport: Any, server: Any) -> None:
    assert transport.run("cmd", "echo 1\n").ok
    server.forget_shells()
    assert transport.run("cmd", "echo 2\n").stdout == "cmd:echo 2\n"
    assert server.count("Create") == 2
    assert transport.shells_opened == 2
    assert transport.run("cmd", "echo 3\n").ok
    assert server.count("Create") == 2


def test_shell_not_found_fault_mid_run_reopens(transport: Any, server: Any) -> None:
    transport.run("cmd", "echo 1\n")
    server.inject("Command", "shell_not_found")
    assert transport.run("cmd", "echo 2\n").ok
    assert transport.shells_opened == 2


def test_shell_lost_while_step_runs_is_not_rerun(transport: Any, server: Any) -> None:
    server.inject("Receive", "shell_not_found")
    with pytest.raises(ExecutionError, match="outcome is unknown"):
        transport.run("cmd", "reg add HKLM\\X /f\n")
    assert len([c for c in server.commands if "reg add" in c.command]) == 1


# -- long bodies ----------------------------------------------------------------------
@pytest.mark.parametrize(("kind", "size"), [("cmd", 30000), ("powershell", 20000)])
def test_long_body_uploaded_in_chunks(
    transport: Any, server: Any, win: Any, kind: str, size: int
) -> None:
    body = "".join(f"echo line {i} ü€\n" for i in range(size // 18))
    result = transport.run(kind, body)
    assert result.ok, result
    assert all(len(c.command) < MAX_COMMAND_LINE for c in server.commands)
    chunks = [c.command for c in server.commands if c.command.startswith("(echo")]
    assert len(chunks) >= 3
    ran_kind, text = win.scripts[-1]
    assert ran_kind == kind
    assert text.replace("\r\n", "\n").endswith(body)
    assert win.files == {}


# -- deadlines ------------------------------------------------------------------------
def test_deadline_signals_terminate_and_kills_tree(server: Any, win: Any) -> None:
    win.handler = slow
    t = WinRMTransport(make_host(server), PASSWORD)
    result = t.run("cmd", "ping -n 100 127.0.0.1\n", timeout=1.5)
    assert result.timed_out and result.exit_code is None
    main = next(c for c in server.commands if "ping -n 100" in c.command)
    assert TERMINATE in main.signals
    index = server.commands.index(main)
    assert win.killed == [4000 + index, 5000 + index]
    kill = next(c.command for c in server.commands if c.command.startswith("taskkill"))
    assert kill.startswith("taskkill /T /F /PID")
    assert "deadline of 1.5 s passed" in result.stderr
    win.handler = echo
    assert t.run("cmd", "echo after\n").ok  # the shell is still usable
    t.close()


def test_operation_timeout_faults_mean_poll_again(server: Any, win: Any) -> None:
    done = threading.Event()

    def takes_a_while(kind: str, text: str, call: CommandCall) -> Reply:
        done.wait(2.5)
        return Reply("finished\r\n", "", 0)

    win.handler = takes_a_while
    t = WinRMTransport(make_host(server), PASSWORD)
    result = t.run("cmd", "long-job.exe\n", timeout=60)
    t.close()
    assert result.ok and result.stdout == "finished\n"
    timeouts = [r for r in server.requests if r.action == "Receive" and r.status == 500]
    assert len(timeouts) >= 1


def test_slow_reply_past_deadline_times_out(server: Any, win: Any) -> None:
    win.handler = slow
    server.inject("Receive", "slow", delay=4)
    t = WinRMTransport(make_host(server, read_timeout_sec=2), PASSWORD)
    result = t.run("cmd", "hang.exe\n", timeout=1)
    assert result.timed_out
    main = next(c for c in server.commands if "hang.exe" in c.command)
    assert TERMINATE in main.signals
    t.close()


# -- CLIXML ---------------------------------------------------------------------------
CLIXML = (
    '#< CLIXML\r\n<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">'
    '<Obj S="progress" RefId="0"><TN RefId="0"><T>System.Management.Automation.PSCustomObject'
    '</T></TN><MS><I64 N="SourceId">1</I64></MS></Obj>'
    "<S S=\"Error\">Get-Item : Cannot find path 'C:\\nope' because it does not exist._x000D__x000A_"
    '</S><S S="Error">At line:1 char:9_x000D__x000A_</S>'
    '<S S="warning">Disk almost full</S></Objs>'
)


def test_clixml_error_stream_is_decoded(server: Any, win: Any) -> None:
    win.handler = lambda kind, text, call: Reply("", CLIXML, 1)
    t = WinRMTransport(make_host(server), PASSWORD)
    result = t.run("powershell", "Get-Item C:\\nope\n")
    t.close()
    assert result.exit_code == 1
    assert result.stderr == (
        "Get-Item : Cannot find path 'C:\\nope' because it does not exist.\n"
        "At line:1 char:9\nWARNING: Disk almost full\n"
    )


def test_decode_clixml_leaves_plain_text_alone() -> None:
    assert decode_clixml("plain error\n") == "plain error\n"
    broken = "#< CLIXML\r\n<Objs><S S='Error'>a_x0009_b</S>"
    assert decode_clixml(broken) == broken
    assert decode_clixml("#< CLIXML\r\n<Objs><S S='Error'>a_x0009_b</S></Objs>") == "a\tb\n"


# -- faults -> one clear ExecutionError, never the password ----------------------------
def assert_clear(exc: ExecutionError, *words: str) -> None:
    text = exc.format()
    assert "EXCHANGE1" in text and "127.0.0.1" in text
    assert PASSWORD not in text and "Traceback" not in text
    for word in words:
        assert word in text, text


@pytest.mark.parametrize(
    ("action", "kind", "words"),
    [
        ("Create", "401", ["HTTP 401", "username (admin)", "basic authentication"]),
        ("Create", "500", ["HTTP 500", "not a WS-Management message", "service crashed"]),
        ("Command", "drop", ["dropped the connection", "WinRM service"]),
        ("Receive", "500", ["read the command's output (Receive)", "HTTP 500"]),
    ],
)
def test_faults_are_clear_errors(
    transport: Any, server: Any, action: str, kind: str, words: list[str]
) -> None:
    server.inject(action, kind)
    with pytest.raises(ExecutionError) as info:
        transport.run("cmd", "echo hi\n")
    assert_clear(info.value, *words)


def test_wrong_password_is_a_clear_error(server: Any) -> None:
    t = WinRMTransport(make_host(server), "Wr0ng-Passw0rd")
    with pytest.raises(ExecutionError) as info:
        t.run("cmd", "echo hi\n")
    assert_clear(info.value, "rejected the credentials")
    assert "Wr0ng-Passw0rd" not in info.value.format()


def test_unreachable_host_is_a_clear_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again before we connect
    host = Host(
        "EXCHANGE1",
        "127.0.0.1",
        "winrm",
        {
            "scheme": "http",
            "port": port,
            "transport": "basic",
            "username": "admin",
            "allow_basic_over_http": True,
        },
    )
    with pytest.raises(ExecutionError) as info:
        WinRMTransport(host, PASSWORD).run("cmd", "echo hi\n")
    assert_clear(info.value, "cannot connect (connection refused)", "firewall")


# -- HTTPS, certificates, NTLM ----------------------------------------------------------
@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def tls_context(ca: trustme.CA, client_ca: trustme.CA | None = None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(ctx)
    if client_ca is not None:
        client_ca.configure_trust(ctx)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def test_https_with_trusted_ca(wsman: Any, win: Any, ca: trustme.CA, tmp_path: Path) -> None:
    server = wsman(win, tls=tls_context(ca))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    t = WinRMTransport(make_host(server, ca_trust_path=str(tmp_path / "ca.pem")), PASSWORD)
    assert t.run("cmd", "hostname\n").stdout == "cmd:hostname\n"
    t.close()


def test_https_untrusted_certificate(wsman: Any, win: Any, ca: trustme.CA, tmp_path: Path) -> None:
    server = wsman(win, tls=tls_context(ca))
    trustme.CA().cert_pem.write_to_path(str(tmp_path / "other.pem"))
    t = WinRMTransport(make_host(server, ca_trust_path=str(tmp_path / "other.pem")), PASSWORD)
    with pytest.raises(ExecutionError) as info:
        t.run("cmd", "hostname\n")
    assert_clear(info.value, "certificate is not trusted", "ca_trust_path")
    assert server.commands == []


def test_https_ignore_validation(wsman: Any, win: Any, ca: trustme.CA) -> None:
    server = wsman(win, tls=tls_context(ca))
    t = WinRMTransport(make_host(server, server_cert_validation="ignore"), PASSWORD)
    assert t.run("cmd", "hostname\n").ok
    t.close()


def test_client_certificate_auth(wsman: Any, win: Any, ca: trustme.CA, tmp_path: Path) -> None:
    client_ca = trustme.CA()
    server = wsman(win, tls=tls_context(ca, client_ca), auth="certificate")
    cert = client_ca.issue_cert("svc-change@internaldomain.local")
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "client.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "client.key"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    host = make_host(
        server,
        ca_trust_path=str(tmp_path / "ca.pem"),
        cert_pem=str(tmp_path / "client.pem"),
        cert_key_pem=str(tmp_path / "client.key"),
    )
    t = WinRMTransport(host, None)
    assert t.run("cmd", "whoami\n").ok
    t.close()


def test_ntlm_with_message_encryption(
    wsman: Any, win: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "ntlm").write_text(f"INTERNALDOMAIN:svc-change:{PASSWORD}\n")
    monkeypatch.setenv("NTLM_USER_FILE", str(tmp_path / "ntlm"))
    server = wsman(win, auth="ntlm", username="INTERNALDOMAIN\\svc-change")
    t = WinRMTransport(make_host(server, message_encryption="always"), PASSWORD)
    assert t.run("cmd", "echo sealed\n").stdout == "cmd:echo sealed\n"
    assert t.run("powershell", "Get-Date\n").ok
    t.close()
    soap = [r for r in server.requests if r.action]
    assert soap and all(r.encrypted for r in soap)
    assert server.count("Create") == 1


def test_ntlm_wrong_password(
    wsman: Any, win: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "ntlm").write_text(f"INTERNALDOMAIN:svc-change:{PASSWORD}\n")
    monkeypatch.setenv("NTLM_USER_FILE", str(tmp_path / "ntlm"))
    server = wsman(win, auth="ntlm", username="INTERNALDOMAIN\\svc-change")
    t = WinRMTransport(make_host(server), "not-the-password")
    with pytest.raises(ExecutionError) as info:
        t.run("cmd", "echo hi\n")
    assert_clear(info.value, "rejected the credentials", "ntlm authentication")


# -- options ----------------------------------------------------------------------------
def test_validate_options_lists_every_problem() -> None:
    problems = validate_winrm_options(
        {
            "scheme": "ftp",
            "port": 70000,
            "transport": "digest",
            "read_timeout_sec": 10,
            "operation_timeout_sec": 20,
            "colour": "blue",
            "username": "u",
        },
        Path("lab.yaml"),
        12,
    )
    text = "\n".join(p.format() for p in problems)
    assert "unknown option 'colour'" in text
    assert "scheme: 'ftp'" in text and "port: 70000" in text and "transport: 'digest'" in text
    assert "read_timeout_sec (10) must exceed operation_timeout_sec (20)" in text
    assert all(p.path == Path("lab.yaml") and p.line == 12 for p in problems)


def test_validate_options_accepts_the_spec_example() -> None:
    assert (
        validate_winrm_options(
            {
                "scheme": "https",
                "port": 5986,
                "path": "/wsman",
                "transport": "ntlm",
                "server_cert_validation": "validate",
                "ca_trust_path": "/etc/ssl/lab-ca.pem",
                "message_encryption": "auto",
                "read_timeout_sec": 30,
                "operation_timeout_sec": 20,
                "username": "INTERNALDOMAIN\\svc-change",
                "credential": "exchange_admin",
            },
            None,
            1,
        )
        == []
    )


def test_constructor_rejects_bad_options_and_missing_password(tmp_path: Path) -> None:
    bad = Host("DC", "127.0.0.1", "winrm", {"transport": "basic", "username": "u", "porrt": 1})
    with pytest.raises(EnvironmentFileError, match="unknown option 'porrt'"):
        WinRMTransport(bad, PASSWORD)
    no_password = Host("DC", "127.0.0.1", "winrm", {"transport": "ntlm", "username": "u"})
    with pytest.raises(EnvironmentFileError, match="needs a password"):
        WinRMTransport(no_password, None)
    missing_ca = Host(
        "DC",
        "127.0.0.1",
        "winrm",
        {"transport": "basic", "username": "u", "ca_trust_path": str(tmp_path / "no.pem")},
    )
    with pytest.raises(EnvironmentFileError, match=r"ca_trust_path .* does not exist"):
        WinRMTransport(missing_ca, PASSWORD)


def test_powershell_errexit_is_a_fixed_first_line_and_can_be_turned_off(
    transport: Any, server: Any, win: Any
) -> None:
    body = "Get-Item C:\\missing\nWrite-Output after\n"
    assert transport.run("powershell", body).ok
    assert transport.run("powershell", body, errexit=False).ok
    first, second = (base64.b64decode(c.command.rsplit(" ", 1)[1]) for c in server.commands)
    assert first.decode("utf-16-le") == "$ErrorActionPreference = 'Stop'\n" + body.rstrip("\n")
    assert second.decode("utf-16-le") == body.rstrip("\n")


def test_uploaded_powershell_script_starts_with_errexit(transport: Any, win: Any) -> None:
    assert transport.run("powershell", "Write-Output $env:X\n", env={"X": "v"}).ok
    kind, text = win.scripts[-1]
    assert kind == "powershell"
    assert text.lstrip("\ufeff").startswith("$ErrorActionPreference = 'Stop'\r\n")


# -- safe transport defaults -------------------------------------------------------------
def test_basic_over_http_is_refused_unless_allowed() -> None:
    options = {"scheme": "http", "port": 5985, "transport": "basic", "username": "u"}
    problems = validate_winrm_options(options, Path("lab.yaml"), 9)
    assert len(problems) == 1
    text = problems[0].format()
    assert "lab.yaml:9" in text and "basic over scheme http" in text
    assert "allow_basic_over_http: true" in text and "https" in text
    assert validate_winrm_options({**options, "allow_basic_over_http": True}, None, 1) == []
    assert validate_winrm_options({**options, "scheme": "https"}, None, 1) == []
    bad = validate_winrm_options({**options, "allow_basic_over_http": "yes"}, None, 1)
    assert "must be true or false" in bad[0].format()
    with pytest.raises(EnvironmentFileError, match="basic over scheme http"):
        WinRMTransport(Host("DC", "127.0.0.1", "winrm", options), PASSWORD)


def weak_library(tmp: Path, options: dict[str, Any]) -> tuple[Path, Path]:
    """A one-step runbook for a WinRM host with ``options`` and its environment file."""
    book = tmp / "weak.md"
    book.write_text(
        "---\nroles:\n  win: A Windows host\n---\n# Weak\n\n"
        "```cmd {#hello target=win}\necho hi\n```\n",
        encoding="utf-8",
    )
    env = {
        "name": "weak",
        "roles": {
            "win": [
                {
                    "name": "WIN1",
                    "address": "127.0.0.1",
                    "transport": "winrm",
                    "winrm": {**options, "credential": "pw"},
                }
            ]
        },
        "secrets": {"pw": {"env": "WEAK_WINRM_PASSWORD"}},
    }
    path = tmp / "env.yml"
    path.write_text(json.dumps(env), encoding="utf-8")
    return book, path


def cli(tmp: Path, *args: Any) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "WEAK_WINRM_PASSWORD": PASSWORD,
        "RUNBOOK_OPERATOR": "tester",
        "NO_COLOR": "1",
        "COLUMNS": "200",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "runbook_engine", *map(str, args)],
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def test_plan_and_run_refuse_basic_over_http(server: Any, tmp_path: Path) -> None:
    options = {"scheme": "http", "port": server.port, "transport": "basic", "username": "admin"}
    book, env = weak_library(tmp_path, options)
    for command in ("plan", "run"):
        extra = ("--state-dir", tmp_path / "state", "--no-input") if command == "run" else ()
        proc = cli(tmp_path, command, book, "--env", env, *extra)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert "env.yml:" in proc.stderr and "basic over scheme http" in proc.stderr
    assert server.commands == []  # refused before anything reached the host


def test_ignored_certificate_validation_is_warned_journaled_and_in_the_record(
    wsman: Any, win: Any, ca: trustme.CA, tmp_path: Path
) -> None:
    server = wsman(win, tls=tls_context(ca))
    options = {
        "scheme": "https",
        "port": server.port,
        "transport": "basic",
        "username": "admin",
        "server_cert_validation": "ignore",
        "read_timeout_sec": 4,
        "operation_timeout_sec": 1,
    }
    book, env = weak_library(tmp_path, options)
    state = tmp_path / "state"
    proc = cli(
        tmp_path, "run", book, "--env", env, "--state-dir", state, "--run-id", "w1", "--no-input"
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "warning: host WIN1 (winrm): server_cert_validation: ignore" in proc.stderr
    records = [
        json.loads(line)
        for line in (state / "runs" / "w1" / "journal.jsonl").read_text().splitlines()
    ]
    weakened = [r for r in records if r["event"] == "transport-weakened"]
    assert [(r["host"], r["transport"]) for r in weakened] == [("WIN1", "winrm")]
    assert "certificate is not checked" in weakened[0]["weakening"]
    record = json.loads(
        cli(tmp_path, "evidence", "export", "w1", "--to", "json", "--state-dir", state).stdout
    )
    kinds = [d["kind"] for d in record["summary"]["deviations"]]
    assert kinds == ["transport-weakened"]
    assert "server_cert_validation: ignore" in record["summary"]["deviations"][0]["detail"]
