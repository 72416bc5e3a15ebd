"""Notebooks (issue 4): rendering, papermill execution, and runs shared with the CLI.

Fast tests build notebooks without a kernel.  Tests marked ``slow`` start a
real ipykernel (about a second each) through papermill; they are few and run
in CI.  The CLI runs as a subprocess (``python -m runbook_engine``), so exit
statuses and what reaches the terminal are the real ones.

Regenerate the golden notebook with ``UPDATE_GOLDEN=1 pytest tests/test_notebook.py``.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest

from runbook_engine.errors import InputError
from runbook_engine.outputs import RENDERERS
from runbook_engine.outputs.notebook import ENGINE_PARAMETERS, cell_id, render_ipynb
from runbook_engine.run.store import CheckpointStore
from runbook_engine.tailor.loading import load

ROOT = Path(__file__).resolve().parents[1]
SEED_DIR = ROOT / "runbooks" / "exchange2003"
SEEDS = sorted(p for p in SEED_DIR.glob("*.md") if not p.name.startswith("_"))
ENVS = sorted((SEED_DIR / "environments").glob("*.yaml"))
GOLDEN = ROOT / "tests" / "golden" / "notebook" / "rpc-over-https.lab.ipynb"
OPERATOR = "Tess Tester"

COUNTER_RUNBOOK = """\
---
id: counter
title: Counter
---
# Counter

Each step appends its id to `counter.txt`.

```sh {#first title="First change"}
echo first >> counter.txt
echo "first ran"
```

```manual {#lamp title="Look at the lamp"}
Check that the lamp is **green**.
```

```sh {#second}
echo second >> counter.txt
echo "second ran"
```

