"""Tests for runbook_engine.evidence.journal: a real file, real tampering."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from pathlib import Path

import pytest

from runbook_engine.errors import EvidenceError
from runbook_engine.evidence.canonical import GENESIS_HASH, canonical_json
from runbook_engine.evidence.journal import (
    Journal,
    JournalCheck,
    head_path,
    read_journal,
    verify_journal,
)
from runbook_engine.evidence.redact import Redactor

CANARY = "canary-1b2c3d4e-SECRET"


def write_events(path: Path, n: int = 5) -> Journal:
    j = Journal(path)
    for i in range(1, n + 1):
        j.append("step-finished", step=f"s{i}", exit_code=0, output=f"done {i} ✓")
    return j


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


@pytest.fixture()
def jpath(tmp_path: Path) -> Path:
    return tmp_path / "runs" / "r1" / "journal.jsonl"


def test_records_are_chained_and_verify(jpath: Path) -> None:
    j = write_events(jpath, 5)
    check = verify_journal(jpath)
    assert check == JournalCheck(True, 5, None, check.message, j.head[1])
    records = read_journal(jpath)
    assert [r["seq"] for r in records] == [1, 2, 3, 4, 5]
    assert records[0]["prev"] == GENESIS_HASH
    for a, b in itertools.pairwise(records):
        assert b["prev"] == a["hash"]
    assert j.head == (5, records[-1]["hash"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", records[0]["time"])


def test_hash_and_line_format_follow_the_contract(jpath: Path) -> None:
    j = Journal(jpath)
    rec = j.append("run-started", runbook="exchange2003", note="é")
    body = {k: v for k, v in rec.items() if k != "hash"}
    expected = hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    ).hexdigest()
    assert rec["hash"] == expected
    assert jpath.read_bytes() == (canonical_json(rec) + "\n").encode("utf-8")
    assert rec["seq"] == 1 and rec["event"] == "run-started" and rec["runbook"] == "exchange2003"


def test_returned_record_equals_record_read_back(jpath: Path) -> None:
    j = Journal(jpath)
    rec = j.append("x", path=Path("/tmp/a b"), items=(1, 2))
    assert read_journal(jpath) == [rec]
    assert rec["path"] == "/tmp/a b" and rec["items"] == [1, 2]


def test_reopen_continues_the_chain(jpath: Path) -> None:
    write_events(jpath, 3)
    j2 = Journal(jpath)
    assert j2.head[0] == 3
    rec = j2.append("run-resumed")
    assert rec["seq"] == 4
    assert rec["prev"] == read_journal(jpath)[2]["hash"]
    assert verify_journal(jpath).ok


def test_two_writers_keep_one_chain(jpath: Path) -> None:
    a = Journal(jpath)
    a.append("one")
    b = Journal(jpath)
    b.append("two")
    rec = a.append("three")  # a notices b's line and continues after it
    assert rec["seq"] == 3
    assert verify_journal(jpath).ok


def test_secrets_redacted_before_write_and_hash(jpath: Path) -> None:
    j = Journal(jpath, Redactor({"admin_password": CANARY, "pin": "12"}))
    rec = j.append(
        "step-finished", command=f"net user a {CANARY}", pin="12", output={"lines": [CANARY]}
    )
    assert CANARY not in jpath.read_text(encoding="utf-8")
    assert rec["command"] == "net user a [REDACTED:admin_password]"
    assert rec["pin"] == "[REDACTED:pin]"
    assert verify_journal(jpath).ok


def test_reserved_field_rejected(jpath: Path) -> None:
    j = Journal(jpath)
    with pytest.raises(ValueError, match="reserved"):
        j.append("x", seq=7)
    assert not jpath.exists() or read_journal(jpath, verify=False) == []


def test_unwritable_value_is_an_evidence_error(jpath: Path) -> None:
    with pytest.raises(EvidenceError, match="JSON"):
        Journal(jpath).append("x", value=float("nan"))


# --- tampering ---------------------------------------------------------------------------


def tamper_edit_byte(path: Path) -> None:
    lines = lines_of(path)
    line = bytearray(lines[2])
    i = line.index(b"done 3")
    line[i + 5] = ord("9")  # "done 3" -> "done 9"
    lines[2] = bytes(line)
    path.write_bytes(b"".join(lines))


def tamper_delete_line(path: Path) -> None:
    lines = lines_of(path)
    del lines[2]
    path.write_bytes(b"".join(lines))


def tamper_swap_lines(path: Path) -> None:
    lines = lines_of(path)
    lines[1], lines[2] = lines[2], lines[1]
    path.write_bytes(b"".join(lines))


def tamper_cut_last_line(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 20])


def tamper_drop_newline(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-1])


def tamper_cut_last_record(path: Path) -> None:
    path.write_bytes(b"".join(lines_of(path)[:-1]))


def tamper_wrong_first_prev(path: Path) -> None:
    # rewrite every record consistently, but start the chain from a foreign hash
    records = read_journal(path)
    prev = "f" * 64
    out = []
    for rec in records:
        rec["prev"] = prev
        rec.pop("hash")
        rec["hash"] = hashlib.sha256(canonical_json(rec).encode()).hexdigest()
        prev = rec["hash"]
        out.append(canonical_json(rec) + "\n")
    path.write_text("".join(out), encoding="utf-8")


def tamper_reformat_line(path: Path) -> None:
    lines = lines_of(path)
    lines[3] = json.dumps(json.loads(lines[3])).encode() + b"\n"  # same content, spaces added
    path.write_bytes(b"".join(lines))


@pytest.mark.parametrize(
    ("tamper", "bad_line", "words"),
    [
        (tamper_edit_byte, 3, "edited"),
        (tamper_delete_line, 3, "seq 4, expected 3"),
        (tamper_swap_lines, 2, "seq 3, expected 2"),
        (tamper_cut_last_line, 5, "truncated"),
        (tamper_drop_newline, 5, "truncated"),
        (tamper_cut_last_record, 5, "cut off"),
        (tamper_wrong_first_prev, 1, "prev"),
        (tamper_reformat_line, 4, "canonical"),
    ],
)
def test_tampering_is_detected(jpath: Path, tamper, bad_line: int, words: str) -> None:
    write_events(jpath, 5)
    assert verify_journal(jpath).ok
    tamper(jpath)
    check = verify_journal(jpath)
    assert not check.ok
    assert check.first_bad_line == bad_line
    assert f"line {bad_line}" in check.message
    assert words in check.message
    with pytest.raises(EvidenceError, match=f"line {bad_line}"):
        Journal(jpath)
    with pytest.raises(EvidenceError):
        read_journal(jpath)
    assert len(read_journal(jpath, verify=False)) == check.events


def test_damaged_journal_refuses_append(jpath: Path) -> None:
    j = write_events(jpath, 3)
    tamper_cut_last_line(jpath)
    before = jpath.read_bytes()
    with pytest.raises(EvidenceError, match="refusing to append"):
        Journal(jpath)
    with pytest.raises(EvidenceError, match="refusing to append"):
        j.append("more")  # an open writer notices the damage too
    assert jpath.read_bytes() == before


def test_head_file_missing_or_damaged(jpath: Path) -> None:
    write_events(jpath, 2)
    hp = head_path(jpath)
    hp.write_text("garbage", encoding="utf-8")
    check = verify_journal(jpath)
    assert not check.ok and "head file" in check.message
    hp.unlink()
    check = verify_journal(jpath)
    assert not check.ok and check.first_bad_line is None and "missing" in check.message
    assert verify_journal(jpath, require_head=False).ok


def test_expected_head_from_elsewhere(jpath: Path) -> None:
    j = write_events(jpath, 4)
    anchor = j.head
    tamper_cut_last_record(jpath)
    head_path(jpath).unlink()  # the tamperer removed the head file too
    check = verify_journal(jpath, expected_head=anchor)
    assert not check.ok and check.first_bad_line == 4


def test_missing_and_empty_journal(tmp_path: Path) -> None:
    check = verify_journal(tmp_path / "none.jsonl")
    assert not check.ok and "no journal" in check.message
    with pytest.raises(EvidenceError):
        read_journal(tmp_path / "none.jsonl")
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    assert verify_journal(empty).ok
    assert Journal(empty).append("first")["seq"] == 1
    assert verify_journal(empty).ok


def test_journal_deleted_but_head_remains(jpath: Path) -> None:
    write_events(jpath, 2)
    jpath.unlink()
    check = verify_journal(jpath)
    assert not check.ok and check.first_bad_line == 1
    with pytest.raises(EvidenceError):
        Journal(jpath)


def test_nan_in_a_tampered_line_is_reported_not_raised(jpath: Path) -> None:
    write_events(jpath, 2)
    lines = lines_of(jpath)
    lines[1] = lines[1].replace(b'"exit_code":0', b'"exit_code":NaN')
    jpath.write_bytes(b"".join(lines))
    check = verify_journal(jpath)
    assert not check.ok and check.first_bad_line == 2
