"""Per-step cost of `runbook run` against rundoc 0.4.5 (issue 12); prints figures, asserts nothing.

One generated runbook of N no-op steps (fenced ```bash {#sN}`` blocks holding ``true``: rundoc
takes the tag as its interpreter and ignores the attributes, we take the id) is run, whole
command line against whole command line, by:

* ``runbook run`` with checkpoints, journal and signatures on (a key made with
  ``runbook keys init`` in a temporary folder, named by ``RUNBOOK_SIGNING_KEY``);
* ``rundoc run -y`` 0.4.5 (no checkpoint, no journal, no signature): the baseline;
* ``bash -c true`` N times from Python: the floor (one process per step).

The contestants alternate, round after round, each round in a rotated order (other work
on the machine then falls on all of them alike).  Printed: the medians as ms/step, and the
per-round ratio ours/rundoc (each round's own ratio, steadier when the machine's load
drifts) as its median and interquartile range over the rounds, with the verdict of issue
12's done-when ("no more than rundoc on the same file, in the same run"): it *holds* when
the median per-round ratio is at most 1, *holds beyond the noise* when even the upper
quartile is, and *is not met* otherwise.

``--before DIR`` adds a fourth contestant: another checkout of this project (for example
``git archive main | tar -x -C DIR``) run with the same interpreter and ``PYTHONPATH=DIR``
(ahead of the editable install), so an old and a new build are compared in the same
conditions; its ratios are printed the same way.

rundoc 0.4.5 pins click<8 and markdown<3, which cannot share our environment (click>=8.1),
so it is installed into a scratch virtual environment the first time
(``$RUNBOOK_BENCH_RUNDOC`` names an existing ``rundoc`` executable instead).  The
``bench`` extra of pyproject.toml names it for the record.

Both tools run as installed software does, from bytecode: ``PYTHONDONTWRITEBYTECODE`` is
dropped from their environment and ``PYTHONPYCACHEPREFIX`` names a folder of the temporary
directory, filled by one unmeasured run of each (rundoc's venv is byte-compiled by pip, our
editable checkout is not: with the variable set, as in this project's shells, every run of
ours would compile its ~100 modules anew, as ``benchmarks/bench_startup.py`` notes).
``--as-is`` keeps the environment as it is.

Run: ``python benchmarks/bench_steps.py`` (``--steps N``, ``--rounds N``, ``--as-is``,
``--before DIR``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

RUNDOC = "rundoc==0.4.5"
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "runbook-bench"


def rundoc_executable() -> Path:
    """Return a ``rundoc`` 0.4.5 executable, installing it into a scratch venv when needed."""
    named = os.environ.get("RUNBOOK_BENCH_RUNDOC")
    if named:
        return Path(named)
    folder = CACHE / "rundoc-0.4.5"
    exe = folder / "bin" / "rundoc"
    if not exe.exists():
        print(f"installing {RUNDOC} into {folder} (a scratch venv: it needs click<8) ...")
        venv.EnvBuilder(with_pip=True, clear=True).create(folder)
        subprocess.run([folder / "bin" / "pip", "install", "-q", RUNDOC], check=True)
    return exe


def write_runbook(path: Path, steps: int) -> None:
    """Write a runbook of ``steps`` no-op bash steps both tools run."""
    body = "".join(f"## Step {n}\n\n```bash {{#s{n}}}\ntrue\n```\n\n" for n in range(steps))
    path.write_text("# No-op\n\n" + body, encoding="utf-8")


def _timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def _floor(steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        subprocess.run(["bash", "-c", "true"], check=True)
    return time.perf_counter() - start


def quartiles(values: list[float]) -> tuple[float, float, float]:
    """``(lower quartile, median, upper quartile)`` of ``values`` (one value: itself thrice)."""
    if len(values) < 2:
        return values[0], values[0], values[0]
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3


def verdict(ratios: list[float]) -> str:
    """Issue 12's done-when for the per-round ratios ours/rundoc (see the module docstring)."""
    q1, median, q3 = quartiles(ratios)
    if q3 <= 1.0:
        return "HOLDS beyond the noise (upper quartile of the ratio <= 1)"
    if median <= 1.0:
        return "holds (median ratio <= 1), within the noise (upper quartile > 1)"
    if q1 <= 1.0:
        return "NOT MET (median ratio > 1), within the noise (lower quartile <= 1)"
    return "NOT MET (lower quartile of the ratio > 1)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--as-is", action="store_true", help="keep PYTHONDONTWRITEBYTECODE")
    parser.add_argument(
        "--before", type=Path, help="another checkout, run with PYTHONPATH (old build)"
    )
    args = parser.parse_args()
    rundoc = rundoc_executable()
    runbook = shutil.which("runbook", path=str(Path(sys.executable).parent)) or "runbook"
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        book = folder / "noop.md"
        write_runbook(book, args.steps)
        env = {**os.environ, "RUNBOOK_OPERATOR": "bench"}
        env.pop("PYTHONPATH", None)
        if not args.as_is:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(folder / "pycache")
        subprocess.run(
            [
                runbook,
                "keys",
                "init",
                "-o",
                str(folder / "keys"),
                "--state-dir",
                str(folder / "states"),
            ],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        env["RUNBOOK_SIGNING_KEY"] = str(folder / "keys" / "signing.key")
        before_env = {**env, "PYTHONPATH": str(args.before.resolve())} if args.before else env

        def ours(state: Path, run_env: dict[str, str]) -> float:
            argv = [runbook, "run", str(book), "--no-input", "--state-dir", str(state)]
            return _timed(argv, run_env)

        contestants = {
            "ours": lambda n: ours(folder / "states" / f"state-{n}", env),
            "rundoc": lambda n: _timed([str(rundoc), "run", "-y", str(book)], env),
            "floor": lambda n: _floor(args.steps),
        }
        if args.before:
            contestants["before"] = lambda n: ours(folder / "states" / f"before-{n}", before_env)
        for warm in ("ours", "rundoc", "before"):  # bytecode written here, not measured
            if warm in contestants:
                contestants[warm](f"warm-{warm}")
        names = list(contestants)
        times: dict[str, list[float]] = {name: [] for name in names}
        for n in range(args.rounds):
            order = names[n % len(names) :] + names[: n % len(names)]
            if n // len(names) % 2:
                order.reverse()
            for name in order:
                times[name].append(contestants[name](n))
        signatures = list((folder / "states" / "state-0" / "runs").glob("*/journal.sig.jsonl"))
        lines = len(signatures[0].read_text().splitlines()) if signatures else 0
        per = {k: statistics.median(v) / args.steps * 1000 for k, v in times.items()}
        how = "environment as is" if args.as_is else "both from bytecode"
        print(f"{args.steps}-step no-op runbook, {args.rounds} rotating rounds, medians ({how})")
        print(f"  bash -c true (floor)                   : {per['floor']:6.2f} ms/step")
        print(f"  rundoc 0.4.5 (baseline)                : {per['rundoc']:6.2f} ms/step")
        print(f"  runbook run (checkpoints, journal, sig): {per['ours']:6.2f} ms/step")
        if args.before:
            print(f"  runbook run, before ({args.before}): {per['before']:6.2f} ms/step")
        print(f"  signature lines in the first run       : {lines}")
        print(f"  ratio ours / floor (medians)           : {per['ours'] / per['floor']:6.2f}x")
        print("  per-round ratio                          median   [Q1 .. Q3]     min .. max")
        pairs = [("ours", "rundoc")]
        pairs += [("before", "rundoc"), ("ours", "before")] if args.before else []
        for a, b in pairs:
            ratios = [x / y for x, y in zip(times[a], times[b], strict=True)]
            q1, median, q3 = quartiles(ratios)
            print(
                f"  {a + ' / ' + b:<39}: {median:6.2f}x  [{q1:5.2f} .. {q3:5.2f}]"
                f"  {min(ratios):5.2f} .. {max(ratios):5.2f}"
            )
        ratios = [x / y for x, y in zip(times["ours"], times["rundoc"], strict=True)]
        print(f"  done-when (ours <= rundoc, same run)   : {verdict(ratios)}")
        if args.before:
            before = [x / y for x, y in zip(times["before"], times["rundoc"], strict=True)]
            print(f"  done-when for the before build         : {verdict(before)}")
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(f"  load average (1 min) at the end        : {load:.2f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    sys.exit(main())
