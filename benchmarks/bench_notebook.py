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

With ``--marginal`` it instead times the notebook route at 20, 100 and 400 steps
(``--sizes``) and reports the marginal cost per step of each interval, the
ratio of the last interval's to the first's (linear: about 1), and the same
figures for the baseline measured in the same run: plain papermill (its own
engine, saving after every cell) executing a notebook of as many one-line cells;
and for the step cells' calls made in this process without kernel or papermill
(the engine's own share of the route).

Run: ``python benchmarks/bench_notebook.py`` (``--steps N``, ``--repeat R``,
``--marginal``, ``--sizes 20,100,400``).
"""

from __future__ import annotations

import argparse
import itertools
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


def time_papermill(steps: int, folder: Path, repeat: int) -> float:
    """Best wall time of plain papermill (default engine) on ``steps`` one-line cells."""
    import nbformat
    import papermill

    from runbook_engine.notebook.execute import _quiet, kernel_environment

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [nbformat.v4.new_code_cell(f"print('step {n}')") for n in range(1, steps + 1)]

    def once(i: int) -> None:
        with (
            tempfile.TemporaryDirectory(prefix="kernel-", dir=folder) as tmp,
            kernel_environment(Path(tmp)),
            _quiet(Path(tmp) / "kernel.log"),
        ):
            papermill.execute_notebook(
                nb,
                str(folder / f"papermill-{steps}-{i}.ipynb"),
                kernel_name="python3",
                log_output=False,
                progress_bar=False,
                cwd=str(folder),
            )

    return best_seconds(once, repeat)


def time_cells(runbook: Path, state: Path, repeat: int) -> float:
    """Best wall time of the step cells' calls made in this process (no kernel, no papermill):
    :func:`~runbook_engine.notebook.api.attach`, one ``step()`` per step, ``finish()``."""
    import contextlib
    import io

    from runbook_engine.notebook import api

    steps = [f"s{n:03d}" for n in range(1, int(runbook.stem.split("-")[1]) + 1)]

    def once(i: int) -> None:
        api._CURRENT = None  # a new run, as in a new kernel
        with contextlib.redirect_stdout(io.StringIO()):
            run = api.attach(
                runbook_file=str(runbook),
                state_dir=str(state),
                run_id=f"cells-{runbook.stem}-{i}",
                operator="bench",
            )
            for step in steps:
                run.step(step)
            run.finish()

    return best_seconds(once, repeat)


def marginal(sizes: list[int], repeat: int) -> None:
    """Print the marginal cost per step between ``sizes`` for the route and for papermill."""
    with tempfile.TemporaryDirectory(prefix="bench-notebook-") as tmp:
        folder = Path(tmp)
        os.chdir(folder)
        state = folder / "state"
        route, plain, cells = {}, {}, {}
        for n in sizes:
            book = write_runbook(folder, n)
            route[n] = time_notebook_run(book, state, repeat)
            plain[n] = time_papermill(n, folder, repeat)
            cells[n] = time_cells(book, state, repeat)
            print(
                f"  {n} steps: route {route[n]:.2f} s, papermill {plain[n]:.2f} s, "
                f"cells in process {cells[n]:.2f} s",
                flush=True,
            )
    print(f"Marginal cost per step, notebook route vs plain papermill (best of {repeat}):")
    growth = {}
    for name, times in (
        ("notebook route", route),
        ("papermill alone", plain),
        ("cells in process", cells),
    ):
        pairs = list(itertools.pairwise(sizes))
        costs = [(times[b] - times[a]) / (b - a) * 1000 for a, b in pairs]
        growth[name] = costs[-1] / costs[0]
        totals = ", ".join(f"{n}: {t:.2f} s" for n, t in times.items())
        spans = ", ".join(
            f"{a}->{b}: {c:.1f} ms/step" for (a, b), c in zip(pairs, costs, strict=True)
        )
        print(f"  {name:16} totals {totals}")
        print(f"  {'':16} {spans}; last/first {growth[name]:.2f}x (linear: 1.00x)")
    last = sizes[-1]
    print(
        f"  route/papermill at {last} steps: {route[last] / plain[last]:.2f}x total; growth of the "
        f"marginal cost: route {growth['notebook route']:.2f}x, "
        f"papermill {growth['papermill alone']:.2f}x, cells {growth['cells in process']:.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--marginal", action="store_true", help="marginal cost per step by size")
    parser.add_argument("--sizes", default="20,100,400", help="step counts for --marginal")
    args = parser.parse_args()
    if args.marginal:
        marginal([int(n) for n in args.sizes.split(",")], args.repeat)
        return
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
