"""Runbook templates are data, never code: escapes from the jinja2 sandbox are refused.

One runbook holds every escape attempt in every place a template stands (prose, a
command body, a YAML body, ``when=``); each attempt would ``touch`` a marker file if it
ran.  Render (md, html, ipynb, generic), plan, lint, run and site build must leave no
marker, name the file and line of every attempt (RB134) and print no traceback.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jinja2
import pytest

from runbook_engine.cli import main
from runbook_engine.run.store import CheckpointStore

# (expression, found without evaluating anything) -- MARK is replaced by the marker's path.
PAYLOADS: list[tuple[str, bool]] = [
    ("cycler.__init__.__globals__.os.system('touch MARK')", True),
    ("lipsum.__globals__['os'].system('touch MARK')", True),
    ("joiner.__init__.__globals__['os'].system('touch MARK')", True),
    ("namespace.__init__.__globals__['os'].system('touch MARK')", True),
    ("range.__init__.__globals__['os'].system('touch MARK')", True),
    ("self.__init__.__globals__['os'].system('touch MARK')", True),
    ("''.__class__.__mro__[1].__subclasses__()", True),
    ("config.__class__.__init__.__globals__['os'].popen('touch MARK')", True),
    ("request.application.__globals__['os'].system('touch MARK')", True),
    ("name | attr('__class__')", True),
    ("name | attr('_' ~ '_class__')", False),
    ("'{0.__class__}'.format(name)", False),
    ("dict.mro()", False),
]
PLACES = ("prose", "body", "yaml", "when")
HEADER = "---\nparameters:\n  name:\n    type: string\n    default: x\n---\n# Escapes\n\n"


def escape_runbook(
    folder: Path, marker: Path, payloads: list[tuple[str, bool]] = PAYLOADS
) -> tuple[Path, list[tuple[int, bool]]]:
    """Write ``folder/main.md`` with every payload in every place.

    Returns:
        The runbook and ``(line, static)`` for every attempt.
    """
    lines = HEADER.split("\n")[:-1]
    expected: list[tuple[int, bool]] = []
    number = 0
    for expression, static in payloads:
        expr = expression.replace("MARK", str(marker))
        for place in PLACES:
            number += 1
            if place == "prose":
                expected.append((len(lines) + 1, static))
                lines += [f"Attempt {number}: {{{{ {expr} }}}}", ""]
            elif place == "body":
                lines.append(f"```sh {{#s{number}}}")
                expected.append((len(lines) + 1, static))
                lines += [f"echo {{{{ {expr} }}}}", "```", ""]
            elif place == "yaml":
                lines += [f"```probe {{#s{number} .verify}}", "kind: tcp"]
                expected.append((len(lines) + 1, static))
                lines += [f'host: "{{{{ {expr} }}}}"', "port: 80", "```", ""]
            else:
                expected.append((len(lines) + 1, static))
                lines += [f'```sh {{#s{number} when="{expr}"}}', "echo guarded", "```", ""]
    path = folder / "main.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path, expected


@pytest.fixture
def library(tmp_path: Path) -> dict[str, Any]:
    folder = tmp_path / "lib"
    (folder / "environments").mkdir(parents=True)
    marker = tmp_path / "MARKER"
    path, expected = escape_runbook(folder, marker)
    env = folder / "environments" / "lab.yaml"
    env.write_text("name: lab\nparameters:\n  name: world\n", encoding="utf-8")
    return {
        "folder": folder,
        "runbook": path,
        "env": env,
        "marker": marker,
        "tmp": tmp_path,
        "expected": expected,
    }


def in_process(capsys: pytest.CaptureFixture[str], *args: Any) -> tuple[int, str]:
    """Call :func:`main`; return ``(exit status, stdout + stderr)``."""
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    out = capsys.readouterr()
    code = exc.value.code
    return (code if isinstance(code, int) else (0 if code is None else 1)), out.out + out.err


def assert_reported(output: str, lib: dict[str, Any], *, evaluated: bool) -> None:
    """Every attempt is named as ``main.md:LINE`` with RB134 (only static ones when nothing
    is evaluated), nothing ran, no traceback."""
    expected: list[tuple[int, bool]] = lib["expected"]
    assert not lib["marker"].exists(), "a runbook template executed code"
    assert "Traceback" not in output
    for line, static in expected:
        if static or evaluated:
            assert re.search(rf"main\.md:{line}(:\d+)?: RB134 ", output), (line, output[:3000])


def test_payloads_are_live_outside_the_sandbox(tmp_path: Path) -> None:
    # The payloads are real: in a plain jinja2 environment they run the command.
    marker = tmp_path / "MARKER"
    for expression, _ in PAYLOADS[:2]:
        expr = expression.replace("MARK", str(marker))
        jinja2.Environment().from_string("{{ " + expr + " }}").render()
        assert marker.exists()
        marker.unlink()


@pytest.mark.parametrize("fmt", ["md", "html", "ipynb"])
def test_render_with_env_refuses_every_escape(
    library: dict[str, Any], capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    out = library["tmp"] / f"guide.{fmt}"
    code, output = in_process(
        capsys, "render", library["runbook"], "--env", library["env"], "--to", fmt, "-o", out
    )
    assert code == 2, output
    assert not out.exists()
    assert_reported(output, library, evaluated=True)


def test_generic_render_and_plan_refuse_every_escape(
    library: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    code, output = in_process(capsys, "render", library["runbook"])
    assert code == 2, output
    assert_reported(output, library, evaluated=False)
    code, output = in_process(capsys, "plan", library["runbook"], "--env", library["env"])
    assert code == 2, output
    assert_reported(output, library, evaluated=True)


def test_lint_reports_every_static_escape(
    library: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    code, output = in_process(capsys, "lint", library["runbook"])
    assert code == 2, output  # lint: 2 when any error, as run
    assert_reported(output, library, evaluated=False)


def test_run_refuses_before_anything_is_written(
    library: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    state = library["tmp"] / "state"
    code, output = in_process(
        capsys,
        "run",
        library["runbook"],
        "--env",
        library["env"],
        "--state-dir",
        state,
        "--no-input",
        "--operator",
        "Olga",
    )
    assert code == 2, output
    assert_reported(output, library, evaluated=True)
    assert not (state / "runs").exists()
    if (state / "state.db").exists():
        store = CheckpointStore(state)
        try:
            assert store.list_runs() == []
        finally:
            store.close()


@pytest.mark.parametrize("runtime_only", [False, True], ids=["all", "runtime-only"])
def test_site_build_leaves_the_runbook_out_and_runs_nothing(
    library: dict[str, Any], runtime_only: bool
) -> None:
    if runtime_only:  # the generic guide builds; the tailored page is refused
        runtime = [p for p in PAYLOADS if not p[1]]
        library["expected"] = escape_runbook(library["folder"], library["marker"], runtime)[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNBOOK_")}
    result = subprocess.run(
        [
            *(sys.executable, "-m", "runbook_engine", "site", "build", "--no-pdf", "-j", "1"),
            *("--source", str(library["folder"]), "-o", str(library["tmp"] / "site")),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 1, result.stderr  # site: a failing runbook is left out
    # The generic guide is built first and already refuses the runbook.
    assert_reported(result.stdout + result.stderr, library, evaluated=runtime_only)
    assert ("1 runbooks" if runtime_only else "0 runbooks") in result.stdout


def test_one_escape_is_one_clear_message_from_the_real_cli(tmp_path: Path) -> None:
    marker = tmp_path / "MARKER"
    (tmp_path / "rb.md").write_text(
        f"# T\n\nText {{{{ '{{0.__class__}}'.format(environment) }}}} {marker}\n",
        encoding="utf-8",
    )
    (tmp_path / "env.yaml").write_text("name: lab\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "runbook_engine", "render", "rb.md", "--env", "env.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rb.md:3") and "RB134" in lines[0], lines
    assert "Traceback" not in result.stderr and not marker.exists()


def test_safe_templates_still_render(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # What runbooks legitimately do keeps working in the sandbox.
    (tmp_path / "rb.md").write_text(
        HEADER + "{% set ns = namespace(n=0) %}{% for i in range(3) %}{% set ns.n = ns.n + i %}"
        "{% endfor %}Sum {{ ns.n }}, {{ name | upper }}, {{ dict(a=1)['a'] }}, "
        "{{ roles | length }}, {{ 'a-b'.split('-') | join('+') }}\n",
        encoding="utf-8",
    )
    (tmp_path / "env.yaml").write_text("name: lab\n", encoding="utf-8")
    code, output = in_process(capsys, "render", tmp_path / "rb.md", "--env", tmp_path / "env.yaml")
    assert code == 0, output
    assert "Sum 3, X, 1, 0, a+b" in output
