"""Benchmark: the runner's peak memory for a step printing a lot (issue 3, part 9).

Runs one local ``sh`` step printing ``--mb`` megabytes through ``runbook run`` (in a
child process, so its peak RSS is the runner's alone) and prints the runner's peak
resident set size, the time taken, the size of the output file kept and the journal's
record of the whole output.  Asserts nothing.

Run: ``python benchmarks/bench_output.py`` (``--mb 1024`` for a gigabyte, ``--yes`` for
``yes`` output: two-byte lines, the worst case for per-line work).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=int, default=1024, help="megabytes the step prints")
    parser.add_argument("--yes", action="store_true", help="print 'y' lines instead of 4 KiB")
    parser.add_argument("--max-output", type=int, default=None, help="bytes kept per command")
    args = parser.parse_args()
    size = args.mb * 1024 * 1024
    producer = "yes" if args.yes else "yes $(printf 'x%.0s' $(seq 4095))"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        book = root / "big.md"
        book.write_text(f"# Big output\n\n```sh {{#big}}\n{producer} | head -c {size}\n```\n")
        cmd = [sys.executable, "-m", "runbook_engine", "run", str(book), "--no-input"]
        cmd += ["--state-dir", str(root / "state"), "--run-id", "b1", "--json"]
        if args.max_output:
            cmd += ["--max-output", str(args.max_output)]
        start = time.monotonic()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
        elapsed = time.monotonic() - start
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        run_dir = root / "state" / "runs" / "b1"
        kept = sum(f.stat().st_size for f in (run_dir / "output").iterdir())
        finished = [
            json.loads(line)
            for line in (run_dir / "journal.jsonl").read_text().splitlines()
            if '"step-finished"' in line
        ]
        streams = finished[-1].get("output_streams") if finished else None
    print(
        f"step output:        {size / 1024 / 1024:.0f} MiB ({'yes' if args.yes else '4 KiB lines'})"
    )
    print(f"exit status:        {proc.returncode}")
    print(f"runner peak RSS:    {peak_kib / 1024:.1f} MiB")
    print(f"wall time:          {elapsed:.1f} s")
    print(f"output file kept:   {kept / 1024 / 1024:.2f} MiB")
    print(f"journal streams:    {json.dumps(streams)}")


if __name__ == "__main__":
    main()
