"""A scripted Windows Server 2003 behind tests/wsman_server.py: a registry, a service table,
and the command-line parsing of cmd.exe and the C runtime that reg.exe and sc.exe see.

It answers ``reg query|add|delete`` and ``sc qc|query|config|start|stop`` like the real
tools (output formats of reg.exe 3.0 on Server 2003, or of Vista and later), so the
declarative steps are tested against the text a real host prints.  A command line
with an unescaped ``&``, ``|``, ``<`` or ``>`` outside quotes fails the test: it
would have run a second command on a real host.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from wsman_server import CommandCall, Reply  # type: ignore[import-not-found]

ROOTS = {
    "HKLM": "HKEY_LOCAL_MACHINE",
    "HKCU": "HKEY_CURRENT_USER",
    "HKCR": "HKEY_CLASSES_ROOT",
    "HKU": "HKEY_USERS",
    "HKCC": "HKEY_CURRENT_CONFIG",
}
NOT_FOUND = "ERROR: The system was unable to find the specified registry key or value.\r\n"
START_CODES = {
    "boot": "0   BOOT_START",
    "system": "1   SYSTEM_START",
    "auto": "2   AUTO_START",
    "demand": "3   DEMAND_START",
    "disabled": "4   DISABLED",
}
STATE_CODES = {
    "stopped": "1  STOPPED",
    "start-pending": "2  START_PENDING",
    "stop-pending": "3  STOP_PENDING",
    "running": "4  RUNNING",
}
ENV = {"SYSTEMROOT": "C:\\WINDOWS", "TEMP": "C:\\TEMP"}


class Injection(AssertionError):
    """A command line would have run something else on a real host."""


def preflight_reply(text: str, missing: set[str] | frozenset[str] = frozenset()) -> Reply | None:
    """The answer to ``runbook preflight``'s program look-up script (``None``: ``text`` is
    not that script): ``ver``, then ``RBE-FOUND`` for each program or path not in
    ``missing``, ``RBE-MISSING`` for the others."""
    if "RBE-FOUND" not in text:
        return None
    out = ["", "Microsoft Windows [Version 5.2.3790]", ""]
    for line in text.splitlines():
        match = re.match(r'for %%i in \((\S+)\) do|if exist "([^"]+)"', line)
        if match:
            name = match.group(1) or match.group(2)
            out.append(f"RBE-{'MISSING' if name in missing else 'FOUND'} {name}")
    return Reply("\r\n".join(out) + "\r\n")


# -- cmd.exe and the C runtime ---------------------------------------------------------------
def expand_percent(line: str, *, batch: bool) -> str:
    """cmd.exe phase 1: ``%NAME%`` expansion (batch: ``%%`` is ``%``, undefined is empty)."""
    if batch:

        def one(match: re.Match[str]) -> str:
            if match.group(0) == "%%":
                return "%"
            return ENV.get((match.group(1) or "").upper(), "")

        return re.sub(r"%%|%([^%\r\n]*)%|%", one, line)
    out, i = [], 0
    while i < len(line):
        if line[i] == "%":
            end = line.find("%", i + 1)
            if end > i and line[i + 1 : end].upper() in ENV:
                out.append(ENV[line[i + 1 : end].upper()])
                i = end + 1
                continue
        out.append(line[i])
        i += 1
    return "".join(out)


def remove_carets(line: str) -> str:
    """cmd.exe phase 2: ``^`` escapes outside quotes; unescaped operators are injections."""
    out, quoted, i = [], False, 0
    while i < len(line):
        char = line[i]
        if char == '"':
            quoted = not quoted
        elif not quoted and char == "^" and i + 1 < len(line):
            out.append(line[i + 1])
            i += 2
            continue
        elif not quoted and char in "&|<>":
            raise Injection(f"unescaped {char!r} outside quotes in {line!r}")
        out.append(char)
        i += 1
    return "".join(out)


def crt_split(line: str) -> list[str]:
    """Split a command line as ``CommandLineToArgvW`` / the C runtime do."""
    args: list[str] = []
    i, n = 0, len(line)
    while i < n:
        while i < n and line[i] in " \t":
            i += 1
        if i >= n:
            break
        arg: list[str] = []
        quoted = False
        while i < n and (quoted or line[i] not in " \t"):
            if line[i] == "\\":
                j = i
                while j < n and line[j] == "\\":
                    j += 1
                count = j - i
                if j < n and line[j] == '"':
                    arg.append("\\" * (count // 2))
                    if count % 2:
                        arg.append('"')
                        j += 1
                else:
                    arg.append("\\" * count)
                i = j
            elif line[i] == '"':
                if quoted and i + 1 < n and line[i + 1] == '"':
                    arg.append('"')
                    i += 2
                else:
                    quoted = not quoted
                    i += 1
            else:
                arg.append(line[i])
                i += 1
        args.append("".join(arg))
    return args


def argv_of(line: str, *, batch: bool) -> list[str]:
    """What reg.exe or sc.exe receives for ``line`` typed at a prompt or in a batch file."""
    return crt_split(remove_carets(expand_percent(line, batch=batch)))


# -- the host ---------------------------------------------------------------------------------
@dataclass
class Service:
    start: str
    state: str
    display: str = ""
    pending_polls: int = 0


@dataclass
class FakeWindows:
    """A scripted host.  ``handler`` is the WindowsHost handler.

    Attributes:
        registry: ``(KEY in upper case with short root, value name in lower case)`` ->
            ``(type, data)`` (data as reg.exe stores it: str, int, list of str, hex str).
        services: name (lower case) -> :class:`Service`.
        style: ``"2003"`` (reg.exe 3.0 output) or ``"vista"``.
        ignore_writes: ``reg add`` / ``sc config`` report success and change nothing.
        mangle_next_write: The next ``reg add`` stores this data instead (a policy
            rewriting the value), then writes work again.
        fail_start: ``sc start`` fails with error 1053 (the service did not respond).
        pending_polls: ``sc query`` answers START/STOP_PENDING this many times after
            ``sc start``/``sc stop``.
        argvs: Every command received, as argv, with whether it came in a batch file.
    """

    registry: dict[tuple[str, str], tuple[str, Any]] = field(default_factory=dict)
    services: dict[str, Service] = field(default_factory=dict)
    style: str = "2003"
    ignore_writes: bool = False
    mangle_next_write: Any = None
    pending_polls: int = 0
    fail_start: bool = False
    argvs: list[tuple[list[str], bool]] = field(default_factory=list)

    def handler(self, kind: str, text: str, call: CommandCall) -> Reply:
        preflight = preflight_reply(text)
        if preflight is not None:
            return preflight
        batch = "\n" in text.strip()
        lines = [
            x
            for x in text.replace("\r\n", "\n").split("\n")
            if x.strip() and x.strip().lower() != "@echo off"
        ]
        reply = Reply()
        for line in lines:
            argv = argv_of(line, batch=batch)
            self.argvs.append((argv, batch))
            reply = self.run(argv)
            if reply.exit_code:
                break
        return reply

    def commands(self, program: str | None = None) -> list[list[str]]:
        return [a for a, _ in self.argvs if program is None or a[0].lower() == program]

    def run(self, argv: list[str]) -> Reply:
        program, verb = argv[0].lower(), argv[1].lower()
        if program == "reg":
            verbs = {"query": self.reg_query, "add": self.reg_add, "delete": self.reg_delete}
            return verbs[verb](argv)
        if program == "sc":
            return self.sc(verb, argv[2], argv[3:])
        return Reply(
            "", f"'{program}' is not recognized as an internal or external command\r\n", 9009
        )

    # reg.exe
    @staticmethod
    def _where(argv: list[str]) -> tuple[str, str]:
        root, _, rest = argv[2].partition("\\")
        key = root.upper() + "\\" + rest
        lowered = [a.lower() for a in argv]
        name = "" if "/ve" in lowered else argv[lowered.index("/v") + 1]
        return key.upper(), name.lower()

    def reg_query(self, argv: list[str]) -> Reply:
        key, name = self._where(argv)
        found = self.registry.get((key, name))
        if found is None:
            return Reply("", NOT_FOUND, 1)
        root, _, rest = argv[2].partition("\\")
        long_key = ROOTS[root.upper()] + "\\" + rest
        value_name = argv[argv.index("/v") + 1] if "/v" in argv else ""
        reg_type, data = found
        if self.style == "2003":
            label = value_name or "<NO NAME>"
            text = (
                f"\r\n! REG.EXE VERSION 3.0\r\n\r\n{long_key}\r\n"
                f"    {label}\t{reg_type}\t{self._show(reg_type, data)}\r\n\r\n"
            )
        else:
            label = value_name or "(Default)"
            text = (
                f"\r\n{long_key}\r\n"
                f"    {label}    {reg_type}    {self._show(reg_type, data)}\r\n\r\n"
            )
        return Reply(text)

    def _show(self, reg_type: str, data: Any) -> str:
        if reg_type in ("REG_DWORD", "REG_QWORD"):
            return f"0x{data:x}"
        if reg_type == "REG_MULTI_SZ":
            joined = "\\0".join(data)
            return joined + "\\0\\0" if self.style == "2003" else joined
        return str(data)

    def reg_add(self, argv: list[str]) -> Reply:
        key, name = self._where(argv)
        lowered = [a.lower() for a in argv]
        reg_type = argv[lowered.index("/t") + 1]
        raw = argv[lowered.index("/d") + 1] if "/d" in lowered else ""
        if reg_type not in (
            "REG_SZ",
            "REG_EXPAND_SZ",
            "REG_MULTI_SZ",
            "REG_DWORD",
            "REG_BINARY",
            "REG_QWORD",
        ):
            return Reply("", 'ERROR: Invalid syntax.\r\nType "REG ADD /?" for usage.\r\n', 1)
        data: Any = raw
        if reg_type in ("REG_DWORD", "REG_QWORD"):
            data = int(raw, 0)
        elif reg_type == "REG_MULTI_SZ":
            data = raw.split("\\0") if raw else []
        if self.mangle_next_write is not None:
            data, self.mangle_next_write = self.mangle_next_write, None
        if not self.ignore_writes:
            self.registry[(key, name)] = (reg_type, data)
        return Reply("The operation completed successfully.\r\n")

    def reg_delete(self, argv: list[str]) -> Reply:
        key, name = self._where(argv)
        if (key, name) not in self.registry:
            return Reply("", NOT_FOUND, 1)
        if not self.ignore_writes:
            del self.registry[(key, name)]
        return Reply("The operation completed successfully.\r\n")

    # sc.exe
    def sc(self, verb: str, name: str, rest: list[str]) -> Reply:
        service = self.services.get(name.lower())
        if service is None:
            return Reply(
                "[SC] OpenService FAILED 1060:\r\n\r\nThe specified service does not "
                "exist as an installed service.\r\n\r\n",
                "",
                1060,
            )
        if verb == "qc":
            return Reply(
                f"[SC] GetServiceConfig SUCCESS\r\n\r\nSERVICE_NAME: {name}\r\n"
                f"        TYPE               : 20  WIN32_SHARE_PROCESS \r\n"
                f"        START_TYPE         : {START_CODES[service.start]}\r\n"
                f"        ERROR_CONTROL      : 1   NORMAL\r\n"
                f"        DISPLAY_NAME       : {service.display or name}\r\n"
            )
        if verb == "query":
            state = service.state
            if service.pending_polls > 0:
                service.pending_polls -= 1
                state = "start-pending" if state == "running" else "stop-pending"
            return Reply(
                f"\r\nSERVICE_NAME: {name}\r\n        TYPE               : 20  "
                f"WIN32_SHARE_PROCESS \r\n        STATE              : "
                f"{STATE_CODES[state]}\r\n        WIN32_EXIT_CODE    : 0  (0x0)\r\n"
            )
        if verb == "config":
            assert rest[0] == "start=", f"sc config needs 'start= MODE' as two words, got {rest}"
            if not self.ignore_writes:
                service.start = rest[1]
            return Reply("[SC] ChangeServiceConfig SUCCESS\r\n")
        if verb == "start":
            if service.start == "disabled":
                return Reply(
                    "[SC] StartService FAILED 1058:\r\n\r\nThe service cannot be started"
                    ", either because it is disabled...\r\n",
                    "",
                    1058,
                )
            if self.fail_start:
                return Reply(
                    "[SC] StartService FAILED 1053:\r\n\r\nThe service did not "
                    "respond to the start or control request in a timely fashion.\r\n",
                    "",
                    1053,
                )
            if service.state == "running":
                return Reply(
                    "[SC] StartService FAILED 1056:\r\n\r\nAn instance of the service "
                    "is already running.\r\n",
                    "",
                    1056,
                )
            if not self.ignore_writes:
                service.state, service.pending_polls = "running", self.pending_polls
            return Reply(
                f"\r\nSERVICE_NAME: {name}\r\n        STATE              : "
                f"{STATE_CODES['start-pending']}\r\n"
            )
        if verb == "stop":
            if service.state == "stopped":
                return Reply(
                    "[SC] ControlService FAILED 1062:\r\n\r\nThe service has not been started.\r\n",
                    "",
                    1062,
                )
            if not self.ignore_writes:
                service.state, service.pending_polls = "stopped", self.pending_polls
            return Reply(
                f"\r\nSERVICE_NAME: {name}\r\n        STATE              : "
                f"{STATE_CODES['stop-pending']}\r\n"
            )
        return Reply("", f"[SC] unknown verb {verb}\r\n", 1)
