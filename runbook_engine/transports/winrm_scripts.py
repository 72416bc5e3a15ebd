"""Command lines for the WinRM transport: inline or uploaded scripts, kill helpers, CLIXML.

Pure functions, no I/O, so they are tested without a host.  Facts used:

* cmd.exe's command line holds at most 8191 characters (KB 830473); the WinRM
  service runs a Command as ``cmd.exe /c <command>``, so we keep a margin.
* ``certutil -decode`` turns base64 text (any line length, no header needed) into
  a file; it ships with Windows Server 2003 and later.
* In a batch file, ``^`` escapes ``& | < > ( ) " ^`` and ``%%`` is a literal ``%``.
* ``for /f`` substitutes its variable after the line is parsed (phase 4 of cmd.exe's
  parser), so ``set "%%L"`` assigns a line of a file without reading any of it as syntax;
  delayed expansion (``!NAME!``, phase 5) is likewise applied after parsing.
* ``powershell -EncodedCommand`` takes base64 of UTF-16LE (PowerShell 2.0 help);
  ``-File`` reads a UTF-8 script correctly only with a byte-order mark.
* ``wmic process get ... /format:list`` prints ``Name=value`` records separated
  by blank lines (output may be UTF-16: NUL bytes are dropped before parsing).
"""

from __future__ import annotations

import base64
import re
import uuid
from dataclasses import dataclass

#: cmd.exe's command-line limit in characters (KB 830473).
MAX_COMMAND_LINE = 8191
#: Longest command we send, leaving room for the ``cmd.exe /c`` the service adds.
SAFE_COMMAND_LINE = 8000
#: Base64 characters per ``echo`` line of an upload chunk.
UPLOAD_LINE = 76
POWERSHELL = "powershell -NoProfile -NonInteractive"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True, slots=True)
class CommandPlan:
    """How one step is sent to the host.

    Attributes:
        command_line: The WinRM Command that runs the step (never over SAFE_COMMAND_LINE).
        display: What the journal shows as the command (no env values in it).
        uploads: Commands that write the script file, in order (empty when inline).
        cleanup: Command that deletes the uploaded files, or ``None``.
        marker: Unique token in the command line, used to find the process tree.
        stdin_eof: Close stdin after starting (PowerShell 2.0 otherwise waits on it).
    """

    command_line: str
    display: str
    uploads: tuple[str, ...]
    cleanup: str | None
    marker: str
    stdin_eof: bool


def build_plan(
    kind: str,
    body: str,
    *,
    cwd: str | None,
    env: dict[str, str],
    marker: str | None = None,
    errexit: bool = True,
) -> CommandPlan:
    """Return the commands that run ``body`` as a ``cmd`` or ``powershell`` step.

    A one-line cmd body without cwd or env runs inline; a PowerShell body without env
    runs inline as ``-EncodedCommand`` when that fits; everything else is uploaded to
    ``%TEMP%\\<marker>.cmd`` / ``.ps1`` and run from there.  Environment variables are
    uploaded as data, never as script text: ``%TEMP%\\<marker>.env`` holds one
    ``NAME=value`` line each (cmd; read by ``for /f`` into ``set "%%L"``, whose
    for-variable is substituted after cmd.exe has parsed the line) or ``NAME=base64``
    lines (PowerShell; decoded with ``[Convert]::FromBase64String``).  With ``errexit``
    a PowerShell script starts with the fixed line ``$ErrorActionPreference = 'Stop'``
    (cmd has no such mode).

    Raises:
        ValueError: an env name is not an identifier, or a cmd value holds a line break.
    """
    for name, value in env.items():
        if not _ENV_NAME.fullmatch(name):
            raise ValueError(f"environment variable name {name!r} is not valid on Windows")
        if kind == "cmd" and ("\n" in value or "\r" in value):
            raise ValueError(f"environment variable {name}: cmd cannot take a line break")
    marker = marker or "rbe-" + uuid.uuid4().hex[:16]
    prefix = f'set "RBE_STEP={marker}"& '
    text = body.replace("\r\n", "\n").rstrip("\n")
    if kind == "cmd":
        if "\n" not in text and not env and not cwd and len(prefix + text) <= SAFE_COMMAND_LINE:
            line = prefix + text
            return CommandPlan(line, line, (), None, marker, False)
        script = _cmd_script(text, cwd, marker if env else None).encode("utf-8")
        data = "".join(f"{name}={value}\r\n" for name, value in env.items())
        return _uploaded(script, marker, prefix, ".cmd", '"%TEMP%\\{name}"', False, data)
    if kind == "powershell":
        prelude = _ps_prelude(cwd, None, errexit)
        if not env:
            encoded = base64.b64encode((prelude + text).encode("utf-16-le")).decode("ascii")
            line = f"{prefix}{POWERSHELL} -EncodedCommand {encoded}"
            if len(line) <= SAFE_COMMAND_LINE:
                return CommandPlan(line, line, (), None, marker, True)
        script = (
            "\ufeff" + _ps_prelude(cwd, marker if env else None, errexit) + text + "\n"
        ).replace("\n", "\r\n")
        data = "".join(
            f"{name}={base64.b64encode(value.encode('utf-8')).decode('ascii')}\r\n"
            for name, value in env.items()
        )
        run = POWERSHELL + ' -ExecutionPolicy Bypass -File "%TEMP%\\{name}"'
        return _uploaded(script.encode("utf-8"), marker, prefix, ".ps1", run, True, data)
    raise ValueError(f"cannot run a {kind!r} step over WinRM")


