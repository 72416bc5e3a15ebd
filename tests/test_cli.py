"""The ``runbook`` command: bad input (exit 2, one message with file:line, no traceback, no
state), plans, and machine-readable status.

Exit statuses are checked on the real command (``python -m runbook_engine`` in a
subprocess); plans and JSON listings are also checked in-process through
:func:`runbook_engine.cli.main` for speed.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from stores import cli_environ  # type: ignore[import-not-found]

from runbook_engine.cli import main
from runbook_engine.run.store import CheckpointStore

FIXTURES = Path(__file__).parent / "fixtures" / "run"
BAD = FIXTURES / "bad"
PROBLEM_LINE = re.compile(r"^\S.*?:\d+(:\d+)?: RB\d{3} ", re.MULTILINE)


def cli_env() -> dict[str, str]:
    """No inherited ``RUNBOOK_*`` settings but the test's store (``RUNBOOK_STORE``)."""
    env = cli_environ()
    env.update(RUNBOOK_OPERATOR="Olga Operator", NO_COLOR="1", COLUMNS="200")
    return env


def runbook(*args: Any, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``runbook ARGS`` as a real subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "runbook_engine", *(str(a) for a in args)],
        cwd=cwd,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def in_process(capsys: pytest.CaptureFixture[str], *args: Any) -> tuple[int, str, str]:
    """Call :func:`main` and return ``(exit status, stdout, stderr)``."""
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    out = capsys.readouterr()
    code = exc.value.code
    return (code if isinstance(code, int) else (0 if code is None else 1)), out.out, out.err


def assert_no_run(state: Path) -> None:
    """Nothing of a run was left in ``state``: no runs folder, no run in the store."""
    assert not (state / "runs").exists(), list((state / "runs").iterdir())
    if (state / "state.db").exists():
        store = CheckpointStore(state)
        try:
            assert store.list_runs() == []
        finally:
            store.close()


# -- bad input ----------------------------------------------------------------------------------
# (id, runbook, extra arguments, substrings every one of which must be in stderr)
BAD_RUNS: list[tuple[str, str, tuple[str, ...], tuple[str, ...]]] = [
    ("unknown-attribute", "bad/unknown-attr.md", (), ("unknown-attr.md:3", "colour")),
    ("duplicate-id", "bad/duplicate-id.md", (), ("duplicate-id.md:9", "duplicate-id.md:3", "same")),
    ("unclosed-fence", "bad/unclosed-fence.md", (), ("unclosed-fence.md:5",)),
    ("invalid-front-matter", "bad/bad-front-matter.md", (), ("bad-front-matter.md:3",)),
    ("missing-check", "bad/missing-check.md", (), ("missing-check.md:3", "nope")),
    ("missing-backout", "bad/missing-backout.md", (), ("missing-backout.md:3", "nope")),
    ("undefined-parameter", "bad/undefined-param.md", (), ("undefined-param.md:9", "nope")),
    (
        "port-out-of-range",
        "bad/typed.md",
        ("--env", "bad/env-bad-port.yml"),
        ("env-bad-port.yml:3", "99999"),
    ),
    (
        "hostname-with-space",
        "bad/typed.md",
        ("--env", "bad/env-bad-host.yml"),
        ("env-bad-host.yml:4", "bad host"),
    ),
    (
        "role-with-no-host",
        "bad/typed.md",
        ("--env", "bad/env-role-no-host.yml"),
        ("env-role-no-host.yml:6", "web"),
    ),
    (
        "role-missing-in-env",
        "bad/typed.md",
        ("--env", "bad/env-role-missing.yml"),
        ("typed.md:13", "web"),
    ),
    ("role-without-env", "bad/typed.md", (), ("typed.md:13", "--env")),
    (
        "answers-without-operator",
        "gate.md",
        ("--env", "env-manual.yml", "--answers", "bad/answers-no-operator.yml"),
        ("answers-no-operator.yml:", "operator"),
    ),
    (
        "unknown-step-in-answers",
        "gate.md",
        ("--env", "env-manual.yml", "--answers", "answers-unknown-step.yml"),
        ("answers-unknown-step.yml:4", "no-such-step"),
    ),
]


