"""The change record on paper (issue 13 parts 2 and 3): the README's run printed as a
portrait A4 record of at most 12 pages whose page 1 separates what the tool observed from
what people attested, one step table, details only where there is something, long code in
the appendix by its digest, a sign-off block, and the same section order in Markdown, HTML
and JSON.

Every run is the real ``runbook`` command in a subprocess; the PDF is printed by WeasyPrint
and read back with poppler's ``pdfinfo`` and ``pdftotext`` (the text as laid out).  The
records of runs with attestations, skips, retries and failures are made on both stores
(``@both_stores``: the state folder and PostgreSQL); the README run's paper layout on the
state folder only (its record is the same on both: tests/test_evidence.py's golden test).
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from stores import both_stores, run_folder  # type: ignore[import-not-found]
from test_cli import runbook

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "runbooks" / "exchange2003"
HEADINGS = {
    "Summary": "summary",
    "Steps": "steps",
    "Backout": "backout",
    "Details": "details",
    "Appendix": "appendix",
    "Review and sign-off": "sign_off",
}


def _export(state: Path, run_id: str, fmt: str, cwd: Path) -> str:
    proc = runbook("evidence", "export", run_id, "--to", fmt, "--state-dir", state, cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc.stdout


def _readme_first_command() -> list[str]:
    """The words after `runbook` of the README's first command (its first sh block)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```sh\n(.*?)```", readme, re.S).group(1)  # type: ignore[union-attr]
    words = shlex.split(block.strip().split("&&")[-1])
    assert Path(words[0]).name == "runbook", words
    return words[1:]


