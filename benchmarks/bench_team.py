"""Team mode's cost: the PostgreSQL store, and queued runs on workers (issue 17); figures only.

Two parts, each against a baseline measured in the same invocation, alternating round
after round (other work on the machine then falls on both alike), medians printed:

1. **Per-step overhead.**  A generated runbook of ``--steps`` (200) no-op steps
   (```` ```bash {#sN} ```` blocks holding ``true``) is run whole command line against whole
   command line with ``runbook run --no-input``: on the PostgreSQL store
   (``--store postgresql://.../bench_team_<id>_steps``, a fresh database made ready with
   ``runbook store upgrade``; each round its own working-copy folder) and on the default
   SQLite state folder (each round a fresh one).  Printed: ms/step of each, the ratio
   PG/SQLite of the medians and the median of each round's own ratio.

2. **Concurrent runs on workers.**  ``--runs`` (20) runs of ``--run-steps`` (50) no-op steps:

   * *queue*: ``--workers`` (4) ``runbook worker`` processes (``--concurrency 1`` each, so 4
     runs at once), started before the round and kept for all rounds; the runs are put on
     the queue by ``runbook run --queue --store URL --queue-url URL``, ``--enqueuers``
     commands at a time (default: as many as ``--workers``, as the baseline starts its
     runs; ``--enqueuers 1``: one after the other, as one shell script would), store and
     queue in one fresh database, ``bench_team_<id>_queue``.  Wall time is
     from the start of the first ``run --queue`` until the last worker reported its job
     finished (``runbook worker --json`` prints one line per finished job).
   * *inline* (the baseline): the same runs as ``runbook run`` processes, ``--workers`` at
     a time, on one shared SQLite state folder; wall time from the first start until the
     last process exited.
   * *inline PG*: the same on the PostgreSQL store (each round a working-copy folder), to
     tell what the store costs from what the queue and workers cost.

   The three take turns at going first, round after round.

   Printed for each: wall time, when the last run was on its way (queue: its ``run --queue``
   had returned; inline: its process was started), throughput (steps/s, runs/min) and
   three latencies, read after the round (untimed) from ``runbook status RUN --json``:
   the 95th percentile of the *step duration* (``finished_at - started_at`` of each
   step), of the *step turnaround* (``finished_at`` minus the moment the step could
   start: the previous step's ``finished_at``, for a run's first step the moment the
   benchmark started that run's ``run --queue`` or ``run`` command; so it holds the
   bookkeeping between steps and, for first steps, the wait for a worker), and of the
   *run latency* (that start to the run's last ``finished_at``).  Then the ratios
   queue/inline (and, for wall time and turnaround, inline PG/inline, queue/inline PG).

**The shared state folder.**  ``run --queue`` on a PostgreSQL store writes the run's
``run-started`` record only to the enqueuing machine's working copy (``STATE_DIR/team/``),
not to the database (as of commit ba4cf6f): a worker with a working-copy folder of its own
then refuses every job ("was never started ... no journal").  So by default the
enqueuing commands and the workers share one state folder, as they do on one machine with
the default folder, and a worker's ``runbook resume`` pushes the record when it takes the
run.  ``--worker-folders`` gives each worker a folder of its own, as on separate machines
(the case the team store is for; it fails until that is fixed, and the benchmark says so).

Both tools run from bytecode (as ``benchmarks/bench_steps.py`` explains: without it every
process would compile its modules anew); ``--as-is`` keeps the environment as it is.  A
signing key is made with ``runbook keys init`` in the temporary folder, which is also the
processes' configuration and state home (nothing lands in ``~/.config``).

The databases (``bench_team_*``) are created on ``--pg`` (env ``RUNBOOK_BENCH_PG``, default
the local server's ``postgres`` database) and dropped at the end, also on Ctrl-C or
SIGTERM, when every process the benchmark started (and only those) is stopped.

Run: ``python benchmarks/bench_team.py`` (``--steps N``, ``--run-steps N``, ``--runs N``,
``--workers N``, ``--enqueuers N``, ``--repeat N`` rounds of part 1, ``--team-repeat N``
rounds of part 2, ``--part steps|team|both``, ``--quick`` for a smoke test with tiny
sizes, ``--worker-folders``).  Needs the ``team`` extra (psycopg, procrastinate) and a
PostgreSQL server.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

PG = os.environ.get("RUNBOOK_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
#: Variables of the caller's set-up that would change where runs go and how they sign.
_CLEARED = ("RUNBOOK_STORE", "RUNBOOK_QUEUE", "RUNBOOK_STATE_DIR", "RUNBOOK_SIGNING_KEY")


class BenchError(Exception):
    """The benchmark cannot go on; the message says why."""


def write_runbook(path: Path, steps: int) -> None:
    """Write a runbook of ``steps`` no-op bash steps (ids ``s0``...)."""
    body = "".join(f"## Step {n}\n\n```bash {{#s{n}}}\ntrue\n```\n\n" for n in range(steps))
    path.write_text("# No-op\n\n" + body, encoding="utf-8")


# processes ---------------------------------------------------------------------------
_STARTED: set[subprocess.Popen[Any]] = set()
_LOCK = threading.Lock()


def _start(argv: list[str], env: dict[str, str], **kwargs: Any) -> subprocess.Popen[Any]:
    """Start a process in a session of its own (a terminal's Ctrl-C reaches only us) and
    remember it, so :func:`_stop_all` stops it."""
    proc = subprocess.Popen(argv, env=env, start_new_session=True, **kwargs)
    with _LOCK:
        _STARTED.add(proc)
    return proc


def _call(argv: list[str], env: dict[str, str]) -> str:
    """Run ``argv`` to its end; return its standard output.

    Raises:
        BenchError: it exited non-zero (its standard error in the message).
    """
    proc = _start(argv, env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate()
    with _LOCK:
        _STARTED.discard(proc)
    if proc.returncode != 0:
        raise BenchError(f"{' '.join(argv[1:4])} ... exited {proc.returncode}: {err.strip()}")
    return out


def _stop_all() -> None:
    """SIGTERM every process the benchmark started and still runs; SIGKILL after 15 s."""
    with _LOCK:
        procs = [p for p in _STARTED if p.poll() is None]
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
    deadline = time.monotonic() + 15
    for proc in procs:
        try:
            proc.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _interrupted(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


# databases ---------------------------------------------------------------------------
@contextlib.contextmanager
def databases(base: str, names: list[str]) -> Iterator[list[str]]:
    """Create the databases ``names`` on the server of ``base``; yield their URLs; drop
    them at the end (after the processes using them stopped).

    Raises:
        BenchError: psycopg is missing or the server does not answer.
    """
    try:
        import psycopg
    except ImportError:
        raise BenchError("psycopg is missing: pip install 'runbook-engine[team]'") from None
    try:
        admin = psycopg.connect(base, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        raise BenchError(f"no PostgreSQL server answers at {base} (set --pg): {exc}") from None
    made: list[str] = []
    try:
        for name in names:
            admin.execute(f'CREATE DATABASE "{name}"')
            made.append(name)
        yield [urlunsplit(urlsplit(base)._replace(path=f"/{n}")) for n in names]
    finally:
        _stop_all()
        for name in made:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


# part 1 ------------------------------------------------------------------------------
def _timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    _call(argv, env)
    return time.perf_counter() - start


def part_steps(args: argparse.Namespace, ctx: Context, url: str) -> None:
    """Per-step overhead of a ``--steps`` no-op run, PostgreSQL store against SQLite."""
    book = ctx.folder / "steps.md"
    write_runbook(book, args.steps)
    rb, env = ctx.runbook, ctx.env
    _call([rb, "store", "upgrade", "--store", url], env)

    def run(name: str, n: int) -> float:
        where = ctx.folder / "steps" / f"{name}-{n}"
        store = ["--store", url] if name == "pg" else []
        return _timed([rb, "run", str(book), "--no-input", "--state-dir", str(where), *store], env)

    run("sqlite", -1)  # bytecode written and caches warm here, not measured
    run("pg", -1)
    times: dict[str, list[float]] = {"pg": [], "sqlite": []}
    for n in range(args.repeat):
        for name in ["pg", "sqlite"] if n % 2 == 0 else ["sqlite", "pg"]:
            times[name].append(run(name, n))
    per = {k: statistics.median(v) / args.steps * 1000 for k, v in times.items()}
    rounds = [p / s for p, s in zip(times["pg"], times["sqlite"], strict=True)]
    print(
        f"{args.steps}-step no-op runbook, `runbook run`, {args.repeat} alternating rounds, medians"
    )
    print(f"  SQLite state folder (baseline)            : {per['sqlite']:7.2f} ms/step")
    print(f"  PostgreSQL store                          : {per['pg']:7.2f} ms/step")
    print(f"  ratio PG / SQLite                         : {per['pg'] / per['sqlite']:7.2f}x")
    print(f"  ratio PG / SQLite, median of rounds       : {statistics.median(rounds):7.2f}x")


# part 2 ------------------------------------------------------------------------------
@dataclass
class Context:
    """What both parts share: the temporary folder, the ``runbook`` executable, the env."""

    folder: Path
    runbook: str
    env: dict[str, str]


@dataclass
class Round:
    """One round of 20 runs: wall time, when each run was started, its steps' times."""

    wall: float
    started: dict[str, float]
    steps: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    launched: float = 0.0  # seconds until the last run was started (queue: enqueued)


@dataclass
class Workers:
    """The worker processes and the finished-job lines they print (``--json``)."""

    procs: list[subprocess.Popen[Any]]
    logs: list[Path]
    lines: queue.Queue[tuple[float, dict[str, Any]]]


def start_workers(args: argparse.Namespace, ctx: Context, url: str) -> Workers:
    """Start ``--workers`` ``runbook worker --json`` processes on the queue at ``url``;
    return once every one is registered in the queue.

    Raises:
        BenchError: a worker exits or does not register within 120 s.
    """
    import psycopg

    lines: queue.Queue[tuple[float, dict[str, Any]]] = queue.Queue()
    procs, logs = [], []
    for n in range(args.workers):
        own = ctx.folder / f"worker-{n}" if args.worker_folders else ctx.folder / "team-state"
        env = {**ctx.env, "RUNBOOK_STATE_DIR": str(own)}
        log = ctx.folder / f"worker-{n}.log"
        argv = [ctx.runbook, "worker", "--queue-url", url, "--json", "--name", f"bench-{n}"]
        proc = _start(argv, env, stdout=subprocess.PIPE, stderr=log.open("wb"), text=True)
        procs.append(proc)
        logs.append(log)
        threading.Thread(target=_read_worker, args=(proc, lines), daemon=True).start()
    deadline = time.monotonic() + 120
    with psycopg.connect(url, autocommit=True) as db:
        while True:
            (count,) = db.execute("SELECT count(*) FROM procrastinate_workers").fetchone()
            if count >= args.workers:
                return Workers(procs, logs, lines)
            dead = [p for p in procs if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                tail = logs[procs.index(dead[0]) if dead else 0].read_text()[-2000:]
                raise BenchError(f"the workers did not all start; a worker's log:\n{tail}")
            time.sleep(0.2)


def _read_worker(proc: subprocess.Popen[Any], lines: queue.Queue[Any]) -> None:
    for line in proc.stdout or []:
        now = time.perf_counter()
        with contextlib.suppress(ValueError):
            data = json.loads(line)
            if isinstance(data, dict):
                lines.put((now, data))


def queued_round(args: argparse.Namespace, ctx: Context, url: str, tag: str, w: Workers) -> Round:
    """Put ``--runs`` runs on the queue, ``--enqueuers`` ``run --queue`` commands at a time;
    wait for the workers to finish them all.

    Raises:
        BenchError: a job did not end its run with exit 0, or the wait passed ``--timeout``.
    """
    book = ctx.folder / "team.md"
    state = ctx.folder / ("enqueuer" if args.worker_folders else "team-state")
    ids = [f"{tag}-{n}" for n in range(args.runs)]
    started: dict[str, float] = {}

    def enqueue(run_id: str) -> None:
        started[run_id] = time.time()
        _call(
            [
                ctx.runbook, "run", str(book), "--no-input", "--store", url, "--queue",
                "--queue-url", url, "--state-dir", str(state), "--run-id", run_id, "--json",
            ],
            ctx.env,
        )  # fmt: skip

    t0 = time.perf_counter()
    with ThreadPoolExecutor(args.enqueuers) as pool:
        list(pool.map(enqueue, ids))
    launched = time.perf_counter() - t0
    left, last = set(ids), t0
    deadline = time.monotonic() + args.timeout
    while left:
        try:
            at, data = w.lines.get(timeout=max(deadline - time.monotonic(), 0.01))
        except queue.Empty:
            raise BenchError(
                f"{len(left)} queued run(s) not finished after {args.timeout} s"
            ) from None
        if data.get("run_id") not in left:
            continue
        if data.get("exit") != 0 or data.get("status") != "succeeded":
            raise BenchError(f"a worker's job did not finish its run: {json.dumps(data)}")
        left.discard(data["run_id"])
        last = max(last, at)
    return Round(last - t0, started, launched=launched)


def inline_round(args: argparse.Namespace, ctx: Context, tag: str, url: str | None) -> Round:
    """Run ``--runs`` runs as ``runbook run`` processes, ``--workers`` at a time: on one
    fresh SQLite state folder, or on the PostgreSQL store ``url`` (that folder its working
    copy)."""
    book = ctx.folder / "team.md"
    state = ctx.folder / f"inline-{tag}"
    store = ["--store", url] if url else []
    started: dict[str, float] = {}
    launched: list[float] = []

    def one(run_id: str) -> None:
        started[run_id] = time.time()
        launched.append(time.perf_counter() - t0)
        argv = [ctx.runbook, "run", str(book), "--no-input", "--state-dir", str(state), *store]
        _call([*argv, "--run-id", run_id], ctx.env)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(args.workers) as pool:
        list(pool.map(one, [f"{tag}-{n}" for n in range(args.runs)]))
    return Round(time.perf_counter() - t0, started, launched=max(launched))


def _moment(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def read_steps(ctx: Context, done: Round, where: list[str], steps: int) -> None:
    """Fill ``done.steps`` from ``runbook status RUN --json`` of each run (two at a time).

    Raises:
        BenchError: a run or step did not succeed, or a step is missing.
    """

    def one(run_id: str) -> tuple[str, list[tuple[float, float]]]:
        data = json.loads(_call([ctx.runbook, "status", run_id, *where, "--json"], ctx.env))
        rows = data.get("steps") or []
        if data.get("status") != "succeeded" or len(rows) != steps:
            raise BenchError(f"run {run_id}: {data.get('status')}, {len(rows)} of {steps} steps")
        if any(r.get("status") != "succeeded" for r in rows):
            raise BenchError(f"run {run_id}: a step did not succeed")
        ordered = sorted(rows, key=lambda r: r["position"])
        return run_id, [(_moment(r["started_at"]), _moment(r["finished_at"])) for r in ordered]

    with ThreadPoolExecutor(2) as pool:
        done.steps = dict(pool.map(one, list(done.started)))


def p95(values: list[float]) -> float:
    """The 95th percentile (inclusive method; the one value when there is one)."""
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[94]


def figures(done: Round, runs: int, steps: int) -> dict[str, float]:
    """Wall time, throughput and the p95 latencies (ms; run latency in s) of one round."""
    durations, turnarounds, latencies = [], [], []
    for run_id, times in done.steps.items():
        ready = done.started[run_id]
        for begin, end in times:
            durations.append((end - begin) * 1000)
            turnarounds.append((end - ready) * 1000)
            ready = end
        latencies.append(times[-1][1] - done.started[run_id])
    return {
        "wall": done.wall,
        "launched": done.launched,
        "steps/s": runs * steps / done.wall,
        "runs/min": runs / done.wall * 60,
        "step": p95(durations),
        "turnaround": p95(turnarounds),
        "run": p95(latencies),
    }


def part_team(args: argparse.Namespace, ctx: Context, url: str) -> None:
    """``--runs`` runs of ``--run-steps`` steps on ``--workers`` workers against inline runs
    (SQLite, the baseline; and PostgreSQL, to tell the store's share from the queue's)."""
    write_runbook(ctx.folder / "team.md", args.run_steps)
    rb, env = ctx.runbook, ctx.env
    _call([rb, "store", "upgrade", "--store", url], env)
    _call([rb, "queue", "migrate", "--queue-url", url], env)
    w = start_workers(args, ctx, url)
    kinds = ["queue", "inline", "inline-pg"]
    results: dict[str, list[dict[str, float]]] = {k: [] for k in kinds}
    for n in range(args.team_repeat):
        for name in kinds[n % 3 :] + kinds[: n % 3]:  # each kind first in turn
            tag = f"{name[0]}{name[-1]}{n}"
            reader = ["--state-dir", str(ctx.folder / f"inline-{tag}")]
            if name == "queue":
                done = queued_round(args, ctx, url, tag, w)
                reader = ["--store", url, "--state-dir", str(ctx.folder / "reader")]
            else:
                done = inline_round(args, ctx, tag, url if name == "inline-pg" else None)
                reader += ["--store", url] if name == "inline-pg" else []
            read_steps(ctx, done, reader, args.run_steps)
            results[name].append(figures(done, args.runs, args.run_steps))
    med = {k: {m: statistics.median(r[m] for r in v) for m in v[0]} for k, v in results.items()}
    folders = "a folder each" if args.worker_folders else "one shared state folder"
    print(
        f"{args.runs} runs x {args.run_steps} no-op steps, {args.workers} at a time, "
        f"{args.team_repeat} rounds (the order turning), medians"
    )
    print(
        f"  queue    : {args.workers} `runbook worker` processes (--concurrency 1 each, "
        f"{folders}), PostgreSQL store and queue in one database; the runs put on the queue "
        f"by `runbook run --queue`, {args.enqueuers} at a time"
    )
    print(f"  inline   : `runbook run` processes, {args.workers} at a time, SQLite state folder")
    print(f"  inline PG: `runbook run` processes, {args.workers} at a time, PostgreSQL store")
    print("                                queue    inline  inline PG")
    rows = [
        ("wall time (s)", "wall", "8.2f"),
        ("last run on its way (s)", "launched", "8.2f"),
        ("throughput (steps/s)", "steps/s", "8.1f"),
        ("throughput (runs/min)", "runs/min", "8.1f"),
        ("p95 step duration (ms)", "step", "8.1f"),
        ("p95 step turnaround (ms)", "turnaround", "8.1f"),
        ("p95 run latency (s)", "run", "8.2f"),
    ]
    for label, key, fmt in rows:
        q, i, p = (med[k][key] for k in kinds)
        print(f"  {label:<26}{q:{fmt}}  {i:{fmt}}  {p:{fmt}}")
    for label, key in [
        ("wall time", "wall"),
        ("throughput", "steps/s"),
        ("p95 step duration", "step"),
        ("p95 step turnaround", "turnaround"),
        ("p95 run latency", "run"),
    ]:
        ratio = med["queue"][key] / med["inline"][key]
        print(f"  ratio queue / inline, {label:<24}: {ratio:6.2f}x")
    for label, key in [("wall time", "wall"), ("p95 step turnaround", "turnaround")]:
        ratio = med["inline-pg"][key] / med["inline"][key]
        print(f"  ratio inline PG / inline, {label:<20}: {ratio:6.2f}x")
        ratio = med["queue"][key] / med["inline-pg"][key]
        print(f"  ratio queue / inline PG, {label:<21}: {ratio:6.2f}x")


# main --------------------------------------------------------------------------------
def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; ``--quick`` sets tiny sizes where none was given."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--steps", type=int, help="steps of part 1's runbook [200]")
    parser.add_argument("--run-steps", type=int, help="steps of each run of part 2 [50]")
    parser.add_argument("--runs", type=int, help="runs of part 2 [20]")
    parser.add_argument("--workers", type=int, help="workers (and inline runs at once) [4]")
    parser.add_argument("--repeat", type=int, help="alternating rounds of part 1 [5]")
    parser.add_argument("--team-repeat", type=int, help="alternating rounds of part 2 [3]")
    parser.add_argument(
        "--enqueuers", type=int, help="`run --queue` commands at a time [as --workers]"
    )
    parser.add_argument("--part", choices=["steps", "team", "both"], default="both")
    parser.add_argument("--quick", action="store_true", help="a smoke test: tiny sizes")
    parser.add_argument("--worker-folders", action="store_true", help="a folder per worker")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per round [1800]")
    parser.add_argument("--pg", default=PG, help=f"a database on the server to use [{PG}]")
    parser.add_argument("--as-is", action="store_true", help="keep PYTHONDONTWRITEBYTECODE")
    args = parser.parse_args(argv)
    full = {"steps": 200, "run_steps": 50, "runs": 20, "workers": 4, "repeat": 5, "team_repeat": 3}
    quick = {"steps": 10, "run_steps": 3, "runs": 4, "workers": 2, "repeat": 1, "team_repeat": 1}
    for name, value in (quick if args.quick else full).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.enqueuers = args.enqueuers or args.workers
    for name in [*full, "enqueuers"]:
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the parts asked for; 0 when done, 1 with one message when the benchmark could not
    go on, 130 on Ctrl-C or SIGTERM (everything it started stopped, its databases dropped)."""
    args = parse(argv)
    signal.signal(signal.SIGTERM, _interrupted)
    runbook = shutil.which("runbook", path=str(Path(sys.executable).parent)) or "runbook"
    tag = f"bench_team_{secrets.token_hex(4)}"
    try:
        with tempfile.TemporaryDirectory(prefix="bench_team_") as tmp:
            folder = Path(tmp)
            env = {k: v for k, v in os.environ.items() if k not in _CLEARED}
            env |= {
                "RUNBOOK_OPERATOR": "bench",
                "XDG_CONFIG_HOME": str(folder / "config"),
                "XDG_STATE_HOME": str(folder / "state"),
            }
            if not args.as_is:
                env.pop("PYTHONDONTWRITEBYTECODE", None)
                env["PYTHONPYCACHEPREFIX"] = str(folder / "pycache")
            ctx = Context(folder, runbook, env)
            _call([runbook, "keys", "init", "-o", str(folder / "keys")], env)
            env["RUNBOOK_SIGNING_KEY"] = str(folder / "keys" / "signing.key")
            names = [f"{tag}_steps", f"{tag}_queue"]
            with databases(args.pg, names) as (steps_url, team_url):
                print(f"databases {', '.join(names)} (dropped at the end)", flush=True)
                if args.part in ("steps", "both"):
                    part_steps(args, ctx, steps_url)
                if args.part in ("team", "both"):
                    part_team(args, ctx, team_url)
    except BenchError as exc:
        print(f"bench_team: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        _stop_all()
        print(
            "bench_team: interrupted; its processes stopped, its databases dropped", file=sys.stderr
        )
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