@pytest.fixture
def book(tmp_path: Path) -> Path:
    """A copy of the fixtures (the CLI's working directory)."""
    shutil.copytree(FIXTURES, tmp_path / "book")
    return tmp_path / "book"


@pytest.mark.parametrize(
    ("runbook_file", "extra", "expected"), [c[1:] for c in BAD_RUNS], ids=[c[0] for c in BAD_RUNS]
)
def test_bad_input_to_run(
    book: Path, tmp_path: Path, runbook_file: str, extra: tuple[str, ...], expected: tuple[str, ...]
) -> None:
    state = tmp_path / "state"
    proc = runbook("run", runbook_file, *extra, "--state-dir", state, "--no-input", cwd=book)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    for text in expected:
        assert text in proc.stderr, (text, proc.stderr)
    assert len(PROBLEM_LINE.findall(proc.stderr)) == 1, proc.stderr
    assert proc.stdout == ""
    assert_no_run(state)
    assert not (book / "steps.log").exists()


@pytest.mark.parametrize(
    ("runbook_file", "extra", "expected"),
    [c[1:] for c in BAD_RUNS if "--answers" not in c[2] and c[0] != "role-without-env"],
    ids=[c[0] for c in BAD_RUNS if "--answers" not in c[2] and c[0] != "role-without-env"],
)
def test_bad_input_to_plan(
    book: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    runbook_file: str,
    extra: tuple[str, ...],
    expected: tuple[str, ...],
) -> None:
    monkeypatch.chdir(book)
    code, out, err = in_process(capsys, "plan", runbook_file, *extra)
    assert code == 2, out + err
    for text in expected:
        assert text in err, (text, err)
    assert len(PROBLEM_LINE.findall(err)) == 1, err