def _cmd_script(text: str, cwd: str | None, env_marker: str | None) -> str:
    lines = ["@echo off"]
    if env_marker:
        lines.append(f'for /f "usebackq delims=" %%L in ("%TEMP%\\{env_marker}.env") do set "%%L"')
    if cwd:
        lines.append(f'cd /d "{_batch_escape(cwd)}" || exit /b 1')
    return "\r\n".join([*lines, *text.split("\n")]) + "\r\n"


def _batch_escape(value: str) -> str:
    value = re.sub(r'([\^&|<>()"])', r"^\1", value)
    return value.replace("%", "%%")


def _ps_quote(value: str) -> str:
    return "'" + re.sub(r"(['\u2018\u2019\u201a\u201b])", r"\1\1", value) + "'"


#: The first line of a PowerShell step in errexit mode.
PS_ERREXIT = "$ErrorActionPreference = 'Stop'"


def _ps_prelude(cwd: str | None, env_marker: str | None, errexit: bool = True) -> str:
    lines = [PS_ERREXIT] if errexit else []
    if env_marker:
        lines.append(
            f'foreach ($rbeLine in [IO.File]::ReadAllLines("$env:TEMP\\{env_marker}.env")) '
            "{ $rbeAt = $rbeLine.IndexOf('='); [Environment]::SetEnvironmentVariable("
            "$rbeLine.Substring(0, $rbeAt), [Text.Encoding]::UTF8.GetString("
            "[Convert]::FromBase64String($rbeLine.Substring($rbeAt + 1))), 'Process') }"
        )
    if cwd:
        lines.append(f"Set-Location -LiteralPath {_ps_quote(cwd)}")
    return "".join(line + "\n" for line in lines)


def _uploaded(
    script: bytes,
    marker: str,
    prefix: str,
    suffix: str,
    run: str,
    stdin_eof: bool,
    data: str = "",
) -> CommandPlan:
    name = marker + suffix
    b64_path = f'"%TEMP%\\{marker}.b64"'
    target = f'"%TEMP%\\{name}"'
    uploads = upload_commands(script, b64_path, target)
    cleanup = f"del /f /q {b64_path} {target}"
    if data:
        data_b64, data_path = f'"%TEMP%\\{marker}.env.b64"', f'"%TEMP%\\{marker}.env"'
        more = upload_commands(data.encode("utf-8"), data_b64, data_path)
        if len(uploads[-1]) + len(" && " + more[0]) <= SAFE_COMMAND_LINE:
            uploads[-1] += " && " + more.pop(0)
        uploads += more
        cleanup += f" {data_b64} {data_path}"
    line = prefix + run.format(name=name)
    return CommandPlan(line, line, tuple(uploads), cleanup, marker, stdin_eof)


