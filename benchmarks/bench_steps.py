"""Per-step cost of `runbook run` against rundoc 0.4.5 (issue 12); prints figures, asserts nothing.

One generated runbook of N no-op steps (fenced ```bash {#sN}`` blocks holding ``true``: rundoc
takes the tag as its interpreter and ignores the attributes, we take the id) is run, whole
command line against whole command line, by:

* ``runbook run`` with checkpoints, journal and signatures on (a key made with
  ``runbook keys init`` in a temporary folder, named by ``RUNBOOK_SIGNING_KEY``);
* ``rundoc run -y`` 0.4.5 (no checkpoint, no journal, no signature): the baseline;
* ``bash -c true`` N times from Python: the floor (one process per step).

The three alternate, round after round (other work on the machine then falls on all of
them alike), and the medians are printed as ms/step with the ratio ours/rundoc, and the
median of each round's own ratio (steadier when the machine's load drifts).

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

Run: ``python benchmarks/bench_steps.py`` (``--steps N``, ``--rounds N``, ``--as-is``).
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--as-is", action="store_true", help="keep PYTHONDONTWRITEBYTECODE")
    args = parser.parse_args()
    rundoc = rundoc_executable()
    runbook = shutil.which("runbook", path=str(Path(sys.executable).parent)) or "runbook"
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        book = folder / "noop.md"
        write_runbook(book, args.steps)
        env = {**os.environ, "RUNBOOK_OPERATOR": "bench"}
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
        warm = [runbook, "run", str(book), "--no-input", "--state-dir", str(folder / "warm")]
        _timed(warm, env)  # bytecode written here, not measured
        _timed([str(rundoc), "run", "-y", str(book)], env)
        times: dict[str, list[float]] = {"ours": [], "rundoc": [], "floor": []}
        for n in range(args.rounds):
            state = folder / "states" / f"state-{n}"
            order = ["ours", "rundoc", "floor"] if n % 2 == 0 else ["floor", "rundoc", "ours"]
            for name in order:
                if name == "ours":
                    argv = [runbook, "run", str(book), "--no-input", "--state-dir", str(state)]
                    times[name].append(_timed(argv, env))
                elif name == "rundoc":
                    times[name].append(_timed([str(rundoc), "run", "-y", str(book)], env))
                else:
                    times[name].append(_floor(args.steps))
        signatures = list((folder / "states" / "state-0" / "runs").glob("*/journal.sig.jsonl"))
        lines = len(signatures[0].read_text().splitlines()) if signatures else 0
        per = {k: statistics.median(v) / args.steps * 1000 for k, v in times.items()}
        how = "environment as is" if args.as_is else "both from bytecode"
        print(f"{args.steps}-step no-op runbook, {args.rounds} alternating rounds, medians ({how})")
        print(f"  bash -c true (floor)                   : {per['floor']:6.2f} ms/step")
        print(f"  rundoc 0.4.5 (baseline)                : {per['rundoc']:6.2f} ms/step")
        print(f"  runbook run (checkpoints, journal, sig): {per['ours']:6.2f} ms/step")
        print(f"  signature lines in the first run       : {lines}")
        print(f"  ratio ours / rundoc                    : {per['ours'] / per['rundoc']:6.2f}x")
        rounds = [o / r for o, r in zip(times["ours"], times["rundoc"], strict=True)]
        print(f"  ratio ours / rundoc, median of rounds  : {statistics.median(rounds):6.2f}x")
        print(f"  ratio ours / floor                     : {per['ours'] / per['floor']:6.2f}x")


if __name__ == "__main__":
    sys.exit(main())
