"""Benchmark: incremental ``runbook site build`` against a ``--no-pdf`` build; asserts nothing.

On a copy of the library (``runbooks/``, or ``--source``) it times, each as a
``runbook site build`` command end to end:

- a build with ``--no-pdf`` (the baseline: pages, printable HTML, notebooks),
- a cold build (empty PDF cache: every PDF rendered),
- a rebuild of the unchanged library (every PDF from the cache),
- a rebuild after one runbook changed (only its PDFs rendered),
- a build with ``--no-cache`` (every PDF rendered, the cache left alone),

and prints each time and its ratio to the baseline measured in the same run.
Timed builds other than the cold ones are the best of ``--repeat``.

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
    """Run ``runbook site build``; return (seconds, its PDF line)."""
    cmd = [sys.executable, "-m", "runbook_engine", "site", "build"]
    cmd += ["--source", str(source), "-o", str(out), *extra]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise SystemExit(f"site build failed ({done.returncode}):\n{done.stderr}")
    pdf_line = next((ln for ln in done.stdout.splitlines() if ln.startswith("PDFs:")), "")
    return seconds, pdf_line


def best(source: Path, out: Path, repeat: int, *extra: str) -> tuple[float, str]:
    """Best of ``repeat`` builds (the noise on a shared machine only adds time)."""
    runs = [build(source, out, *extra) for _ in range(repeat)]
    return min(runs, key=lambda r: r[0])


def change_one(source: Path) -> Path:
    """Change the prose of one runbook (the first with a step); return it."""
    for path in sorted(source.rglob("*.md")):
        text = path.read_text(encoding="utf-8")
        if "```" in text and not path.name.startswith("_") and "_shared" not in path.parts:
            text = re.sub(r"\n# (.*)\n", r"\n# \1\n\nChanged for the benchmark.\n", text, count=1)
            path.write_text(text, encoding="utf-8")
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
        no_pdf, _ = best(source, out, args.repeat, "--no-pdf", *jobs)
        cold, cold_pdfs = build(source, out, *jobs)
        unchanged, unchanged_pdfs = best(source, out, args.repeat, *jobs)
        changed_file = change_one(source)
        changed, changed_pdfs = build(source, out, *jobs)
        no_cache, no_cache_pdfs = build(source, out, "--no-cache", *jobs)
    print(
        f"runbook site build of {args.source} ({os.cpu_count()} cores; best of {args.repeat} "
        "where repeated):"
    )
    rows = [
        ("--no-pdf build (baseline)", no_pdf, ""),
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
