"""Benchmark of ``runbook lint`` (issue 6, part 3).  Prints figures and ratios; asserts nothing.

Lint throughput (runbooks/s) of the seed library (runbooks/) and of a generated
500-runbook library (``bench_core.generate_library``), against markdown-it-py's
bare ``parse`` of the same files: the floor, since lint parses with it and then
tailors, renders no output and runs every rule.

Run: ``python benchmarks/bench_lint.py`` (``--library N`` to change the size).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from markdown_it import MarkdownIt

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_core import generate_library

from runbook_engine.lint.check import lint_paths, runbook_files
from runbook_engine.lint.rules.params import template_names
from runbook_engine.tailor import sandbox, tailoring

ROOT = Path(__file__).resolve().parents[1]


def _best(func, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def bench(folder: Path, label: str) -> None:
    """Time lint of every runbook under ``folder`` against a bare markdown-it-py parse."""
    files = runbook_files([folder])
    if not files:
        print(f"{label}: no runbooks")
        return
    md = MarkdownIt("commonmark")
    texts = [p.read_text(encoding="utf-8") for p in files]
    size = sum(len(t.encode()) for t in texts)
    result: list = []

    def bare() -> None:
        for text in texts:
            md.parse(text)

    def lint() -> None:
        # as in one `runbook lint` process: nothing parsed or cached yet
        template_names.cache_clear()
        sandbox._parse_cached.cache_clear()
        tailoring._compiled.cache_clear()
        result[:] = [lint_paths([folder])]

    t_bare, t_lint = _best(bare), _best(lint)
    _, problems = result[0]
    codes = Counter(p.code for p in problems)
    print(
        f"{label}: {len(files)} runbooks, {size / 1024:.0f} KiB, "
        f"{len(problems)} problems {dict(sorted(codes.items()))}"
    )
    for name, seconds in (("markdown-it-py bare parse", t_bare), ("runbook lint", t_lint)):
        print(f"  {name:<26}: {seconds * 1000:8.1f} ms  ({len(files) / seconds:8.0f} runbooks/s)")
    print(f"  ratio lint / bare         : {t_lint / t_bare:8.2f}x")


def main() -> None:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--library", type=int, default=500, help="generated runbooks (500)")
    args = parser.parse_args()
    bench(ROOT / "runbooks", "seed library (runbooks/)")
    with tempfile.TemporaryDirectory() as tmp:
        generate_library(Path(tmp), args.library)
        bench(Path(tmp), f"generated library ({args.library} runbooks)")


if __name__ == "__main__":
    main()
