"""The complete minimal example of runbooks/FORMAT.md §8 runs as written."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORMAT = ROOT / "runbooks" / "FORMAT.md"


def example_files() -> dict[str, str]:
    """The files of §8: each named by a line `` `NAME`: `` followed by its fenced block."""
    section = FORMAT.read_text(encoding="utf-8").split("## 8. A complete minimal example", 1)[1]
    found = re.findall(r"^`([\w.]+)`:\n\n(`{3,})\w*\n(.*?)^\2$", section, re.M | re.S)
    return {name: body for name, _, body in found}


def test_format_md_minimal_example_runs_as_written(tmp_path: Path) -> None:
    files = example_files()
    assert set(files) == {"hello.md", "env.yaml", "answers.yaml"}
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNBOOK_")}
    env.update(NO_COLOR="1", RUNBOOK_OPERATOR="Ola Operator")

    def runbook(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "runbook_engine", *args],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip

    lint = runbook("lint", "hello.md")
    assert lint.returncode == 0, lint.stdout + lint.stderr
    done = runbook(
        "run", "hello.md", "--env", "env.yaml", "--answers", "answers.yaml",
        "--state-dir", "state", "--run-id", "ex1", "--no-input",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "hello.txt").read_text(encoding="utf-8") == "Hello, world\n"
    status = json.loads(runbook("status", "ex1", "--state-dir", "state", "--json").stdout)
    assert "succeeded-pre-answered" in json.dumps(status)
    records = [
        json.loads(line)
        for line in (tmp_path / "state/runs/ex1/journal.jsonl").read_text().splitlines()
    ]
    passed = [r for r in records if r["event"] == "gate-passed"]
    assert [(r["step"], r["by"]) for r in passed] == [("look", "Jane Operator")]
    assert records[0]["operator"] == "Ola Operator"
