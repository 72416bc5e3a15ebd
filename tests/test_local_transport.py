"""Tests for runbook_engine.transports.local with real subprocesses."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import time
from pathlib import Path

import pytest

from runbook_engine.errors import ExecutionError
from runbook_engine.transports.base import Transport
from runbook_engine.transports.local import LocalTransport

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX shells and signals")


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    with contextlib.suppress(OSError):
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


def wait_gone(pid: int, limit: float = 10.0) -> bool:
    """Poll until ``pid`` is gone; a bound against hanging, not a timing assertion."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return False


def kill_quietly(pid: int) -> None:
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)


@pytest.fixture()
def local() -> LocalTransport:
    return LocalTransport()


def test_is_a_transport(local: LocalTransport) -> None:
    assert isinstance(local, Transport)
    assert local.name == "local"
    local.close()
    local.close()


@posix_only
@pytest.mark.parametrize(
    ("kind", "body", "code"),
    [
        ("sh", "true\n", 0),
        ("sh", "exit 3\n", 3),
        ("bash", "false\n", 1),
        ("bash", "set -e\nfalse\necho not reached\n", 1),
        ("python", "import sys\nsys.exit(5)\n", 5),
    ],
)
def test_exit_codes(local: LocalTransport, kind: str, body: str, code: int) -> None:
    result = local.run(kind, body)
    assert result.exit_code == code
    assert result.ok is (code == 0)
    assert not result.timed_out
    assert "not reached" not in result.stdout


@posix_only
def test_stdout_and_stderr_kept_apart(local: LocalTransport) -> None:
    result = local.run("sh", "echo to-out\necho to-err >&2\n")
    assert result.stdout == "to-out\n"
    assert result.stderr == "to-err\n"
    assert result.command.startswith(shutil.which("sh") or "sh")


def test_python_body_keeps_indentation(local: LocalTransport) -> None:
    body = "def f(x):\n    if x:\n        return 41 + x\n    return 0\n\n\nprint(f(1))\n"
    result = local.run("python", body)
    assert result.ok, result.stderr
    assert result.stdout.strip() == "42"


@posix_only
def test_heredoc_with_blank_lines_and_odd_lines(local: LocalTransport) -> None:
    body = "cat <<'EOF'\nfirst\n\n$ not a prompt\n### not a heading\n\nlast\nEOF\n"
    result = local.run("bash", body)
    assert result.ok, result.stderr
    assert result.stdout == "first\n\n$ not a prompt\n### not a heading\n\nlast\n"


@posix_only
def test_cwd_with_space(local: LocalTransport, tmp_path: Path) -> None:
    where = tmp_path / "dir with space"
    where.mkdir()
    result = local.run("sh", "pwd -P\n", cwd=str(where))
    assert result.ok
    assert result.stdout.strip() == str(where.resolve())


def test_env_is_added_to_the_environment(local: LocalTransport) -> None:
    body = "import os\nprint(os.environ['RB_TEST_VAR'], 'PATH' in os.environ)\n"
    result = local.run("python", body, env={"RB_TEST_VAR": "hello world ✓"})
    assert result.stdout.strip() == "hello world ✓ True"
    assert "RB_TEST_VAR" not in os.environ


def test_invalid_utf8_is_replaced(local: LocalTransport) -> None:
    body = "import sys\nsys.stdout.buffer.write(b'ok \\xff\\xfe end\\n')\n"
    result = local.run("python", body)
    assert result.stdout == "ok \ufffd\ufffd end\n"


@posix_only
def test_script_file_is_removed(local: LocalTransport) -> None:
    result = local.run("sh", 'echo "$0"\n')
    script = Path(result.stdout.strip())
    assert script.name.startswith("runbook-step-")
    assert not script.exists()


