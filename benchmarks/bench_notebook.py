"""Overhead per step of the notebook route against ``runbook run`` (issue 4); asserts nothing.

For a local runbook of N no-op ``sh`` steps (default 20) and of one step, it
times, in this process:

- ``runbook run``'s machinery (:func:`runbook_engine.run.runner.start_run`:
  checkpoints and journal included), and
- ``runbook notebook run``'s (:func:`runbook_engine.notebook.execute.run_notebook`:
  notebook build, papermill, a real ipykernel, one ``Runner.execute(stop_after=)``
  per step cell, the executed notebook saved after every cell),

and reports the cost per step as ``(T(N) - T(1)) / (N - 1)`` (so the kernel's
start-up, a fixed cost, is reported apart), the fixed cost, and the ratio.
It also times both commands end to end as subprocesses.

Run: ``python benchmarks/bench_notebook.py`` (``--steps N``, ``--repeat R``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from runbook_engine.notebook.execute import run_notebook
from runbook_engine.run.lifecycle import RunOptions, start_run
from runbook_engine.run.store import CheckpointStore


def write_runbook(folder: Path, steps: int) -> Path:
    """Write a runbook of ``steps`` local ``sh`` steps, each printing one line."""
    parts = [f"---\nid: bench-{steps}\ntitle: Benchmark, {steps} steps\n---\n# Benchmark\n"]
    for n in range(1, steps + 1):
        parts.append(f"Step {n}.\n\n```sh {{#s{n:03d}}}\necho step {n}\n```\n")
    path = folder / f"bench-{steps}.md"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def best_seconds(action: Callable[[int], None], repeat: int) -> float:
    """Shortest wall time (seconds) of ``action(i)`` over ``repeat`` calls, after one warm-up.

    The minimum, not the mean: on a shared machine the noise only ever adds time.
    """
    action(-1)
    times = []
    for i in range(repeat):
        start = time.perf_counter()
        action(i)
        times.append(time.perf_counter() - start)
    return min(times)


def time_cli_run(runbook: Path, state: Path, repeat: int) -> float:
    def once(i: int) -> None:
        start_run(
            runbook,
            None,
            {},
            CheckpointStore(state),
            RunOptions(operator="bench"),
            run_id=f"cli-{runbook.stem}-{i}",
        )

    return best_seconds(once, repeat)


def time_notebook_run(runbook: Path, state: Path, repeat: int) -> float:
    def once(i: int) -> None:
        outcome = run_notebook(
            runbook,
            None,
            state_dir=state,
            overrides={},
            answers=None,
            run_id=f"nb-{runbook.stem}-{i}",
            operator="bench",
            change_id=None,
        )
        if outcome.exit_status:
            raise SystemExit(f"notebook run failed: {outcome.message}")

    return best_seconds(once, repeat)


def time_commands(runbook: Path, state: Path, cwd: Path, repeat: int) -> tuple[float, float]:
    env = {**os.environ, "RUNBOOK_STATE_DIR": str(state), "RUNBOOK_OPERATOR": "bench"}

    def command(*args: str) -> Callable[[int], None]:
        def once(i: int) -> None:
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "runbook_engine",
                    *args,
                    "--run-id",
                    f"{args[0]}-sub-{runbook.stem}-{i}",
                ],
                cwd=cwd,
                env=env,
                check=True,
                capture_output=True,
            )

        return once

    run = best_seconds(command("run", str(runbook), "--no-input", "--json"), repeat)
    nb = best_seconds(command("notebook", "run", str(runbook)), repeat)
    return run, nb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-notebook-") as tmp:
        folder = Path(tmp)
        os.chdir(folder)
        big, one = write_runbook(folder, args.steps), write_runbook(folder, 1)
        state = folder / "state"
        run_n, run_1 = time_cli_run(big, state, args.repeat), time_cli_run(one, state, args.repeat)
        nb_n = time_notebook_run(big, state, args.repeat)
        nb_1 = time_notebook_run(one, state, args.repeat)
        sub_run, sub_nb = time_commands(big, state, folder, args.repeat)
    per_run = (run_n - run_1) / (args.steps - 1) * 1000
    per_nb = (nb_n - nb_1) / (args.steps - 1) * 1000
    print(
        f"Local runbook of {args.steps} no-op sh steps (best of {args.repeat}; "
        f"Python {sys.version.split()[0]}):"
    )
    print(
        f"  runbook run (in process):     {run_n * 1000:8.1f} ms total, "
        f"{per_run:6.2f} ms/step, fixed {(run_1 - per_run / 1000) * 1000:7.1f} ms"
    )
    print(
        f"  notebook route (papermill):   {nb_n * 1000:8.1f} ms total, "
        f"{per_nb:6.2f} ms/step, fixed {(nb_1 - per_nb / 1000) * 1000:7.1f} ms "
        "(kernel start, build, save)"
    )
    print(
        f"  overhead of the notebook route: {per_nb - per_run:+.2f} ms/step, "
        f"ratio per step {per_nb / per_run:.2f}x, ratio total {nb_n / run_n:.2f}x"
    )
    print(
        f"  end to end as commands:       runbook run {sub_run * 1000:.0f} ms, "
        f"runbook notebook run {sub_nb * 1000:.0f} ms ({sub_nb / sub_run:.2f}x)"
    )


if __name__ == "__main__":
    main()
