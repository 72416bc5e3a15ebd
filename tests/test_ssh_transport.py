# ruff: noqa: F811
"""The SSH transport against a real OpenSSH server (tests/ssh_server.py)."""

from __future__ import annotations

import base64
import hashlib
import resource
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from ssh_server import SSHServer, keygen, sshd  # type: ignore[import-not-found]  # noqa: F401

from runbook_engine.errors import EnvironmentFileError, ExecutionError
from runbook_engine.source.model import Host
from runbook_engine.transports import TRANSPORTS
from runbook_engine.transports.process import CommandHooks, command_hooks
from runbook_engine.transports.ssh import SSHTransport
from runbook_engine.transports.ssh_identity import still_running
from runbook_engine.transports.ssh_options import validate_ssh_options

pytestmark = pytest.mark.timeout(120)


def transport(server: SSHServer, password: str | None = None, **options: Any) -> SSHTransport:
    return SSHTransport(Host("lab", "127.0.0.1", "ssh", server.options(**options)), password)


def failure(t: SSHTransport) -> str:
    with pytest.raises(ExecutionError) as caught:
        t.run("sh", "true")
    t.close()
    return caught.value.message


def test_values_reach_the_step_by_its_environment_never_a_command_line(sshd: SSHServer) -> None:
    value = "a b'c\"$(id) `x`;\n\nlast line\n"
    t = transport(sshd)
    try:
        result = t.run(
            "sh",
            'printf "%s" "$RUNBOOK_VALUE_X" | od -An -c; ps -e -o args= > "$HOME/args.txt"; pwd',
            env={"RUNBOOK_VALUE_X": value, "RUNBOOK_SECRET": "tok-" + "9f8e7d"},
            cwd="/tmp",
        )
        listing = t.run("sh", 'cat "$HOME/args.txt"').stdout
    finally:
        t.close()
    assert result.ok, result
    shown = subprocess.run(["od", "-An", "-c"], input=value.encode(), capture_output=True)
    assert result.stdout.splitlines()[:-1] == shown.stdout.decode().splitlines()
    assert result.stdout.splitlines()[-1] == "/tmp"
    assert "rbe-step" in listing  # the listing saw the step's own processes
    assert "tok-9f8e7d" not in listing and "last line" not in listing


def test_python_and_bash_steps_and_exit_codes(sshd: SSHServer) -> None:
    t = transport(sshd)
    try:
        py = t.run("python", "import os, sys; print(os.environ['RBE_STEP']); sys.exit(4)")
        bash = t.run("bash", "echo out; echo err >&2; [[ 1 == 1 ]] && exit 0")
    finally:
        t.close()
    assert py.exit_code == 4 and len(py.stdout.strip()) == 32
    assert bash.ok and bash.stdout == "out\n" and bash.stderr == "err\n"


def test_sh_and_bash_stop_at_their_first_error_unless_told_not_to(sshd: SSHServer) -> None:
    t = transport(sshd)
    try:
        sh = t.run("sh", "false\necho after\n")
        bash = t.run("bash", "false | true\necho after\n")  # pipefail: the pipe fails
        off = t.run("bash", "false\necho after\n", errexit=False)
    finally:
        t.close()
    assert sh.exit_code == 1 and "after" not in sh.stdout
    assert bash.exit_code == 1 and "after" not in bash.stdout
    assert off.ok and off.stdout == "after\n"


def test_connection_is_reused_across_steps(sshd: SSHServer) -> None:
    before = sshd.accepted()
    t = transport(sshd)
    try:
        results = [t.run("sh", f"echo {i}") for i in range(8)]
        assert [r.stdout for r in results] == [f"{i}\n" for i in range(8)]
        assert t.connections_opened == 1
        assert sshd.accepted() - before == 1  # one authenticated connection on the server
    finally:
        t.close()


def test_wrong_key_is_authentication_failed(sshd: SSHServer, tmp_path: Path) -> None:
    other = keygen(tmp_path / "other")
    message = failure(transport(sshd, private_key_file=str(other)))
    assert "authentication failed" in message and str(other) in message


def test_changed_host_key_is_refused(sshd: SSHServer, tmp_path: Path) -> None:
    impostor = keygen(tmp_path / "impostor")
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{sshd.port} {(tmp_path / 'impostor.pub').read_text()}")
    assert impostor.exists()
    message = failure(transport(sshd, known_hosts_file=str(known)))
    assert "host key changed" in message and "ssh-keygen -R" in message


