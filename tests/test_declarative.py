"""Declarative ``registry`` and ``service`` steps (issue 3, part 2).

Unit tests of the body schema, the compiled commands, the argument quoting (checked
by a model of cmd.exe and the C runtime, tests/fake_windows.py) and the readers of
``reg query`` / ``sc`` output; then whole runs through the runner and the real WinRM
transport against two loopback WS-Management servers (tests/wsman_server.py) with a
scripted registry and service table per host.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fake_windows import FakeWindows, Injection, Service, argv_of  # type: ignore[import-not-found]
from wsman_server import WindowsHost, WSManServer, wsman  # type: ignore[import-not-found]

from runbook_engine.declarative import (
    OutputError,
    RegistrySpec,
    RegValue,
    ServiceSpec,
    ServiceStatus,
    change_commands,
    parse_declarative,
    parse_reg_query,
    parse_sc,
    read_commands,
    restore_commands,
)
from runbook_engine.declarative.output import ServiceMissing
from runbook_engine.declarative.quoting import argument
from runbook_engine.errors import InputError, RunPaused
from runbook_engine.evidence.record import build_record
from runbook_engine.outputs.guide_md import guide_markdown
from runbook_engine.outputs.plan import build_plan
from runbook_engine.run.gates import load_answers
from runbook_engine.run.lifecycle import RunOptions, start_run
from runbook_engine.run.steps import declarative as execute_module
from runbook_engine.run.store import CheckpointStore
from runbook_engine.tailor.loading import load

__all__ = ["wsman"]  # the fixture, imported for pytest

NTDS = "HKLM\\SYSTEM\\CurrentControlSet\\Services\\NTDS\\Parameters"
NSPI = "NSPI interface protocol sequences"
PASSWORD = "S3cret!pass"


def parse(kind: str, body: str, line: int = 20) -> Any:
    return parse_declarative(kind, body, Path("book.md"), line)


def problems_of(kind: str, body: str) -> list[str]:
    with pytest.raises(InputError) as caught:
        parse(kind, body)
    return [p.format() for p in caught.value.problems]


# -- schema ---------------------------------------------------------------------------------
def test_registry_body_is_parsed_with_roots_shortened() -> None:
    spec = parse(
        "registry",
        f"key: HKEY_LOCAL_MACHINE\\{NTDS[5:]}\nvalue: {NSPI}\n"
        "type: REG_MULTI_SZ\ndata: [ncacn_http:6004]\n",
    )
    want = RegValue("REG_MULTI_SZ", ("ncacn_http:6004",))
    assert spec == RegistrySpec(NTDS, NSPI, "present", want, Path("book.md"), 20)
    dword = parse(
        "registry", "key: hklm\\Software\\X\nvalue: Port\ntype: REG_DWORD\ndata: 0x1771\n"
    )
    assert dword.key == "HKLM\\Software\\X" and dword.want == RegValue("REG_DWORD", 6001)
    binary = parse("registry", "key: HKCU\\X\nvalue: B\ntype: REG_BINARY\ndata: 01 0a,FF\n")
    assert binary.want == RegValue("REG_BINARY", "010AFF")
    absent = parse("registry", "key: HKLM\\X\nvalue: Old\nensure: absent\n")
    assert absent.ensure == "absent" and absent.want is None


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "key: HKLM\\X\nvalue: V\ntype: REG_DWORD\ndata: 4294967296\n",
            "book.md:23: RB412 data must be a 32-bit number (0 to 4294967295, or 0x0 to 0xFFFFFFFF), "
            "not 4294967296",
        ),
        (
            "key: HKLM\\X\nvalue: V\ntype: REG_DWORD\ndata: '1'\n",
            "book.md:23: RB412 data must be a 32-bit number (0 to 4294967295, or 0x0 to 0xFFFFFFFF), "
            'not "1"',
        ),
        (
            "key: HKLM\\X\nvalue: V\ntype: REG_MULTI_SZ\ndata: ncacn_http:6004\n",
            "book.md:23: RB412 data must be a YAML list of strings (one per line of the multi-string "
            'value), not "ncacn_http:6004"',
        ),
        (
            "key: HKLM\\X\nvalue: V\ntype: REG_MULTI_SZ\ndata:\n  - a\n  - ''\n",
            "book.md:25: RB412 data.1 must be a non-empty string on one line, without the characters "
            '\\0, not ""',
        ),
        (
            "key: HKLM\\X\nvalue: V\ntype: REG_SZ\ndata: x\ndefault: y\n",
            "book.md:24: RB412 unknown key 'default' in a registry step (allowed: data, ensure, key, "
            "type, value)",
        ),
        (
            "key: HKLM\\X\nvalue: V\nensure: absent\ndata: x\n",
            'book.md:23: RB412 data must be left out when ensure is absent, not "x"',
        ),
        (
            "key: HKLM\\X\\\nvalue: V\ntype: REG_SZ\ndata: x\n",
            "book.md:20: RB412 key must be a registry key under a root (HKLM, HKCU, HKCR, HKU, HKCC or "
            "the HKEY_ form), subkeys separated by single backslashes, no trailing backslash, not "
            '"HKLM\\X\\"',
        ),
        (
            "key: HKLM\\X\nvalue: V\ntype: REG_WORD\ndata: 1\n",
            "book.md:22: RB412 type must be one of REG_SZ, REG_EXPAND_SZ, REG_MULTI_SZ, REG_DWORD, "
            'REG_QWORD, REG_BINARY, not "REG_WORD"',
        ),
        (
            "key: HKLM\\X\nvalue: V\nvalue: W\ntype: REG_SZ\ndata: x\n",
            "book.md:22: RB412 key 'value' given twice (first on line 21)",
        ),
        (
            "- key: HKLM\\X\n",
            "book.md:20: RB411 registry body must be a YAML mapping (key:, value:, "
            "type:, data: (or ensure: absent))",
        ),
        (
            "key: [\n",
            "book.md:21: RB411 registry body is not valid YAML: expected the node content, "
            "but found '<stream end>'",
        ),
    ],
)
def test_bad_registry_body_names_the_line(body: str, expected: str) -> None:
    assert expected in problems_of("registry", body)


def test_missing_type_and_data_are_both_reported() -> None:
    found = problems_of("registry", "key: HKLM\\X\nvalue: V\n")
    assert any("needs 'type'" in p for p in found) and any("needs 'data'" in p for p in found)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "name: IMAP4Svc\n",
            "book.md:20: RB412 a service step needs start: (auto, demand, "
            "disabled), state: (running, stopped) or both",
        ),
        (
            "name: IMAP4Svc\nstart: automatic\n",
            'book.md:21: RB412 start must be one of auto, demand, disabled, not "automatic"',
        ),
        (
            "name: IMAP4Svc\nstate: started\n",
            'book.md:21: RB412 state must be one of running, stopped, not "started"',
        ),
        (
            "name: IMAP4Svc\nstart: auto\nwait: 0\n",
            "book.md:22: RB412 wait must be a number of seconds above 0, at most 3600, not 0",
        ),
        (
            "start: auto\n",
            "book.md:20: RB412 a service step needs 'name' (name: and start: and/or state:)",
        ),
    ],
)
def test_bad_service_body_names_the_line(body: str, expected: str) -> None:
    assert expected in problems_of("service", body)


# -- commands -----------------------------------------------------------------------------
def test_registry_commands_are_exact() -> None:
    spec = parse(
        "registry",
        f"key: {NTDS}\nvalue: {NSPI}\ntype: REG_MULTI_SZ\ndata: [ncacn_http:6004, ncacn_ip_tcp]\n",
    )
    assert read_commands(spec) == [f'reg query "{NTDS}" /v "{NSPI}"']
    assert change_commands(spec) == [
        f'reg add "{NTDS}" /v "{NSPI}" /t REG_MULTI_SZ /d "ncacn_http:6004\\0ncacn_ip_tcp" /f'
    ]
    assert restore_commands(spec, None) == [f'reg delete "{NTDS}" /v "{NSPI}" /f']
    assert restore_commands(spec, RegValue("REG_DWORD", 7)) == [
        f'reg add "{NTDS}" /v "{NSPI}" /t REG_DWORD /d 7 /f'
    ]
    default = parse("registry", "key: HKCR\\.rbe\nvalue: ''\ntype: REG_SZ\ndata: rbe.file\n")
    assert change_commands(default) == ['reg add "HKCR\\.rbe" /ve /t REG_SZ /d "rbe.file" /f']


def test_service_commands_change_only_what_differs() -> None:
    spec = parse("service", "name: IMAP4Svc\nstart: auto\nstate: running\n")
    assert read_commands(spec) == ["sc qc IMAP4Svc", "sc query IMAP4Svc"]
    assert change_commands(spec) == ["sc config IMAP4Svc start= auto", "sc start IMAP4Svc"]
    assert change_commands(spec, ServiceStatus("auto", "stopped")) == ["sc start IMAP4Svc"]
    assert restore_commands(spec, ServiceStatus("disabled", "stopped")) == [
        "sc config IMAP4Svc start= disabled",
        "sc stop IMAP4Svc",
    ]
    only_start = parse("service", "name: IMAP4Svc\nstart: demand\n")
    assert restore_commands(only_start, ServiceStatus("disabled", "running")) == [
        "sc config IMAP4Svc start= disabled"
    ]


@pytest.mark.parametrize(
    "text",
    [
        "plain",
        "with space",
        "C:\\dir\\",
        "C:\\Program Files\\App\\",
        "%SystemRoot%\\system32",
        "100% & done",
        'say "hi" & <run> | more',
        "a^b(c)",
        "",
        "%",
        "%%",
        "%TEMP%%SystemRoot%",
        '\\\\server\\share\\"quoted\\"\\',
        "trailing %",
    ],
)
@pytest.mark.parametrize("batch", [False, True])
def test_arguments_reach_the_program_unchanged(text: str, batch: bool) -> None:
    for quote in (True, False):
        line = f"reg add {argument(text, batch=batch, quote=quote)} /f"
        assert argv_of(line, batch=batch) == ["reg", "add", text, "/f"], line


def test_the_cmd_model_catches_a_bad_quote() -> None:
    with pytest.raises(Injection):
        argv_of('reg add "a" & del x', batch=False)
    assert argv_of("echo %SystemRoot%", batch=False) == ["echo", "C:\\WINDOWS"]


# -- reading output ---------------------------------------------------------------------------
REG_2003 = (
    "\r\n! REG.EXE VERSION 3.0\r\n\r\nHKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\"
    "Services\\NTDS\\Parameters\r\n    NSPI interface protocol sequences\tREG_MULTI_SZ\t"
    "ncacn_http:6004\\0ncacn_ip_tcp\\0\\0\r\n\r\n"
)
REG_VISTA = (
    "\r\nHKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Services\\NTDS\\Parameters\r\n"
    "    NSPI interface protocol sequences    REG_MULTI_SZ    "
    "ncacn_http:6004\\0ncacn_ip_tcp\r\n\r\n"
)


@pytest.mark.parametrize("output", [REG_2003, REG_VISTA])
def test_reg_query_output_of_2003_and_vista(output: str) -> None:
    assert parse_reg_query(0, output, NSPI) == RegValue(
        "REG_MULTI_SZ", ("ncacn_http:6004", "ncacn_ip_tcp")
    )


def test_reg_query_types_default_value_and_errors() -> None:
    dword = (
        "\r\n! REG.EXE VERSION 3.0\r\n\r\nHKEY_LOCAL_MACHINE\\X\r\n    Port\tREG_DWORD\t0x1771\r\n"
    )
    assert parse_reg_query(0, dword, "port") == RegValue("REG_DWORD", 6001)
    empty = "HKEY_LOCAL_MACHINE\\X\r\n    Name\tREG_SZ\t\r\n"
    assert parse_reg_query(0, empty, "Name") == RegValue("REG_SZ", "")
    default_2003 = "HKEY_CLASSES_ROOT\\.rbe\r\n    <NO NAME>\tREG_SZ\trbe.file\r\n"
    assert parse_reg_query(0, default_2003, "") == RegValue("REG_SZ", "rbe.file")
    default_vista = "HKEY_CLASSES_ROOT\\.rbe\r\n    (Default)    REG_SZ    rbe file\r\n"
    assert parse_reg_query(0, default_vista, "") == RegValue("REG_SZ", "rbe file")
    binary = "HKEY_LOCAL_MACHINE\\X\n    B    REG_BINARY    010AFF\n"
    assert parse_reg_query(0, binary, "B") == RegValue("REG_BINARY", "010AFF")
    missing = "ERROR: The system was unable to find the specified registry key or value.\r\n"
    assert parse_reg_query(1, missing, "Port") is None
    with pytest.raises(OutputError, match="Access is denied"):
        parse_reg_query(1, "ERROR: Access is denied.\r\n", "Port")
    with pytest.raises(OutputError, match="no line for value 'Port'"):
        parse_reg_query(0, "\r\n! REG.EXE VERSION 3.0\r\n\r\nHKEY_LOCAL_MACHINE\\X\r\n", "Port")


def test_sc_output_is_read() -> None:
    imap = Service("demand", "running", "Microsoft Exchange IMAP4")
    host = FakeWindows(services={"imap4svc": imap})
    qc, query = host.sc("qc", "IMAP4Svc", []), host.sc("query", "IMAP4Svc", [])
    status = parse_sc(qc.exit_code, str(qc.stdout), query.exit_code, str(query.stdout))
    assert status == ServiceStatus("demand", "running", "Microsoft Exchange IMAP4")
    gone = host.sc("qc", "Nope", [])
    with pytest.raises(ServiceMissing):
        parse_sc(gone.exit_code, str(gone.stdout), 0, "")


# -- runs against loopback WinRM hosts -------------------------------------------------------
BOOK = f"""---
id: declarative
roles:
  dc: Domain controller
  exchange: Exchange server
