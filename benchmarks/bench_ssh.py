"""SSH transport: 50 one-line steps over SSH (issue 16).  Prints figures and ratios (each
step's output is checked, nothing else).

Against the test sshd of ``tests/ssh_server.py`` (Debian's ``sshd`` on a loopback port,
key authentication), measured in one run, the three alternated round by round and the
medians kept (the machine is shared):

1. ``reuse``: :class:`~runbook_engine.transports.ssh.SSHTransport`, one ControlMaster
   connection for all 50 steps (the first step opens it; its cost is included);
2. ``ssh-per-step``: a new ``ssh host 'echo N'`` per step (a new connection each);
3. ``ansible``: ``ansible-playbook`` (ansible-core, the ``bench`` extra:
   ``pip install -e .[bench]``) running the same 50 commands as ``command`` tasks against
   the same sshd, with its defaults (its ssh plugin's ControlPersist, no pipelining);
   its whole wall time over 50, and its cost per task beyond a one-task playbook.

Run as root for the server's test user (otherwise as the current user):
``python benchmarks/bench_ssh.py`` (``--steps N``, ``--rounds N``).
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from ssh_server import SSHServer, start_sshd  # type: ignore[import-not-found]  # noqa: E402

from runbook_engine.source.model import Host  # noqa: E402
from runbook_engine.transports.ssh import SSHTransport  # noqa: E402


def reuse(server: SSHServer, steps: int) -> float:
    """Seconds for ``steps`` one-line steps through one transport (one connection)."""
    t = SSHTransport(Host("bench", "127.0.0.1", "ssh", server.options()))
    start = time.perf_counter()
    try:
        for i in range(steps):
            assert t.run("sh", f"echo {i}").stdout == f"{i}\n"
    finally:
        elapsed = time.perf_counter() - start
        t.close()
    return elapsed


def ssh_per_step(server: SSHServer, steps: int) -> float:
    """Seconds for ``steps`` plain ``ssh host 'echo N'`` calls, a new connection each."""
    argv = ["ssh", "-i", str(server.client_key), "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes"]
    argv += ["-o", f"UserKnownHostsFile={server.known_hosts}", "-p", str(server.port)]
    argv += ["-l", server.user, "127.0.0.1"]
    start = time.perf_counter()
    for i in range(steps):
        done = subprocess.run([*argv, f"echo {i}"], capture_output=True, text=True, check=True)
        assert done.stdout == f"{i}\n"
    return time.perf_counter() - start


def _ansible_playbook() -> str | None:
    here = Path(sys.executable).with_name("ansible-playbook")
    return str(here) if here.exists() else shutil.which("ansible-playbook")


def ansible(server: SSHServer, steps: int, folder: Path) -> float:
    """Seconds for ``ansible-playbook`` running ``steps`` ``command: echo N`` tasks."""
    inventory = folder / "inventory.ini"
    inventory.write_text(
        "[web]\nbench ansible_host=127.0.0.1 "
        f"ansible_port={server.port} ansible_user={server.user} "
        f"ansible_ssh_private_key_file={server.client_key} "
        f"ansible_ssh_common_args='-o UserKnownHostsFile={server.known_hosts} "
        "-o IdentitiesOnly=yes' ansible_python_interpreter=/usr/bin/python3\n",
        "utf-8",
    )
    tasks = "".join(
        f"    - name: step {i}\n      ansible.builtin.command: echo {i}\n" for i in range(steps)
    )
    playbook = folder / f"play-{steps}.yml"
    playbook.write_text(f"- hosts: web\n  gather_facts: false\n  tasks:\n{tasks}", "utf-8")
    env = {
        **os.environ,
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(folder / "cp"),
        "ANSIBLE_LOCAL_TEMP": str(folder / "tmp"),
        "ANSIBLE_NOCOLOR": "1",
    }
    start = time.perf_counter()
    done = subprocess.run(
        [_ansible_playbook() or "ansible-playbook", "-i", str(inventory), str(playbook)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0 or f"ok={steps}" not in done.stdout:
        raise SystemExit(f"ansible-playbook failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    n = args.steps
    has_ansible = _ansible_playbook() is not None
    if not has_ansible:
        print("ansible-playbook not found: pip install -e .[bench] (ansible-core)")
    folder = Path(tempfile.mkdtemp(prefix="rbe-bench-ssh-"))
    times: dict[str, list[float]] = {
        "reuse": [],
        "ssh-per-step": [],
        "ansible": [],
        "ansible-1": [],
    }
    try:
        (folder / "sshd").mkdir()
        with start_sshd(folder / "sshd") as server:
            runs = [
                ("reuse", lambda: reuse(server, n)),
                ("ssh-per-step", lambda: ssh_per_step(server, n)),
            ]
            if has_ansible:
                runs += [
                    ("ansible", lambda: ansible(server, n, folder)),
                    ("ansible-1", lambda: ansible(server, 1, folder)),
                ]
            for r in range(args.rounds):
                order = runs if r % 2 == 0 else runs[::-1]  # alternate the order
                for name, work in order:
                    times[name].append(work())
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in times.items() if v}
    per = {k: med[k] / n * 1000 for k in ("reuse", "ssh-per-step", "ansible") if k in med}
    print(f"{n} one-line steps over SSH, {args.rounds} alternated rounds, medians:")
    for name, ms in per.items():
        ratio = ms / per["reuse"]
        print(f"  {name:14} {ms:8.1f} ms/step  ({med[name]:6.2f} s)  x{ratio:5.1f} of reuse")
    if "ansible" in med:
        marginal = (med["ansible"] - med["ansible-1"]) / (n - 1) * 1000
        print(
            f"  ansible per task beyond a one-task playbook ({med['ansible-1']:.2f} s): "
            f"{marginal:.1f} ms  x{marginal / per['reuse']:.1f} of reuse"
        )


if __name__ == "__main__":
    main()