@pytest.fixture(scope="module")
def readme_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The README's first command as written (its state and guide in a temporary folder):
    the seed runbook in the article's lab, answered, with its change id and reason."""
    tmp = tmp_path_factory.mktemp("readme")
    words = _readme_first_command()
    for option, value in (("--state-dir", tmp / "state"), ("--guide", tmp / "guide.html")):
        words[words.index(option) + 1] = str(value)
    proc = runbook(*words, "--run-id", "r1", "--no-input", cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return tmp, json.loads(_export(tmp / "state", "r1", "json", tmp))


def _pdftext(pdf: Path, *pages: int) -> str:
    extra = ["-f", str(pages[0]), "-l", str(pages[-1])] if pages else []
    return subprocess.run(
        ["pdftotext", "-layout", *extra, str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout


@pytest.fixture(scope="module")
def readme_pdf(readme_run: tuple[Path, dict[str, Any]]) -> Path:
    pytest.importorskip("weasyprint")
    if shutil.which("pdftotext") is None or shutil.which("pdfinfo") is None:
        pytest.skip("poppler-utils (pdftotext, pdfinfo) not installed")
    tmp, _ = readme_run
    out = tmp / "record.pdf"
    proc = runbook(
        "evidence", "export", "r1", "--to", "pdf", "-o", out, "--state-dir", tmp / "state", cwd=tmp
    )
    assert proc.returncode == 0, proc.stderr
    return out


def test_readme_record_pdf_is_at_most_12_portrait_a4_pages(readme_pdf: Path) -> None:
    info = subprocess.run(
        ["pdfinfo", str(readme_pdf)], capture_output=True, text=True, check=True
    ).stdout
    pages = int(re.search(r"^Pages:\s+(\d+)", info, re.M).group(1))  # type: ignore[union-attr]
    width, height = map(float, re.search(r"Page size:\s+([\d.]+) x ([\d.]+)", info).groups())  # type: ignore[union-attr]
    assert 2 <= pages <= 12, pages
    assert (round(width), round(height)) == (595, 842), (width, height)  # A4, portrait


def test_page_one_separates_observed_from_attested(
    readme_run: tuple[Path, dict[str, Any]], readme_pdf: Path
) -> None:
    _, record = readme_run
    summary = record["summary"]
    counts = summary["outcome"]["counts"]
    assert (counts["observed"], counts["attested"]) == (2, 0)
    assert counts["pre-answered"] > 10 and counts["skipped"] > 0 and counts["failed"] == 0
    page1 = _pdftext(readme_pdf, 1)
    assert "Observed by the tool" in page1 and "Attested by people" in page1
    assert "Pre-answered by" in page1
    # One line of the page holds the counts in their columns: observed | attested |
    # pre-answered | skipped | failed | not reached.
    row = [
        counts["observed"],
        counts["attested"],
        counts["pre-answered"] + counts["notebook-parameter"],
        counts["skipped"],
        counts["failed"],
        counts["not-reached"],
    ]
    numbers = [
        [int(n) for n in line.split()]
        for line in page1.splitlines()
        if re.fullmatch(r"[\d\s]+", line)
    ]
    assert row in numbers, page1
    assert summary["outcome"]["status"] in page1  # succeeded-pre-answered, not "succeeded"
    assert "NOT SIGNED" in page1  # the evidence verdict of an unsigned run
    # The README's command gives the change id its answers file's notes name (CHG-1042).
    assert "CHG-1042" in page1 and "Outlook Anywhere for remote staff" in page1
    assert "no change id" not in page1 and "no reason was given" not in page1
    assert "claimed, not authenticated" in page1
    assert "Jane Operator" in page1 and "answers file" in page1
    for label in ("Runbook as run", "Environment", "Window", "Deviations", "Approvals"):
        assert label in page1, label
    assert summary["runbook"]["sha256"] in page1.replace("\n", "")
    # Who answered (the answers file's operator, in advance) is not who ran the tool, and
    # the page does not claim the file's operator confirmed anything while the run ran.
    assert summary["run_by"] and "Jane Operator" not in summary["run_by"]
    flat = " ".join(page1.split())
    assert "names Jane Operator as the person answering" in flat
    assert "nobody confirmed them while the run ran" in flat
    assert f"The tool was run by {summary['run_by'][0]}" in flat
    jane = next(p for p in summary["people"] if p["name"] == "Jane Operator")
    assert not any(role == "confirmed steps" for role in jane["roles"]), jane["roles"]
    assert any("in advance in the answers file" in role for role in jane["roles"])


def test_times_to_the_second_and_utc_said_once(
    readme_run: tuple[Path, dict[str, Any]], readme_pdf: Path
) -> None:
    tmp, _ = readme_run
    md = _export(tmp / "state", "r1", "md", tmp)
    for text in (_pdftext(readme_pdf), md):
        assert not re.search(r"\d\d:\d\d:\d\d[.,]\d", text), "a time with fractions of a second"
        assert not re.search(r"\d{4}-\d\d-\d\dT\d", text), "an ISO time as the journal writes it"
        assert len(re.findall(r"\bUTC\b", text)) == 1, re.findall(r".*\bUTC\b.*", text)


def test_phase_headings_once_in_runbook_order(
    readme_run: tuple[Path, dict[str, Any]], readme_pdf: Path
) -> None:
    # The go/no-go gates are pre-checks placed among the change steps: the table's
    # phase headings must not switch back and forth; the gates carry a tag instead.
    _, record = readme_run
    phases = [s["phase"] for s in record["steps"]]
    assert phases.index("change") < phases.index("precheck", phases.index("change"))  # the case
    steps = _section(_pdftext(readme_pdf), "Steps", "Backout")
    headings = re.findall(r"^(Pre-checks|Change|Verification)\s*$", steps, re.M)
    assert headings == ["Pre-checks", "Change", "Verification"]
    gates = record["summary"]["go_no_go"]
    assert {"gc-restart-go", "server-restart-go"} <= set(gates)
    assert len(re.findall(r"pre-check · go/no-go", steps)) == len(gates)


def test_appendix_holds_manual_instructions_and_points_to_parameters(
    readme_run: tuple[Path, dict[str, Any]], readme_pdf: Path
) -> None:
    _, record = readme_run
    commands = record["appendix"]["commands"]
    by_step = {u.split("@")[0]: c for c in commands for u in c["used_by"]}
    # Every manual step that was passed has its instructions, tailored, in the appendix.
    manual = [s for s in record["steps"] if s["kind"] == "manual" and s["status"] == "succeeded"]
    assert manual
    for step in manual:
        cmd = by_step[step["id"]]
        assert cmd["kind"] == "instructions" and step["command_ref"] == cmd["ref"], step["id"]
    assert "mail.externaldomain.com" in by_step["certificate-check"]["text"]  # tailored
    assert "{{" not in by_step["certificate-check"]["text"]
    appendix = _pdftext(readme_pdf).split("\nAppendix\n", 1)[1]
    assert "instructions shown to a person" in appendix
    assert "Issued to is exactly mail.externaldomain.com" in " ".join(appendix.split())
    # Code that reads run-form values says where they are.
    names = by_step["names-check"]["values"]
    assert {v["name"] for v in names} >= {"exchange_netbios", "dc_fqdn"}
    assert all(v["in_parameters"] for v in names)
    flat = " ".join(appendix.split())
    assert "are in appendix B, Parameters" in flat
    # A value that is not a parameter is printed where the code reads it.
    built = {v["name"]: v for v in by_step["validports-build"]["values"]}
    assert built["validports"]["in_parameters"] is False
    assert built["validports"]["value"].startswith("EXCHANGE1:6001-6002;")


def _section(text: str, start: str, end: str) -> str:
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines) if line.strip() == start)
    last = next(i for i, line in enumerate(lines) if i > first and line.strip() == end)
    return "\n".join(lines[first:last])


def test_every_step_and_host_is_one_row_of_one_table(
    readme_run: tuple[Path, dict[str, Any]], readme_pdf: Path
) -> None:
    _, record = readme_run
    keys = [(s["id"], s["host"]) for s in record["steps"]]
    assert len(keys) == len(set(keys)) == record["summary"]["outcome"]["counts"]["steps"]
    text = _pdftext(readme_pdf)
    steps = _section(text, "Steps", "Backout")
    details = _section(text, "Details", "Appendix")
    detailed = {d["step"] for d in record["details"]}
    for step_id, _host in keys:
        word = rf"(?<![\w./-]){re.escape(step_id)}(?![\w-]|\.\w)"  # not in output file names
        assert len(re.findall(word, steps)) == 1, step_id
        assert len(re.findall(word, details)) == (step_id in detailed), step_id
    assert len(re.findall(r"^\s*Steps\s*$", text, re.M)) == 1  # no second step table


def test_code_is_in_the_appendix_once_by_digest(
    readme_run: tuple[Path, dict[str, Any]], readme_pdf: Path
) -> None:
    _, record = readme_run
    text = _pdftext(readme_pdf)
    body, appendix = text.split("\nAppendix\n", 1) if "\nAppendix\n" in text else ("", "")
    assert appendix, "no appendix"
    flat = appendix.replace("\n", "")
    python = [
        c for c in record["appendix"]["commands"] if c["lines"] > 20 and c["kind"] == "command"
    ]
    assert python, "the seed runbook's python steps"
    for cmd in record["appendix"]["commands"]:
        assert cmd["sha256"] in flat, cmd["ref"]
    for cmd in python:
        first = cmd["text"].splitlines()[-1].strip()
        assert first not in body, f"{cmd['ref']} printed before the appendix"
        assert first in appendix
    # The step table refers to the appendix by reference.
    assert {s["command_ref"] for s in record["steps"] if s["command_ref"]} == {
        c["ref"] for c in record["appendix"]["commands"]
    }


def test_sign_off_block_ends_the_record(readme_pdf: Path) -> None:
    info = subprocess.run(["pdfinfo", str(readme_pdf)], capture_output=True, text=True).stdout
    pages = int(re.search(r"^Pages:\s+(\d+)", info, re.M).group(1))  # type: ignore[union-attr]
    last = _pdftext(readme_pdf, pages)
    assert "Review and sign-off" in last and "change manager" in last
    for field in ("Decision", "Remarks", "Name", "Date", "Signature"):
        assert re.search(rf"^\s*{field}\b", last, re.M), field


def test_markdown_html_and_json_have_the_same_sections_in_the_same_order(
    readme_run: tuple[Path, dict[str, Any]],
) -> None:
    tmp, record = readme_run
    order = record["sections"]
    assert order == ["summary", "steps", "backout", "details", "appendix", "sign_off"]
    assert [k for k in record if k in order] == order
    md = _export(tmp / "state", "r1", "md", tmp)
    html = _export(tmp / "state", "r1", "html", tmp)
    assert [HEADINGS[h] for h in re.findall(r"^## (.+)$", md, re.M)] == order
    assert [HEADINGS[h] for h in re.findall(r"<h2>(.+?)</h2>", html)] == order


RUNBOOK = """\
---
id: details
title: Details only where present
---
# Details

```sh {#quiet}
true
```

```sh {#flaky retries=1}
test -f flag || { touch flag; echo first try fails; exit 3; }
echo second try works
```

```manual {#attest}
Look at it and attach the photo.
```

```manual {#skipme}
Only when needed.
```

```sh {#long}
LONG
```
"""
LONG = "\n".join(f": line {n}" for n in range(1, 81))

FAILING = """\
---
id: failing
title: A failing run
---
# Failing

```sh {#ok}
true
```

```sh {#boom}
echo it broke
exit 2
```

```sh {#after}
true
```
"""


def _run(tmp: Path, text: str) -> Path:
    book = tmp / "rb.md"
    book.write_text(text, encoding="utf-8")
    state = tmp / "st"
    runbook("run", book, "--state-dir", state, "--run-id", "r1", "--no-input", cwd=tmp)
    return state


def _details(record: dict[str, Any]) -> dict[str, list[str]]:
    return {d["step"]: [i["kind"] for i in d["items"]] for d in record["details"]}


@both_stores
def test_details_only_where_there_is_something(tmp_path: Path) -> None:
    state = _run(tmp_path, RUNBOOK.replace("LONG", LONG))
    (tmp_path / "photo.txt").write_text("a photo\n")
    attested = runbook(
        "confirm", "r1", "attest", "--as", "Ann", "--note", "looked at it",
        "--attach", "photo.txt", "--state-dir", state, cwd=tmp_path,
    )  # fmt: skip
    assert attested.returncode == 0, attested.stderr
    assert runbook("resume", "r1", "--state-dir", state, "--no-input", cwd=tmp_path).returncode == 3
    skipped = runbook(
        "confirm", "r1", "skipme", "--as", "Ann", "--skip", "--reason", "not needed here",
        "--state-dir", state, cwd=tmp_path,
    )  # fmt: skip
    assert skipped.returncode == 0, skipped.stderr
    done = runbook("resume", "r1", "--state-dir", state, "--no-input", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    record = json.loads(_export(state, "r1", "json", tmp_path))
    details = _details(record)
    assert set(details) == {"flaky", "attest", "skipme"}  # quiet and long: nothing to add
    assert details["flaky"] == ["output", "retry"]
    assert sorted(details["attest"]) == ["attachment", "note"]
    assert details["skipme"] == ["reason"]
    flaky = next(s for s in record["steps"] if s["id"] == "flaky")
    assert (flaky["attempts"], flaky["status"], flaky["known"]) == (2, "succeeded", "observed")
    kinds = [d["kind"] for d in record["summary"]["deviations"]]
    assert "retry" in kinds and "skip" in kinds
    # The 80-line command is in the appendix by its digest and first lines only.
    long = next(s for s in record["steps"] if s["id"] == "long")
    (cmd,) = [c for c in record["appendix"]["commands"] if c["ref"] == long["command_ref"]]
    assert cmd["lines"] == 80 and not cmd["print_in_full"]
    md = _export(state, "r1", "md", tmp_path)
    html = _export(state, "r1", "html", tmp_path)
    for text in (md, html):
        assert cmd["sha256"] in text and re.search(r": line 12(?!\d)", text)
        assert not re.search(r": line 13(?!\d)", text)
        assert "looked at it" in text and "not needed here" in text and "photo.txt" in text
    section = md.split("\n## Details\n")[1].split("\n## Appendix\n")[0]
    assert "quiet" not in section and "long" not in section and "flaky" in section


@both_stores
def test_a_failed_run_details_the_failure_only(tmp_path: Path) -> None:
    state = _run(tmp_path, FAILING)
    record = json.loads(_export(state, "r1", "json", tmp_path))
    summary = record["summary"]
    assert summary["outcome"]["status"] == "failed"
    counts = summary["outcome"]["counts"]
    assert (counts["failed"], counts["not-reached"], counts["observed"]) == (1, 1, 2)
    assert _details(record) == {"boom": ["output"]}
    (item,) = record["details"][0]["items"]
    assert item["exit_code"] == 2 and "it broke" in item["excerpt"]
    assert [d["kind"] for d in summary["deviations"]] == ["failure"]
    md = _export(state, "r1", "md", tmp_path)
    assert "it broke" in md and "| failed |" in md


@both_stores
def test_the_record_says_how_the_operator_name_was_given(tmp_path: Path) -> None:
    # Paper review: "the journal does not say which" of --operator, RUNBOOK_OPERATOR or
    # the login name gave the operator's name; run-started now records it.
    book = tmp_path / "rb.md"
    book.write_text("# One\n\n```sh {#one}\necho one\n```\n", encoding="utf-8")
    state = tmp_path / "st"
    proc = runbook(
        "run", book, "--state-dir", state, "--run-id", "r1", "--no-input",
        "--operator", "Ann Ops", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    started = json.loads((run_folder(state, "r1") / "journal.jsonl").read_text().splitlines()[0])
    assert started["event"] == "run-started" and started["operator_source"] == "option"
    record = json.loads(_export(state, "r1", "json", tmp_path))
    ann = next(p for p in record["summary"]["people"] if p["name"] == "Ann Ops")
    assert "given with --operator" in ann["identity"]["text"]
    assert "does not say which" not in ann["identity"]["text"]


BACKED_OUT = """\
---
id: backed-out
title: A failing change with backouts
---
# Backed out

```sh {#pre .precheck}
echo ok
```

```sh {#first backout=undo-first}
echo changed > first.txt
```

```sh {#boom backout=undo-boom}
echo it broke
exit 2
```

```sh {#after backout=undo-after}
echo never
```

```manual {#look .verify}
Look at it.
```

## Backout

```sh {#undo-first}
rm -f first.txt
```

```sh {#undo-boom}
echo undoing boom > undone.txt
```

```sh {#undo-after}
true
```
"""


def _backed_out(tmp: Path, answers: str | None) -> tuple[Path, dict[str, Any]]:
    book = tmp / "rb.md"
    book.write_text(BACKED_OUT, encoding="utf-8")
    extra: list[Any] = []
    if answers is not None:
        (tmp / "answers.yaml").write_text(answers, encoding="utf-8")
        extra = ["--answers", tmp / "answers.yaml"]
    state = tmp / "st"
    proc = runbook(
        "run", book, "--state-dir", state, "--run-id", "r1", "--no-input", *extra, cwd=tmp
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr  # the run failed
    return state, json.loads(_export(state, "r1", "json", tmp))


def test_a_failed_run_says_on_page_one_what_failed_and_whether_backouts_ran(
    tmp_path: Path,
) -> None:
    state, record = _backed_out(tmp_path, None)
    (failure,) = record["summary"]["failures"]
    assert (failure["step"], failure["host"], failure["exit_code"]) == ("boom", "operator", 2)
    assert failure["see"] == "details"
    status = {s["id"]: s["status"] for s in record["steps"]}
    assert status == {
        "pre": "succeeded",
        "first": "succeeded",
        "boom": "failed",
        "after": "not reached",
        "look": "not reached",
    }
    backout = {b["step"]: b for b in record["backout"]}
    assert set(backout) == {"first", "boom"}  # steps that ran and have a backout
    assert backout["boom"]["status"] == "not decided" and backout["boom"]["command_ref"]
    assert backout["first"]["status"] == "not offered"
    assert not (tmp_path / "undone.txt").exists()
    md = _export(state, "r1", "md", tmp_path)
    html = _export(state, "r1", "html", tmp_path)
    for text in (md, html):
        assert "not-answered" not in text and "| pending |" not in text
        assert "did NOT run: offered when the step failed, but nobody decided" in text
        assert "not reached" in text
    page1 = md.split("\n## Steps\n")[0]
    assert "**Failed: step 3 boom on operator**, exit code 2" in page1
    # the counts overlap for a failure: said so, so that they need not add up
    assert "a failed result counts twice above: by how it is known, and as failed" in page1
    assert "in Details, step 3 on operator" in page1
    assert "backout of step 3 boom on operator: did not run: nobody decided" in page1
    assert "1 earlier step result that changed something was not undone" in page1
    if shutil.which("pdftotext") is not None:
        pytest.importorskip("weasyprint")
        out = tmp_path / "record.pdf"
        proc = runbook(
            "evidence", "export", "r1", "--to", "pdf", "-o", out, "--state-dir", state, cwd=tmp_path
        )
        assert proc.returncode == 0, proc.stderr
        first = " ".join(_pdftext(out, 1).split())
        assert "Failed: step 3 boom (Boom) on operator, exit code 2" in first
        assert "did not run: nobody decided" in first


def test_a_backout_agreed_in_the_answers_file_ran(tmp_path: Path) -> None:
    answers = "operator: Pat Plan\nanswers:\n  boom: {decision: confirm, backout: run}\n"
    state, record = _backed_out(tmp_path, answers)
    boom = next(b for b in record["backout"] if b["step"] == "boom")
    assert (boom["status"], boom["result"], boom["exit_code"]) == ("ran", "succeeded", 0)
    assert boom["decided"] == "in the answers file"
    assert (tmp_path / "undone.txt").read_text() == "undoing boom\n"
    md = _export(state, "r1", "md", tmp_path)
    assert "backout undo-boom ran: succeeded, exit code 0" in md
    assert "offered: agreed in the answers file, to run" in md
    # the backout's text was printed when offered, but the tool ran it: not "shown to a person"
    (cmd,) = [
        c for c in record["appendix"]["commands"] if "boom@operator (backout)" in c["used_by"]
    ]
    assert cmd["shown_to_person"] is False
    # the person who agreed to it in the answers file is named for it
    pat = next(p for p in record["summary"]["people"] if p["name"] == "Pat Plan")
    assert "agreed to run a backout in advance in the answers file" in pat["roles"]
    assert "boom" in pat["steps"]
    assert f"#### {cmd['ref']}: run by the tool" in md
    # the verification step was never reached: it did not pass; the outcome in words
    assert "Verification: 1 step, did NOT pass." in md and "step(s)" not in md
    assert record["summary"]["outcome"]["note"] == "a step failed and the run stopped there"


def test_a_run_without_verification_claims_no_pass(tmp_path: Path) -> None:
    state = _run(tmp_path, "# No checks\n\n```sh {#one}\ntrue\n```\n")
    md = _export(state, "r1", "md", tmp_path)
    assert "No verification step applied to this run." in md
    assert "all passed" not in md and "step(s)" not in md


APPROVED = """\
---
id: approved
title: An approved change
approval: required
---
# Approved

```approval {#cab title="Change board approval"}
required: 2
approvers: [board]
```

```sh {#change}
echo change
```

```sh {#check .verify}
true
```
"""


def test_approvals_say_who_may_approve_without_the_operator(tmp_path: Path) -> None:
    (tmp_path / "rb.md").write_text(APPROVED, encoding="utf-8")
    (tmp_path / "env.yml").write_text(
        "name: board-env\napprovers:\n  board: [Alice A, Bob B, Olga O]\n", encoding="utf-8"
    )
    state = tmp_path / "st"
    common = ["--state-dir", state]
    proc = runbook(
        "run", tmp_path / "rb.md", "--env", tmp_path / "env.yml", "--run-id", "r1",
        "--operator", "Olga O", "--no-input", *common, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 3, proc.stdout + proc.stderr  # waits for the approval
    for who in ("Alice A", "Bob B"):
        proc = runbook("approve", "r1", "cab", "--as", who, *common, cwd=tmp_path)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = runbook("resume", "r1", "--no-input", *common, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    record = json.loads(_export(state, "r1", "json", tmp_path))
    (cab,) = record["summary"]["approvals"]
    assert cab["approvers"] == ["Alice A", "Bob B"] and cab["operators"] == ["Olga O"]
    assert record["summary"]["outcome"]["note"] == (
        "the 1 verification step passed, observed by the tool"
    )
    md = _export(state, "r1", "md", tmp_path)
    assert "may approve: Alice A, Bob B, not Olga O: operated this run" in md
    assert "Verification: 1 step, passed (1 observed)." in md
    assert "Approval policy: required — the runbook needs an approval step before its changes" in md
    html = _export(state, "r1", "html", tmp_path)
    assert "not Olga O: operated this run" in html


def test_hosts_appendix_says_which_steps_each_role_has(
    readme_run: tuple[Path, dict[str, Any]],
) -> None:
    _, record = readme_run
    hosts = {(h["role"], h["name"]): h["steps"] for h in record["appendix"]["hosts"]}
    assert hosts[("admin", "ADMIN-WS")] == []  # the lab names it; this runbook does not use it
    assert hosts[("dc", "PDC")] == [4, 5, 8, 9, 10, 21, 22]
    skipped = [d for d in record["details"] if d["step"] == "server-restart"]
    text = json.dumps(skipped)
    assert "when=" not in text and "condition dc_is_exchange is false in environment lab" in text


def test_a_paused_run_has_pending_steps_not_unreached_ones(tmp_path: Path) -> None:
    book = tmp_path / "rb.md"
    book.write_text(
        "# Paused\n\n```sh {#one}\ntrue\n```\n\n```manual {#gate}\nLook.\n```\n\n"
        "```sh {#two}\ntrue\n```\n",
        encoding="utf-8",
    )
    state = tmp_path / "st"
    proc = runbook("run", book, "--state-dir", state, "--run-id", "r1", "--no-input", cwd=tmp_path)
    assert proc.returncode == 3, proc.stdout + proc.stderr  # paused at the gate
    record = json.loads(_export(state, "r1", "json", tmp_path))
    status = {s["id"]: s["status"] for s in record["steps"]}
    assert status == {"one": "succeeded", "gate": "awaiting", "two": "pending"}
    assert record["summary"]["failures"] == []
    shown = runbook("status", "r1", "--state-dir", state, cwd=tmp_path).stdout
    assert "pending" in shown and "not reached" not in shown


def test_a_finished_runs_unreached_steps_are_not_reached_in_every_text(tmp_path: Path) -> None:
    """One word for one thing: the summary line, `runbook status` and the record's outcome
    say "not reached" for the steps a failed run never started, as its step table does."""
    book = tmp_path / "rb.md"
    book.write_text(FAILING, encoding="utf-8")
    state = tmp_path / "st"
    proc = runbook("run", book, "--state-dir", state, "--run-id", "r1", "--no-input", cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Run r1: failed (1 failed, 1 not reached, 1 succeeded)" in proc.stdout + proc.stderr
    assert "pending" not in proc.stdout + proc.stderr
    shown = runbook("status", "r1", "--state-dir", state, cwd=tmp_path).stdout
    assert "not reached" in shown and "pending" not in shown
    record = json.loads(_export(state, "r1", "json", tmp_path))
    assert record["summary"]["outcome"]["steps"] == {"failed": 1, "not reached": 1, "succeeded": 1}
    assert {s["id"]: s["status"] for s in record["steps"]}["after"] == "not reached"
    markdown = _export(state, "r1", "md", tmp_path)
    assert "pending" not in markdown and "not reached" in markdown
    page = _export(state, "r1", "html", tmp_path)
    assert "pending" not in page[page.index("<body") :]  # the stylesheet names the class


def test_a_missing_change_id_or_reason_names_the_flags_that_give_them(tmp_path: Path) -> None:
    """The record tells how to give them with today's words (`--note`, not the old `--reason`)."""
    state = _run(tmp_path, FAILING)
    for fmt in ("md", "html"):
        text = _export(state, "r1", fmt, tmp_path)
        assert "no change id was given (runbook run --change)" in text, fmt
        assert "no reason was given (runbook run --note)" in text, fmt
        assert "--reason" not in text, fmt