def test_unknown_host_is_refused_unless_trusted_on_first_use(
    sshd: SSHServer, tmp_path: Path
) -> None:
    known = tmp_path / "empty_known_hosts"
    known.write_text("")
    message = failure(transport(sshd, known_hosts_file=str(known)))
    assert "unknown host key" in message and "accept-new" in message
    events: list[tuple[str, dict[str, Any]]] = []
    t = transport(sshd, known_hosts_file=str(known), host_key_checking="accept-new")
    try:
        with command_hooks(CommandHooks(on_event=lambda n, f: events.append((n, f)))):
            assert t.run("sh", "true").ok
    finally:
        t.close()
    blob = (sshd.folder / "host_key.pub").read_text().split()[1]
    expected = "SHA256:" + base64.b64encode(
        hashlib.sha256(base64.b64decode(blob)).digest()
    ).decode().rstrip("=")
    assert events == [
        ("host-key-accepted", {"host": "lab", "key_type": "ssh-ed25519", "fingerprint": expected})
    ]
    assert blob in known.read_text()


def test_refused_port(sshd: SSHServer) -> None:
    from ssh_server import free_port  # type: ignore[import-not-found]

    message = failure(transport(sshd, port=free_port()))
    assert "connection refused" in message


def test_missing_interpreter_is_command_not_found(sshd: SSHServer) -> None:
    t = transport(sshd)
    try:
        bindir = t.run(
            "sh",
            'mkdir -p "$HOME/bin" && cd "$HOME/bin" && '
            'for c in cat setsid dd; do ln -sf "$(command -v $c)" .; done; pwd',
        )
        with pytest.raises(ExecutionError) as caught:
            t.run("python", "print(1)", env={"PATH": bindir.stdout.strip()})
    finally:
        t.close()
    assert "command not found: python3" in caught.value.message


def test_deadline_kills_the_remote_session(sshd: SSHServer) -> None:
    t = transport(sshd)
    seen: list[Any] = []
    try:
        with command_hooks(CommandHooks(on_process=seen.append)):
            # durations no other test uses: the host's process list is the machine's
            result = t.run("bash", "sleep 3137 & sleep 3138; echo never", timeout=1)
        assert result.timed_out and result.exit_code is None and "never" not in result.stdout
        marker = seen[0].marker
        assert still_running(t, marker) == []
        assert "sleep 313" not in t.listing()
    finally:
        t.close()


def test_hundred_megabytes_of_output_stay_bounded(sshd: SSHServer) -> None:
    t = transport(sshd)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        with command_hooks(CommandHooks(max_output=1024 * 1024)):
            result = t.run(
                "sh", "yes 0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLM | head -c 100000000"
            )
    finally:
        t.close()
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert result.ok
    assert result.streams["stdout"]["bytes"] == 100_000_000
    assert result.streams["stdout"]["dropped"] == 100_000_000 - 512 * 1024
    assert len(result.stdout) < 600 * 1024
    assert grown_kib < 50 * 1024  # far below the 100 MB that went through


@pytest.mark.skipif(shutil.which("sudo") is None, reason="sudo is not installed")
def test_become_with_a_password(sshd: SSHServer) -> None:
    if sshd.password is None:
        pytest.skip("the sudo cases need a test user (run as root)")
    t = transport(sshd, sshd.password, become=True, become_password="sudo_pw")
    try:
        result = t.run(
            "sh",
            'id -u; echo "[$RUNBOOK_VALUE_V]"; env | grep -c RBE_BECOME || true',
            env={"RUNBOOK_VALUE_V": "x y"},
        )
    finally:
        t.close()
    assert result.ok, result
    assert result.stdout.split("\n")[:3] == ["0", "[x y]", "0"]
    wrong = transport(sshd, "not-" + sshd.password, become=True, become_password="sudo_pw")
    message = failure(wrong)
    assert "become_password was refused" in message and sshd.password not in message
    nopass = failure(transport(sshd, become=True))
    assert "sudo asks for a password" in nopass


