"""``runbook status`` and ``runbook runs`` for long runs: plain aligned text, every row shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from runbook_engine.cli import main
from runbook_engine.cli.status_view import RICH_ROWS, plain_table
from runbook_engine.run.store import CheckpointStore, RunRecord, utcnow


def make_run(state: Path, run_id: str, steps: int) -> None:
    store = CheckpointStore(state)
    now = utcnow()
    record = RunRecord(
        run_id, "long", "long.md", "0" * 64, None, "lab", None, {}, "failed", None, "ann",
        None, now, now,
    )  # fmt: skip
    store.create_run(record, [(f"s{n:04d}", "web1", n) for n in range(1, steps + 1)])
    store.transition(run_id, "s0001", "web1", "succeeded", attempts=1, exit_code=0)
    store.transition(
        run_id, "s0002", "web1", "failed", attempts=2, exit_code=7, reason="bad\n\x1b[31mred"
    )
    store.close()


def status_output(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    assert exc.value.code in (0, None)
    return capsys.readouterr().out


def test_long_run_is_a_plain_table_with_every_step(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    steps = RICH_ROWS + 50
    make_run(tmp_path, "r-long", steps)
    out = status_output(capsys, "status", "r-long", "--state-dir", str(tmp_path))
    lines = out.splitlines()
    assert lines[0] == "r-long  long  env=lab  status=failed  operator=ann"
    assert lines[1].split() == ["#", "step", "host", "status", "attempts", "exit", "note"]
    assert set(lines[2].replace(" ", "")) == {"-"}
    rows = lines[3 : 3 + steps]
    assert [r.split()[1] for r in rows] == [f"s{n:04d}" for n in range(1, steps + 1)]
    assert rows[0].split() == ["1", "s0001", "web1", "succeeded", "1", "0"]
    assert rows[1].split() == ["2", "s0002", "web1", "failed", "2", "7", "bad", "\\x1b[31mred"]
    assert rows[2].split() == ["3", "s0003", "web1", "pending", "0"]
    status_col = lines[1].index("status")
    assert all(r[status_col:].split()[0] in ("succeeded", "failed", "pending") for r in rows)
    assert lines[-1].startswith("Journal: ")
    assert "\x1b" not in out


def test_short_run_keeps_the_rich_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_run(tmp_path, "r-short", 3)
    out = status_output(capsys, "status", "r-short", "--state-dir", str(tmp_path))
    assert "s0003" in out and "pending" in out
    assert "━" in out or "─" in out  # rich's borders


def test_plain_table_aligns_columns() -> None:
    text = plain_table(("a", "bb", "note"), [("long-cell", "x", "n 1"), ("y", "z", "")])
    assert text.splitlines() == [
        "a          bb  note",
        "---------  --  ----",
        "long-cell  x   n 1",
        "y          z",
    ]
