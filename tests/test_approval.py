"""Approval gates: quorum with separation of duties, one person counts once, expiry,
rejection, `approval: required` and emergency runs, schema-checked bodies.

The real ``runbook`` command runs in subprocesses in a copy of ``tests/fixtures/evidence``,
on both stores (``@both_stores``: the state folder and PostgreSQL, journals read from
:func:`stores.run_folder`); the vote counting is also checked directly (:func:`tally`), and
runbooks refused before a run starts are checked on the state folder only.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from stores import both_stores, cli_environ, on_pg, run_folder  # type: ignore[import-not-found]

from runbook_engine.errors import InputError
from runbook_engine.evidence.journal import read_journal
from runbook_engine.run.approval import ApprovalSpec, Vote, parse_approval, tally

FIXTURES = Path(__file__).parent / "fixtures" / "evidence"
OPERATOR = "Olga Operator"
pytestmark = pytest.mark.skipif(os.name != "posix", reason="sh steps")


class Book:
    """A copy of the evidence fixtures and the CLI run inside it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.state = root / "state"

    def __call__(self, *args: Any, operator: str = OPERATOR) -> subprocess.CompletedProcess[str]:
        env = cli_environ()
        env.update(RUNBOOK_OPERATOR=operator, NO_COLOR="1", COLUMNS="200")
        proc = subprocess.run(
            [sys.executable, "-m", "runbook_engine", *map(str, args)],
            cwd=self.root,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
        assert "Traceback" not in proc.stderr, proc.stderr
        return proc

    def run(self, book: str, *args: Any) -> subprocess.CompletedProcess[str]:
        return self(
            "run",
            book,
            "--env",
            "env.yml",
            "--state-dir",
            self.state,
            "--run-id",
            "r1",
            "--no-input",
            *args,
        )

    def resume(self, operator: str = OPERATOR) -> subprocess.CompletedProcess[str]:
        return self("resume", "r1", "--state-dir", self.state, "--no-input", operator=operator)

    def vote(self, verb: str, name: str, *args: Any) -> subprocess.CompletedProcess[str]:
        return self(verb, "r1", "cab", "--as", name, "--state-dir", self.state, *args)

    def events(self, name: str) -> list[dict[str, Any]]:
        return [
            r
            for r in read_journal(run_folder(self.state, "r1") / "journal.jsonl")
            if r["event"] == name
        ]

    def status(self) -> dict[str, Any]:
        proc = self("status", "r1", "--state-dir", self.state, "--json")
        return json.loads(proc.stdout)

    def log(self) -> list[str]:
        path = self.root / "steps.log"
        return path.read_text().splitlines() if path.exists() else []


@pytest.fixture
def book(tmp_path: Path) -> Book:
    for item in FIXTURES.iterdir():
        if item.is_file():
            shutil.copy2(item, tmp_path / item.name)
    return Book(tmp_path)


@both_stores
def test_quorum_of_two_with_separation_of_duties(book: Book) -> None:
    first = book.run("approved.md", "--change", "CHG-7", "--note", "quarterly settings")
    assert first.returncode == 3, first.stderr
    assert "runbook approve r1 cab --as NAME" in first.stderr
    assert book.log() == ["pre"]  # nothing changed before the approval

    own = book.vote("approve", OPERATOR)
    assert own.returncode == 2 and "separation of duties" in own.stderr
    stranger = book.vote("approve", "Mallory")
    assert stranger.returncode == 2 and "not an approver" in stranger.stderr
    first_vote = book.vote("approve", "alice approver", "--note", "fine")
    assert first_vote.returncode == 0 and "(1 of 2 approvals; 1 more needed)" in first_vote.stdout
    twice = book.vote("approve", "Alice Approver")
    assert twice.returncode == 2 and "counts once" in twice.stderr

    assert book.resume().returncode == 3  # one of two: still waiting
    assert book.log() == ["pre"]
    second_vote = book.vote("approve", "Dana Lead")  # named directly, not via a group
    assert second_vote.returncode == 0 and "2 of 2 approvals; quorum reached" in second_vote.stdout
    assert book.resume().returncode == 3  # now at the manual step after the approval
    passed = book.events("approval-passed")
    assert [a["by"] for a in passed[0]["approvals"]] == ["Alice Approver", "Dana Lead"]
    assert passed[0]["approvals"][0]["comment"] == "fine"
    started = book.events("run-started")[0]
    assert (started["change_id"], started["reason"]) == ("CHG-7", "quarterly settings")


def test_a_vote_keeps_its_attachments_as_evidence(book: Book) -> None:
    assert book.run("approved.md").returncode == 3
    (book.root / "minutes.txt").write_text("approved in the meeting\n")
    refused = book.vote("approve", OPERATOR, "--attach", "minutes.txt")
    assert refused.returncode == 2 and "separation of duties" in refused.stderr
    assert book.events("attachment-added") == []  # a refused vote keeps nothing
    voted = book.vote("reject", "Alice Approver", "--note", "no", "--attach", "minutes.txt")
    assert voted.returncode == 0, voted.stderr
    (kept,) = book.events("attachment-added")
    (vote,) = book.events("approval-recorded")
    assert kept["path"] == "attachments/cab/minutes.txt" and kept["by"] == "Alice Approver"
    assert vote["attachments"] == [{"path": kept["path"], "sha256": kept["sha256"]}]
    assert (book.state / "runs" / "r1" / kept["path"]).read_text() == "approved in the meeting\n"
    verified = book("evidence", "verify", "r1", "--state-dir", book.state)
    assert "2 files match the journal" in verified.stdout, verified.stdout  # output + file


@both_stores
def test_approval_by_someone_who_later_operates_the_run_does_not_count(book: Book) -> None:
    assert book.run("approved.md").returncode == 3
    assert book.vote("approve", "Alice Approver").returncode == 0
    assert book.vote("approve", "Bob Board").returncode == 0
    # Bob resumes the run himself: he now operates it, so his approval is set aside.
    assert book.resume(operator="Bob Board").returncode == 3
    assert book.events("approval-passed") == []
    assert book.status()["steps"][1]["status"] == "awaiting"


def test_tally_counts_each_person_once_and_drops_operators_and_expired() -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    spec = ApprovalSpec(2, ("board",), expires_hours=1)
    allowed = {"ann": "Ann", "bob": "Bob", "cy": "Cy"}

    def vote(by: str, minutes_ago: int, decision: str = "approve") -> Vote:
        return Vote(by, decision, None, now - timedelta(minutes=minutes_ago), 1)

    same = tally(spec, allowed, [vote("Ann", 5), vote(" ANN ", 4)], set(), now)
    assert not same.reached and len(same.approvals) == 1
    assert "counts once" in same.discarded[0][1]
    op = tally(spec, allowed, [vote("Ann", 5), vote("Bob", 4)], {"bob"}, now)
    assert not op.reached and "separation of duties" in op.discarded[0][1]
    old = tally(spec, allowed, [vote("Ann", 90), vote("Bob", 4)], set(), now)
    assert not old.reached and "expired" in old.discarded[0][1]
    fresh = tally(spec, allowed, [vote("Ann", 90), vote("Bob", 4), vote("Ann", 1)], set(), now)
    assert fresh.reached
    rejected = tally(
        spec, allowed, [vote("Ann", 5), vote("Bob", 4), vote("Cy", 3, "reject")], set(), now
    )
    assert not rejected.reached and rejected.rejection is not None


@both_stores
def test_expired_approval_no_longer_counts(book: Book) -> None:
    """expires_hours 0.0003 is about one second; the wait only makes the approval old enough,
    nothing asserts how long anything takes."""
    assert book.run("expiring.md").returncode == 3
    (cab,) = [s for s in book.status()["steps"] if s["step_id"] == "cab"]
    assert cab["reason"] == "waiting for 1 approval"  # not "1 approvals"
    assert book.vote("approve", "Alice Approver").returncode == 0
    given = book.events("approval-recorded")[0]["time"]
    given_at = datetime.strptime(given, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    while datetime.now(UTC) - given_at < timedelta(seconds=2):
        time.sleep(0.2)
    again = book.resume()
    assert again.returncode == 3, again.stdout + again.stderr
    assert book.log() == []
    assert book.events("approval-passed") == []
    # The expired approval no longer blocks the same person from approving afresh (that a
    # fresh approval counts is checked without a clock in the tally test above).
    assert book.vote("approve", "Alice Approver").returncode == 0


@both_stores
def test_rejection_stops_the_run(book: Book) -> None:
    assert book.run("approved.md").returncode == 3
    assert book.vote("approve", "Alice Approver").returncode == 0
    rejected = book.vote("reject", "Bob Board", "--note", "not this week", "--json")
    assert rejected.returncode == 0 and json.loads(rejected.stdout)["decision"] == "reject"
    said = book.vote("reject", "Dana Lead")  # a second rejection, as text
    assert said.returncode == 0 and "needs" not in said.stdout
    assert "rejection of cab by Dana Lead: the step is rejected" in said.stdout
    stopped = book.resume()
    assert stopped.returncode == 1, stopped.stdout + stopped.stderr
    assert "Run r1: rejected" in stopped.stdout
    status = book.status()
    assert (status["status"], status["outcome"]) == ("aborted", "rejected")
    # One word for how the run ended: the summary line, `runs` and `status` agree.
    runs = book("runs", "--state-dir", book.state).stdout
    assert "rejected" in runs and "aborted" not in runs
    assert "status=rejected" in book("status", "r1", "--state-dir", book.state).stdout
    assert book.events("approval-rejected")[0]["by"] == "Bob Board"
    assert book.events("run-finished")[0]["status"] == "rejected"
    assert book.log() == ["pre"]
    assert book.resume().returncode == 2  # a finished run does not go on
    late = book.vote("approve", "Dana Lead")
    assert late.returncode == 2 and "finished" in late.stderr


@both_stores
def test_required_approval_without_an_approval_step_is_refused(book: Book) -> None:
    plan = book("plan", "no-approval.md")
    assert plan.returncode == 2
    assert "no-approval.md:12" in plan.stderr and "approval" in plan.stderr
    run = book.run("no-approval.md")
    assert run.returncode == 2 and "--emergency" in run.stderr
    if on_pg():
        assert json.loads(book("runs", "--state-dir", book.state, "--json").stdout) == []
    else:
        assert not (book.state / "runs").exists()
    no_reason = book.run("no-approval.md", "--emergency")
    assert no_reason.returncode == 2 and "--note" in no_reason.stderr


@both_stores
def test_emergency_run_bypasses_approval_and_is_flagged(book: Book) -> None:
    proc = book.run(
        "approved.md",
        "--emergency",
        "--note",
        "outage INC-9",
        "--answers",
        "answers-approved.yml",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert book.log() == ["pre", "change"]
    started = book.events("run-started")[0]
    assert started["emergency"] is True and started["reason"] == "outage INC-9"
    assert book.events("approval-bypassed")[0]["reason"] == "outage INC-9"
    record = json.loads(
        book("evidence", "export", "r1", "--to", "json", "--state-dir", book.state).stdout
    )
    assert record["summary"]["change"]["emergency"] is True
    assert any(d["kind"] == "approval-bypassed" for d in record["summary"]["deviations"])
    html = book("evidence", "export", "r1", "--to", "html", "--state-dir", book.state).stdout
    assert "EMERGENCY CHANGE" in html


@both_stores
def test_confirm_cannot_pass_an_approval_step(book: Book) -> None:
    assert book.run("approved.md").returncode == 3
    proc = book("confirm", "r1", "cab", "--as", "Alice Approver", "--state-dir", book.state)
    assert proc.returncode == 2 and "runbook approve" in proc.stderr


def test_bad_approval_body_is_refused_with_lines(book: Book) -> None:
    proc = book.run("bad-approval.md")
    assert proc.returncode == 2
    for expected in ("bad-approval.md:8", "bad-approval.md:9", "'colour' was unexpected"):
        assert expected in proc.stderr
    with pytest.raises(InputError) as info:
        parse_approval("required: 3\napprovers: [a]\nexpires_hours: 0\n", Path("x.md"), 10)
    assert "x.md:12" in info.value.format()
    assert parse_approval("required: 1\napprovers: [a]\n", None, 1).expires_hours is None


def test_quorum_larger_than_the_approvers_is_refused(book: Book, tmp_path: Path) -> None:
    text = (FIXTURES / "approved.md").read_text().replace("required: 2", "required: 5")
    (tmp_path / "too-many.md").write_text(text)
    proc = book.run("too-many.md")
    assert proc.returncode == 2 and "needs 5 approvers" in proc.stderr
