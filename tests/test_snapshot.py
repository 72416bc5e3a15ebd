"""A run keeps a copy of its source (runbook, includes, environment file) and goes on from it
where the recorded files are gone; with the default store (state directory), through the
CLI.  Team mode's side (another machine, the database) is in ``test_team_e2e.py``."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from test_runner import cli_env

from runbook_engine.evidence.journal import read_journal, verify_journal
from runbook_engine.source.parser import parse_file

BOOK = """---
id: kept
title: A runbook whose folder goes away
---
# Kept

<!-- include: parts/first.md -->

```manual {#look title="Look at the lamp"}
Check that the lamp is green.
```

```sh {#last title="Last"}
echo last >> "$RUNBOOK_TEST_LOG"
```
"""
PART = """# First

```sh {#first title="First"}
echo first >> "$RUNBOOK_TEST_LOG"
```
"""
ENV = "name: lab\ndescription: Everything local.\n"


def _runbook(tmp: Path, cwd: Path, *args: Any) -> subprocess.CompletedProcess[str]:
    env = {**cli_env(), "RUNBOOK_TEST_LOG": str(tmp / "steps.log")}
    return subprocess.run(
        [sys.executable, "-m", "runbook_engine", *(str(a) for a in args)],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def _paused(tmp: Path) -> tuple[Path, Path]:
    """A run ``s1`` paused at its manual step; returns (its folder of files, state dir)."""
    folder, state = tmp / "book", tmp / "state"
    (folder / "parts").mkdir(parents=True)
    (folder / "kept.md").write_text(BOOK)
    (folder / "parts" / "first.md").write_text(PART)
    (folder / "lab.yml").write_text(ENV)
    run = _runbook(tmp, folder, "run", "kept.md", "--env", "lab.yml", "--run-id", "s1",
                   "--no-input", "--state-dir", state)  # fmt: skip
    assert run.returncode == 3, run.stdout + run.stderr
    return folder, state


def test_a_run_goes_on_from_its_copy_when_its_files_are_gone(tmp_path: Path) -> None:
    folder, state = _paused(tmp_path)
    copies = state / "runs" / "s1" / "source"
    kept = sorted(p.relative_to(copies).as_posix() for p in copies.rglob("*") if p.is_file())
    assert [k.split("/", 1)[1] for k in kept if k.startswith("runbook-") and "/" in k] == [
        "kept.md",
        "parts/first.md",
    ]
    assert [k.split("/", 1)[1] for k in kept if k.startswith("environment-")] == ["lab.yml"]
    shutil.rmtree(folder)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    ok = _runbook(tmp_path, elsewhere, "confirm", "s1", "look", "--as", "Ann", "--state-dir", state)
    assert ok.returncode == 0, ok.stderr
    resumed = _runbook(tmp_path, elsewhere, "resume", "s1", "--no-input", "--state-dir", state)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "not on this machine" in resumed.stdout + resumed.stderr
    assert (tmp_path / "steps.log").read_text().split() == ["first", "last"]
    journal = state / "runs" / "s1" / "journal.jsonl"
    events = read_journal(journal)
    copied = {e["what"]: e for e in events if e["event"] == "source-copy-read"}
    assert set(copied) == {"runbook", "environment"}
    assert copied["runbook"]["path"] == str((folder / "kept.md").resolve())
    assert copied["runbook"]["sha256"] == events[0]["runbook"]["sha256"]
    assert copied["environment"]["sha256"] == events[0]["environment"]["sha256"]
    assert verify_journal(journal).ok


def test_an_altered_copy_is_refused(tmp_path: Path) -> None:
    folder, state = _paused(tmp_path)
    shutil.rmtree(folder)
    (part,) = (state / "runs" / "s1" / "source").glob("runbook-*/parts/first.md")
    part.write_text(PART.replace("echo first", "echo changed"))
    resumed = _runbook(tmp_path, tmp_path, "resume", "s1", "--no-input", "--state-dir", state)
    assert resumed.returncode == 2, resumed.stdout + resumed.stderr
    assert "Traceback" not in resumed.stderr
    assert "parts/first.md" in resumed.stderr and "altered" in resumed.stderr
    assert not (tmp_path / "steps.log").read_text().count("changed")


def test_a_changed_file_where_it_is_still_refused_and_an_accepted_change_is_kept(
    tmp_path: Path,
) -> None:
    folder, state = _paused(tmp_path)
    (folder / "parts" / "first.md").write_text(PART + "\nA note.\n")
    refused = _runbook(tmp_path, folder, "resume", "s1", "--no-input", "--state-dir", state)
    assert refused.returncode == 2 and "--accept-changed" in refused.stderr, refused.stderr
    accepted = _runbook(
        tmp_path, folder, "resume", "s1", "--no-input", "--accept-changed", "--state-dir", state
    )
    assert accepted.returncode == 3, accepted.stdout + accepted.stderr  # at the manual step
    manifests = sorted((state / "runs" / "s1" / "source").glob("runbook-*.json"))
    assert len(manifests) == 2  # the first source and the accepted one
    shutil.rmtree(folder)  # the accepted version is what a resume elsewhere reads
    ok = _runbook(tmp_path, tmp_path, "confirm", "s1", "look", "--as", "Ann", "--state-dir", state)
    assert ok.returncode == 0, ok.stderr
    resumed = _runbook(tmp_path, tmp_path, "resume", "s1", "--no-input", "--state-dir", state)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    status = _runbook(tmp_path, tmp_path, "status", "s1", "--json", "--state-dir", state)
    assert json.loads(status.stdout)["status"] == "succeeded"


def test_a_copy_swapped_with_the_stores_hash_is_not_executed(tmp_path: Path) -> None:
    """Someone who can write the store (state.db, or a team's database) adds a copy of
    another runbook and sets the run's recorded SHA-256 to it: the journal's
    ``run-started`` still names the first, so the resume sets the store back (journaled
    ``store-reconciled``) and executes the runbook the run started with."""
    import hashlib
    import sqlite3

    folder, state = _paused(tmp_path)
    shutil.rmtree(folder)
    source = state / "runs" / "s1" / "source"
    (manifest_path,) = source.glob("runbook-*.json")
    first = manifest_path.with_suffix("")
    evil = BOOK.replace("echo last", "echo evil")
    made = tmp_path / "made"
    shutil.copytree(first, made)
    (made / "kept.md").write_text(evil)
    digest = parse_file(made / "kept.md").content_hash  # as the run would record it
    swapped = source / f"runbook-{digest[:16]}"
    shutil.copytree(made, swapped)
    manifest = json.loads(manifest_path.read_text())
    manifest["files"]["kept.md"] = hashlib.sha256(evil.encode()).hexdigest()
    (source / f"runbook-{digest[:16]}.json").write_text(json.dumps(manifest))
    with sqlite3.connect(state / "state.db") as db:
        db.execute("UPDATE runs SET content_hash=? WHERE run_id='s1'", (digest,))
    ok = _runbook(tmp_path, tmp_path, "confirm", "s1", "look", "--as", "Ann", "--state-dir", state)
    resumed = _runbook(tmp_path, tmp_path, "resume", "s1", "--no-input", "--state-dir", state)
    assert resumed.returncode == 0, ok.stderr + resumed.stdout + resumed.stderr
    assert (tmp_path / "steps.log").read_text().split() == ["first", "last"]
    events = read_journal(state / "runs" / "s1" / "journal.jsonl")
    (fixed,) = [e for e in events if e["event"] == "store-reconciled"]
    assert any(digest[:12] in change and "runbook" in change for change in fixed["changes"])
    (copied,) = [e for e in events if e["event"] == "source-copy-read" and e["what"] == "runbook"]
    assert copied["sha256"] == events[0]["runbook"]["sha256"] != digest
