"""Claims match what happened: every result says how it is known, the outcome says whether
the verification was observed, gates take decisions only while the run waits, and the
change record lists people once with what they did (the real CLI in a subprocess)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_cli import runbook

VERIFY_BY_COMMAND = """\
---
id: truth
title: Truth
roles:
  box: where it runs
---
# Truth

```sh {#change target=box}
echo change
```

```sh {#look .verify target=box}
echo verified
```
"""

VERIFY_BY_HAND = """\
---
id: truth-hand
title: Truth by hand
---
# Truth by hand

```sh {#change}
echo change
```

```manual {#look .verify}
Look at the dashboard.
```
"""

LOCAL_ENV = """\
name: here
roles:
  box:
    - {name: box1, address: localhost, transport: local}
"""

MANUAL_ENV = """\
name: by-hand
roles:
  box:
    - {name: box1, address: box1.example.org, transport: manual}
"""


def _book(tmp_path: Path, text: str, env: str | None = None) -> tuple[Path, Path | None]:
    path = tmp_path / "rb.md"
    path.write_text(text, encoding="utf-8")
    env_path = None
    if env is not None:
        env_path = tmp_path / "env.yaml"
        env_path.write_text(env, encoding="utf-8")
    return path, env_path


def _record(tmp_path: Path, run_id: str) -> dict:
    proc = runbook("evidence", "export", run_id, "--to", "json", "--state-dir", tmp_path / "st", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_observed_verification_is_plain_succeeded(tmp_path: Path) -> None:
    rb, env = _book(tmp_path, VERIFY_BY_COMMAND, LOCAL_ENV)
    proc = runbook(
        "run",
        rb,
        "--env",
        env,
        "--state-dir",
        tmp_path / "st",
        "--run-id",
        "r1",
        "--json",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["outcome"] == "succeeded"
    assert out["known"] == {"observed": 2}
    record = _record(tmp_path, "r1")
    assert record["summary"]["outcome"]["status"] == "succeeded"
    assert record["summary"]["outcome"]["succeeded"] is True
    assert record["summary"]["verification"]["known"] == {"observed": 1}
    assert {s["id"]: s["known"] for s in record["steps"]} == {
        "change": "observed",
        "look": "observed",
    }


def test_pre_answered_verification_is_not_plain_succeeded(tmp_path: Path) -> None:
    rb, _ = _book(tmp_path, VERIFY_BY_HAND)
    answers = tmp_path / "answers.yaml"
    answers.write_text("operator: Jane\nanswers:\n  look: {decision: confirm}\n", encoding="utf-8")
    proc = runbook(
        "run",
        rb,
        "--answers",
        answers,
        "--state-dir",
        tmp_path / "st",
        "--run-id",
        "r1",
        "--no-input",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "succeeded-pre-answered" in proc.stdout
    assert "1 pre-answered" in proc.stdout
    record = _record(tmp_path, "r1")
    assert record["summary"]["outcome"]["status"] == "succeeded-pre-answered"
    assert record["summary"]["outcome"]["succeeded"] is False
    look = next(s for s in record["steps"] if s["id"] == "look")
    assert look["known"] == "pre-answered"


def test_verification_confirmed_while_waiting_is_attested(tmp_path: Path) -> None:
    rb, _ = _book(tmp_path, VERIFY_BY_HAND)
    st = tmp_path / "st"
    early = runbook("run", rb, "--state-dir", st, "--run-id", "r1", "--no-input", cwd=tmp_path)
    assert early.returncode == 3, early.stderr  # paused at the manual verification
    done = runbook("confirm", "r1", "look", "--as", "Ann", "--state-dir", st, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    resumed = runbook("resume", "r1", "--state-dir", st, "--no-input", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "succeeded-attested" in resumed.stdout
    record = _record(tmp_path, "r1")
    assert record["summary"]["outcome"]["status"] == "succeeded-attested"
    gate = next(s for s in record["steps"] if s["id"] == "look")
    assert (gate["source"], gate["by"], gate["known"]) == ("cli", "Ann", "attested")
    people = {p["name"]: p for p in record["summary"]["people"]}
    assert "confirmed steps" in people["Ann"]["roles"] and people["Ann"]["steps"] == ["look"]
    assert people["Ann"]["identity"]["authenticated"] is False
    assert people["Ann"]["identity"]["given_by"] == ["confirm"]
    assert [p["name"] for p in record["summary"]["people"]].count("Olga Operator") == 1


BEFORE_AND_AFTER = """\
---
id: ahead
title: Ahead
---
# Ahead

```manual {#first}
Do the first thing.
```