@posix_only
def test_timeout_kills_child_and_grandchild(local: LocalTransport, tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    body = f"sleep 300 &\necho $! > '{pidfile}'\necho started\nsleep 300\n"
    result = local.run("sh", body, timeout=2)
    assert result.timed_out
    assert result.exit_code is None
    assert not result.ok
    assert "started" in result.stdout
    grandchild = int(pidfile.read_text())
    try:
        assert wait_gone(grandchild), f"grandchild {grandchild} survived the timeout"
    finally:
        kill_quietly(grandchild)


@posix_only
def test_timeout_kills_a_group_that_ignores_sigterm(tmp_path: Path) -> None:
    pidfile = tmp_path / "stubborn.pid"
    body = f"trap '' TERM\nsleep 300 &\necho $! > '{pidfile}'\nsleep 300\n"
    result = LocalTransport(grace=0.5).run("sh", body, timeout=1)
    assert result.timed_out and result.exit_code is None
    grandchild = int(pidfile.read_text())
    try:
        assert wait_gone(grandchild)
    finally:
        kill_quietly(grandchild)


@posix_only
def test_background_child_holding_the_pipes_does_not_hang(tmp_path: Path) -> None:
    pidfile = tmp_path / "daemon.pid"
    body = f"sleep 300 &\necho $! > '{pidfile}'\necho launched\n"
    result = LocalTransport(grace=0.5).run("sh", body)
    daemon = int(pidfile.read_text())
    try:
        assert result.ok
        assert result.stdout == "launched\n"
        assert alive(daemon)  # a deliberate background process is left alone
    finally:
        kill_quietly(daemon)


@posix_only
def test_on_output_streams_lines() -> None:
    seen: list[str] = []
    t = LocalTransport(on_output=seen.append)
    result = t.run("sh", "echo one\necho two >&2\nprintf 'three'\n")
    assert result.ok
    assert sorted(seen) == ["one", "three", "two"]


@posix_only
def test_failing_on_output_does_not_break_the_command() -> None:
    def explode(line: str) -> None:
        raise RuntimeError(line)

    result = LocalTransport(on_output=explode).run("sh", "echo a\necho b\nexit 4\n")
    assert result.exit_code == 4
    assert result.stdout == "a\nb\n"


@pytest.mark.skipif(os.name == "nt", reason="cmd runs on Windows")
def test_cmd_needs_windows(local: LocalTransport) -> None:
    with pytest.raises(ExecutionError, match="Windows host"):
        local.run("cmd", "dir\n")


@pytest.mark.skipif(bool(shutil.which("pwsh")), reason="pwsh is installed")
def test_powershell_without_pwsh(local: LocalTransport) -> None:
    with pytest.raises(ExecutionError, match="no pwsh on PATH"):
        local.run("powershell", "Get-Date\n")


def test_missing_cwd(local: LocalTransport, tmp_path: Path) -> None:
    with pytest.raises(ExecutionError, match=re.escape(str(tmp_path / "nope"))):
        local.run("python", "print(1)\n", cwd=str(tmp_path / "nope"))


@posix_only
def test_missing_interpreter(
    local: LocalTransport, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ExecutionError, match="no bash on PATH"):
        local.run("bash", "true\n")


def test_unknown_kind_and_bad_timeout(local: LocalTransport) -> None:
    with pytest.raises(ExecutionError, match="'manual'"):
        local.run("manual", "Do it by hand.\n")
    with pytest.raises(ExecutionError, match="timeout"):
        local.run("python", "pass\n", timeout=0)


# -- errexit ---------------------------------------------------------------------------------
@posix_only
@pytest.mark.parametrize(
    ("kind", "body"),
    [
        ("sh", "false\necho after\n"),
        ("bash", "false\necho after\n"),
        ("bash", "false | cat\necho after\n"),  # pipefail: a failing stage fails the line
        ("sh", "cd /no/such/folder\necho after\n"),
    ],
)
def test_errexit_stops_at_the_first_failing_command(
    local: LocalTransport, kind: str, body: str
) -> None:
    result = local.run(kind, body)
    assert result.exit_code not in (0, None)
    assert "after" not in result.stdout
    off = local.run(kind, body, errexit=False)
    assert off.exit_code == 0 and off.stdout == "after\n"
    local.close()


@posix_only
def test_errexit_is_an_interpreter_option_shown_in_the_command(local: LocalTransport) -> None:
    bash = local.run("bash", "echo $-; set -o | grep pipefail\n")
    assert "e" in bash.stdout.splitlines()[0]
    assert re.search(r"pipefail\s+on", bash.stdout)
    assert re.search(r"/bash -e -o pipefail /\S+\.sh$", bash.command)
    sh = local.run("sh", "echo ok\n")
    assert re.search(r"/sh -e /\S+\.sh$", sh.command)
    plain = local.run("sh", "echo $-\n", errexit=False)
    assert "e" not in plain.stdout and " -e " not in plain.command
    local.close()


BIG = (
    "import sys\n"
    "for n in range(3000):\n"
    "    sys.stdout.write(f'out {n} ' + 'x' * 60 + '\\n')\n"
    "    sys.stderr.write(f'err {n} ' + 'y' * 60 + '\\n')\n"
    "sys.stdout.write('z' * 200000)\n"  # one line longer than a read block, no final newline
)


@pytest.fixture(params=["pidfd", "polling"])
def exit_watch(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with the process's exit waited on by pidfd, and by polling (no pidfd)."""
    if request.param == "polling":
        monkeypatch.delattr(os, "pidfd_open", raising=False)
    elif not hasattr(os, "pidfd_open"):
        pytest.skip("no pidfd_open here")
    return str(request.param)


@posix_only
def test_both_streams_beyond_the_pipe_buffer_are_read_whole(exit_watch: str) -> None:
    seen: list[str] = []
    result = LocalTransport(on_output=seen.append).run("python", BIG)
    assert result.ok
    lines = result.stdout.splitlines()
    assert lines[0].startswith("out 0 ") and lines[2999].startswith("out 2999 ")
    assert lines[3000] == "z" * 200000
    assert result.stderr.splitlines()[-1].startswith("err 2999 ")
    assert result.streams["stdout"]["bytes"] == len(result.stdout.encode())
    assert len([line for line in seen if not line.startswith("z")]) == 6000
    pieces = [line for line in seen if line.startswith("z")]  # the long line, cut in pieces
    assert sum(map(len, pieces)) == 200000 and max(map(len, pieces)) <= 64 * 1024


@posix_only
def test_the_output_cap_keeps_head_and_tail_of_each_stream(exit_watch: str) -> None:
    from runbook_engine.transports.process import CommandHooks, command_hooks

    with command_hooks(CommandHooks(max_output=4000, filter=lambda t: t.replace("x", "-"))):
        result = LocalTransport().run("python", BIG)
    assert result.ok
    assert result.stdout.startswith("out 0 ---") and result.stdout.endswith("zzz")
    assert "bytes of output dropped here" in result.stdout
    assert result.stderr.startswith("err 0 y") and result.streams["stderr"]["dropped"] > 0


@posix_only
def test_deadline_and_background_pipes_without_pidfd(exit_watch: str, tmp_path: Path) -> None:
    result = LocalTransport(grace=0.5).run("sh", "echo begun\nsleep 300\n", timeout=1)
    assert result.timed_out and result.exit_code is None and result.stdout == "begun\n"
    pidfile = tmp_path / "daemon.pid"
    body = f"sleep 300 &\necho $! > '{pidfile}'\necho launched\n"
    result = LocalTransport(grace=0.5).run("sh", body)
    kill_quietly(int(pidfile.read_text()))
    assert result.ok and result.stdout == "launched\n"
