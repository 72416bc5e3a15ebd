"""Benchmarks of the core (issue 2, part 9).  Prints figures and ratios; asserts nothing.

1. Parse-and-validate throughput of the seed runbooks and of a generated
   500-runbook library, against markdown-it-py's bare ``parse`` of the same
   files (the floor: we parse with it, then do our own work).
2. Overhead per step of a 200-step local no-op runbook run through
   ``runbook run`` machinery (checkpoints and journal included) against raw
   ``subprocess.run`` of the same commands.

Run: ``python benchmarks/bench_core.py`` (``--steps N``, ``--library N`` to change sizes).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from markdown_it import MarkdownIt

from runbook_engine.run.lifecycle import RunOptions, start_run
from runbook_engine.run.store import CheckpointStore
from runbook_engine.source.parser import parse_file
from runbook_engine.tailor.tailoring import tailor

ROOT = Path(__file__).resolve().parents[1]


def _seed_files() -> list[Path]:
    return sorted(
        p
        for p in (ROOT / "runbooks").rglob("*.md")
        if not p.name.startswith("_") and p.name != "FORMAT.md" and "_shared" not in p.parts
    )


def generate_library(folder: Path, count: int) -> list[Path]:
    """Write ``count`` runbooks of 12 steps each (mixed kinds, lists, quotes) into ``folder``."""
    files = []
    for n in range(count):
        steps = []
        for s in range(12):
            kind = ("sh", "cmd", "manual", "python")[s % 4]
            target = "" if kind in ("sh", "python") else " target=srv"
            steps.append(
                f"{s + 1}. Step {s} of runbook {n} uses {{{{ host }}}}:\n\n"
                f'   ```{kind} {{#s{s}{target} title="Step {s} of {{x}}" timeout=30}}\n'
                f"   echo step {s} on {{{{ host }}}}\n   ```\n"
            )
        text = (
            f"---\nid: gen-{n}\ntitle: Generated {n}\nroles:\n  srv: a server\n"
            "parameters:\n  host:\n    type: hostname\n    default: srv1\n---\n"
            f"# Generated runbook {n}\n\nSome prose with **bold** and a [link](https://example.com).\n\n"
            + "\n".join(steps)
        )
        path = folder / f"gen-{n}.md"
        path.write_text(text, encoding="utf-8")
        files.append(path)
    return files


def _time(func, repeat: int = 3) -> float:
    best = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        best.append(time.perf_counter() - start)
    return min(best)


def bench_parse(files: list[Path], label: str) -> None:
    md = MarkdownIt("commonmark")
    texts = [p.read_text(encoding="utf-8") for p in files]
    total_bytes = sum(len(t.encode()) for t in texts)

    def bare() -> None:
        for text in texts:
            md.parse(text)

    def ours() -> None:
        for path in files:
            tailor(parse_file(path), None, None)

    t_bare, t_ours = _time(bare), _time(ours)
    print(f"{label}: {len(files)} runbooks, {total_bytes / 1024:.0f} KiB")
    print(
        f"  markdown-it-py bare parse : {t_bare * 1000:8.1f} ms  "
        f"({len(files) / t_bare:8.0f} runbooks/s)"
    )
    print(
        f"  parse + validate + tailor : {t_ours * 1000:8.1f} ms  "
        f"({len(files) / t_ours:8.0f} runbooks/s)"
    )
    print(f"  ratio ours / bare         : {t_ours / t_bare:8.2f}x")


def bench_steps(count: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        body = "".join(f"```sh {{#s{n}}}\ntrue\n```\n\n" for n in range(count))
        runbook = folder / "noop.md"
        runbook.write_text("# No-op\n\n" + body, encoding="utf-8")

        def raw() -> None:
            for _ in range(count):
                subprocess.run(["sh", "-c", "true"], check=True)

        def ours() -> None:
            store = CheckpointStore(folder / f"state-{time.monotonic_ns()}")
            start_run(runbook, None, {}, store, RunOptions(operator="bench"))
            store.close()

        t_raw = statistics.median(_time(raw, 1) for _ in range(3))
        t_ours = statistics.median(_time(ours, 1) for _ in range(3))
        per_raw, per_ours = t_raw / count * 1000, t_ours / count * 1000
        print(f"{count}-step local no-op runbook")
        print(f"  raw subprocess.run        : {per_raw:6.2f} ms/step")
        print(f"  runbook run (checkpoints) : {per_ours:6.2f} ms/step")
        print(
            f"  overhead                  : {per_ours - per_raw:6.2f} ms/step, "
            f"ratio {t_ours / t_raw:.2f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--library", type=int, default=500)
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    seeds = _seed_files()
    if seeds:
        bench_parse(seeds, "seed runbooks")
    with tempfile.TemporaryDirectory() as tmp:
        bench_parse(generate_library(Path(tmp), args.library), "generated library")
    bench_steps(args.steps)


if __name__ == "__main__":
    sys.exit(main())