```manual {#second .verify}
Check the second thing.
```
"""


def test_confirm_refuses_a_step_not_reached_unless_in_advance(tmp_path: Path) -> None:
    rb, _ = _book(tmp_path, BEFORE_AND_AFTER)
    st = tmp_path / "st"
    assert (
        runbook(
            "run", rb, "--state-dir", st, "--run-id", "r1", "--no-input", cwd=tmp_path
        ).returncode
        == 3
    )
    refused = runbook("confirm", "r1", "second", "--as", "Ann", "--state-dir", st, cwd=tmp_path)
    assert refused.returncode == 2
    assert "has not been reached" in refused.stderr and "--in-advance" in refused.stderr
    assert "Traceback" not in refused.stderr
    ok = runbook("confirm", "r1", "first", "--as", "Ann", "--state-dir", st, cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    ahead = runbook(
        "confirm", "r1", "second", "--as", "Ann", "--in-advance", "--state-dir", st, cwd=tmp_path
    )
    assert ahead.returncode == 0, ahead.stderr
    resumed = runbook("resume", "r1", "--state-dir", st, "--no-input", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    record = _record(tmp_path, "r1")
    second = next(s for s in record["steps"] if s["id"] == "second")
    assert second["source"] == "cli-in-advance"
    journal = [
        json.loads(line) for line in (st / "runs" / "r1" / "journal.jsonl").read_text().splitlines()
    ]
    passed = next(r for r in journal if r["event"] == "gate-passed" and r["step"] == "second")
    recorded = next(
        r for r in journal if r["event"] == "gate-decision-recorded" and r["step"] == "second"
    )
    assert passed["decided_at"] <= recorded["time"] < passed["time"]
    assert record["summary"]["outcome"]["status"] == "succeeded-pre-answered"


def test_command_on_a_manual_host_is_shown_not_run(tmp_path: Path) -> None:
    rb, env = _book(tmp_path, VERIFY_BY_COMMAND, MANUAL_ENV)
    answers = tmp_path / "answers.yaml"
    answers.write_text(
        "operator: Jane\nanswers:\n  change: {decision: confirm}\n  look: {decision: confirm}\n",
        encoding="utf-8",
    )
    proc = runbook(
        "run",
        rb,
        "--env",
        env,
        "--answers",
        answers,
        "--state-dir",
        tmp_path / "st",
        "--run-id",
        "r1",
        "--no-input",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    record = _record(tmp_path, "r1")
    change = next(s for s in record["steps"] if s["id"] == "change")
    (command,) = [c for c in record["appendix"]["commands"] if c["ref"] == change["command_ref"]]
    assert command["shown_to_person"] is True and command["text"] == "echo change\n"
    assert command["used_by"] == [f"change@{change['host']}"]
    md = runbook("evidence", "export", "r1", "--to", "md", "--state-dir", tmp_path / "st", cwd=tmp_path)
    assert "shown to a person" in md.stdout and "echo change" in md.stdout


def test_record_shows_the_runbook_hash_as_run_after_an_accepted_change(tmp_path: Path) -> None:
    rb, _ = _book(tmp_path, BEFORE_AND_AFTER)
    st = tmp_path / "st"
    assert (
        runbook(
            "run", rb, "--state-dir", st, "--run-id", "r1", "--no-input", cwd=tmp_path
        ).returncode
        == 3
    )
    before = _record(tmp_path, "r1")["summary"]["runbook"]["sha256"]
    rb.write_text(BEFORE_AND_AFTER.replace("Check the second", "Check again the second"))
    runbook("confirm", "r1", "first", "--as", "Ann", "--state-dir", st, cwd=tmp_path)
    resumed = runbook(
        "resume", "r1", "--accept-changed", "--state-dir", st, "--no-input", cwd=tmp_path
    )
    assert resumed.returncode == 3, resumed.stderr
    after = _record(tmp_path, "r1")["summary"]["runbook"]
    assert after["sha256_at_start"] == before
    assert after["sha256"] != before and len(after["sha256"]) == 64
    assert after["accepted_changes"][0]["old_sha256"] == before


@pytest.mark.parametrize("note", [None, "value found before: ncacn_http:6004"])
def test_declarative_step_by_hand_without_the_value_found_before_is_a_deviation(
    tmp_path: Path, note: str | None
) -> None:
    rb, env = _book(
        tmp_path,
        """\
---
id: reg
title: Registry by hand
roles:
  box: a Windows server
---
# Registry by hand

