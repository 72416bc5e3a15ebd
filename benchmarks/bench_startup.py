"""Benchmark: start-up of ``runbook plan``, ``render`` and ``run``; asserts nothing.

Times each command end to end (best of ``--repeat``) on a seed runbook with its lab
environment, against ``python -c pass`` (the interpreter alone) and ``runbook
--help`` (the CLI's imports) measured in the same run, and lists from
``python -X importtime`` the heaviest imports of each command (cumulative ms),
with the share of the heavy optional ones (jsonschema, rich, nbformat, weasyprint).
jsonschema is imported only to validate a YAML body (probe, registry, service,
approval): ``runbook plan`` of a runbook without one shows what the others cost.
``runbook run`` of a one-step no-op runbook (journal and checkpoints in a temporary
state folder) is the fixed cost of a run (issue 12).

Run: ``python benchmarks/bench_startup.py`` (``--repeat R``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "runbooks" / "exchange2003" / "rpc-over-https.md"
ENV = ROOT / "runbooks" / "exchange2003" / "environments" / "lab.yaml"
PLAIN = ROOT / "runbooks" / "exchange2003" / "mailbox-store-add.md"  # no YAML bodies
HEAVY = ("jsonschema", "rich", "nbformat", "weasyprint", "markdown_it", "jinja2")


#: As installed (pip writes bytecode): modules load from ``__pycache__``, not compiled anew
#: (a shell with PYTHONDONTWRITEBYTECODE=1 would add ~80 ms of compiling to every run).
ENV_VARS = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def best(cmd: list[str], repeat: int) -> float:
    """Shortest wall time of ``cmd`` over ``repeat`` runs (after one warm-up)."""
    subprocess.run(cmd, capture_output=True, check=True, env=ENV_VARS)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True, env=ENV_VARS)
        times.append(time.perf_counter() - start)
    return min(times)


def imports(cmd: list[str]) -> dict[str, float]:
    """Cumulative import time (ms) by top-level-ish module name, from ``-X importtime``."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *cmd[1:]],
        capture_output=True,
        text=True,
        check=True,
        env=ENV_VARS,
    )
    out: dict[str, float] = {}
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.split("|")
        if cumulative.strip().isdigit():
            out[name.strip()] = int(cumulative) / 1000
    return out


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    runbook = [sys.executable, "-m", "runbook_engine"]
    with tempfile.TemporaryDirectory() as tmp:
        one = Path(tmp) / "one.md"
        one.write_text("# One\n\n## Step\n\n```bash {#s0}\ntrue\n```\n", encoding="utf-8")
        state = ("--state-dir", str(Path(tmp) / "state"), "--no-input")
        commands = {
            "python -c pass (baseline)": [sys.executable, "-c", "pass"],
            "runbook --help": [*runbook, "--help"],
            "runbook plan": [*runbook, "plan", str(BOOK), "--env", str(ENV)],
            "runbook plan (no YAML bodies)": [*runbook, "plan", str(PLAIN), "--env", str(ENV)],
            "runbook render --to md": [
                *runbook,
                *("render", str(BOOK), "--env", str(ENV), "--to", "md"),
                *("-o", str(Path(tmp) / "guide.md")),
            ],
            "runbook render --to html": [
                *runbook,
                "render",
                str(BOOK),
                "--env",
                str(ENV),
                "--to",
                "html",
                "-o",
                str(Path(tmp) / "guide.html"),
            ],
        }
        commands["runbook run (1 no-op step)"] = [*runbook, "run", str(one), *state]
        times = {name: best(cmd, args.repeat) for name, cmd in commands.items()}
        heavy = {
            name: imports(commands[name])
            for name in (
                "runbook plan",
                "runbook plan (no YAML bodies)",
                "runbook render --to md",
                "runbook render --to html",
                "runbook run (1 no-op step)",
            )
        }
    base = times["python -c pass (baseline)"]
    print(f"Start-up, best of {args.repeat} (Python {sys.version.split()[0]}):")
    for name, seconds in times.items():
        print(f"  {name:30} {seconds * 1000:7.0f} ms  {seconds / base:5.1f}x the interpreter")
    for name, table in heavy.items():
        top = sorted(((ms, mod) for mod, ms in table.items() if "." not in mod), reverse=True)[:6]
        listed = ", ".join(f"{mod} {ms:.0f}" for ms, mod in top)
        optional = ", ".join(f"{mod} {table[mod]:.0f}" for mod in HEAVY if mod in table)
        print(f"  {name}: {optional or 'none of ' + ', '.join(HEAVY)}; heaviest: {listed}")


if __name__ == "__main__":
    main()
