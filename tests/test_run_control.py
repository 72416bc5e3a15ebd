"""Issue 16 parts 2-4 on the local transport: part of a runbook (``--only``, ``--from``,
``--to``, ``--limit``, ``--tags``, ``--skip-tags``), check mode (``--check``) and preflight.

Runs go through the real CLI in-process (``runbook_engine.cli.main``) with real shell
steps that leave files behind, so "ran" and "did not run" are seen on disk, and through
the journal and change record the run leaves.  Tests of runs, resume and check mode run on
both stores (``@both_stores``: the state folder and PostgreSQL, where the journal is read
from :func:`stores.run_folder`, a copy rebuilt from the database); preflight and summary
wording on the state folder only.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from stores import both_stores, on_pg, run_folder  # type: ignore[import-not-found]

from runbook_engine.cli import main
from runbook_engine.evidence.export import record_of
from runbook_engine.evidence.journal import read_journal

BOOK = """---
id: ctl
roles:
  web: web servers
---
# Control

```sh {#pre .precheck}
echo checked > pre.txt
```

```sh {#one check=one-check}
echo one > one.txt
```

```sh {#one-check}
test -f one.txt
```

```sh {#two target=web}
echo two > "two-$RUNBOOK_HOST.txt"
```

```sh {#look readonly=true}
echo look > look.txt
```

```sh {#ver .verify}
test -f one.txt
```
"""

ENV = """name: t
roles:
  web:
    - {name: WEB1, address: web1.example.test, transport: local}
    - {name: WEB2, address: web2.example.test, transport: local}