def upload_commands(
    data: bytes, b64_path: str, target: str, limit: int = SAFE_COMMAND_LINE
) -> list[str]:
    """Return cmd commands that recreate ``data`` at ``target`` (both paths quoted).

    Base64 lines are appended with ``(echo L1&echo L2...)>>file`` (the redirection
    after the block, so a line ending in a digit is never read as a handle number),
    each command under ``limit`` characters; ``certutil -f -decode`` finishes.
    """
    text = base64.b64encode(data).decode("ascii")
    lines = [text[i : i + UPLOAD_LINE] for i in range(0, len(text), UPLOAD_LINE)] or [""]
    decode = f"certutil -f -decode {b64_path} {target}"
    commands: list[str] = []
    chunk: list[str] = []

    def flush() -> None:
        redirect = ">" if not commands else ">>"
        commands.append("(" + "&".join("echo " + x for x in chunk) + f"){redirect}{b64_path}")
        chunk.clear()

    for line in lines:
        size = len("(" + "&".join("echo " + x for x in [*chunk, line]) + f")>>{b64_path}")
        if chunk and size > limit:
            flush()
        chunk.append(line)
    flush()
    if len(commands[-1]) + len(" && " + decode) <= limit:
        commands[-1] += " && " + decode
    else:
        commands.append(decode)
    return commands


def process_list_command() -> str:
    """Return the command that lists every process with its parent and command line."""
    return "wmic process get CommandLine,ParentProcessId,ProcessId /format:list"


def parse_process_list(output: bytes, marker: str) -> list[int]:
    """Return the PIDs of the processes whose command line holds ``marker``, then their
    descendants (parents before children), from ``wmic ... /format:list`` output."""
    text = output.replace(b"\x00", b"").decode("utf-8", "replace").replace("\r", "")
    records: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for raw in [*text.split("\n"), ""]:
        if not raw.strip():
            if current:
                records.append(current)
                current = {}
            continue
        key, _, value = raw.partition("=")
        current[key.strip()] = value.strip()
    parent_of: dict[int, int] = {}
    roots: list[int] = []
    for rec in records:
        if not rec.get("ProcessId", "").isdigit():
            continue
        pid = int(rec["ProcessId"])
        parent = rec.get("ParentProcessId", "")
        parent_of[pid] = int(parent) if parent.isdigit() else -1
        if marker and f"RBE_STEP={marker}" in rec.get("CommandLine", ""):
            roots.append(pid)
    found = list(roots)
    for pid in found:  # breadth first: the list grows while we walk it
        found += [c for c, p in parent_of.items() if p == pid and c not in found]
    return found


def kill_command(pids: list[int]) -> str:
    """Return ``taskkill /T /F /PID a /PID b ...`` for the given process ids."""
    return "taskkill /T /F " + " ".join(f"/PID {pid}" for pid in pids)


def decode_clixml(text: str) -> str:
    """Turn PowerShell's ``#< CLIXML`` stderr into readable text.

    Error records become their message lines; warning, verbose and debug records get
    a ``WARNING:``/``VERBOSE:``/``DEBUG:`` prefix; progress records are dropped.
    ``_xHHHH_`` escapes are decoded.  Text that is not CLIXML is returned unchanged.
    """
    if "#< CLIXML" not in text:
        return text
    import xml.etree.ElementTree as ET  # (only for PowerShell's error output)

    out: list[str] = []
    for part in text.split("#< CLIXML"):
        part = part.strip()
        if not part:
            continue
        try:
            root = ET.fromstring(part)
        except ET.ParseError:
            return text
        for node in root.iter():
            if node.tag.rsplit("}", 1)[-1] != "S" or node.text is None:
                continue
            stream = (node.get("S") or "").lower()
            message = _unescape(node.text)
            if stream == "error":
                out.append(message)
            elif stream in ("warning", "verbose", "debug", "information"):
                out.append(f"{stream.upper()}: {message.rstrip()}\n")
    return "".join(out).replace("\r\n", "\n").strip("\n") + ("\n" if out else "")


def _unescape(value: str) -> str:
    return re.sub(r"_x([0-9A-Fa-f]{4})_", lambda m: chr(int(m.group(1), 16)), value)