@pytest.mark.parametrize(
    "args",
    [
        '"-oProxyCommand=touch /tmp/pwned"',  # no space: a word-boundary check missed it
        "-o ProxyCommand=touch",
        "-o 'ProxyCommand touch x'",
        "-oLocalCommand=id -oPermitLocalCommand=yes",
        "-o KnownHostsCommand=/bin/true",
        "-o Include=/tmp/evil.conf",  # a config file can set any of the above
        "-o PKCS11Provider=/tmp/evil.so",  # loads a library into ssh
        "-F /tmp/evil.conf",
        "-Cq -F/tmp/evil.conf",
        "-S /tmp/ctl",
        "-o ControlPath=/tmp/x",
        "--",
        "host.example",
    ],
)
def test_common_args_cannot_run_or_load_code_or_take_over_the_transport(args: str) -> None:
    # Found by an attack on the SSH transport: an environment file's common_args set
    # ProxyCommand with the -oKEY=VALUE spelling and ran a command on the operator's machine.
    found = [p.message for p in validate_ssh_options({"common_args": args}, None, 3)]
    assert len(found) == 1 and found[0].startswith("ssh: common_args: "), found


def test_common_args_allow_the_everyday_options() -> None:
    args = "-C -q -o ServerAliveInterval=15 -oServerAliveCountMax=3 -o 'ConnectTimeout 5' -J jump"
    assert validate_ssh_options({"common_args": args}, None, 3) == []


def test_options_are_checked_and_registered() -> None:
    assert TRANSPORTS["ssh"].options_key == "ssh"
    assert validate_ssh_options({"user": "deploy", "port": 22, "become": True}, None, 1) == []
    found = [
        p.message
        for p in validate_ssh_options(
            {
                "port": 0,
                "host_key_checking": False,
                "colour": 1,
                "common_args": "-o StrictHostKeyChecking=no",
                "become_password": "pw",
            },
            None,
            3,
        )
    ]
    assert any("port: 0" in m for m in found)
    assert any("host key checking" in m or "host_key_checking" in m for m in found)
    assert any("unknown option 'colour'" in m for m in found)
    assert any("-o 'stricthostkeychecking' is not taken" in m for m in found)
    assert any("become is not true" in m for m in found)
    with pytest.raises(EnvironmentFileError):
        SSHTransport(Host("h", "127.0.0.1", "ssh", {"private_key_file": "/nonexistent/key"}))


def test_a_script_larger_than_the_pipe_and_output_on_both_streams_in_one_thread(
    sshd: SSHServer,
) -> None:
    """The script goes in and both streams come out through one loop in the calling
    thread: a body far larger than a pipe's buffer is written as the pipe takes it, while
    the step writes more than a pipe holds to each stream; no reader thread is started."""
    import threading

    filler = "".join(f"# filler line {n:06d} {'x' * 60}\n" for n in range(6000))  # ~450 KB
    body = (
        filler + "head -c 300000 /dev/zero | tr '\\0' o; head -c 300000 /dev/zero | tr '\\0' e >&2"
    )
    readers: set[threading.Thread] = set()
    t = SSHTransport(
        Host("lab", "127.0.0.1", "ssh", sshd.options()),
        None,
        on_output=lambda _: readers.add(threading.current_thread()),
    )
    try:
        result = t.run("sh", body)
    finally:
        t.close()
    assert result.ok, result.stderr[-500:]
    assert result.stdout == "o" * 300000 and result.stderr == "e" * 300000
    assert readers == {threading.current_thread()}  # read here, not in reader threads


def test_the_end_mark_cut_between_two_reads_is_still_found() -> None:
    """The marks that frame a step's standard error (started, ended) may arrive cut in
    two by the pipe: they are found and removed all the same, the output kept whole."""
    import os

    from runbook_engine.transports.capture import Capture
    from runbook_engine.transports.ssh import _MarkedReader
    from runbook_engine.transports.ssh_scripts import ENDED, STARTED

    read, write = os.pipe()
    os.close(write)
    with os.fdopen(read, "rb") as stream:
        reader = _MarkedReader(stream, Capture(1 << 20), None, None)
        data = b"sudo: a note\n" + STARTED + b"partial line without end" + ENDED
        for n in range(0, len(data), 5):  # five bytes at a time: every mark cut somewhere
            reader.feed(data[n : n + 5])
        reader.end()
    assert reader.started and reader.finished
    assert reader.before == b"sudo: a note\n"
    assert reader.text() == "partial line without end"
