"""Compile ``registry`` and ``service`` specs to cmd.exe commands for Windows Server 2003,
and describe them for people (one line, and the GUI path for doing it by hand).

Commands (``reg /?``, ``sc /?`` on Windows Server 2003):

* ``reg query "KEY" /v "NAME"`` (``/ve`` for the default value) reads a value;
* ``reg add "KEY" /v "NAME" /t TYPE /d DATA /f`` writes it (creating missing keys),
  REG_MULTI_SZ items joined with the two characters ``\\0``;
* ``reg delete "KEY" /v "NAME" /f`` removes it;
* ``sc qc NAME`` shows the start type, ``sc query NAME`` the state;
* ``sc config NAME start= auto|demand|disabled`` (the space after ``start=`` is required),
  ``sc start NAME`` and ``sc stop NAME`` (both return before the service finished).

reg.exe 3.0 (Windows XP / Server 2003) does not list REG_QWORD among its types;
a REG_QWORD step needs the reg.exe of Windows Vista / Server 2008 or later.
"""

from __future__ import annotations

from .quoting import argument
from .spec import STATES, DeclarativeSpec, RegistrySpec, RegValue, ServiceSpec, ServiceStatus

#: regedit's name for each type (Edit > New > ...).
REGEDIT_NAMES: dict[str, str] = {
    "REG_SZ": "String Value",
    "REG_EXPAND_SZ": "Expandable String Value",
    "REG_MULTI_SZ": "Multi-String Value",
    "REG_DWORD": "DWORD Value",
    "REG_QWORD": "QWORD Value",
    "REG_BINARY": "Binary Value",
}
#: services.msc's name for each start mode (Startup type).
STARTUP_TYPES: dict[str, str] = {"auto": "Automatic", "demand": "Manual", "disabled": "Disabled"}


# -- registry -----------------------------------------------------------------------------
def _value_switch(spec: RegistrySpec, batch: bool) -> str:
    return "/ve" if spec.value == "" else "/v " + argument(spec.value, batch=batch)


def reg_query(spec: RegistrySpec, *, batch: bool = False) -> str:
    """``reg query "KEY" /v "NAME"``: print the value (exit 1 when it or the key is missing)."""
    return f"reg query {argument(spec.key, batch=batch)} {_value_switch(spec, batch)}"


def reg_data(value: RegValue) -> str:
    """The text reg.exe's ``/d`` takes for ``value`` (before quoting)."""
    data = value.data
    if isinstance(data, tuple):
        return "\\0".join(data)
    return str(data)


def reg_add(spec: RegistrySpec, value: RegValue, *, batch: bool = False) -> str:
    """``reg add "KEY" /v "NAME" /t TYPE /d DATA /f``."""
    quote = not isinstance(value.data, int) and value.type != "REG_BINARY"
    data = argument(reg_data(value), batch=batch, quote=quote)
    return (
        f"reg add {argument(spec.key, batch=batch)} {_value_switch(spec, batch)} "
        f"/t {value.type} /d {data} /f"
    )


def reg_delete(spec: RegistrySpec, *, batch: bool = False) -> str:
    """``reg delete "KEY" /v "NAME" /f``."""
    return f"reg delete {argument(spec.key, batch=batch)} {_value_switch(spec, batch)} /f"


def reg_set_to(spec: RegistrySpec, value: RegValue | None, *, batch: bool = False) -> str:
    """The command that makes the value ``value`` (``None``: absent)."""
    return reg_delete(spec, batch=batch) if value is None else reg_add(spec, value, batch=batch)


# -- service ------------------------------------------------------------------------------
def sc_qc(name: str, *, batch: bool = False) -> str:
    """``sc qc NAME``: the service's configuration (START_TYPE)."""
    return f"sc qc {argument(name, batch=batch, quote=False)}"


def sc_query(name: str, *, batch: bool = False) -> str:
    """``sc query NAME``: the service's state."""
    return f"sc query {argument(name, batch=batch, quote=False)}"


def service_commands(
    name: str,
    start: str | None,
    state: str | None,
    current: ServiceStatus | None = None,
    *,
    batch: bool = False,
) -> list[str]:
    """Commands that give service ``name`` the start mode and state asked for.

    The start mode is set first (a disabled service cannot be started).  With
    ``current`` given, only what differs is changed; ``None`` for ``start`` or
    ``state`` leaves it as it is.
    """
    arg = argument(name, batch=batch, quote=False)
    out = []
    if start is not None and (current is None or current.start != start):
        out.append(f"sc config {arg} start= {start}")
    if state is not None and (current is None or current.state != state):
        out.append(f"sc {'start' if state == 'running' else 'stop'} {arg}")
    return out


# -- both kinds ---------------------------------------------------------------------------
def read_commands(spec: DeclarativeSpec, *, batch: bool = False) -> list[str]:
    """Read-only commands that show the current value or service status."""
    if isinstance(spec, RegistrySpec):
        return [reg_query(spec, batch=batch)]
    return [sc_qc(spec.name, batch=batch), sc_query(spec.name, batch=batch)]


def change_commands(
    spec: DeclarativeSpec, current: RegValue | ServiceStatus | None = None, *, batch: bool = False
) -> list[str]:
    """Commands that make the change (for a service, only what differs from ``current``)."""
    if isinstance(spec, RegistrySpec):
        return [reg_set_to(spec, spec.want, batch=batch)]
    status = current if isinstance(current, ServiceStatus) else None
    return service_commands(spec.name, spec.start, spec.state, status, batch=batch)