---
# Declarative steps

```registry {{#nspi target=dc title="NSPI over HTTP"}}
key: {NTDS}
value: {NSPI}
type: REG_MULTI_SZ
data: [ncacn_http:6004]
```

```service {{#imap4 target=exchange}}
name: IMAP4Svc
display_name: Microsoft Exchange IMAP4
start: auto
state: running
```
"""


@pytest.fixture(autouse=True)
def quick_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(execute_module, "POLL_SECONDS", 0.01)
    monkeypatch.setenv("RBE_TEST_WINRM_PASSWORD", PASSWORD)


class Lab:
    """Two loopback WinRM hosts (dc, exchange) with their own scripted registry and services."""

    def __init__(self, tmp_path: Path, wsman: Any) -> None:
        self.tmp = tmp_path
        self.dc = FakeWindows()
        self.exchange = FakeWindows(services={"imap4svc": Service("disabled", "stopped")})
        self.servers: dict[str, WSManServer] = {
            "dc": wsman(WindowsHost(self.dc.handler)),
            "exchange": wsman(WindowsHost(self.exchange.handler)),
        }
        self.state = CheckpointStore(tmp_path / "state")
        self.runs = 0

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
                "transport: basic, allow_basic_over_http: true, username: admin, "
                "credential: winrm_password, "
                "read_timeout_sec: 4, operation_timeout_sec: 1}",
            ]
        lines += ["secrets:", "  winrm_password: {env: RBE_TEST_WINRM_PASSWORD}"]
        path = self.tmp / f"env-{'-'.join(manual) or 'winrm'}.yml"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    def run(
        self, book: str = BOOK, answers: str | None = None, manual: tuple[str, ...] = ()
    ) -> tuple[str, list[dict[str, Any]]]:
        self.runs += 1
        path = self.tmp / "book.md"
        path.write_text(book, encoding="utf-8")
        loaded_answers = None
        if answers is not None:
            answers_path = self.tmp / f"answers{self.runs}.yml"
            answers_path.write_text(answers, encoding="utf-8")
            loaded_answers = load_answers(answers_path)
        options = RunOptions(operator="tester", answers=loaded_answers)
        run_id = f"run{self.runs}"
        journal = self.state.run_dir(run_id) / "journal.jsonl"
        try:
            status = start_run(path, self.env(manual), {}, self.state, options, run_id).status
        except RunPaused:
            status = "paused"
        events = [json.loads(line) for line in journal.read_text(encoding="utf-8").splitlines()]
        return status, events

    def step(self, run: int, step_id: str, host: str) -> Any:
        return self.state.step(f"run{run}", step_id, host)


@pytest.fixture
def lab(tmp_path: Path, wsman: Any) -> Lab:
    return Lab(tmp_path, wsman)


def named(events: list[dict[str, Any]], name: str, step: str | None = None) -> list[dict[str, Any]]:
    return [e for e in events if e["event"] == name and (step is None or e.get("step") == step)]


def test_already_right_is_already_done_with_the_observed_value(lab: Lab) -> None:
    lab.dc.registry[(NTDS.upper(), NSPI.lower())] = ("REG_MULTI_SZ", ["ncacn_http:6004"])
    lab.exchange.services["imap4svc"] = Service("auto", "running")
    status, events = lab.run()
    assert status == "succeeded"
    assert lab.step(1, "nspi", "PDC").status == "already-done"
    assert lab.step(1, "imap4", "EXCHANGE1").status == "already-done"
    done = named(events, "step-already-done", "nspi")[0]
    assert done["observed"] == {
        "present": True,
        "type": "REG_MULTI_SZ",
        "data": ["ncacn_http:6004"],
    }
    assert named(events, "step-already-done", "imap4")[0]["observed"] == {
        "start": "auto",
        "state": "running",
    }
    assert lab.dc.commands("reg") == [["reg", "query", NTDS, "/v", NSPI]]  # read only
    assert [a[1] for a in lab.exchange.commands()] == ["qc", "query"]


def test_change_is_read_back_and_the_previous_value_journaled(lab: Lab) -> None:
    lab.exchange.pending_polls = 2  # sc query shows START_PENDING twice after sc start
    status, events = lab.run()
    assert status == "succeeded"
    assert lab.dc.registry[(NTDS.upper(), NSPI.lower())] == ("REG_MULTI_SZ", ["ncacn_http:6004"])
    previous = named(events, "step-previous", "nspi")[0]
    assert previous["previous"] == {"present": False}
    assert previous["backout_commands"] == [f'reg delete "{NTDS}" /v "{NSPI}" /f']
    assert [a[1] for a in lab.dc.commands()] == ["query", "add", "query"]
    assert named(events, "step-readback", "nspi")[0]["matches"] is True
    assert lab.step(1, "nspi", "PDC").status == "succeeded"
    # service: config before start, then polled until no longer pending
    assert lab.exchange.commands()[2:4] == [
        ["sc", "config", "IMAP4Svc", "start=", "auto"],
        ["sc", "start", "IMAP4Svc"],
    ]
    assert lab.exchange.services["imap4svc"].state == "running"
    assert named(events, "step-previous", "imap4")[0]["previous"] == {
        "start": "disabled",
        "state": "stopped",
    }
    readback = named(events, "step-readback", "imap4")[0]
    assert readback["observed"] == {"start": "auto", "state": "running"}
    assert lab.step(1, "imap4", "EXCHANGE1").status == "succeeded"
    commands = [e["command"] for e in named(events, "step-started")]
    assert commands == [
        f'reg add "{NTDS}" /v "{NSPI}" /t REG_MULTI_SZ /d "ncacn_http:6004" /f',
        "sc config IMAP4Svc start= auto",
        "sc start IMAP4Svc",
    ]


def test_read_back_mismatch_fails_and_offers_the_backout(lab: Lab) -> None:
    lab.dc.ignore_writes = True
    status, events = lab.run()
    assert status == "failed"
    state = lab.step(1, "nspi", "PDC")
    assert state.status == "failed"
    assert "read back absent, expected REG_MULTI_SZ ncacn_http:6004" in state.reason
    assert named(events, "step-readback", "nspi")[0]["matches"] is False
    offered = named(events, "backout-offered", "nspi")[0]
    assert offered["decision"] == "not-answered" and offered["backout"] == "generated"
    assert offered["command"] == f'reg delete "{NTDS}" /v "{NSPI}" /f\n'
    assert not named(events, "backout-started")
    assert lab.step(1, "imap4", "EXCHANGE1").status == "pending"  # the run stopped


def test_generated_backout_restores_the_recorded_value(lab: Lab) -> None:
    lab.dc.registry[(NTDS.upper(), NSPI.lower())] = ("REG_MULTI_SZ", ["ncacn_ip_tcp", "ncalrpc"])
    lab.dc.mangle_next_write = ["ncacn_http:6001"]  # a policy rewrites the value once
    status, events = lab.run(
        answers="operator: Jane\nanswers:\n  nspi: {decision: confirm, backout: run}\n"
    )
    assert status == "failed"
    assert named(events, "step-previous", "nspi")[0]["previous"] == {
        "present": True,
        "type": "REG_MULTI_SZ",
        "data": ["ncacn_ip_tcp", "ncalrpc"],
    }
    backout = named(events, "backout-started", "nspi")[0]["command"]
    assert backout == (
        f'reg add "{NTDS}" /v "{NSPI}" /t REG_MULTI_SZ /d "ncacn_ip_tcp\\0ncalrpc" /f'
    )
    assert lab.dc.registry[(NTDS.upper(), NSPI.lower())] == (
        "REG_MULTI_SZ",
        ["ncacn_ip_tcp", "ncalrpc"],
    )
    verified = named(events, "backout-verified", "nspi")[0]
    assert verified["restored"] is True
    # The change record says so, in words, in its backout section.
    record = build_record(events, None)
    (entry,) = [b for b in record["backout"] if b["step"] == "nspi"]
    assert (entry["backout"], entry["status"], entry["restored"]) == ("generated", "ran", True)
    assert entry["decided"] == "in the answers file"
    assert "the value found before the change was read back in place" in entry["text"]


def test_service_backout_restores_start_mode_and_state(lab: Lab) -> None:
    lab.dc.registry[(NTDS.upper(), NSPI.lower())] = ("REG_MULTI_SZ", ["ncacn_http:6004"])
    lab.exchange.fail_start = True  # sc config works, sc start fails (error 1053)
    answers = "operator: Jane\nanswers:\n  imap4: {decision: confirm, backout: run}\n"
    status, events = lab.run(answers=answers)
    assert status == "failed"
    assert lab.step(1, "imap4", "EXCHANGE1").reason == "the change failed with exit code 1053"
    assert lab.exchange.services["imap4svc"].start == "disabled"  # put back
    assert [e["command"] for e in named(events, "backout-started", "imap4")] == [
        "sc config IMAP4Svc start= disabled"
    ]  # still stopped: no sc stop
    assert named(events, "backout-verified", "imap4")[0]["restored"] is True
    assert named(events, "backout-offered", "imap4")[0]["previous"] == {
        "start": "disabled",
        "state": "stopped",
    }


def test_missing_service_fails_the_step_with_a_clear_reason(lab: Lab) -> None:
    lab.exchange.services.clear()
    lab.dc.registry[(NTDS.upper(), NSPI.lower())] = ("REG_MULTI_SZ", ["ncacn_http:6004"])
    status, events = lab.run()
    assert status == "failed"
    reason = lab.step(1, "imap4", "EXCHANGE1").reason
    assert reason == (
        "could not read the current setting: the service is not installed (sc: error 1060)"
    )
    assert not named(events, "backout-offered")


def test_long_and_percent_data_go_through_a_batch_file(lab: Lab) -> None:
    data = "%SystemRoot%\\system32\\" + "x" * 9000 + " & 100%"
    book = BOOK.replace(
        "type: REG_MULTI_SZ\ndata: [ncacn_http:6004]", f"type: REG_EXPAND_SZ\ndata: '{data}'"
    ).replace("```service", "```text")  # only the registry step
    book = book.replace("{#imap4 target=exchange}", "")
    status, _ = lab.run(book)
    assert status == "succeeded"
    assert lab.dc.registry[(NTDS.upper(), NSPI.lower())] == ("REG_EXPAND_SZ", data)
    add = [(argv, batch) for argv, batch in lab.dc.argvs if argv[1] == "add"]
    assert len(add) == 1 and add[0][1] is True  # too long for one command line
    short = BOOK.replace(
        "type: REG_MULTI_SZ\ndata: [ncacn_http:6004]",
        "type: REG_EXPAND_SZ\ndata: '%SystemRoot%\\system32\\rpc.dll'",
    )
    lab.exchange.services["imap4svc"] = Service("auto", "running")
    status, _ = lab.run(short)
    assert lab.dc.registry[(NTDS.upper(), NSPI.lower())] == (
        "REG_EXPAND_SZ",
        "%SystemRoot%\\system32\\rpc.dll",
    )  # not expanded by cmd.exe
    assert [b for argv, b in lab.dc.argvs if argv[1] == "add"][-1] is False


def test_manual_host_is_a_gate_with_the_exact_commands(lab: Lab) -> None:
    status, events = lab.run(manual=("dc",))
    assert status == "paused"
    awaiting = named(events, "gate-awaiting", "nspi")[0]
    assert awaiting["gate"] == "command-by-hand"
    text = awaiting["instructions"]
    assert f'reg query "{NTDS}" /v "{NSPI}"' in text
    assert f'reg add "{NTDS}" /v "{NSPI}" /t REG_MULTI_SZ /d "ncacn_http:6004" /f' in text
    assert "regedit" in text and "Multi-String Value" in text
    assert lab.dc.argvs == []  # nothing was sent to the host
    status, events = lab.run(manual=("dc",), answers="operator: Jane\nanswers:\n  nspi: confirm\n")
    passed = named(events, "gate-passed", "nspi")[0]
    assert passed["by"] == "Jane" and "reg add" in passed["command_shown"]
    assert lab.step(2, "nspi", "PDC").status == "succeeded"


def test_tailoring_rejects_a_bad_body_with_its_line(lab: Lab) -> None:
    path = lab.tmp / "book.md"
    path.write_text(BOOK.replace("data: [ncacn_http:6004]", "data: ncacn_http:6004"), "utf-8")
    with pytest.raises(InputError) as caught:
        load(path, lab.env(), {})
    assert any(p.line == 13 and "must be a YAML list" in p.message for p in caught.value.problems)


def test_guide_and_plan_show_commands_and_gui_path(lab: Lab) -> None:
    path = lab.tmp / "book.md"
    path.write_text(BOOK, encoding="utf-8")
    tailored = load(path, lab.env(manual=("exchange",)), {}).tailored
    guide = guide_markdown(tailored)
    assert f'reg add "{NTDS}" /v "{NSPI}" /t REG_MULTI_SZ /d "ncacn_http:6004" /f' in guide
    assert "Or in the GUI: Start \\> Run \\> regedit; open HKEY\\_LOCAL\\_MACHINE" in guide
    assert "sc config IMAP4Svc start= auto" in guide
    assert "Set Startup type to Automatic" in guide
    generic = guide_markdown(load(path, None, {}).tailored)
    assert "Or in the GUI:" in generic
    plan = {s["id"]: s for s in build_plan(tailored)["steps"]}
    assert plan["imap4"]["command"] == (
        "sc qc IMAP4Svc\nsc query IMAP4Svc\nsc config IMAP4Svc "
        "start= auto\nsc start IMAP4Svc\nsc qc IMAP4Svc\n"
        "sc query IMAP4Svc\n"
    )
    assert plan["imap4"]["hosts"][0]["action"] == "gate-by-hand"
    assert plan["nspi"]["gui"][0].startswith("Start > Run > regedit; open HKEY_LOCAL_MACHINE\\")
    assert isinstance(parse("service", "name: X\nstate: stopped\n"), ServiceSpec)
