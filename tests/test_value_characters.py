"""Values hold no control characters (RB224): sh drops a NUL and would run something other
than the plan shows.  The message names the parameter and where the value came from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from runbook_engine.cli import main
from runbook_engine.errors import RunbookSyntaxError
from runbook_engine.run.store import CheckpointStore
from runbook_engine.source.parser import parse_text
from runbook_engine.source.types import ValueProblem, coerce

RUNBOOK = """---
parameters:
  name:
    type: string
  port:
    type: port
    default: 80
  hosts:
    type: list
    items: hostname
    required: false
  note:
    type: string
    multiline: true
    required: false
---
# T

```sh {#s1}
echo {{ name }} > out.txt
```
"""


def _cli(capsys: pytest.CaptureFixture[str], *args: Any) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    out = capsys.readouterr()
    code = exc.value.code
    return (code if isinstance(code, int) else (0 if code is None else 1)), out.out + out.err


def _assert_no_run(state: Path) -> None:
    assert not (state / "runs").exists()
    if (state / "state.db").exists():
        store = CheckpointStore(state)
        try:
            assert store.list_runs() == []
        finally:
            store.close()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "rb.md").write_text(RUNBOOK, encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize(
    ("yaml_value", "shown"),
    [
        ('"a\\0b"', "U+0000 (NUL) at character 2"),
        ('"a\\nrm -rf /"', "U+000A (a newline)"),
        ('"a\\x1b[2Jb"', "U+001B (ESC)"),
        ('"a\\x7fb"', "U+007F (DEL)"),
        ('"a\\x85b"', "U+0085"),
        ('"a\\u202eb"', "U+202E"),
        ('"a\\u2028b"', "U+2028"),
    ],
)
def test_env_file_value_is_refused_with_file_and_line(
    folder: Path, capsys: pytest.CaptureFixture[str], yaml_value: str, shown: str
) -> None:
    env = folder / "env.yaml"
    env.write_text(f"name: lab\nparameters:\n  port: 81\n  name: {yaml_value}\n", encoding="utf-8")
    state = folder / "state"
    for command in (("plan",), ("render",), ("run", "--state-dir", state, "--no-input")):
        code, output = _cli(capsys, command[0], folder / "rb.md", "--env", env, *command[1:])
        assert code == 2, output
        assert "env.yaml:4: RB224 parameter 'name' (string), in environment 'lab'" in output
        assert shown in output and "Traceback" not in output
    _assert_no_run(state)
    assert not (folder / "out.txt").exists()


def test_set_value_is_refused_naming_set(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = folder / "env.yaml"
    env.write_text("name: lab\n", encoding="utf-8")
    state = folder / "state"
    code, output = _cli(
        capsys,
        *("run", folder / "rb.md", "--env", env, "--state-dir", state, "--no-input"),
        *("--set", "name=x\0; touch PWNED", "--set", "hosts=a,b\tc"),
    )
    assert code == 2, output
    assert "<input>" not in output
    assert "--set name: RB224 parameter 'name' (string), given with --set" in output
    assert "U+0000 (NUL)" in output
    assert "parameter 'hosts' (list), given with --set: item 2: " in output  # TAB: not a host
    _assert_no_run(state)
    assert not (folder / "PWNED").exists() and not (folder / "out.txt").exists()


def test_fact_with_a_control_character_is_refused(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = folder / "env.yaml"
    env.write_text(
        'name: lab\nparameters:\n  name: x\nfacts:\n  ok: "two\\nlines"\n  bad: [a, "b\\0"]\n',
        encoding="utf-8",
    )
    code, output = _cli(capsys, "plan", folder / "rb.md", "--env", env)
    assert code == 2, output
    assert "env.yaml:6: RB224 fact 'bad'" in output and "'ok'" not in output


def test_newline_only_where_declared_and_tab_everywhere(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = folder / "env.yaml"
    env.write_text(
        'name: lab\nparameters:\n  name: "tab\\there"\n  note: "line 1\\nline 2\\n"\n',
        encoding="utf-8",
    )
    code, output = _cli(capsys, "plan", folder / "rb.md", "--env", env)
    assert code == 0, output
    assert coerce("string", "a\nb", multiline=True) == "a\nb"
    for bad in ("a\rb", "a\0b", "a\x00"):
        with pytest.raises(ValueProblem):
            coerce("string", bad, multiline=True)
    for type_name, value in (("string", "a\nb"), ("choice", "a\0"), ("path", "/tmp/\x1b")):
        with pytest.raises(ValueProblem):
            coerce(type_name, value, choices=("a\0",))


def test_multiline_is_only_for_strings_and_defaults_are_checked(tmp_path: Path) -> None:
    with pytest.raises(RunbookSyntaxError) as excinfo:
        parse_text(
            "---\nparameters:\n  p: {type: port, multiline: true}\n"
            '  q: {type: string, default: "a\\0b"}\n---\n# T\n',
            tmp_path / "rb.md",
        )
    text = excinfo.value.format()
    assert "'multiline' is for type 'string'" in text and "U+0000 (NUL)" in text