def restore_commands(
    spec: DeclarativeSpec,
    previous: RegValue | ServiceStatus | None,
    current: ServiceStatus | None = None,
    *,
    batch: bool = False,
) -> list[str]:
    """The generated backout: commands that bring back ``previous`` (``None``: value absent).

    For a service, only what the step changes is restored, and with ``current`` given
    only what differs from it (``sc start`` of a running service would fail).
    """
    if isinstance(spec, RegistrySpec):
        assert previous is None or isinstance(previous, RegValue)
        return [reg_set_to(spec, previous, batch=batch)]
    assert isinstance(previous, ServiceStatus)
    start = previous.start if spec.start is not None else None
    state = previous.state if spec.state is not None and previous.state in STATES else None
    return service_commands(spec.name, start, state, current, batch=batch)


def describe(spec: DeclarativeSpec) -> str:
    """One line saying what the step ensures, for guides, plans and the journal."""
    if isinstance(spec, RegistrySpec):
        where = f"{spec.key} {spec.value_label}"
        if spec.want is None:
            return f"registry value {where} is absent"
        return f"registry value {where} = {spec.want.text()}"
    parts = []
    if spec.start is not None:
        parts.append(f"start mode {spec.start} ({STARTUP_TYPES[spec.start]})")
    if spec.state is not None:
        parts.append(spec.state)
    return f"service {spec.name}: " + ", ".join(parts)


def gui_steps(spec: DeclarativeSpec) -> list[str]:
    """The same change done by hand in the GUI, as plain-text sentences (Windows Server 2003)."""
    if isinstance(spec, ServiceSpec):
        shown = spec.display_name or spec.name
        steps = [
            f"Start > Run > services.msc; double-click the service {shown!r}"
            + ("" if spec.display_name else f" (service name {spec.name})")
            + "."
        ]
        if spec.start is not None:
            steps.append(f"Set Startup type to {STARTUP_TYPES[spec.start]} and click Apply.")
        if spec.state is not None:
            steps.append(
                "Click Start and wait until Service status shows Started."
                if spec.state == "running"
                else "Click Stop and wait until Service status shows Stopped."
            )
        return [*steps, "Click OK."]
    steps = [
        f"Start > Run > regedit; open {spec.long_key}"
        + (" (create missing keys with Edit > New > Key)." if spec.want else ".")
    ]
    if spec.want is None:
        return [
            *steps,
            f"Right-click the value {spec.value_label}, click Delete, then Yes "
            "(if the value is not there, nothing needs doing).",
        ]
    value = spec.want
    steps.append(
        f"Double-click the value {spec.value_label}; if it is missing, create it with "
        f"Edit > New > {REGEDIT_NAMES[value.type]} named {spec.value_label}"
        f" (its type must be {value.type})."
    )
    steps.append(_gui_data(value))
    return [*steps, "Click OK, then close Registry Editor."]


def _gui_data(value: RegValue) -> str:
    data = value.data
    if isinstance(data, int):
        return f"Select Base: Decimal and enter {data} (hexadecimal {data:x})."
    if isinstance(data, tuple):
        items = "; ".join(repr(item) for item in data) or "nothing"
        return f"Enter one string per line: {items}."
    if value.type == "REG_BINARY":
        pairs = " ".join(data[i : i + 2] for i in range(0, len(data), 2))
        return f"Enter the bytes {pairs or '(none)'}."
    return f"Enter the value data exactly: {data!r}."


def expected_text(spec: DeclarativeSpec) -> str:
    """What a read must show once the step is done (``REG_DWORD 0x1 (1)``, ``absent``...)."""
    if isinstance(spec, RegistrySpec):
        return spec.want.text() if spec.want else "the value absent"
    parts = (
        [f"START_TYPE {spec.start.upper()}" + ("_START" if spec.start != "disabled" else "")]
        if spec.start
        else []
    )
    parts += [f"STATE {spec.state.upper()}"] if spec.state else []
    return ", ".join(parts)


def by_hand_script(spec: DeclarativeSpec) -> str:
    """The commands for a person at a cmd prompt on the host, with REM guidance and the GUI path.

    Shown at the gate when the host is reached by hand (``transport: manual``).
    """
    lines = ["REM 1. Read the current setting first and write it down (it is the backout):"]
    lines += read_commands(spec)
    lines.append(f"REM 2. Unless it already shows {expected_text(spec)}, change it:")
    lines += change_commands(spec)
    lines.append(f"REM 3. Read it again; it must now show {expected_text(spec)}:")
    lines += read_commands(spec)
    lines.append("REM Backout: put back what step 1 showed, e.g.")
    if isinstance(spec, RegistrySpec):
        lines.append(
            "REM   reg add ... /t TYPE /d DATA /f, or if it was absent: " + reg_delete(spec)
        )
    else:
        lines.append(
            f"REM   sc config {spec.name} start= PREVIOUS, then sc start or sc stop {spec.name}"
        )
    lines.append("REM Or by hand in the GUI:")
    lines += [f"REM   {step}" for step in gui_steps(spec)]
    return "\n".join(lines) + "\n"
