"""Read what ``reg query``, ``sc qc`` and ``sc query`` printed.

``reg query`` formats (observed output of reg.exe):

* Windows XP / Server 2003 (reg.exe 3.0): a ``! REG.EXE VERSION 3.0`` header line,
  the key line ``HKEY_LOCAL_MACHINE\\...``, then a value line of four spaces,
  name, TAB, type, TAB, data; REG_MULTI_SZ items end with ``\\0`` and the list
  with ``\\0\\0``; the default value is named ``<NO NAME>``.
* Vista and later: no header; name, type and data separated by four spaces;
  items separated by ``\\0``; the default value is named ``(Default)`` (localised).

REG_DWORD and REG_QWORD data are printed as ``0x`` hex, REG_BINARY as hex digits.
A missing key or value: exit status 1 and ``ERROR: The system was unable to find
the specified registry key or value.``

``sc qc`` prints ``START_TYPE : 2 AUTO_START`` (2 auto, 3 demand, 4 disabled,
0 boot, 1 system); ``sc query`` prints ``STATE : 4 RUNNING`` (1 stopped ...
7 paused; winsvc.h).  A service that does not exist: ``[SC] OpenService FAILED 1060``.
"""

from __future__ import annotations

import re

from .spec import RegValue, ServiceStatus

_VALUE_LINE = re.compile(
    r"^(?: {2,}|\t)(?P<name>.*?)(?:\t| {4})(?P<type>REG_[A-Z_]+)"
    r"(?:(?:\t| {4})(?P<data>.*))?$"
)
_NOT_FOUND = re.compile(r"unable to find the specified registry key or value", re.IGNORECASE)
_START_TYPE = re.compile(r"^\s*START_TYPE\s*:\s*(\d+)", re.MULTILINE)
_DISPLAY_NAME = re.compile(r"^\s*DISPLAY_NAME\s*:\s*(.*?)\s*$", re.MULTILINE)
_STATE = re.compile(r"^\s*STATE\s*:\s*(\d+)", re.MULTILINE)
_NO_SERVICE = re.compile(r"\b1060\b")
_START_MODES = {0: "boot", 1: "system", 2: "auto", 3: "demand", 4: "disabled"}
_STATES = {
    1: "stopped",
    2: "start-pending",
    3: "stop-pending",
    4: "running",
    5: "continue-pending",
    6: "pause-pending",
    7: "paused",
}
_DEFAULT_NAMES = ("<no name>", "(default)")


class OutputError(Exception):
    """A command's output could not be understood (the message says what was expected)."""


class ServiceMissing(OutputError):
    """``sc`` reported error 1060: the service is not installed."""


def parse_reg_query(exit_code: int | None, output: str, value: str) -> RegValue | None:
    """Return the value ``reg query ... /v value`` printed, or ``None`` when it is absent.

    Args:
        exit_code: reg.exe's exit status.
        output: Its standard output and error, CRLF or LF.
        value: The value name asked for (``""`` for the default value).

    Raises:
        OutputError: reg.exe failed for another reason (access denied...), or the
            output holds no line for the value.
    """
    if exit_code != 0:
        if _NOT_FOUND.search(output):
            return None
        raise OutputError(f"reg query failed (exit {exit_code}): {_first_line(output)}")
    entries = []
    for raw in output.replace("\r\n", "\n").split("\n"):
        match = _VALUE_LINE.match(raw.rstrip("\r"))
        if match:
            entries.append((match["name"], match["type"], match["data"] or ""))
    wanted = [e for e in entries if _same_name(e[0], value)]
    if not wanted and len(entries) == 1:
        wanted = entries  # the default value's name is localised ("(Standard)")
    if not wanted:
        raise OutputError(
            f"reg query printed no line for value {value or '(Default)'!r}: {_first_line(output)}"
        )
    _, reg_type, data = wanted[0]
    return RegValue(reg_type, reg_value_data(reg_type, data))


def _same_name(shown: str, value: str) -> bool:
    if value == "":
        return shown.lower() in _DEFAULT_NAMES
    return shown.lower() == value.lower()  # value names are case-insensitive


def reg_value_data(reg_type: str, data: str) -> str | int | tuple[str, ...]:
    """Convert the data column of ``reg query`` to the form :class:`RegValue` holds.

    Raises:
        OutputError: a REG_DWORD/REG_QWORD that is not ``0x`` hex.
    """
    if reg_type in ("REG_DWORD", "REG_QWORD", "REG_DWORD_BIG_ENDIAN"):
        try:
            return int(data.strip(), 0)
        except ValueError:
            raise OutputError(f"{reg_type} data {data!r} is not a number") from None
    if reg_type == "REG_MULTI_SZ":
        items = data.split("\\0")
        while items and items[-1] == "":
            items.pop()
        return tuple(items)
    if reg_type == "REG_BINARY":
        return "".join(data.split()).upper()
    return data


def parse_sc(
    qc_code: int | None, qc_output: str, query_code: int | None, query_output: str
) -> ServiceStatus:
    """Return the start mode (from ``sc qc``) and state (from ``sc query``) of a service.

    Raises:
        ServiceMissing: sc reported error 1060 (no such service).
        OutputError: sc failed otherwise, or printed no START_TYPE / STATE line.
    """
    for code, output, what in ((qc_code, qc_output, "qc"), (query_code, query_output, "query")):
        if code == 1060 or (code != 0 and _NO_SERVICE.search(output)):
            raise ServiceMissing("the service is not installed (sc: error 1060)")
        if code != 0:
            raise OutputError(f"sc {what} failed (exit {code}): {_first_line(output)}")
    start = _START_TYPE.search(qc_output)
    state = _STATE.search(query_output)
    if start is None or int(start.group(1)) not in _START_MODES:
        raise OutputError(f"sc qc printed no START_TYPE line: {_first_line(qc_output)}")
    if state is None or int(state.group(1)) not in _STATES:
        raise OutputError(f"sc query printed no STATE line: {_first_line(query_output)}")
    display = _DISPLAY_NAME.search(qc_output)
    return ServiceStatus(
        _START_MODES[int(start.group(1))],
        _STATES[int(state.group(1))],
        display.group(1) if display else None,
    )


def parse_sc_state(exit_code: int | None, output: str) -> str:
    """Return the state ``sc query`` printed (``running``, ``start-pending``...).

    Raises:
        ServiceMissing, OutputError: as :func:`parse_sc`.
    """
    if exit_code == 1060 or (exit_code != 0 and _NO_SERVICE.search(output)):
        raise ServiceMissing("the service is not installed (sc: error 1060)")
    state = _STATE.search(output)
    if exit_code != 0 or state is None or int(state.group(1)) not in _STATES:
        raise OutputError(f"sc query failed (exit {exit_code}): {_first_line(output)}")
    return _STATES[int(state.group(1))]


def _first_line(output: str) -> str:
    """The first non-blank, non-header line of ``output`` (for messages), or ``(no output)``."""
    for line in output.splitlines():
        text = line.strip()
        if text and not text.startswith("! REG.EXE"):
            return text[:200]
    return "(no output)"
