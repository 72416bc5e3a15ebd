"""Each transport's own preflight: can the tool reach this host, log in, find the shell
and the programs the run's steps call, before step 1?

A transport names its check in its :class:`~runbook_engine.transports.TransportInfo`
(``preflight="module:function"``); the function takes the host, the run's resolved
secrets and :class:`Needs`, and returns :class:`HostCheck` lines.  It never changes the
host: it opens a connection, runs a shell built-in and looks programs up.

``local``: each step kind's interpreter (``sh``, ``bash``, ``pwsh``; python is the one
running ``runbook``) and each program on ``PATH`` (``shutil.which``).  ``winrm``: open
a shell (connection, TLS, authentication), run one cmd.exe script that prints the
Windows version and looks each program up on ``PATH`` with ``%~$PATH:`` (cmd.exe, so it
works on Windows Server 2003, where PowerShell may be missing) and each script path with
``if exist``.  A transport without a preflight says so (``ok`` is ``None``).
"""

from __future__ import annotations

import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runbook_engine.errors import ExecutionError, RunbookError

if TYPE_CHECKING:
    from runbook_engine.source.model import Host

#: Lines of the WinRM preflight script's answer.
_ANSWER = re.compile(r"^RBE-(FOUND|MISSING) (.+?)\s*$", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Needs:
    """What a run's steps need on one host.

    Attributes:
        kinds: Step kinds that run there (``cmd``, ``sh``, ``registry``, ...).
        tools: Programs (``reg.exe``) and script paths (``%SystemDrive%\\...\\adsutil.vbs``)
            the steps call, each with the first step that calls it.
    """

    kinds: frozenset[str] = frozenset()
    tools: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class HostCheck:
    """One line of a preflight.

    Attributes:
        host: The host's name (``-`` for checks of the run as a whole: secrets, probes).
        transport: Its transport (``-`` for run-wide checks).
        check: What was checked (``connect``, ``shell cmd``, ``tool reg.exe``, ``secret x``).
        ok: Passed, failed, or ``None`` when the tool cannot check it (a host reached by hand).
        detail: What was found.
        fix: What to do when it failed.
    """

    host: str
    transport: str
    check: str
    ok: bool | None
    detail: str
    fix: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return asdict(self)


def preflight_local(host: Host, secrets: dict[str, str], needs: Needs) -> list[HostCheck]:
    """Preflight of the ``local`` transport: interpreters and programs on this machine."""
    from runbook_engine.transports.local import interpreter

    out = [HostCheck(host.name, "local", "connect", True, "this machine")]
    for kind in sorted(needs.kinds & {"sh", "bash", "python", "powershell", "cmd"}):
        try:
            argv = interpreter(kind)
        except ExecutionError as exc:
            out.append(
                HostCheck(host.name, "local", f"shell {kind}", False, exc.message, _KIND_FIX)
            )
            continue
        out.append(HostCheck(host.name, "local", f"shell {kind}", True, argv[0]))
    for tool, step in sorted(needs.tools.items()):
        found = Path(tool).is_file() if ("/" in tool or "\\" in tool) else shutil.which(tool)
        out.append(
            HostCheck(
                host.name,
                "local",
                f"tool {tool}",
                bool(found),
                str(found) if found and found is not True else ("found" if found else "not found"),
                "" if found else f"install {tool} or put it on PATH (step {step} calls it)",
            )
        )
    return out


def preflight_winrm(host: Host, secrets: dict[str, str], needs: Needs) -> list[HostCheck]:
    """Preflight of the ``winrm`` transport: connect, authenticate, cmd.exe, programs."""
    from runbook_engine.transports.winrm import open_winrm

    name = host.name
    try:
        transport = open_winrm(host, secrets, None)
    except RunbookError as exc:
        return [HostCheck(name, "winrm", "connect", False, exc.format(), _OPTIONS_FIX)]
    try:
        try:
            result = transport.run("cmd", winrm_script(needs), timeout=120)
        except ExecutionError as exc:
            return [HostCheck(name, "winrm", "connect and log in", False, exc.message, _AUTH_FIX)]
        out = [
            HostCheck(name, "winrm", "connect and log in", True, transport.endpoint),
        ]
        version = next((x.strip() for x in result.stdout.splitlines() if "Windows" in x), "")
        if not result.ok and not _ANSWER.search(result.stdout):
            detail = f"cmd.exe script failed (exit code {result.exit_code}): {result.stderr[:200]}"
            out.append(HostCheck(name, "winrm", "shell cmd", False, detail, _SHELL_FIX))
            return out
        out.append(HostCheck(name, "winrm", "shell cmd", True, version or "cmd.exe answers"))
        answers = {m.group(2): m.group(1) == "FOUND" for m in _ANSWER.finditer(result.stdout)}
        for tool, step in sorted(needs.tools.items()):
            found = answers.get(tool)
            fix = ""
            if not found:
                fix = f"install {tool} on {name} or put it on its PATH (step {step} calls it)"
            detail = "found" if found else ("not found" if found is False else "no answer")
            out.append(HostCheck(name, "winrm", f"tool {tool}", bool(found), detail, fix))
        return out
    finally:
        transport.close()


def winrm_script(needs: Needs) -> str:
    """The cmd.exe script the WinRM preflight runs: ``ver``, then one ``RBE-FOUND``/
    ``RBE-MISSING`` line per program (``%~$PATH:``) and per script path (``if exist``)."""
    tools = dict(needs.tools)
    if "powershell" in needs.kinds:
        tools.setdefault("powershell.exe", "(powershell steps)")
    lines = ["@echo off", "ver"]
    for tool in sorted(tools):
        if "\\" in tool:
            lines.append(
                f'if exist "{tool}" (echo RBE-FOUND {tool}) else (echo RBE-MISSING {tool})'
            )
        else:
            lines.append(
                f'for %%i in ({tool}) do @if "%%~$PATH:i"=="" (echo RBE-MISSING {tool}) '
                f"else (echo RBE-FOUND {tool})"
            )
    lines.append("exit /b 0")
    return "\n".join(lines) + "\n"


_KIND_FIX = "install the interpreter, or target a role whose host has it"
_OPTIONS_FIX = "correct the host's winrm: options or its credential in the environment file"
_AUTH_FIX = (
    "check the address and port, that WinRM listens there (winrm quickconfig), the "
    "certificate trust (ca_trust_path) and the user name and password"
)
_SHELL_FIX = "check that the account may run cmd.exe on the host"
