"""Benchmark: 50 steps on one host through WinRMTransport vs pywinrm's Session.run_cmd.

Both talk HTTP to the loopback WS-Management server of the test suite
(tests/wsman_server.py).  ``Session.run_cmd`` opens and deletes a shell (and a TCP
connection) for every command; WinRMTransport opens one shell and reuses it.
Prints HTTP requests per step and the wall-time ratio, baseline measured in the
same run, once on bare loopback and once with a simulated per-request service
time (``--latency``, seconds; a real WinRM service takes a few milliseconds per
request, more over a WAN).

Run: ``python benchmarks/bench_winrm.py [--steps 50] [--latency 0.005]``
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import winrm
from wsman_server import CommandCall, Reply, WindowsHost, WSManServer

from runbook_engine.source.model import Host
from runbook_engine.transports.winrm import WinRMTransport

PASSWORD = "bench-Passw0rd"


def step(kind: str, text: str, call: CommandCall) -> Reply:
    return Reply(f"{text}\r\n", "", 0)


def ours(server: WSManServer, steps: int) -> tuple[float, int]:
    host = Host(
        "BENCH",
        "127.0.0.1",
        "winrm",
        {
            "scheme": "http",
            "port": server.port,
            "transport": "basic",
            "username": "admin",
            "read_timeout_sec": 30,
            "operation_timeout_sec": 20,
        },
    )
    before = len(server.requests)
    start = time.perf_counter()
    transport = WinRMTransport(host, PASSWORD)
    for i in range(steps):
        result = transport.run("cmd", f"echo step {i}\n")
        assert result.ok and result.stdout == f"echo step {i}\n", result
    transport.close()
    return time.perf_counter() - start, len(server.requests) - before


def baseline(server: WSManServer, steps: int) -> tuple[float, int]:
    before = len(server.requests)
    start = time.perf_counter()
    session = winrm.Session(
        server.url,
        auth=("admin", PASSWORD),
        transport="basic",
        read_timeout_sec=30,
        operation_timeout_sec=20,
    )
    for i in range(steps):
        response = session.run_cmd("echo", ["step", str(i)])
        assert response.status_code == 0, response
    return time.perf_counter() - start, len(server.requests) - before


def measure(steps: int, latency: float) -> None:
    server = WSManServer(WindowsHost(step), password=PASSWORD).start()
    server.latency = latency
    try:
        ours(server, 3)  # warm-up: imports, first connection
        base_time, base_requests = baseline(server, steps)
        our_time, our_requests = ours(server, steps)
    finally:
        server.stop()
    label = "bare loopback" if not latency else f"{latency * 1000:g} ms per request"
    print(f"{steps} steps, {label}:")
    print(
        f"  pywinrm Session.run_cmd : {base_requests / steps:5.2f} HTTP requests/step, "
        f"{base_time:6.3f} s ({base_time / steps * 1000:6.2f} ms/step)"
    )
    print(
        f"  WinRMTransport          : {our_requests / steps:5.2f} HTTP requests/step, "
        f"{our_time:6.3f} s ({our_time / steps * 1000:6.2f} ms/step)"
    )
    print(
        f"  wall-time ratio ours/baseline: {our_time / base_time:.2f} "
        f"(baseline is {base_time / our_time:.2f}x slower)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument(
        "--latency",
        type=float,
        default=0.005,
        help="simulated service time per request, seconds (default 0.005)",
    )
    args = parser.parse_args()
    measure(args.steps, 0.0)
    measure(args.steps, args.latency)


if __name__ == "__main__":
    main()