```registry {#nspi target=box}
key: HKLM\\SYSTEM\\CurrentControlSet\\Services\\NTDS\\Parameters
value: NSPI interface protocol sequences
type: REG_MULTI_SZ
data: [ncacn_http:6004]
```
""",
        MANUAL_ENV,
    )
    st = tmp_path / "st"
    assert (
        runbook(
            "run", rb, "--env", env, "--state-dir", st, "--run-id", "r1", "--no-input", cwd=tmp_path
        ).returncode
        == 3
    )
    extra = ["--note", note] if note else []
    assert (
        runbook(
            "confirm", "r1", "nspi", "--as", "Ann", *extra, "--state-dir", st, cwd=tmp_path
        ).returncode
        == 0
    )
    assert runbook("resume", "r1", "--state-dir", st, "--no-input", cwd=tmp_path).returncode == 0
    kinds = [d["kind"] for d in _record(tmp_path, "r1")["summary"]["deviations"]]
    assert ("no-previous-value" in kinds) == (note is None)


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("env.yaml", LOCAL_ENV, "is YAML, not a runbook"),
        ("x.ipynb", '{"cells": [], "nbformat": 4}', "is a notebook"),
        ("empty.md", "", "no steps to run"),
        ("prose.md", "# Only prose\n\n```sh\necho illustration, no id\n```\n", "no steps to run"),
    ],
)
def test_no_false_success_for_what_is_not_a_runbook(
    tmp_path: Path, name: str, text: str, expected: str
) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    st = tmp_path / "st"
    proc = runbook("run", path, "--state-dir", st, "--no-input", cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert expected in proc.stderr and "Traceback" not in proc.stderr
    assert not (st / "runs").exists()


def test_lint_with_nothing_to_check_is_bad_input(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "_fragment.md").write_text("# a fragment\n")
    proc = runbook("lint", tmp_path / "empty", cwd=tmp_path)
    assert proc.returncode == 2
    assert "no runbooks under" in proc.stderr and "0 errors" not in proc.stderr


@pytest.mark.parametrize(("suffix", "magic"), [(".md", b"# Truth"), (".html", b"<!DOCTYPE html>")])
def test_guide_is_written_in_the_format_its_name_says(
    tmp_path: Path, suffix: str, magic: bytes
) -> None:
    rb, env = _book(tmp_path, VERIFY_BY_COMMAND, LOCAL_ENV)
    guide = tmp_path / f"guide{suffix}"
    proc = runbook(
        "run", rb, "--env", env, "--state-dir", tmp_path / "st", "--guide", guide, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert guide.read_bytes().lstrip().startswith(magic)


def test_guide_with_an_unknown_suffix_is_refused_before_the_run(tmp_path: Path) -> None:
    rb, env = _book(tmp_path, VERIFY_BY_COMMAND, LOCAL_ENV)
    st = tmp_path / "st"
    proc = runbook(
        "run", rb, "--env", env, "--state-dir", st, "--guide", tmp_path / "g.docx", cwd=tmp_path
    )
    assert proc.returncode == 2
    assert "--guide" in proc.stderr and ".pdf" in proc.stderr
    assert not (st / "runs").exists() and not (tmp_path / "g.docx").exists()


def test_guide_named_pdf_is_a_pdf(tmp_path: Path) -> None:
    pytest.importorskip("weasyprint")
    rb, env = _book(tmp_path, VERIFY_BY_COMMAND, LOCAL_ENV)
    guide = tmp_path / "guide.pdf"
    proc = runbook(
        "run", rb, "--env", env, "--state-dir", tmp_path / "st", "--guide", guide, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert guide.read_bytes().startswith(b"%PDF-")


CHECKED = """\
---
id: checked
title: Checked
---
# Checked

```sh {#not-yet}
false
```

```sh {#change check=not-yet}
echo change
```
"""


def test_every_deleted_output_is_reported_even_beside_another_of_its_step(tmp_path: Path) -> None:
    rb, _ = _book(tmp_path, CHECKED)
    st = tmp_path / "st"
    proc = runbook("run", rb, "--state-dir", st, "--run-id", "r1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    outputs = sorted(p.name for p in (st / "runs" / "r1" / "output").iterdir())
    assert any(".check-" in n for n in outputs) and any(".step-" in n for n in outputs)
    assert runbook("evidence", "verify", st / "runs" / "r1", cwd=tmp_path).returncode == 0
    step_output = next(n for n in outputs if n.startswith("change.step-"))
    (st / "runs" / "r1" / "output" / step_output).unlink()
    proc = runbook("evidence", "verify", st / "runs" / "r1", cwd=tmp_path)
    assert proc.returncode == 1
    assert f"output/{step_output}" in proc.stdout and "missing" in proc.stdout
