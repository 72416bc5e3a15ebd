"""Preflight of the ``ssh`` transport: before step 1, can the tool reach the host, is its
host key known, does the key log in, do ``/bin/sh`` and ``setsid`` answer, does become
(sudo) take the password its secret holds, and are the interpreters and programs the
steps call on the ``PATH`` of the user the steps run as?

It opens the transport the run would (:func:`~runbook_engine.transports.ssh.open_ssh`: the
same options, strict host key checking, one master connection for its few commands), then
closes it; the run opens its own.  It changes nothing on the host: it runs ``uname`` and
``command -v`` lookups, once as the login user and once as a step would run (through
sudo with the password on standard input when ``become`` is set).  A host trusted on first
use (``host_key_checking: accept-new``) whose key is not known yet is checked against a
temporary copy of the known-hosts file, so the run itself accepts the key and journals its
fingerprint.  No message holds a secret: sudo's answers are mapped to fixed sentences.

:func:`shell_programs` finds the programs a ``sh``/``bash`` body calls (first word of each
simple command; built-ins, keywords, functions, paths and variables left out).
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from runbook_engine.errors import ExecutionError, RunbookError
from runbook_engine.transports.preflight import HostCheck, Needs
from runbook_engine.transports.ssh_errors import SSHConnectionError
from runbook_engine.transports.ssh_scripts import INTERPRETERS

if TYPE_CHECKING:
    from runbook_engine.source.model import Host
    from runbook_engine.transports.ssh import SSHTransport

#: Programs every step needs on the host besides ``/bin/sh`` (the staging script).
STAGING = ("setsid", "mktemp", "dd", "cat")
_ANSWER = re.compile(r"^RBE-(FOUND|MISSING) (\S+)(?: (.*))?$", re.MULTILINE)
_TIMEOUT = 60.0


def preflight_ssh(host: Host, secrets: dict[str, str], needs: Needs) -> list[HostCheck]:
    """Preflight of the ``ssh`` transport (see the module docstring).

    Args:
        host: The host (its ``ssh:`` options).
        secrets: The run's resolved secrets (``become_password`` names one).
        needs: The step kinds and programs the run's steps need there.

    Returns:
        One :class:`HostCheck` per check; it stops at the first failure that hides the
        rest (connection, login, ``/bin/sh``, become).
    """
    from runbook_engine.transports.ssh import open_ssh

    with contextlib.ExitStack() as stack:
        checked, note = _known_hosts_copy(host, stack)
        try:
            transport = open_ssh(checked, secrets, None)
        except RunbookError as exc:
            return [_fail(host, "connect", exc.format(), _OPTIONS_FIX)]
        stack.callback(transport.close)
        try:
            transport.connect()
        except SSHConnectionError as exc:
            return [_fail(host, "connect and log in", exc.what, exc.fix)]
        except ExecutionError as exc:
            return [_fail(host, "connect and log in", exc.message, _OPTIONS_FIX)]
        o = transport.options
        login = f"{o.user + '@' if o.user else ''}{host.address}:{o.port}"
        out = [_ok(host, "connect and log in", f"{login}; host key {note}")]
        staged = _as_login_user(transport, out)
        if staged:
            out.extend(_as_step_user(transport, needs))
        return out


def _as_login_user(transport: SSHTransport, out: list[HostCheck]) -> bool:
    """``/bin/sh``, the system and :data:`STAGING` as the login user; False when a step
    could not start there."""
    host = transport.host
    script = "uname -srm 2>/dev/null || echo unknown system\n" + _lookups(STAGING)
    remote = "exec " + shlex.join(["/bin/sh", "-c", script, "rbe-preflight"])
    try:
        done = subprocess.run(
            transport.argv(remote),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        out.append(_fail(host, "shell sh", "/bin/sh gave no answer in time", _SHELL_FIX))
        return False
    text = done.stdout.decode("utf-8", errors="replace")
    answers = _answers(text)
    if done.returncode != 0 or not answers:
        err = done.stderr.decode("utf-8", errors="replace").strip()[-300:]
        detail = f"/bin/sh did not answer (exit {done.returncode}{': ' + err if err else ''})"
        out.append(_fail(host, "shell sh", detail, _SHELL_FIX))
        return False
    system = text.splitlines()[0].strip() if text.strip() else "answers"
    out.append(_ok(host, "shell sh", f"/bin/sh on {system}"))
    for tool in STAGING:
        where = answers.get(tool)
        fix = "" if where else f"install {_PACKAGE[tool]} on {host.name}: every step runs with it"
        check = "setsid" if tool == "setsid" else f"tool {tool}"
        out.append(HostCheck(host.name, "ssh", check, bool(where), where or "not found", fix))
    return all(answers.get(t) for t in STAGING)


def _as_step_user(transport: SSHTransport, needs: Needs) -> list[HostCheck]:
    """Become, then the interpreters and programs, looked up as the steps run."""
    host, o = transport.host, transport.options
    out: list[HostCheck] = []
    programs: dict[str, str] = {}
    for kind in sorted(needs.kinds):
        if kind in INTERPRETERS:
            programs.setdefault(INTERPRETERS[kind], f"{kind} steps")
        else:
            detail = f"SSH hosts run {', '.join(INTERPRETERS)} steps, not {kind}"
            out.append(_fail(host, f"shell {kind}", detail, _UNSUPPORTED_FIX))
    tools = {t: s for t, s in needs.tools.items() if t not in programs}
    script = "id -un\n" + _lookups([*programs, *tools])
    become = f"become (sudo -u {o.become_user})"
    try:
        result = transport.run("sh", script, timeout=_TIMEOUT)
    except ExecutionError as exc:
        if o.become and "become (sudo" in exc.message:
            return [*out, _fail(host, become, exc.message, _BECOME_FIX)]
        return [*out, _fail(host, "run a step", exc.message, _SHELL_FIX)]
    answers = _answers(result.stdout)
    user = result.stdout.splitlines()[0].strip() if result.stdout.strip() else "?"
    if o.become:
        out.append(_ok(host, become, f"steps run as {user}"))
    for program, what in programs.items():
        where = answers.get(program)
        fix = "" if where else f"install {program} on {host.name} ({what} need it), {_KIND_FIX}"
        out.append(
            HostCheck(host.name, "ssh", f"shell {program}", bool(where), where or "not found", fix)
        )
    for tool, step in sorted(tools.items()):
        where = answers.get(tool)
        fix = f"install {tool} on {host.name} or put it on {user}'s PATH (step {step} calls it)"
        check = HostCheck(host.name, "ssh", f"tool {tool}", bool(where), where or "not found")
        out.append(check if where else dataclasses.replace(check, fix=fix))
    return out


def _lookups(programs: list[str] | tuple[str, ...]) -> str:
    """A sh fragment printing ``RBE-FOUND NAME PATH`` or ``RBE-MISSING NAME`` per program."""
    lines = []
    for name in programs:
        q = shlex.quote(name)
        lines.append(
            f'if p=$(command -v {q} 2>/dev/null); then echo "RBE-FOUND {name} $p"; '
            f"else echo 'RBE-MISSING {name}'; fi"
        )
    return "\n".join(lines) + "\n"


def _answers(text: str) -> dict[str, str]:
    """Program -> where it was found ('' when missing)."""
    return {
        m.group(2): (m.group(3) or m.group(2)) if m.group(1) == "FOUND" else ""
        for m in _ANSWER.finditer(text)
    }


def _known_hosts_copy(host: Host, stack: contextlib.ExitStack) -> tuple[Host, str]:
    """``host`` as the preflight connects to it, and what it says of the host key: for a
    trust-on-first-use host whose key is unknown, a temporary copy of its known-hosts file
    (the run accepts and journals the key, not the preflight)."""
    from runbook_engine.transports.ssh_options import SSHOptions

    try:
        o = SSHOptions.of(host)
    except (TypeError, ValueError):
        return host, "checked"
    if o.host_key_checking != "accept-new" or shutil.which("ssh-keygen") is None:
        return host, f"known ({o.known_hosts_file})"
    name = host.address if o.port == 22 else f"[{host.address}]:{o.port}"
    found = subprocess.run(
        ["ssh-keygen", "-F", name, "-f", o.known_hosts_file], capture_output=True, check=False
    )
    if found.returncode == 0:
        return host, f"known ({o.known_hosts_file})"
    folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="rbe-preflight-")))
    copy = folder / "known_hosts"
    if Path(o.known_hosts_file).is_file():
        shutil.copyfile(o.known_hosts_file, copy)
    options = {**host.options, "known_hosts_file": str(copy)}
    note = "not yet known: the run trusts it on first use (accept-new) and journals it"
    return dataclasses.replace(host, options=options), note


def _ok(host: Host, check: str, detail: str) -> HostCheck:
    return HostCheck(host.name, "ssh", check, True, detail)


def _fail(host: Host, check: str, detail: str, fix: str) -> HostCheck:
    return HostCheck(host.name, "ssh", check, False, detail, fix)


_PACKAGE = {"setsid": "util-linux (setsid)", "mktemp": "coreutils", "dd": "coreutils",
            "cat": "coreutils"}  # fmt: skip
_OPTIONS_FIX = "correct the host's ssh: options or the secret its become_password names"
_SHELL_FIX = "the login user needs a working /bin/sh and a writable TMPDIR (or /tmp)"
_KIND_FIX = "or target a role whose host has it"
_UNSUPPORTED_FIX = "target a role whose hosts run it (winrm for cmd and powershell, or local)"
_BECOME_FIX = (
    "check the secret become_password names, and that the user may run commands as "
    "become_user with sudo on the host"
)
