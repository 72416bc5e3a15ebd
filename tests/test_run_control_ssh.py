# ruff: noqa: F811
"""Issue 16 parts 2-4 over SSH against a real sshd (tests/ssh_server.py): the SSH
preflight (host key, login, ``/bin/sh``, ``setsid``, become with the password from its
secret, interpreters and the programs the bodies call), ``--only`` and ``--limit`` over SSH
hosts, and check mode (a ``readonly=true`` step runs, a changing step is unknown and does
not run, nothing changes on the host).

The hosts ``web1`` and ``web2`` are two names for the one loopback sshd; the steps write in
a folder the test user may write, so "ran" and "did not run" are seen in it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from ssh_server import SSHServer, sshd  # type: ignore[import-not-found]  # noqa: F401

from runbook_engine.cli import main
from runbook_engine.evidence.journal import read_journal

pytestmark = pytest.mark.timeout(240)

BOOK = """---
id: sctl
roles:
  web: Linux hosts
parameters:
  where: {type: string, description: the hosts' work folder}
---
# SSH control

```sh {#pre .precheck target=web}
test -d {{ where }}
```

```bash {#change target=web}
echo changed > "{{ where }}/$RUNBOOK_HOST.changed"
```

```sh {#look target=web readonly=true}
cat {{ where }}/state.txt
```

```python {#ver .verify target=web}
import os, sys
sys.exit(0 if os.path.exists(os.path.join("{{ where }}", os.environ["RUNBOOK_HOST"] + ".changed")) else 1)
```
"""


class Lab:
    """The runbook, a work folder on the (loopback) host and environment files."""

    def __init__(self, tmp: Path, sshd: SSHServer, where: Path) -> None:
        self.tmp, self.sshd, self.where = tmp, sshd, where
        (tmp / "book.md").write_text(BOOK, "utf-8")

    def env(self, name: str = "env", hosts: tuple[str, ...] = ("web1", "web2"), **ssh: Any) -> Path:
        options = self.sshd.options(**ssh)
        env: dict[str, Any] = {
            "name": name,
            "parameters": {"where": str(self.where)},
            "roles": {
                "web": [
                    {"name": h, "address": "127.0.0.1", "transport": "ssh", "ssh": options}
                    for h in hosts
                ]
            },
        }
        if "become_password" in ssh:
            env["secrets"] = {"web_sudo": {"env": "RBE_TEST_SUDO_PASSWORD"}}
        path = self.tmp / f"{name}.yaml"
        path.write_text(yaml.safe_dump(env, sort_keys=False), "utf-8")
        return path

    def cli(self, capsys: pytest.CaptureFixture[str], *args: Any) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as exc:
            main([str(a) for a in args])
        out = capsys.readouterr()
        code = exc.value.code
        return (code if isinstance(code, int) else (0 if code is None else 1)), out.out, out.err

    def host_files(self) -> dict[str, str]:
        """The work folder as the host has it (read over plain ssh)."""
        listing = self.sshd.run_as_user(
            f'cd {self.where} && for f in *; do printf \'%s=\' "$f"; cat "$f"; done'
        )
        return dict(line.split("=", 1) for line in listing.splitlines() if "=" in line)


@pytest.fixture
def lab(tmp_path: Path, sshd: SSHServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Lab]:
    monkeypatch.setenv("RUNBOOK_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("RUNBOOK_SIGNING_KEY", raising=False)
    if sshd.password is not None:
        monkeypatch.setenv("RBE_TEST_SUDO_PASSWORD", sshd.password)
    where = Path(tempfile.mkdtemp(prefix="rbe-sctl-"))  # the test user writes here
    where.chmod(0o777)
    (where / "state.txt").write_text("before\n", "utf-8")
    (where / "state.txt").chmod(0o666)
    try:
        yield Lab(tmp_path, sshd, where)
    finally:
        shutil.rmtree(where, ignore_errors=True)


def checks(report: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(c["host"], c["check"]): c for c in report["checks"]}


def records(result: dict[str, Any], event: str) -> list[dict[str, Any]]:
    journal = read_journal(Path(result["journal"]), verify=False)
    return [r for r in journal if r["event"] == event]


def test_ssh_preflight_checks_login_shell_setsid_interpreters_and_programs(
    lab: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = lab.cli(
        capsys, "preflight", lab.tmp / "book.md", "--env", lab.env(hosts=("web1",)), "--json"
    )
    assert code == 0, out
    found = checks(json.loads(out))
    login = found[("web1", "connect and log in")]
    assert login["ok"] is True and f"127.0.0.1:{lab.sshd.port}" in login["detail"]
    assert "known" in login["detail"]
    assert found[("web1", "shell sh")]["ok"] is True
    assert found[("web1", "setsid")]["ok"] is True
    assert found[("web1", "setsid")]["detail"].endswith("/setsid")
    for program in ("bash", "python3"):  # the interpreters of the bash and python steps
        assert found[("web1", f"shell {program}")]["ok"] is True, program
    assert found[("web1", "tool cat")]["ok"] is True  # the look step calls cat
    assert not (lab.tmp / "state" / "runs").exists()
    assert lab.host_files() == {"state.txt": "before"}  # the preflight changed nothing


def test_ssh_preflight_with_become_checks_sudo_with_the_secret(
    lab: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    if lab.sshd.password is None:
        pytest.skip("become needs the sudo test user: run as root")
    env = lab.env(hosts=("web1",), become=True, become_password="web_sudo")
    code, out, _ = lab.cli(capsys, "preflight", lab.tmp / "book.md", "--env", env, "--json")
    assert code == 0, out
    found = checks(json.loads(out))
    assert found[("web1", "become (sudo -u root)")] == {
        "host": "web1",
        "transport": "ssh",
        "check": "become (sudo -u root)",
        "ok": True,
        "detail": "steps run as root",
        "fix": "",
    }
    assert lab.sshd.password not in out


def _wrong_key(lab: Lab) -> dict[str, Any]:
    other = lab.tmp / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    return {"private_key_file": str(other)}


def _unknown_host_key(lab: Lab) -> dict[str, Any]:
    empty = lab.tmp / "empty_known_hosts"
    empty.write_text("", "utf-8")
    return {"known_hosts_file": str(empty)}


FAILURES = {
    "wrong-key": (
        _wrong_key,
        "connect and log in",
        "authentication failed: the host refused",
        "Check private_key_file, user, and the user's authorized_keys on the host",
    ),
    "unknown-host-key": (
        _unknown_host_key,
        "connect and log in",
        "unknown host key: 127.0.0.1 is not in",
        "Add its key after checking the fingerprint (ssh-keyscan)",
    ),
    "missing-interpreter": (
        lambda lab: {"port": lab.sshd.bare_port},
        "shell bash",
        "not found",
        "install bash on web1 (bash steps need it), or target a role whose host has it",
    ),
    "wrong-sudo-password": (
        lambda lab: {"become": True, "become_password": "web_sudo"},
        "become (sudo -u root)",
        "become (sudo -u root) failed: the become_password was refused",
        "check the secret become_password names",
    ),
}


@pytest.mark.parametrize("case", list(FAILURES))
def test_ssh_preflight_failure_names_host_and_fix_and_creates_no_run(
    lab: Lab, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    options, check, detail, fix = FAILURES[case]
    if case == "wrong-sudo-password":
        if lab.sshd.password is None:
            pytest.skip("become needs the sudo test user: run as root")
        monkeypatch.setenv("RBE_TEST_SUDO_PASSWORD", "not-" + lab.sshd.password)
    env = lab.env(case, hosts=("web1",), **options(lab))
    code, out, err = lab.cli(capsys, "preflight", lab.tmp / "book.md", "--env", env)
    assert code == 2 and "nothing was started" in err
    failed = [line for line in out.splitlines() if line.startswith("FAIL")]
    assert failed and failed[0].startswith(f"FAIL web1 (ssh) {check}: "), out
    assert detail in failed[0] and f"fix: {fix}" in out, out
    code, out, err = lab.cli(
        capsys, "run", lab.tmp / "book.md", "--env", env, "--no-input", "--run-id", case
    )
    assert code == 2
    assert f"preflight: web1 (ssh) {check}: " in err and fix in err, err
    assert "nothing was started" in err
    assert not (lab.tmp / "state" / "runs").exists()  # no run, not even a failed one
    assert lab.host_files() == {"state.txt": "before"}
    if lab.sshd.password is not None:
        assert lab.sshd.password not in out + err


def test_only_and_limit_over_ssh(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = lab.cli(
        capsys, "run", lab.tmp / "book.md", "--env", lab.env(), "--no-input", "--json",
        "--only", "change,ver", "--limit", "web1",
    )  # fmt: skip
    assert code == 0, out
    result = json.loads(out)
    assert result["outcome"] == "partial"
    assert lab.host_files() == {"state.txt": "before", "web1.changed": "changed"}
    left = {(r["step"], r["host"]): r["reason"] for r in records(result, "step-excluded")}
    assert left[("change", "web2")] == "host web2 not in --limit web1"
    assert left[("pre", "web1")] == "not in --only change,ver"
    assert left[("look", "web1")] == "not in --only change,ver"
    finished = {(r["step"], r["host"]): r["status"] for r in records(result, "step-finished")}
    assert finished == {("change", "web1"): "succeeded", ("ver", "web1"): "succeeded"}
    started = {(r["host"], r["transport"]) for r in records(result, "process-started")}
    assert started == {("web1", "ssh")}


def test_check_mode_over_ssh_runs_reads_only_and_changes_nothing(
    lab: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    before = lab.host_files()
    code, out, _ = lab.cli(
        capsys, "run", lab.tmp / "book.md", "--env", lab.env(), "--no-input", "--json", "--check"
    )
    result = json.loads(out)
    assert result["status"] == "checked" and result["outcome"] == "checked"
    verdicts = {(r["step"], r["host"]): r["verdict"] for r in records(result, "step-checked")}
    assert verdicts == {
        ("pre", "web1"): "passed",
        ("pre", "web2"): "passed",
        ("change", "web1"): "unknown",
        ("change", "web2"): "unknown",
        ("look", "web1"): "passed",
        ("look", "web2"): "passed",
        ("ver", "web1"): "failed",  # the change is not in place: its verification fails
        ("ver", "web2"): "failed",
    }
    assert code == 1  # as ansible-playbook --check: a step that read and failed fails the run
    assert result["checked"] == {"unknown": 2, "passed": 4, "failed": 2}
    looked = [r for r in records(result, "step-finished") if r["step"] == "look"]
    assert {r["host"] for r in looked} == {"web1", "web2"}
    assert all("before" in r["output_excerpt"] for r in looked)  # it ran on the host
    ran = {r["step"] for r in records(result, "process-started")}
    assert "change" not in ran
    assert lab.host_files() == before == {"state.txt": "before"}  # nothing changed there


def test_preflight_leaves_trust_on_first_use_to_the_run(
    lab: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    known = lab.tmp / "new_known_hosts"
    known.write_text("", "utf-8")
    env = lab.env(
        "tofu", hosts=("web1",), known_hosts_file=str(known), host_key_checking="accept-new"
    )
    code, out, _ = lab.cli(capsys, "preflight", lab.tmp / "book.md", "--env", env, "--json")
    assert code == 0, out
    login = checks(json.loads(out))[("web1", "connect and log in")]
    assert "not yet known: the run trusts it on first use (accept-new)" in login["detail"]
    assert known.read_text("utf-8") == ""  # the preflight trusted nothing
    code, out, _ = lab.cli(
        capsys, "run", lab.tmp / "book.md", "--env", env, "--no-input", "--json", "--only", "pre"
    )
    assert code == 0, out
    [accepted] = records(json.loads(out), "host-key-accepted")
    assert accepted["host"] == "web1" and accepted["fingerprint"].startswith("SHA256:")
    assert known.read_text("utf-8").strip()


@pytest.mark.parametrize(
    ("body", "programs"),
    [
        (
            "openssl x509 -in a -noout\nsleep 1 && systemctl reload x | tee log\n",
            ["openssl", "sleep", "systemctl", "tee"],
        ),
        (
            'kill -HUP "$(cat "${PID_FILE}")"\nX=1 env\nfor f in a b; do seq 1 $f; done\n',
            ["env", "seq"],
        ),
        ("f() { awk 1; }\nf\ncat <<EOF\nnot a command\nEOF\n", ["awk", "cat"]),
        ('case "$1" in\n  start) daemon ;;\nesac\necho "one\ntwo words\n"\n# rsync\n', []),
        (
            "if [ -f x ]; then rsync a b; fi\nv=$(hostname -f); /usr/bin/true\n",
            ["hostname", "rsync"],
        ),
        ("echo 'unclosed\n", []),
    ],
)
def test_shell_programs_are_the_commands_a_body_runs(body: str, programs: list[str]) -> None:
    from runbook_engine.transports.shell_words import shell_programs

    assert shell_programs(body) == programs