"""

#: An in-process command that leaves a store's connection pool open shows as this warning.
pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")


def run_cli(capsys: pytest.CaptureFixture[str], *args: Any) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    out = capsys.readouterr()
    code = exc.value.code
    return (code if isinstance(code, int) else (0 if code is None else 1)), out.out, out.err


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "ctl.md").write_text(BOOK, "utf-8")
    (tmp_path / "env.yaml").write_text(ENV, "utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RUNBOOK_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("RUNBOOK_SIGNING_KEY", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return tmp_path


def run(
    capsys: pytest.CaptureFixture[str], ws: Path, *extra: str
) -> tuple[int, dict[str, Any], str]:
    code, out, err = run_cli(
        capsys, "run", ws / "ctl.md", "--env", ws / "env.yaml", "--no-input", "--json", *extra
    )
    return code, (json.loads(out) if out.strip().startswith("{") else {}), err


def folder(result: dict[str, Any]) -> Path:
    """The folder of the run ``result`` names (on PostgreSQL: rebuilt from the database)."""
    return run_folder(Path(os.environ["RUNBOOK_STATE_DIR"]), result["run_id"])


def events(result: dict[str, Any], name: str) -> list[dict[str, Any]]:
    journal = folder(result) / "journal.jsonl"
    return [r for r in read_journal(journal, verify=False) if r["event"] == name]


@both_stores
def test_only_runs_the_named_steps_and_ends_partial(
    capsys: pytest.CaptureFixture[str], ws: Path
) -> None:
    code, result, _ = run(capsys, ws, "--only", "one", "--only", "look")
    assert code == 0
    assert (ws / "one.txt").exists() and (ws / "look.txt").exists()
    assert not (ws / "pre.txt").exists() and not list(ws.glob("two-*"))
    assert result["status"] == "unverified" and result["outcome"] == "partial"
    excluded = {(e["step"], e["host"]): e["reason"] for e in events(result, "step-excluded")}
    assert excluded == {
        ("pre", "operator"): "not in --only one,look",
        ("two", "WEB1"): "not in --only one,look",
        ("two", "WEB2"): "not in --only one,look",
        ("ver", "operator"): "not in --only one,look",
    }
    started = events(result, "run-started")[0]
    assert started["selection"]["only"] == ["one", "look"] and started["mode"] == "run"
    record, _ = record_of(folder(result))
    assert record["summary"]["outcome"]["status"] == "partial"
    deviations = [d for d in record["summary"]["deviations"] if d["kind"] == "excluded"]
    assert {(d["step"], d["host"]) for d in deviations} == set(excluded)
    assert [r["status"] for r in record["steps"] if r["phase"] == "verify"] == ["excluded"]


@both_stores
def test_from_to_limit_and_tags(capsys: pytest.CaptureFixture[str], ws: Path) -> None:
    code, result, _ = run(capsys, ws, "--from", "one", "--to", "look", "--limit", "w*2")
    assert code == 0 and result["outcome"] == "partial"
    assert (ws / "two-WEB2.txt").exists() and not (ws / "two-WEB1.txt").exists()
    assert not (ws / "pre.txt").exists()
    reasons = {(e["step"], e["host"]): e["reason"] for e in events(result, "step-excluded")}
    assert reasons[("pre", "operator")] == "before --from one"
    assert reasons[("ver", "operator")] == "after --to look"
    assert reasons[("two", "WEB1")] == "host WEB1 not in --limit w*2"
    code, result, _ = run(capsys, ws, "--tags", "precheck,verify", "--limit", "web")
    assert code == 0
    ran = {e["step"] for e in events(result, "step-finished")}
    assert ran == {"pre", "ver"}  # --limit by role name keeps web; --tags drops the rest


def test_selection_covering_everything_is_an_ordinary_run(
    capsys: pytest.CaptureFixture[str], ws: Path
) -> None:
    code, result, _ = run(capsys, ws, "--limit", "WEB*")
    assert code == 0 and result["outcome"] == "succeeded"
    assert events(result, "step-excluded") == []


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--only", "tow"], "--only tow: no step 'tow' in this runbook; did you mean two?"),
        (["--from", "one-check"], "is a check= or backout= helper"),
        (["--from", "ver", "--to", "pre"], "comes after --to pre"),
        (["--tags", "verfy"], "did you mean verify?"),
        (
            ["--limit", "db*"],
            "--limit db*: matches no host or role of this run (hosts: WEB1, WEB2)",
        ),
        (["--tags", "registry"], "leaves no step to run"),
    ],
)
@both_stores
def test_bad_selection_is_refused_before_anything_is_written(
    capsys: pytest.CaptureFixture[str], ws: Path, args: list[str], needle: str
) -> None:
    code, _, err = run(capsys, ws, *args)
    assert code == 2
    assert needle in err
    assert "Traceback" not in err
    if on_pg():
        code, out, _ = run_cli(capsys, "runs", "--json")
        assert code == 0 and json.loads(out) == []
    else:
        assert not (ws / "state" / "runs").exists() or not list((ws / "state" / "runs").iterdir())


@both_stores
def test_resume_keeps_the_selection(capsys: pytest.CaptureFixture[str], ws: Path) -> None:
    book = ws / "ctl.md"
    book.write_text(
        BOOK.replace(
            "```sh {#look readonly=true}",
            "```manual {#gate}\nConfirm.\n```\n\n```sh {#look readonly=true}",
        ),
        "utf-8",
    )
    code, result, _ = run(capsys, ws, "--from", "gate", "--to", "look")
    assert code == 3
    code, out, _ = run_cli(capsys, "runs", "--json")
    run_id = json.loads(out)[0]["run_id"]
    code, _, _ = run_cli(capsys, "confirm", run_id, "gate", "--as", "Ann")
    assert code == 0
    code, out, _ = run_cli(capsys, "resume", run_id, "--no-input", "--json")
    assert code == 0
    result = json.loads(out)
    assert result["outcome"] == "partial"
    assert (ws / "look.txt").exists() and not (ws / "one.txt").exists()
    assert not list(ws.glob("two-*"))


@both_stores
def test_check_mode_changes_nothing_and_reports_verdicts(
    capsys: pytest.CaptureFixture[str], ws: Path
) -> None:
    code, result, _ = run(capsys, ws, "--check")
    assert code == 1  # the verification read and failed (ansible-playbook --check fails too)
    assert result["status"] == "checked" and result["outcome"] == "checked"
    assert not (ws / "one.txt").exists() and not list(ws.glob("two-*"))
    assert (ws / "pre.txt").exists() and (ws / "look.txt").exists()  # reads ran
    verdicts = {(e["step"], e["host"]): e["verdict"] for e in events(result, "step-checked")}
    assert verdicts == {
        ("pre", "operator"): "passed",
        ("one", "operator"): "would-change",
        ("two", "WEB1"): "unknown",
        ("two", "WEB2"): "unknown",
        ("look", "operator"): "passed",
        ("ver", "operator"): "failed",
    }
    assert result["checked"] == {"would-change": 1, "unknown": 2, "passed": 2, "failed": 1}
    assert events(result, "run-started")[0]["mode"] == "check"
    # once the change is in place, the check says so
    (ws / "one.txt").write_text("one\n", "utf-8")
    code, result, _ = run(capsys, ws, "--check")
    verdicts = {e["step"]: e["verdict"] for e in events(result, "step-checked")}
    assert verdicts["one"] == "already-done" and verdicts["ver"] == "passed"
    assert code == 0  # nothing that read failed
    record, _ = record_of(folder(result))
    assert any(d["kind"] == "check-mode" for d in record["summary"]["deviations"])
    assert record["summary"]["outcome"]["status"] == "checked"
    # a check run is finished: it cannot be resumed into a real run
    code, _, err = run_cli(capsys, "resume", result["run_id"], "--no-input")
    assert code == 2 and "is finished (checked)" in err


def test_check_run_summary_line_uses_the_check_verdict_words(
    capsys: pytest.CaptureFixture[str], ws: Path
) -> None:
    # The summary said "checked (2 skipped, 4 succeeded)" above "Check: 2 unknown, 2 passed".
    code, out, _ = run_cli(capsys, "run", ws / "ctl.md", "--env", ws / "env.yaml", "--no-input",
                           "--check")  # fmt: skip
    assert code == 1
    text = " ".join(out.split())  # the terminal may wrap the line
    assert ": checked (1 failed, 2 passed, 2 unknown, 1 would-change)" in text, out
    assert "Check: 1 would-change, 2 unknown, 2 passed, 1 failed" in text, out


@both_stores
def test_check_mode_never_asks_a_person(capsys: pytest.CaptureFixture[str], ws: Path) -> None:
    (ws / "ctl.md").write_text(
        BOOK.replace("```sh {#one check", "```manual {#by-hand}\nDo it.\n```\n\n```sh {#one check"),
        "utf-8",
    )
    code, result, _ = run(capsys, ws, "--check", "--only", "by-hand")
    assert code == 0
    [checked] = events(result, "step-checked")
    assert checked["verdict"] == "unknown" and "asks nobody" in checked["detail"]
    assert events(result, "gate-awaiting") == []


def test_preflight_local_lists_shells_secrets_and_probe_targets(
    capsys: pytest.CaptureFixture[str], ws: Path
) -> None:
    book = BOOK.replace(
        "id: ctl\n", "id: ctl\nparameters:\n  token: {type: string, secret: true}\n"
    )
    book += "\n```probe {#web-up .verify}\nkind: tcp\nhost: no-such-host.invalid\nport: 80\n```\n"
    book += "\n```sh {#uses-token}\necho {{ token }} >/dev/null\n```\n"
    (ws / "ctl.md").write_text(book, "utf-8")
    code, out, err = run_cli(capsys, "preflight", ws / "ctl.md", "--env", ws / "env.yaml", "--json")
    assert code == 2 and "nothing was started" in err
    report = json.loads(out)
    assert report["ok"] is False
    failed = {c["check"]: c for c in report["checks"] if c["ok"] is False}
    assert set(failed) == {"secrets", "probe target no-such-host.invalid"}
    assert "RUNBOOK_SECRET_TOKEN" in failed["secrets"]["detail"]
    assert failed["probe target no-such-host.invalid"]["fix"]
    hosts = {(c["host"], c["check"]) for c in report["checks"] if c["ok"]}
    assert {("operator", "shell sh"), ("WEB1", "shell sh"), ("WEB2", "shell sh")} <= hosts
    # run refuses before the run exists, naming the failures
    code, _, err = run_cli(capsys, "run", ws / "ctl.md", "--env", ws / "env.yaml", "--no-input")
    assert code == 2
    assert "preflight: - (-) secrets" in err and "no-such-host.invalid" in err
    assert not (ws / "state" / "runs").exists()
    assert not (ws / "pre.txt").exists()


def test_local_preflight_checks_what_readme_and_format_say(
    capsys: pytest.CaptureFixture[str], ws: Path
) -> None:
    # The README said local preflight checks "the programs on PATH": those of local sh/bash
    # bodies are not looked up (only ssh hosts do that); the documents now say so exactly.
    book = BOOK + "\n```sh {#odd}\nno-such-program-rbe --now\n```\n"
    (ws / "ctl.md").write_text(book, "utf-8")
    code, out, _ = run_cli(capsys, "preflight", ws / "ctl.md", "--env", ws / "env.yaml", "--json")
    assert code == 0, out
    checks = {c["check"] for c in json.loads(out)["checks"]}
    assert "shell sh" in checks
    assert not any("no-such-program-rbe" in c for c in checks)
    root = Path(__file__).resolve().parents[1]
    readme = " ".join((root / "README.md").read_text("utf-8").split())
    assert "the programs that local `sh`/`bash` bodies call are **not** checked" in readme
    fmt = " ".join((root / "runbooks" / "FORMAT.md").read_text("utf-8").split())
    assert "the programs `sh`/`bash` bodies call are not looked up on a local host" in fmt


def test_preflight_missing_interpreter_names_host_and_fix(
    capsys: pytest.CaptureFixture[str], ws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (ws / "ctl.md").write_text(BOOK.replace("```sh {#look", "```bash {#look"), "utf-8")
    bin_dir = ws / "bin"
    bin_dir.mkdir()
    (bin_dir / "sh").symlink_to("/bin/sh")
    monkeypatch.setenv("PATH", str(bin_dir))  # sh is there, bash is not
    code, out, _ = run_cli(capsys, "preflight", ws / "ctl.md", "--env", ws / "env.yaml")
    assert code == 2
    assert "FAIL operator (local) shell bash" in out and "fix: install the interpreter" in out


def test_run_journals_the_preflight_and_no_preflight_skips_it(
    capsys: pytest.CaptureFixture[str], ws: Path
) -> None:
    code, result, _ = run(capsys, ws, "--only", "pre")
    assert code == 0 and events(result, "run-started")[0]["preflight"]["ok"] is True
    code, result, _ = run(capsys, ws, "--only", "pre", "--no-preflight")
    assert code == 0 and events(result, "run-started")[0]["preflight"] is None


def test_a_run_resolves_its_values_and_secrets_once(
    capsys: pytest.CaptureFixture[str], ws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The preflight resolves the run's secrets and the run uses what it resolved: a
    secret from a keyring or a prompt is fetched once per ``runbook run``, not twice."""
    import runbook_engine.tailor.values as values

    book = BOOK.replace(
        "id: ctl\n", "id: ctl\nparameters:\n  token: {type: string, secret: true}\n"
    )
    book += "\n```sh {#uses-token}\necho {{ token }} >/dev/null\n```\n"
    (ws / "ctl.md").write_text(book, "utf-8")
    monkeypatch.setenv("RUNBOOK_SECRET_TOKEN", "tok-5f4e3d2c1b")
    fetched: list[str] = []
    fetch = values.fetch_secret

    def counted(ref: Any, *args: Any) -> str | None:
        fetched.append(ref.name)
        return fetch(ref, *args)

    monkeypatch.setattr(values, "fetch_secret", counted)
    code, out, err = run_cli(capsys, "run", ws / "ctl.md", "--env", ws / "env.yaml", "--no-input")
    assert code == 0, out + err
    assert "Preflight:" in out
    assert fetched == ["token"]