def test_missing_answers_file(book: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    proc = runbook(
        "run",
        "gate.md",
        "--env",
        "env-manual.yml",
        "--answers",
        "no-such-answers.yml",
        "--state-dir",
        state,
        cwd=book,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "no-such-answers.yml" in proc.stderr
    assert "not found" in proc.stderr
    assert_no_run(state)
    assert not (book / "steps.log").exists()


def test_set_of_an_undeclared_parameter(book: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    proc = runbook("run", "when.md", "--set", "undeclared=1", "--state-dir", state, cwd=book)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "undeclared" in proc.stderr and "--set" in proc.stderr
    assert_no_run(state)


def test_set_with_a_badly_typed_value(book: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    proc = runbook("run", "when.md", "--set", "do_verify=perhaps", "--state-dir", state, cwd=book)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "do_verify" in proc.stderr
    assert_no_run(state)


def test_resume_of_an_unknown_run(book: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    proc = runbook("resume", "no-such-run", "--state-dir", state, cwd=book)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "no-such-run" in proc.stderr
    assert_no_run(state)


def test_resume_of_an_unknown_run_leaves_no_state_dir(book: Path, tmp_path: Path) -> None:
    """A mistyped --state-dir must not be created (with an empty database) by a failed resume."""
    state = tmp_path / "typo-state"
    proc = runbook("resume", "no-such-run", "--state-dir", state, cwd=book)
    assert proc.returncode == 2
    assert not state.exists(), sorted(p.name for p in state.iterdir())


def test_confirm_of_an_unknown_run_or_step(book: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    proc = runbook("confirm", "no-such-run", "by-hand", "--as", "X", "--state-dir", state, cwd=book)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "no-such-run" in proc.stderr
    assert (
        runbook(
            "run",
            "gate.md",
            "--env",
            "env-manual.yml",
            "--state-dir",
            state,
            "--run-id",
            "r1",
            "--no-input",
            cwd=book,
        ).returncode
        == 3
    )
    proc = runbook("confirm", "r1", "no-such-step", "--as", "X", "--state-dir", state, cwd=book)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "no-such-step" in proc.stderr
    proc = runbook(
        "confirm", "r1", "by-hand", "--as", "X", "--skip", "--state-dir", state, cwd=book
    )
    assert proc.returncode == 2 and "--note" in proc.stderr


def test_resume_with_answers_naming_an_unknown_step(book: Path, tmp_path: Path) -> None:
    """The answers file given to resume is checked like the one given to run."""
    state = tmp_path / "state"
    assert (
        runbook(
            "run",
            "gate.md",
            "--env",
            "env-manual.yml",
            "--state-dir",
            state,
            "--run-id",
            "r1",
            "--no-input",
            cwd=book,
        ).returncode
        == 3
    )
    proc = runbook(
        "resume", "r1", "--answers", "answers-unknown-step.yml", "--state-dir", state, cwd=book
    )
    assert "Traceback" not in proc.stderr
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "answers-unknown-step.yml:4" in proc.stderr


def test_duplicate_run_id_is_refused_and_the_first_run_kept(book: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = runbook("run", "retry.md", "--state-dir", state, "--run-id", "same", cwd=book)
    assert first.returncode == 0, first.stderr
    (book / "counter").unlink()
    second = runbook("run", "retry.md", "--state-dir", state, "--run-id", "same", cwd=book)
    assert second.returncode == 2
    assert "Traceback" not in second.stderr and "same" in second.stderr
    assert not (book / "counter").exists()  # nothing ran
    store = CheckpointStore(state)
    assert [r.status for r in store.list_runs()] == ["succeeded"]
    store.close()


def test_missing_runbook_file(book: Path, tmp_path: Path) -> None:
    proc = runbook("run", "no-such-book.md", "--state-dir", tmp_path / "state", cwd=book)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "no-such-book.md" in proc.stderr


def test_help_works(book: Path) -> None:
    proc = runbook("--help", cwd=book)
    assert proc.returncode == 0
    for command in ("run", "resume", "confirm", "status", "runs", "plan", "evidence"):
        assert command in proc.stdout


# -- plan ---------------------------------------------------------------------------------------
def test_plan_json_with_manual_host(
    book: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(book)
    code, out, err = in_process(capsys, "plan", "gate.md", "--env", "env-manual.yml", "--json")
    assert code == 0, err
    plan = json.loads(out)
    assert plan["environment"] == "by-hand"
    steps = {s["id"]: s for s in plan["steps"]}
    assert list(steps) == ["first", "by-hand", "on-web", "last"]
    assert steps["on-web"]["hosts"] == [
        {
            "name": "WEB1",
            "address": "web1.example.com",
            "transport": "manual",
            "action": "gate-by-hand",
        }
    ]
    assert steps["on-web"]["command"] == "systemctl restart web\n"
    assert [h["action"] for h in steps["by-hand"]["hosts"]] == ["gate"]
    assert [h["action"] for h in steps["first"]["hosts"]] == ["run"]
    assert [h["transport"] for h in steps["first"]["hosts"]] == ["local"]
    assert steps["last"]["phase"] == "verify"
    assert plan["gates"] == 2
    assert not (book / "steps.log").exists()  # a plan runs nothing


def test_plan_json_shows_check_and_backout(
    book: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(book)
    code, out, _ = in_process(capsys, "plan", "backout.md", "--json")
    assert code == 0
    steps = {s["id"]: s for s in json.loads(out)["steps"]}
    assert "undo" not in steps  # helpers are not in the flow
    assert steps["change"]["backout"]["id"] == "undo"
    code, out, _ = in_process(capsys, "plan", "interrupt-check.md", "--json")
    steps = {s["id"]: s for s in json.loads(out)["steps"]}
    assert steps["slow"]["check"] == {
        "id": "slow-check",
        "kind": "sh",
        "command": "test -e marker\n",
    }


def test_plan_without_env_shows_roles_not_hosts(
    book: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(book)
    code, out, err = in_process(capsys, "plan", "gate.md", "--json")
    assert code == 0, err
    plan = json.loads(out)
    assert plan["environment"] is None
    on_web = next(s for s in plan["steps"] if s["id"] == "on-web")
    assert len(on_web["hosts"]) == 1
    assert on_web["hosts"][0]["role"] == "web"
    assert on_web["hosts"][0]["name"] is None
    assert "WEB1" not in out

    code, text, err = in_process(capsys, "plan", "gate.md")
    assert code == 0, err
    assert "role web" in text
    assert "WEB1" not in text and "web1.example.com" not in text


def test_plan_with_env_text_names_the_host(
    book: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(book)
    code, text, err = in_process(capsys, "plan", "gate.md", "--env", "env-manual.yml")
    assert code == 0, err
    assert "WEB1" in text and "run by hand" in text


# -- status, runs, evidence ------------------------------------------------------------------
def test_status_and_runs_json(
    book: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    code, out, _ = in_process(capsys, "runs", "--state-dir", state, "--json")
    assert code == 0 and json.loads(out) == []
    code, _, err = in_process(capsys, "status", "--state-dir", state, "--json")
    assert code == 2 and "no runs" in err

    run = runbook(
        "run",
        "gate.md",
        "--env",
        "env-manual.yml",
        "--state-dir",
        state,
        "--run-id",
        "r1",
        "--no-input",
        "--json",
        cwd=book,
    )
    assert run.returncode == 3
    assert json.loads(run.stdout)["status"] == "paused"
    done = runbook("run", "retry.md", "--state-dir", state, "--run-id", "r2", "--json", cwd=book)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["run_id"] == "r2" and result["status"] == "succeeded"
    assert Path(result["journal"]).exists()

    code, out, _ = in_process(capsys, "runs", "--state-dir", state, "--json")
    assert code == 0
    runs = {r["run_id"]: r for r in json.loads(out)}
    assert runs["r1"]["status"] == "paused" and runs["r2"]["status"] == "succeeded"
    assert runs["r1"]["operator"] == "Olga Operator"

    code, out, _ = in_process(capsys, "status", "r1", "--state-dir", state, "--json")
    assert code == 0
    status = json.loads(out)
    assert status["run_id"] == "r1" and status["status"] == "paused"
    assert [(s["step_id"], s["status"]) for s in status["steps"]] == [
        ("first", "succeeded"),
        ("by-hand", "awaiting"),
        ("on-web", "pending"),
        ("last", "pending"),
    ]
    assert Path(status["journal"]).exists()


def test_evidence_verify_exit_statuses(book: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    assert (
        runbook("run", "retry.md", "--state-dir", state, "--run-id", "r1", cwd=book).returncode == 0
    )
    journal = state / "runs" / "r1" / "journal.jsonl"
    ok = runbook("evidence", "verify", journal, cwd=book)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    lines = journal.read_bytes().splitlines(keepends=True)
    journal.write_bytes(b"".join(lines[:-1]))  # the last record cut off
    cut = runbook("evidence", "verify", journal.parent, cwd=book)
    assert cut.returncode == 1
    assert "Traceback" not in cut.stderr


def test_verify_with_a_private_key_as_public_key_is_bad_input(tmp_path: Path) -> None:
    # Found by a new user: the private key given as --public-key was blamed on the journal.
    keys = tmp_path / "k"
    made = subprocess.run(
        [sys.executable, "-m", "runbook_engine", "keys", "init", "-o", str(keys)],
        capture_output=True,
        text=True,
    )
    assert made.returncode == 0, made.stderr
    journal = tmp_path / "journal.jsonl"
    journal.write_text("")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "runbook_engine",
            "evidence",
            "verify",
            str(journal),
            "--public-key",
            str(keys / "signing.key"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "not the private key" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_import_formats_listed_by_the_cli_are_the_registered_importers() -> None:
    """``runbook import --from`` lists the importers without importing them at start-up."""
    from runbook_engine.cli.adopt import FORMATS
    from runbook_engine.source.importers import IMPORTERS

    assert tuple(IMPORTERS) == FORMATS


def test_keys_init_names_the_key_for_runbook_signing_key_by_its_absolute_path(
    tmp_path: Path,
) -> None:
    """Found by a new user: `keys init -o team-keys` suggested a relative path, which a
    worker started in another folder does not find."""
    made = runbook("keys", "init", "-o", "team-keys", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    wanted = tmp_path.resolve() / "team-keys" / "signing.key"
    assert f"RUNBOOK_SIGNING_KEY={wanted}\n" in made.stdout, made.stdout


def test_an_unknown_run_id_says_where_else_runs_may_be(book: Path, tmp_path: Path) -> None:
    """Found by a new user in team mode: the hint named only other state directories."""
    state = tmp_path / "state"
    assert (
        runbook("run", "retry.md", "--state-dir", state, "--run-id", "r1", cwd=book).returncode == 0
    )
    proc = runbook("status", "chg-42", "--state-dir", state, cwd=book)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "no run 'chg-42'" in proc.stderr and "RUNBOOK_STATE_DIR" in proc.stderr
    assert "--store or RUNBOOK_STORE" in proc.stderr, proc.stderr
