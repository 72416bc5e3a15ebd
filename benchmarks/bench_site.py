"""Benchmark: incremental ``runbook site build`` against a ``--no-pdf`` build; asserts nothing.

On a copy of the library (``runbooks/``, or ``--source``) it times, each as a
``runbook site build`` command end to end:

- a build with ``--no-pdf --no-cache`` (the baseline: every page, printable HTML
  and notebook built, no PDF),
- a cold build (empty caches: every page built, every PDF printed, one per worker),
- a rebuild of the unchanged library (every runbook's pages and PDFs from the cache),
- a rebuild after one runbook changed (only its pages built and its PDFs printed),
- a build with ``--no-cache`` (every page built and every PDF printed again),

and prints each time and its ratio to the baseline measured in the same run.
The baseline and the unchanged rebuild are timed alternately, ``--repeat`` times
each, and the best of each is kept (noise on a shared machine only adds time).

Run: ``python benchmarks/bench_site.py`` (``--repeat R``, ``--jobs N``, ``--source DIR``).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def build(source: Path, out: Path, *extra: str) -> tuple[float, str]:
    """Run ``runbook site build``; return (seconds, its page and PDF lines)."""
    cmd = [sys.executable, "-m", "runbook_engine", "site", "build"]
    cmd += ["--source", str(source), "-o", str(out), *extra]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise SystemExit(f"site build failed ({done.returncode}):\n{done.stderr}")
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith(("Pages:", "PDFs:"))]
    return seconds, "; ".join(lines)


def change_one(source: Path) -> Path:
    """Add a sentence to the first runbook ``runbook lint`` finds; return it."""
    from runbook_engine.lint.check import runbook_files

    for path in runbook_files([source]):
        text = path.read_text(encoding="utf-8")
        changed = re.sub(r"\n# (.*)\n", r"\n# \1\n\nChanged for the benchmark.\n", text, count=1)
        if changed != text:
            path.write_text(changed, encoding="utf-8")
            return path
    raise SystemExit("no runbook to change")


def main() -> None:
    """Run the builds and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=ROOT / "runbooks")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=None)
    args = parser.parse_args()
    jobs = ("--jobs", str(args.jobs)) if args.jobs else ()
    os.environ.setdefault("SOURCE_DATE_EPOCH", "1700000000")
    with tempfile.TemporaryDirectory(prefix="bench-site-") as tmp:
        source = Path(tmp) / "runbooks"
        shutil.copytree(args.source, source)
        out = Path(tmp) / "site"
        build(source, out, "--no-pdf", "--no-cache", *jobs)  # warm-up (imports, file cache)
        cold, cold_pdfs = build(source, out, *jobs)
        pairs = []
        for _ in range(args.repeat):  # interleaved: a drift in the machine's load hits both
            baseline = build(source, out, "--no-pdf", "--no-cache", *jobs)
            pairs.append((baseline, build(source, out, *jobs)))
        no_pdf = min(p[0][0] for p in pairs)
        unchanged, unchanged_pdfs = min((p[1] for p in pairs), key=lambda r: r[0])
        changed_file = change_one(source)
        changed, changed_pdfs = build(source, out, *jobs)
        no_cache, no_cache_pdfs = build(source, out, "--no-cache", *jobs)
    print(
        f"runbook site build of {args.source} ({os.cpu_count()} cores; best of {args.repeat} "
        "where repeated):"
    )
    rows = [
        ("--no-pdf --no-cache build (baseline)", no_pdf, ""),
        ("cold build (empty cache)", cold, cold_pdfs),
        ("rebuild, unchanged", unchanged, unchanged_pdfs),
        (f"rebuild, {changed_file.name} changed", changed, changed_pdfs),
        ("build with --no-cache", no_cache, no_cache_pdfs),
    ]
    for name, seconds, pdfs in rows:
        print(f"  {name:42} {seconds:7.2f} s  {seconds / no_pdf:5.2f}x baseline  {pdfs}")
    print(
        f"  unchanged rebuild / --no-pdf build: {unchanged / no_pdf:.2f}x (goal: at most 1.5x); "
        f"cold / unchanged: {cold / unchanged:.1f}x"
    )


if __name__ == "__main__":
    main()
