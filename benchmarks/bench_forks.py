"""Fan-out cost of `runbook run --forks N` against `xargs -P N` (issue 12); prints figures only.

One step targets a role of N local hosts and runs ``sleep 0.2``; ``runbook run --forks N``
(checkpoints, journal and signatures on, a key made with ``runbook keys init`` in a
temporary folder) is timed, whole command line, against ``xargs -P N`` starting
``sh -c 'sleep 0.2'`` N times (the floor of running N commands at once from a shell) and
against one run of the same runbook on a single host (our start-up and one step, so the
fan-out's own cost is ``ours - single``).  The three alternate, round after round, and the
medians are printed with their ratios.

Run: ``python benchmarks/bench_forks.py`` (``--hosts N``, ``--rounds N``, ``--sleep S``).
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
from pathlib import Path

RUNBOOK = """---
id: fan
roles:
  web: web servers
---
# Fan-out

```sh {{#nap target=web timeout=60}}
sleep {sleep}
```
"""


def _env(hosts: int) -> str:
    rows = "".join(
        f"    - {{name: h{n}, address: localhost, transport: local}}\n" for n in range(hosts)
    )
    return f"name: fan\nroles:\n  web:\n{rows}"


def _timed(argv: list[str], env: dict[str, str], cwd: Path, stdin: bytes | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, cwd=cwd, input=stdin, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--sleep", type=float, default=0.2)
    args = parser.parse_args()
    runbook = shutil.which("runbook", path=str(Path(sys.executable).parent)) or "runbook"
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "fan.md").write_text(RUNBOOK.format(sleep=args.sleep), encoding="utf-8")
        (folder / "env.yaml").write_text(_env(args.hosts), encoding="utf-8")
        (folder / "one.yaml").write_text(_env(1), encoding="utf-8")
        env = {**os.environ, "RUNBOOK_OPERATOR": "bench"}
        keys = ["keys", "init", "-o", str(folder / "keys"), "--state-dir", str(folder / "s")]
        subprocess.run([runbook, *keys], env=env, check=True, capture_output=True)
        env["RUNBOOK_SIGNING_KEY"] = str(folder / "keys" / "signing.key")
        jobs = "".join(f"{n}\n" for n in range(args.hosts)).encode()
        xargs = ["xargs", "-P", str(args.hosts), "-n", "1", "sh", "-c", f"sleep {args.sleep}"]
        times: dict[str, list[float]] = {"ours": [], "single": [], "xargs": []}
        for n in range(args.rounds):
            order = ["ours", "single", "xargs"] if n % 2 == 0 else ["xargs", "single", "ours"]
            for name in order:
                if name == "xargs":
                    times[name].append(_timed(xargs, env, folder, jobs))
                    continue
                envfile = "env.yaml" if name == "ours" else "one.yaml"
                argv = [runbook, "run", "fan.md", "--env", envfile, "--no-input"]
                argv += ["--forks", str(args.hosts), "--state-dir", str(folder / f"{name}-{n}")]
                times[name].append(_timed(argv, env, folder))
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"{args.hosts} hosts x sleep {args.sleep}, {args.rounds} alternating rounds, medians")
        print(f"  xargs -P {args.hosts} (floor)                 : {med['xargs']:6.3f} s")
        print(f"  runbook run, 1 host (start-up + 1 step)   : {med['single']:6.3f} s")
        print(f"  runbook run --forks {args.hosts}                  : {med['ours']:6.3f} s")
        fan = med["ours"] - med["single"]
        print(f"  fan-out's own cost (ours - 1 host)        : {fan:6.3f} s")
        print(f"  ratio ours / xargs                        : {med['ours'] / med['xargs']:6.2f}x")
        print(f"  ratio fan-out's cost / xargs              : {fan / med['xargs']:6.2f}x")


if __name__ == "__main__":
    sys.exit(main())
