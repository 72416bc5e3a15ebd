"""Hostile values never run anything: the corpus of contexts (tests/values_corpus.py) times
hostile values, through real sh, dash, bash and python, and through the WS-Management test
server for cmd.  The value is passed as an environment variable and comes back byte for byte.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from e2e_support import Win2003  # type: ignore[import-not-found]
from values_corpus import (  # type: ignore[import-not-found]
    BASH,
    CMD,
    CMD_HOSTILE,
    HOSTILE,
    MARK,
    PYTHON,
    PYTHON_ARGV,
    REFUSED,
    SH,
    run_local,
    tailored,
)
from wsman_server import WindowsHost, wsman  # type: ignore[import-not-found]

from runbook_engine.errors import TemplateProblem
from runbook_engine.run.approval import parse_approval
from runbook_engine.source.model import Host
from runbook_engine.tailor.binding import Slots, bind_body
from runbook_engine.tailor.yaml_values import bind_yaml
from runbook_engine.transports.winrm import WinRMTransport

__all__ = ["wsman"]
SHELLS = [s for s in ("sh", "dash", "bash") if shutil.which(s)]


def _check(proc: Any, expected: str, cwd: Path, body: str) -> None:
    assert not (cwd / MARK).exists(), f"injection ran:\n{body}"
    assert proc.returncode == 0, (body, proc.stderr)
    assert proc.stdout.decode("utf-8") == expected, body


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("context", range(len(SH)))
def test_sh_contexts_get_hostile_values_verbatim(shell: str, context: int, tmp_path: Path) -> None:
    template, expect = SH[context]
    for value in HOSTILE:
        step = tailored("sh", template, value, tmp_path)
        assert not value or value not in step.run_body or len(value) < 2
        _check(run_local([shell], step, tmp_path), expect(value), tmp_path, step.run_body)


@pytest.mark.skipif(not shutil.which("bash"), reason="no bash")
@pytest.mark.parametrize("context", range(len(BASH)))
def test_bash_contexts_get_hostile_values_verbatim(context: int, tmp_path: Path) -> None:
    template, expect = BASH[context]
    for value in HOSTILE:
        step = tailored("bash", template, value, tmp_path)
        _check(run_local(["bash"], step, tmp_path), expect(value), tmp_path, step.run_body)


@pytest.mark.parametrize("context", range(len(PYTHON)))
def test_python_contexts_get_hostile_values_verbatim(context: int, tmp_path: Path) -> None:
    template, expect = PYTHON[context]
    for value in HOSTILE:
        step = tailored("python", template, value, tmp_path)
        _check(run_local(PYTHON_ARGV, step, tmp_path), expect(value), tmp_path, step.run_body)


def test_python_gets_typed_values_in_code(tmp_path: Path) -> None:
    step = tailored(
        "python", "print(repr({{ v }}), type({{ v }}).__name__)", "6001", tmp_path, "int"
    )
    proc = run_local(PYTHON_ARGV, step, tmp_path)
    assert proc.stdout.decode() == "6001 int\n"
    step = tailored("python", "print({{ v }} is False)", "false", tmp_path, "bool")
    assert run_local(PYTHON_ARGV, step, tmp_path).stdout.decode() == "True\n"


@pytest.mark.parametrize("kind,template", REFUSED)
def test_places_that_would_run_a_value_are_refused_with_the_line(
    kind: str, template: str, tmp_path: Path
) -> None:
    with pytest.raises(TemplateProblem) as excinfo:
        tailored(kind, template, "x", tmp_path)
    problem = excinfo.value.problems[0]
    assert problem.code == "RB133" and problem.line >= 6, problem.format()
    assert "value cannot" in problem.message or "cannot" in problem.message


def test_int_values_may_stand_in_arithmetic(tmp_path: Path) -> None:
    step = tailored(
        "bash", "echo $(( {{ v }} + 1 )); (( {{ v }} > 1 )) && echo big", "41", tmp_path, "int"
    )
    assert run_local(["bash"], step, tmp_path).stdout.decode() == "42\nbig\n"


def test_powershell_references_never_hold_the_value(tmp_path: Path) -> None:
    hostile = "a”; Remove-Item C:\\ -Recurse; “b $(calc) ' `"
    cases = {
        "# Don't forget\nWrite-Output {{ v }}": "Write-Output $($env:RUNBOOK_VALUE_V)",
        'Write-Output "x {{ v }} y"': 'Write-Output "x $($env:RUNBOOK_VALUE_V) y"',
        "Write-Output “x {{ v }} y”": "Write-Output “x $($env:RUNBOOK_VALUE_V) y”",
        "Remove-Item {{ v }}": "Remove-Item $($env:RUNBOOK_VALUE_V)",
        '$x = @"\n{{ v }}\n"@': '$x = @"\n$($env:RUNBOOK_VALUE_V)\n"@',
        "<# it's {{ v }} #>\nWrite-Output {{ v }}": "Write-Output $($env:RUNBOOK_VALUE_V)",
    }
    for template, expected in cases.items():
        step = tailored("powershell", template, hostile, tmp_path)
        assert expected in step.run_body and hostile not in step.run_body, step.run_body
        assert step.env == {"RUNBOOK_VALUE_V": hostile}
    step = tailored("powershell", "if ({{ v }}) { 'yes' }", "false", tmp_path, "bool")
    assert "($env:RUNBOOK_VALUE_V -eq 'true')" in step.run_body


def test_cmd_comma_and_spaces_stay_one_value(tmp_path: Path) -> None:
    step = tailored("cmd", "rmdir /s /q {{ v }}", "C:\\Temp\\old,C:\\Windows\\System32", tmp_path)
    assert step.run_body.endswith('rmdir /s /q "!RUNBOOK_VALUE_V!"\n')  # built-ins split at ,
    with pytest.raises(TemplateProblem, match="line break"):
        tailored("cmd", "echo {{ v }}", "two\nlines", tmp_path)


@pytest.fixture
def windows(wsman: Any) -> Any:
    host = Win2003(name="EXCHANGE1", fqdn="exchange1.example.com")
    server = wsman(WindowsHost(host.handler))
    options = {
        "scheme": "http",
        "port": server.port,
        "transport": server.auth,
        "username": server.username,
        "allow_basic_over_http": True,  # a loopback test server
        "read_timeout_sec": 4,
        "operation_timeout_sec": 1,
    }
    transport = WinRMTransport(Host("EXCHANGE1", "127.0.0.1", "winrm", options), "S3cret!pass")
    yield host, transport
    transport.close()


@pytest.mark.parametrize("context", range(len(CMD)))
def test_cmd_contexts_get_hostile_values_verbatim_over_winrm(
    context: int, windows: Any, tmp_path: Path
) -> None:
    host, transport = windows
    template, expect = CMD[context]
    for value in CMD_HOSTILE:
        step = tailored("cmd", template, value, tmp_path)
        assert value not in step.run_body
        result = transport.run("cmd", step.run_body, env={"RUNBOOK_STEP": "s", **step.env})
        assert "c:\\temp\\mark" not in host.files, (template, value)
        assert not host.unmodelled, host.unmodelled
        assert result.exit_code == 0, (result.stdout, result.stderr)
        assert result.stdout == expect(value), (step.run_body, value)


def test_yaml_values_are_typed_scalars_not_text(tmp_path: Path) -> None:
    slots = Slots()
    approver, note = slots.put("Alice, Mallory", "a", False, 2), slots.put("x\ny: 1", "n", False, 3)
    text = f"required: 1\napprovers: [{approver}]\n# note {note}\n"
    body = bind_yaml(text, slots)
    assert yaml.safe_load(body) == {"required": 1, "approvers": ["Alice, Mallory"]}
    assert body.count("\n") == text.count("\n")
    spec = parse_approval(body, tmp_path / "a.md", 1)
    assert len(spec.approvers) == 1
    slots = Slots()
    host, port = slots.put("mail.example.com", "h", False, 2), slots.put(443, "p", False, 3)
    connect = slots.put("127.0.0.1, connect: 127.0.0.2", "c", False, 4)
    url, data = slots.put("a\nb: c", "u", False, 5), slots.put("x: 1", "d", False, 6)
    text = (
        f"kind: tcp\nhost: {host}\nport: {port}\nconnect: {connect}\n"
        f"url: https://{url}/rpc\ndata: |\n  {data} and more\n"
    )
    doc = yaml.safe_load(bind_yaml(text, slots))
    assert doc == {
        "kind": "tcp",
        "host": "mail.example.com",
        "port": 443,
        "connect": "127.0.0.1, connect: 127.0.0.2",
        "url": "https://a\nb: c/rpc",
        "data": "x: 1 and more\n",
    }


def test_yaml_probe_value_cannot_add_a_key(tmp_path: Path) -> None:
    template = "kind: tcp\nhost: example.com\nport: 443\nconnect: {{ v }}"
    with pytest.raises(TemplateProblem) as excinfo:
        tailored("probe", template, "127.0.0.1, connect: 127.0.0.2", tmp_path)
    assert "connect" in excinfo.value.problems[0].message


def test_binding_direct_for_every_language_keeps_values_out(tmp_path: Path) -> None:
    for lang in ("sh", "python", "powershell", "cmd"):
        slots = Slots()
        text = f'echo "{slots.put("$(boom)", "v", False, 1)}"\n'
        if lang == "python":
            text = f'print("{slots.put("$(boom)", "v", False, 1)}")\n'
        bound = bind_body(lang, text, slots, types={})
        assert "$(boom)" not in bound.body and "$(boom)" in bound.env.values()


def test_a_run_passes_values_as_variables_and_journals_the_body_as_run(tmp_path: Path) -> None:
    import json
    import os
    import subprocess
    import sys

    hostile = "$(touch MARK)'; touch MARK; echo \"`touch MARK`"
    (tmp_path / "v.md").write_text(
        "---\nparameters:\n  v: {type: string}\n  pw: {type: string, secret: true}\n---\n"
        "```sh {#echo-v}\nprintf '%s|' {{ v }} \"{{ v }}\" '{{ v }}'; printf '%s\\n' \"{{ pw }}\"\n```\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNBOOK_")}
    env["RUNBOOK_SECRET_PW"] = "pw-canary-81"
    run = [sys.executable, "-m", "runbook_engine"]
    plan = subprocess.run(
        [*run, "plan", "v.md", "--set", f"v={hostile}", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
    )
    assert plan.returncode == 0, plan.stderr
    (step,) = json.loads(plan.stdout)["steps"]
    assert step["values"] == {"RUNBOOK_VALUE_V": hostile}
    assert hostile not in step["command_as_run"] and "RUNBOOK_VALUE_V" in step["command_as_run"]
    proc = subprocess.run(
        [*run, "run", "v.md", "--set", f"v={hostile}", "--state-dir", "st"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not (tmp_path / MARK).exists()
    journal = next((tmp_path / "st" / "runs").glob("*/journal.jsonl")).read_text()
    events = [json.loads(line) for line in journal.splitlines()]
    started = next(e for e in events if e["event"] == "step-started")
    finished = next(e for e in events if e["event"] == "step-finished")
    assert started["values"] == {"RUNBOOK_VALUE_V": hostile}
    assert "${RUNBOOK_VALUE_V}" in started["command"] and hostile not in started["command"]
    assert finished["output_excerpt"] == f"{hostile}|{hostile}|{hostile}|[REDACTED:pw]\n"
    assert "pw-canary-81" not in journal
