"""Benchmark: ``runbook status`` of a long run, table against JSON; asserts nothing.

Makes a run of ``--steps`` steps (default 5,000; half succeeded, some failed with a
note) in a temporary state directory and times, in this process with the output
thrown away:

- the table as it was for every length (rich, the baseline),
- the table as it is now (plain aligned text above ``RICH_ROWS`` rows),
- ``--json``,

and prints each time and its ratio to the rich table measured in the same run.

Run: ``python benchmarks/bench_status.py`` (``--steps N``, ``--repeat R``).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from runbook_engine.cli import status_view
from runbook_engine.run.store import CheckpointStore, RunRecord, utcnow


def make_run(state: Path, steps: int) -> str:
    """Store one run of ``steps`` steps on one host; return its id."""
    store = CheckpointStore(state)
    now = utcnow()
    record = RunRecord(
        "bench-run", "bench", "bench.md", "0" * 64, None, None, None, {}, "failed", None,
        "bench", None, now, now,
    )  # fmt: skip
    store.create_run(record, [(f"s{n:05d}", "local", n) for n in range(1, steps + 1)])
    with store.transaction() as db:
        db.execute("UPDATE steps SET status='succeeded', attempts=1, exit_code=0 WHERE position<=?",
                   (steps // 2,))  # fmt: skip
        db.execute(
            "UPDATE steps SET status='failed', attempts=2, exit_code=1, "
            "reason='exit status 1 after 2 attempts' WHERE position % 97 = 0"
        )
    store.close()
    return record.run_id


def best(action: Callable[[], None], repeat: int) -> float:
    """Shortest wall time of ``action`` over ``repeat`` calls, output discarded."""
    times = []
    for _ in range(repeat):
        sink = io.StringIO()
        with contextlib.redirect_stdout(sink):
            start = time.perf_counter()
            action()
            times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-status-") as tmp:
        state = Path(tmp)
        run_id = make_run(state, args.steps)
        plain = best(lambda: status_view.show_status(state, run_id, False), args.repeat)
        as_json = best(lambda: status_view.show_status(state, run_id, True), args.repeat)
        limit = status_view.RICH_ROWS
        status_view.RICH_ROWS = args.steps + 1  # as before: rich for every length
        try:
            rich = best(lambda: status_view.show_status(state, run_id, False), args.repeat)
        finally:
            status_view.RICH_ROWS = limit
    print(f"runbook status of a run of {args.steps} steps (best of {args.repeat}):")
    for name, seconds in (
        ("rich table (before, baseline)", rich),
        (f"table now (plain above {limit} rows)", plain),
        ("--json", as_json),
    ):
        print(
            f"  {name:36} {seconds * 1000:8.1f} ms  {seconds / args.steps * 1e6:7.1f} us/row"
            f"  {seconds / rich:5.3f}x baseline"
        )


if __name__ == "__main__":
    main()
