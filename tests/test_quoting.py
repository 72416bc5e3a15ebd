"""Values reach commands as environment variables (real shells); guides show them quoted
for typing by hand (``quote_value``, display only)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from runbook_engine.errors import TemplateProblem
from runbook_engine.source.parser import parse_text
from runbook_engine.tailor.quoting import QuotingError, SecretValue, quote_value
from runbook_engine.tailor.tailoring import TailoredStep, tailor
from runbook_engine.tailor.values import resolve_values

HOSTILE = [
    'x"; touch PWNED; echo "',
    "$(touch PWNED)",
    "`touch PWNED`",
    "a'b; touch PWNED; 'c",
    "/tmp; touch PWNED",
    "line1\ntouch PWNED",
    'back\\slash \\" end\\',
    "unicode é ✓ and spaces",
    "",
]

BODY = """```{kind} {{#s}}
{body}
```
"""


def _tailored(
    kind: str, body: str, value: object, tmp_path: Path, ptype: str = "string"
) -> TailoredStep:
    decl = f"{{type: {ptype}, multiline: true}}" if ptype == "string" else f"{{type: {ptype}}}"
    text = f"---\nparameters:\n  v: {decl}\n---\n" + BODY.format(kind=kind, body=body)
    runbook = parse_text(text, tmp_path / "q.md")
    env_values = resolve_values(runbook, None, {"v": value} if ptype != "list" else None)
    return tailor(runbook, _env(tmp_path), env_values).steps[0]


def _tailored_body(
    kind: str, body: str, value: object, tmp_path: Path, ptype: str = "string"
) -> str:
    return _tailored(kind, body, value, tmp_path, ptype).body


def _env(tmp_path: Path):  # an empty environment: local steps only
    from runbook_engine.tailor.loading import _NO_ENV

    return _NO_ENV(None)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize(
    "template",
    [
        'printf "%s\\n" {{ v }}',
        'printf "%s\\n" "{{ v }}"',
        "printf '%s\\n' '{{ v }}'",
        'printf "%s\\n" "prefix-{{ v }}-suffix"',
    ],
)
def test_sh_gets_the_value_verbatim_and_nothing_runs(
    value: str, template: str, tmp_path: Path
) -> None:
    step = _tailored("sh", template, value, tmp_path)
    body = step.run_body
    assert value not in body or not value
    env = {**os.environ, **step.env}
    proc = subprocess.run(["sh", "-c", body], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert not (tmp_path / "PWNED").exists(), body
    assert proc.returncode == 0, (body, proc.stderr)
    expected = value if "prefix" not in template else f"prefix-{value}-suffix"
    assert proc.stdout == expected + "\n", body


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize(
    "template",
    [
        "print({{ v }})",
        'print("{{ v }}")',
        "print('{{ v }}')",
        'print("<{{ v }}>")',
    ],
)
def test_python_gets_the_value_verbatim(value: str, template: str, tmp_path: Path) -> None:
    step = _tailored("python", template, value, tmp_path)
    body = step.run_body
    env = {**os.environ, **step.env}
    proc = subprocess.run(
        [sys.executable, "-c", body], cwd=tmp_path, capture_output=True, text=True, env=env
    )
    assert proc.returncode == 0, (body, proc.stderr)
    expected = f"<{value}>" if "<" in template else value
    assert proc.stdout == expected + "\n", body


def test_values_of_other_types_are_written_for_the_shell(tmp_path: Path) -> None:
    assert quote_value(False, "sh", "none") == "false"
    assert quote_value(True, "powershell", "none") == "$true"
    assert quote_value(None, "python", "none") == "None"
    assert quote_value(["a b", "c"], "sh", "none") == "'a b' c"
    assert quote_value(["a b", "c"], "python", "none") == "['a b', 'c']"
    assert quote_value(["a", "b'c"], "powershell", "none") == "@('a', 'b''c')"
    assert quote_value(6001, "cmd", "none") == "6001"


def test_cmd_quotes_or_refuses(tmp_path: Path) -> None:
    assert quote_value("EXCHANGE1", "cmd", "double") == "EXCHANGE1"
    assert (
        quote_value("First Administrative Group", "cmd", "none") == '"First Administrative Group"'
    )
    assert quote_value("100%", "cmd", "double") == "100%%"
    assert quote_value("a&b|c", "cmd", "none") == '"a&b|c"'
    for bad in ('say "hi"', "two\nlines"):
        with pytest.raises(QuotingError):
            quote_value(bad, "cmd", "double")


def test_cmd_value_that_cannot_be_typed_is_shown_marked_and_run_as_a_variable(
    tmp_path: Path,
) -> None:
    step = _tailored("cmd", 'echo "{{ v }}"', 'x" & calc & "', tmp_path)
    assert step.body == 'echo "‹x" & calc & "›"\n'
    assert step.run_body == '@setlocal EnableDelayedExpansion\necho "!RUNBOOK_VALUE_V!"\n'
    assert step.env == {"RUNBOOK_VALUE_V": 'x" & calc & "'}


def test_cmd_value_in_a_reparsed_command_is_an_error_with_the_line(tmp_path: Path) -> None:
    with pytest.raises(TemplateProblem) as excinfo:
        _tailored("cmd", "call echo {{ v }}", "x", tmp_path)
    (problem,) = excinfo.value.problems
    assert problem.line == 6 and problem.code == "RB133"


def test_powershell_single_and_double_quotes() -> None:
    assert quote_value("it's", "powershell", "single") == "it''s"
    assert quote_value("$(calc)", "powershell", "double") == "`$(calc)"
    assert quote_value("a b", "powershell", "none") == "'a b'"


def test_yaml_bodies_cannot_gain_keys(tmp_path: Path) -> None:
    import yaml

    hostile = "x\nport: 1\nexpect: closed"
    for template, context in (("host: {{ v }}", "none"), ('host: "{{ v }}"', "double")):
        doc = yaml.safe_load(template.replace("{{ v }}", quote_value(hostile, "yaml", context)))
        assert doc == {"host": hostile}
    with pytest.raises(QuotingError):  # a line break cannot stand in a single-quoted scalar
        quote_value(hostile, "yaml", "single")


def test_raw_filter_is_gone_and_inline_only_takes_restricted_types(tmp_path: Path) -> None:
    with pytest.raises(TemplateProblem, match="raw' is gone"):
        _tailored("sh", "echo {{ v | raw }}", "a b", tmp_path)
    with pytest.raises(TemplateProblem, match="allowed only for parameters of type"):
        _tailored("sh", "echo {{ v | inline }}", "a b", tmp_path)
    step = _tailored("sh", "echo {{ v | inline }}", "mail.example.com", tmp_path, "fqdn")
    assert step.run_body == "echo mail.example.com\n" and step.env == {}


def test_secrets_reach_commands_as_environment_references(tmp_path: Path) -> None:
    assert quote_value(SecretValue("pw", "s3cret"), "sh", "double") == "${RUNBOOK_SECRET_PW}"
    assert quote_value(SecretValue("pw", "s3cret"), "cmd", "none") == '"%RUNBOOK_SECRET_PW%"'
    text = (
        "---\nparameters:\n  pw: {type: string, secret: true}\n---\n"
        '```sh {#s}\necho "pw={{ pw }}"\n```\n'
    )
    runbook = parse_text(text, tmp_path / "s.md")
    os.environ["RUNBOOK_SECRET_PW"] = "s3cret-value"
    try:
        values = resolve_values(runbook, None, with_secrets=True)
        step = tailor(runbook, _env(tmp_path), values, secrets=True).steps[0]
    finally:
        del os.environ["RUNBOOK_SECRET_PW"]
    for body in (step.body, step.run_body):
        assert "s3cret" not in body and "RUNBOOK_SECRET_PW" in body
    assert step.env == {}


def test_short_secret_is_warned_about_up_front(tmp_path: Path) -> None:
    (tmp_path / "s.md").write_text(
        "---\nparameters:\n  pin: {type: string, secret: true}\n---\n"
        '```sh {#e}\necho "pin={{ pin }}"\n```\n'
    )
    proc = subprocess.run(
        [sys.executable, "-m", "runbook_engine", "run", "s.md", "--state-dir", "st"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "RUNBOOK_SECRET_PIN": "abc"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "shorter than 4 characters" in proc.stdout
    journal = next((tmp_path / "st" / "runs").glob("*/journal.jsonl")).read_text()
    assert '"event":"warning"' in journal