```sh {#third .verify}
echo third >> counter.txt
grep -c . counter.txt
```
"""


def cli(
    *args: str | Path, cwd: Path, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``runbook ARGS`` in a subprocess; never with the caller's state directory."""
    env = {k: v for k, v in os.environ.items() if k != "RUNBOOK_STATE_DIR"}
    env.update({"RUNBOOK_OPERATOR": OPERATOR, "NO_COLOR": "1", **(extra_env or {})})
    return subprocess.run(
        [sys.executable, "-m", "runbook_engine", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def events(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "journal.jsonl").read_text().splitlines()]


def code_cells(path: Path) -> dict[str, Any]:
    nb = nbformat.read(path, as_version=4)
    return {c.id: c for c in nb.cells if c.cell_type == "code"}


def text_of(cell: Any) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


def assert_journal_ok(run_dir: Path, cwd: Path) -> None:
    check = cli("evidence", "verify", run_dir, cwd=cwd)
    assert check.returncode == 0, check.stdout + check.stderr


# -- rendering (no kernel) -------------------------------------------------------------
@pytest.mark.parametrize("env", ENVS, ids=lambda p: p.stem)
@pytest.mark.parametrize("seed", SEEDS, ids=lambda p: p.stem)
def test_seed_runbooks_render_to_valid_notebooks(seed: Path, env: Path) -> None:
    tailored = load(seed, env).tailored
    data = RENDERERS["ipynb"].render(tailored)
    assert data == RENDERERS["ipynb"].render(load(seed, env).tailored)  # byte-identical
    nb = nbformat.reads(data.decode("utf-8"), as_version=4)
    nbformat.validate(nb)
    assert nb.nbformat == 4 and nb.metadata.kernelspec.name == "python3"
    assert nb.metadata.language_info.name == "python"
    meta = nb.metadata.runbook_engine
    assert meta.runbook.id == tailored.runbook.id
    assert meta.runbook.sha256 == tailored.runbook.content_hash
    assert meta.runbook.version == tailored.runbook.version
    assert meta.environment.name == tailored.environment.name
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and nb.cells.index(tagged[0]) < nb.cells.index(
        next(c for c in nb.cells if c.id == "attach")
    )
    for stmt in ast.parse(tagged[0].source).body:  # only plain `name = literal` lines
        assert isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
        assert isinstance(stmt.targets[0], ast.Name)
        ast.literal_eval(stmt.value)
    names = [s.targets[0].id for s in ast.parse(tagged[0].source).body]
    assert names[: len(ENGINE_PARAMETERS)] == list(ENGINE_PARAMETERS)
    secret = {n for n, p in tailored.runbook.parameters.items() if p.secret}
    assert not secret & set(names)
    by_id = {c.id: c for c in nb.cells}
    for ts in tailored.steps:
        assert by_id[cell_id(ts.id)].source == f"rb.step({ts.id!r})"
        doc = by_id[cell_id(ts.id, "-doc")].source
        first = next((line for line in ts.body.splitlines() if line.strip()), "")
        assert first.strip() in doc, f"{ts.id}: the step's text is not shown"
    assert nb.cells[-1].source == "rb.finish()"


def test_golden_notebook() -> None:
    seed, env = SEED_DIR / "rpc-over-https.md", SEED_DIR / "environments" / "lab.yaml"
    text = render_ipynb(load(seed, env).tailored).decode("utf-8").replace(str(ROOT), "$ROOT")
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(text, encoding="utf-8")
    assert text == GOLDEN.read_text(encoding="utf-8"), "regenerate with UPDATE_GOLDEN=1"


def test_cli_render_writes_the_same_notebook(tmp_path: Path) -> None:
    runbook, env = _typed_runbook(
        tmp_path, "  version: '1.10'\n  code: '0123'\n  pair: 'a=b'\n  items: ['a,b', c]\n"
    )
    out = tmp_path / "nb" / "typed.ipynb"
    done = cli("render", runbook, "--env", env, "--to", "ipynb", "-o", out, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == render_ipynb(load(runbook, env).tailored)


def test_help_imports_neither_papermill_nor_nbformat() -> None:
    code = (
        "import sys, runbook_engine.cli as c\ntry:\n    c.main(['notebook', '--help'])\n"
        "except SystemExit:\n    pass\n"
        "print(sorted(m for m in ('papermill', 'nbformat', 'nbclient') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"


def _typed_runbook(folder: Path, env_values: str) -> tuple[Path, Path]:
    runbook = folder / "typed.md"
    runbook.write_text(
        """\
---
id: typed
parameters:
  version: {type: string}
  code: {type: string}
  pair: {type: string}
  items: {type: list}
  folder: {type: path, default: 'C:\\Program Files\\x'}
  greeting: {type: string, default: "grüße \\"quoted\\" 'single'"}
  count: {type: int, default: 3}
  flag: {type: bool, default: false}
---
```python {#show}
import json
values = {"version": "{{ version }}", "code": "{{ code }}", "pair": "{{ pair }}",
          "items": "{% for item in items %}{{ item }}|{% endfor %}"}
with open("values.json", "w", encoding="utf-8") as handle:
    json.dump(values, handle)
print("values", json.dumps(values))
```
""",
        encoding="utf-8",
    )
    env = folder / "env.yaml"
    env.write_text(f"name: typed-env\nparameters:\n{env_values}", encoding="utf-8")
    return runbook, env


def test_parameters_cell_keeps_values_exactly(tmp_path: Path) -> None:
    runbook, env = _typed_runbook(
        tmp_path, "  version: '1.10'\n  code: '0123'\n  pair: 'a=b'\n  items: ['a,b', c]\n"
    )
    nb = nbformat.reads(render_ipynb(load(runbook, env).tailored).decode(), as_version=4)
    source = next(c.source for c in nb.cells if c.id == "parameters")
    scope: dict[str, Any] = {}
    exec(source, scope)  # the cell is plain Python: run it as the kernel would
    assert (scope["version"], scope["code"], scope["pair"]) == ("1.10", "0123", "a=b")
    assert scope["items"] == ["a,b", "c"]
    assert scope["folder"] == "C:\\Program Files\\x"
    assert scope["greeting"] == "grüße \"quoted\" 'single'"
    assert (scope["count"], scope["flag"], scope["confirmations"]) == (3, False, {})


def test_parameter_named_like_a_notebook_name_is_refused(tmp_path: Path) -> None:
    runbook = tmp_path / "clash.md"
    runbook.write_text(
        "---\nparameters:\n  run_id: {type: string, default: x}\n---\n```sh {#a}\ntrue\n```\n",
        encoding="utf-8",
    )
    with pytest.raises(InputError, match="run_id"):
        render_ipynb(load(runbook, None, {}).tailored)
    done = cli("render", runbook, "--to", "ipynb", cwd=tmp_path)
    assert done.returncode == 2 and "run_id" in done.stderr and "Traceback" not in done.stderr


def test_bad_confirmation_is_refused_before_any_kernel(tmp_path: Path) -> None:
    runbook = tmp_path / "counter.md"
    runbook.write_text(COUNTER_RUNBOOK, encoding="utf-8")
    state = tmp_path / "state"
    for confirm in ("nope=confirm", "lamp=skip", "lamp=maybe"):
        done = cli(
            "notebook", "run", runbook, "--state-dir", state, "--decide", confirm, cwd=tmp_path
        )
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr
    assert not (state / "runs").exists() or not any((state / "runs").iterdir())


# -- execution (real kernels) ----------------------------------------------------------
SHOWCASE = """\
---
id: showcase
title: Showcase
parameters:
  token: {type: string, secret: true}
---
Prose before the steps.

```sh {#hello title="Say hello"}
echo "hello from sh"
echo "second line"
```

```python {#interpreter}
import sys
print("interpreter", sys.executable)
```

```manual {#lamp title="Look at the lamp"}
Check that the lamp is green.
```

```sh {#secret .verify}
echo "token={{ token }}"
```
"""


@pytest.mark.slow
def test_papermill_end_to_end(tmp_path: Path) -> None:
    runbook = tmp_path / "showcase.md"
    runbook.write_text(SHOWCASE, encoding="utf-8")
    state, copy = tmp_path / "state", tmp_path / "out" / "executed.ipynb"
    token = "s3cr3t-t0ken-value"
    done = cli(
        "notebook",
        "run",
        runbook,
        "--state-dir",
        state,
        "--run-id",
        "show-1",
        "--decide",
        "lamp=confirm:lamp is green",
        "-o",
        copy,
        cwd=tmp_path,
        extra_env={"RUNBOOK_SECRET_TOKEN": token},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr == ""  # no kernel chatter, no warnings
    assert "Notebook:" in done.stdout and "Debugger" not in done.stdout
    run_dir = state / "runs" / "show-1"
    attempt = run_dir / "notebooks" / "attempt-1.ipynb"
    assert copy.read_bytes() == attempt.read_bytes()
    cells = code_cells(attempt)
    assert "hello from sh" in text_of(cells["step-hello"])
    assert "second line" in text_of(cells["step-hello"])
    assert f"interpreter {sys.executable}" in text_of(cells["step-interpreter"])
    assert "confirm by" in text_of(cells["step-lamp"])
    assert "token=[REDACTED:token]" in text_of(cells["step-secret"])
    assert token not in attempt.read_text(encoding="utf-8")
    assert "succeeded" in text_of(cells["finish"])
    log = events(run_dir)
    passed = [e for e in log if e["event"] == "gate-passed"]
    assert [(e["step"], e["source"], e["note"]) for e in passed] == [
        ("lamp", "notebook-parameter", "lamp is green")
    ]
    executed = [e for e in log if e["event"] == "notebook-executed"]
    assert len(executed) == 1 and executed[0]["attempt"] == 1
    assert executed[0]["sha256"] == hashlib.sha256(attempt.read_bytes()).hexdigest()
    assert CheckpointStore(state).get_run("show-1").status == "succeeded"
    assert_journal_ok(run_dir, tmp_path)


def _counter(tmp_path: Path) -> Path:
    runbook = tmp_path / "counter.md"
    runbook.write_text(COUNTER_RUNBOOK, encoding="utf-8")
    return runbook


def _ran(tmp_path: Path) -> list[str]:
    path = tmp_path / "counter.txt"
    return path.read_text().split() if path.exists() else []


@pytest.mark.slow
def test_cli_pauses_then_the_notebook_finishes(tmp_path: Path) -> None:
    runbook, state = _counter(tmp_path), tmp_path / "state"
    first = cli("run", runbook, "--state-dir", state, "--run-id", "c1", "--no-input", cwd=tmp_path)
    assert first.returncode == 3, first.stdout + first.stderr
    assert _ran(tmp_path) == ["first"]
    assert (
        cli("confirm", "c1", "lamp", "--as", "Ann", "--state-dir", state, cwd=tmp_path).returncode
        == 0
    )
    done = cli("notebook", "run", runbook, "--state-dir", state, "--run-id", "c1", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert _ran(tmp_path) == ["first", "second", "third"]
    run_dir = state / "runs" / "c1"
    cells = code_cells(run_dir / "notebooks" / "attempt-1.ipynb")
    assert "not run again" in text_of(cells["step-first"])
    assert "second ran" in text_of(cells["step-second"])
    assert CheckpointStore(state).get_run("c1").status == "succeeded"
    passed = [e for e in events(run_dir) if e["event"] == "gate-passed"]
    assert [(e["step"], e["source"], e["by"]) for e in passed] == [("lamp", "cli", "Ann")]
    assert_journal_ok(run_dir, tmp_path)


@pytest.mark.slow
def test_notebook_pauses_then_the_cli_finishes(tmp_path: Path) -> None:
    runbook, state = _counter(tmp_path), tmp_path / "state"
    paused = cli("notebook", "run", runbook, "--state-dir", state, "--run-id", "n1", cwd=tmp_path)
    assert paused.returncode == 3, paused.stdout + paused.stderr
    assert "runbook confirm n1 lamp" in paused.stderr and "Traceback" not in paused.stderr
    assert _ran(tmp_path) == ["first"]
    run_dir = state / "runs" / "n1"
    store = CheckpointStore(state)
    assert store.get_run("n1").status == "paused"
    assert {s.step_id: s.status for s in store.steps("n1")}["lamp"] == "awaiting"
    gate = code_cells(run_dir / "notebooks" / "attempt-1.ipynb")["step-lamp"]
    assert [o.ename for o in gate.outputs if o.output_type == "error"] == ["NotebookPaused"]
    assert (
        cli("confirm", "n1", "lamp", "--as", "Bob", "--state-dir", state, cwd=tmp_path).returncode
        == 0
    )
    resumed = cli("resume", "n1", "--state-dir", state, "--no-input", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert _ran(tmp_path) == ["first", "second", "third"]
    assert CheckpointStore(state).get_run("n1").status == "succeeded"
    assert_journal_ok(run_dir, tmp_path)


FLAKY_RUNBOOK = """\
---
id: flaky
---
```sh {#first}
echo first >> counter.txt
```

```sh {#flaky timeout=1}
if [ -f fixed.flag ]; then echo flaky >> counter.txt; else echo "waiting"; sleep 30; fi
```

```sh {#last}
echo last >> counter.txt
```
"""


@pytest.mark.slow
def test_failing_step_stops_papermill_and_resume_after_a_fix_succeeds(tmp_path: Path) -> None:
    runbook, state = tmp_path / "flaky.md", tmp_path / "state"
    runbook.write_text(FLAKY_RUNBOOK, encoding="utf-8")
    failed = cli("notebook", "run", runbook, "--state-dir", state, "--run-id", "f1", cwd=tmp_path)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "flaky" in failed.stderr and "Traceback" not in failed.stderr
    store = CheckpointStore(state)
    assert store.get_run("f1").status == "failed"
    states = {s.step_id: s for s in store.steps("f1")}
    assert states["flaky"].status == "failed" and states["flaky"].reason == "timed out"
    assert states["last"].status == "pending"
    attempt = state / "runs" / "f1" / "notebooks" / "attempt-1.ipynb"
    nb = nbformat.read(attempt, as_version=4)
    cell = next(c for c in nb.cells if c.id == "step-flaky")
    assert cell.metadata.papermill.status == "failed"
    assert [o.ename for o in cell.outputs if o.output_type == "error"] == ["StepFailed"]
    assert "waiting" in text_of(cell)
    assert any("papermill-error-cell" in c.source for c in nb.cells if c.cell_type == "markdown")
    assert code_cells(attempt)["step-last"].metadata.papermill.status == "pending"
    assert _ran(tmp_path) == ["first"]
    (tmp_path / "fixed.flag").write_text("fixed\n")
    resumed = cli("resume", "f1", "--state-dir", state, "--no-input", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert _ran(tmp_path) == ["first", "flaky", "last"]
    assert_journal_ok(state / "runs" / "f1", tmp_path)


@pytest.mark.slow
def test_parameters_survive_the_papermill_round_trip(tmp_path: Path, monkeypatch: Any) -> None:
    import papermill

    from runbook_engine.notebook.execute import kernel_environment

    runbook, env = _typed_runbook(
        tmp_path, "  version: '2.0'\n  code: '0007'\n  pair: 'x=y'\n  items: [p]\n"
    )
    source = tmp_path / "typed.ipynb"
    source.write_bytes(render_ipynb(load(runbook, env).tailored))
    state = tmp_path / "state"
    wanted = {"version": "1.10", "code": "0123", "pair": "a=b", "items": ["a,b", "c"]}
    monkeypatch.chdir(tmp_path)
    with kernel_environment(tmp_path / "kernel"):
        papermill.execute_notebook(
            str(source),
            str(tmp_path / "executed.ipynb"),
            kernel_name="python3",
            parameters={"run_id": "p1", "state_dir": str(state), "operator": OPERATOR, **wanted},
            progress_bar=False,
            cwd=str(tmp_path),
        )
    shown = json.loads((tmp_path / "values.json").read_text(encoding="utf-8"))
    assert shown == {**wanted, "items": "a,b|c|"}  # each item as given, none split
    record = CheckpointStore(state).get_run("p1")
    assert {k: record.overrides[k] for k in wanted} == wanted
    started = events(state / "runs" / "p1")[0]
    assert {k: started["parameters"][k] for k in wanted} == wanted
    again = load(runbook, env, record.overrides).values  # as `runbook resume` reloads them
    assert again is not None and {k: again.params[k] for k in wanted} == wanted


# -- the kernel side without a kernel (what a Jupyter session does, cell by cell) -----------
def test_one_runner_per_kernel_pause_confirm_and_rerun_the_cell(
    tmp_path: Path, monkeypatch: Any, capsys: Any
) -> None:
    from runbook_engine.notebook import api

    monkeypatch.setattr(api, "_CURRENT", None)
    monkeypatch.chdir(tmp_path)
    runbook, state = _counter(tmp_path), tmp_path / "state"
    cell = {"runbook_file": str(runbook), "state_dir": str(state), "operator": OPERATOR}
    rb = api.attach(**cell)
    assert api.attach(**cell) is rb  # the attach cell run again: the same run
    assert rb.step("first") == "succeeded"
    assert rb.step("first") == "succeeded"  # a finished step is not run again
    with pytest.raises(api.NotebookPaused, match="runbook confirm") as paused:
        rb.step("lamp")
    assert paused.value._render_traceback_()[0].startswith("NotebookPaused: run ")
    assert CheckpointStore(state).get_run(rb.run_id).status == "paused"
    with pytest.raises(api.NotebookInputError):
        rb.confirm("lamp", "skip")  # a skip needs a reason
    rb.confirm("lamp", note="green")
    assert rb.step("third") == "succeeded"  # runs lamp, second, then third
    assert rb.finish() == "succeeded"
    assert _ran(tmp_path) == ["first", "second", "third"]
    out = capsys.readouterr().out
    assert "first ran" in out and "not run again" in out and "Run " in out
    log = events(state / "runs" / rb.run_id)
    assert [e["event"] for e in log].count("run-resumed") == 1  # re-opened once, after the pause
    passed = [e for e in log if e["event"] == "gate-passed"]
    assert [(e["source"], e["note"]) for e in passed] == [("notebook", "green")]
    assert_journal_ok(state / "runs" / rb.run_id, tmp_path)


def test_attach_refuses_other_values_for_an_existing_run(tmp_path: Path, monkeypatch: Any) -> None:
    from runbook_engine.notebook import api

    monkeypatch.setattr(api, "_CURRENT", None)
    runbook, env = _typed_runbook(
        tmp_path, "  version: '1.10'\n  code: '0123'\n  pair: 'a=b'\n  items: [x]\n"
    )
    cell = {
        "runbook_file": str(runbook),
        "env_file": str(env),
        "state_dir": str(tmp_path / "s"),
        "run_id": "t1",
    }
    api.attach(**cell, parameters={"version": "1.10"})
    monkeypatch.setattr(api, "_CURRENT", None)  # a new kernel
    with pytest.raises(api.NotebookInputError, match=re.escape("version = '1.10'")):
        api.attach(**cell, parameters={"version": "1.1"})
    with pytest.raises(api.NotebookInputError, match="not a gate"):
        api.attach(**cell, parameters={"version": "1.10"}, confirmations={"show": "confirm"})


def test_notebook_confirmation_notes_and_names_never_store_a_secret(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """A note typed in the notebook that holds a secret is redacted in state.db and the
    journal, as the CLI's confirm is (no kernel: the API as the cells call it)."""
    import sqlite3

    from runbook_engine.notebook import api

    secret = "canary-7f3a-notebook"
    monkeypatch.setattr(api, "_CURRENT", None)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NB_CANARY", secret)
    text = COUNTER_RUNBOOK.replace(
        "title: Counter\n", "title: Counter\nparameters:\n  token: {type: string, secret: true}\n"
    )
    runbook = tmp_path / "counter.md"
    runbook.write_text(text, encoding="utf-8")
    env = tmp_path / "env.yml"
    env.write_text("name: here\nsecrets:\n  token: {env: NB_CANARY}\n", encoding="utf-8")
    state = tmp_path / "state"
    rb = api.attach(
        runbook_file=str(runbook), env_file=str(env), state_dir=str(state), operator=OPERATOR
    )
    assert rb.step("first") == "succeeded"
    with pytest.raises(api.NotebookPaused):
        rb.step("lamp")
    rb.confirm("lamp", note=f"lamp green, token {secret}", by=f"Ann {secret}")
    with sqlite3.connect(state / "state.db") as db:
        assert secret not in repr(db.execute("select * from gates").fetchall())
    assert secret not in (state / "runs" / rb.run_id / "journal.jsonl").read_text()


def test_notebook_run_takes_a_rendered_notebook(tmp_path: Path) -> None:
    library = tmp_path / "library"
    (library / "environments").mkdir(parents=True)
    runbook = library / "counter.md"
    runbook.write_text(COUNTER_RUNBOOK, encoding="utf-8")
    env = library / "environments" / "lab.yaml"
    env.write_text("name: lab\n", encoding="utf-8")
    rendered = library / "out" / "counter.ipynb"
    made = cli("render", runbook, "--env", env, "--to", "ipynb", "-o", rendered, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    text = rendered.read_text(encoding="utf-8")
    assert str(tmp_path) not in text  # no absolute path of this machine
    meta = json.loads(text)["metadata"]["runbook_engine"]
    assert meta["runbook"]["path"] == "counter.md"
    assert meta["environment"]["path"] == "environments/lab.yaml"
    state = tmp_path / "state"
    done = cli(
        "notebook", "run", rendered, "--state-dir", state, "--run-id", "nb1",
        "--confirm", "lamp", cwd=library,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    started = events(state / "runs" / "nb1")[0]
    assert started["runbook"]["path"] == str(runbook.resolve())
    assert started["environment"]["name"] == "lab"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    moved = elsewhere / "counter.ipynb"
    moved.write_bytes(rendered.read_bytes())
    lost = cli("notebook", "run", moved, "--state-dir", state, cwd=elsewhere)
    assert lost.returncode == 2
    assert "RUNBOOK_LIBRARY" in lost.stderr and "counter.md" in lost.stderr
    not_ours = elsewhere / "other.ipynb"
    not_ours.write_text('{"cells": [], "metadata": {}}', encoding="utf-8")
    refused = cli("notebook", "run", not_ours, "--state-dir", state, cwd=elsewhere)
    assert refused.returncode == 2 and "not a notebook rendered by runbook-engine" in refused.stderr
