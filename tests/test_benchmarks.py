"""The benchmarks run: ``benchmarks/bench_team.py --quick`` with tiny sizes prints its
figures and ratio lines, exits 0 and drops the databases it made.  No timing is asserted.

Real PostgreSQL (``RUNBOOK_TEST_PG``, default the local server); skipped, saying why, when
no server answers or the team extra is missing.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

psycopg = pytest.importorskip("psycopg", reason="the team extra (psycopg, procrastinate)")
pytest.importorskip("procrastinate", reason="the team extra (psycopg, procrastinate)")

ROOT = Path(__file__).resolve().parent.parent
PG = os.environ.get("RUNBOOK_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="module")
def server() -> str:
    """The test server's URL, or a skip when it does not answer."""
    try:
        psycopg.connect(PG, connect_timeout=5).close()
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL server answers at {PG} (set RUNBOOK_TEST_PG): {exc}")
    return PG


def test_bench_team_quick(server: str) -> None:
    argv = [sys.executable, str(ROOT / "benchmarks" / "bench_team.py"), "--quick", "--pg", server]
    argv += ["--runs", "2", "--run-steps", "2", "--steps", "3"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    number = r"\s+\d+\.\d\dx$"
    assert re.search(r"^  ratio PG / SQLite\s+:" + number, out, re.M), out
    for what in ["wall time", "throughput", "p95 step duration", "p95 step turnaround"]:
        assert re.search(rf"^  ratio queue / inline, {what}\s+:" + number, out, re.M), out
    assert re.search(r"^  ratio inline PG / inline, wall time\s+:" + number, out, re.M), out
    assert re.search(r"^  p95 step duration \(ms\)(\s+\d+\.\d){3}$", out, re.M), out
    names = re.search(r"^databases (\S+), (\S+) \(dropped at the end\)$", out, re.M)
    assert names, out
    with psycopg.connect(server, autocommit=True) as db:
        left = db.execute(
            "SELECT datname FROM pg_database WHERE datname = ANY(%s)", ([*names.groups()],)
        ).fetchall()
    assert left == [], f"databases left behind: {left}"


def test_bench_team_refuses_a_bad_size() -> None:
    argv = [sys.executable, str(ROOT / "benchmarks" / "bench_team.py"), "--runs", "0"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 2
    assert "--runs must be at least 1" in done.stderr
    assert "Traceback" not in done.stderr
