"""Values of declarative Windows steps: what a ``registry`` or ``service`` body asks for,
and what a host was seen to hold.

Registry value types and their data are those of the Win32 registry
(``winnt.h``; "Registry Value Types", Microsoft Learn); service start types
and states are those ``sc qc`` / ``sc query`` print (``SERVICE_AUTO_START`` = 2,
``SERVICE_DEMAND_START`` = 3, ``SERVICE_DISABLED`` = 4; ``SERVICE_STOPPED`` = 1 ...
``SERVICE_PAUSED`` = 7; winsvc.h).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Registry value types a ``registry`` step may set.
REG_TYPES: tuple[str, ...] = (
    "REG_SZ",
    "REG_EXPAND_SZ",
    "REG_MULTI_SZ",
    "REG_DWORD",
    "REG_QWORD",
    "REG_BINARY",
)
#: Root keys: short form (what reg.exe takes) -> long form (what regedit and ``reg query`` show).
ROOTS: dict[str, str] = {
    "HKLM": "HKEY_LOCAL_MACHINE",
    "HKCU": "HKEY_CURRENT_USER",
    "HKCR": "HKEY_CLASSES_ROOT",
    "HKU": "HKEY_USERS",
    "HKCC": "HKEY_CURRENT_CONFIG",
}
#: Service start modes a ``service`` step may set (``sc config NAME start= MODE``).
START_MODES: tuple[str, ...] = ("auto", "demand", "disabled")
#: Service states a ``service`` step may ask for.
STATES: tuple[str, ...] = ("running", "stopped")
#: Seconds a ``service`` step waits for a start or stop to finish, unless ``wait`` says otherwise.
DEFAULT_SERVICE_WAIT = 120.0

RegData = str | int | tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RegValue:
    """A registry value's type and data.

    Attributes:
        type: One of :data:`REG_TYPES` (a host may show others, e.g. ``REG_NONE``).
        data: ``str`` for REG_SZ/REG_EXPAND_SZ, ``int`` for REG_DWORD/REG_QWORD,
            ``tuple[str, ...]`` for REG_MULTI_SZ, upper-case hex digits (``"01FF"``)
            for REG_BINARY.
    """

    type: str
    data: RegData

    def to_dict(self) -> dict[str, Any]:
        """Return ``{"present": True, "type": ..., "data": ...}`` for the journal."""
        data = list(self.data) if isinstance(self.data, tuple) else self.data
        return {"present": True, "type": self.type, "data": data}

    def text(self) -> str:
        """Return the value as people read it: ``REG_DWORD 0x1 (1)``, ``REG_MULTI_SZ a | b``."""
        if isinstance(self.data, int):
            return f"{self.type} 0x{self.data:x} ({self.data})"
        if isinstance(self.data, tuple):
            return f"{self.type} " + (" | ".join(self.data) if self.data else "(empty list)")
        if self.type == "REG_BINARY":
            return f"{self.type} {self.data}"
        return f'{self.type} "{self.data}"'


@dataclass(frozen=True, slots=True)
class RegistrySpec:
    """A ``registry`` step: one value of one key, present with given data, or absent.

    Attributes:
        key: The key with a short root (``HKLM\\SYSTEM\\CurrentControlSet\\...``).
        value: The value name; ``""`` is the key's default value (``/ve``).
        ensure: ``"present"`` or ``"absent"``.
        want: The wanted type and data (``None`` when ``ensure`` is ``absent``).
        path: The runbook file, for messages.
        line: 1-based line of the body's first line in ``path``.
    """

    key: str
    value: str
    ensure: str
    want: RegValue | None
    path: Path | None = None
    line: int = 0

    kind = "registry"

    @property
    def root(self) -> str:
        """The short root (``HKLM``)."""
        return self.key.split("\\", 1)[0]

    @property
    def long_key(self) -> str:
        """The key with its long root, as regedit shows it (``HKEY_LOCAL_MACHINE\\...``)."""
        root, _, rest = self.key.partition("\\")
        return ROOTS[root] + "\\" + rest

    @property
    def value_label(self) -> str:
        """The value name for people: ``"Name"`` or ``(Default)``."""
        return f'"{self.value}"' if self.value else "(Default)"

    def satisfied_by(self, current: RegValue | None) -> bool:
        """True when ``current`` (``None`` = absent) is what the step asks for."""
        if self.ensure == "absent":
            return current is None
        return current is not None and current == self.want


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    """A service as seen on a host.

    Attributes:
        start: ``auto``, ``demand``, ``disabled`` (or ``boot``/``system`` for drivers).
        state: ``running``, ``stopped``, ``start-pending``, ``stop-pending``,
            ``continue-pending``, ``pause-pending`` or ``paused``.
        display_name: The name services.msc shows, when ``sc qc`` gave it.
    """

    start: str
    state: str
    display_name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return ``{"start": ..., "state": ...}`` for the journal."""
        return {"start": self.start, "state": self.state}

    def text(self) -> str:
        """``start auto, running``."""
        return f"start {self.start}, {self.state}"

    @property
    def pending(self) -> bool:
        """True while a start, stop, pause or continue is in progress."""
        return self.state.endswith("-pending")


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """A ``service`` step: a service's start mode and/or state.

    Attributes:
        name: The service (key) name, as ``sc`` takes it (``IMAP4Svc``).
        start: Wanted start mode (:data:`START_MODES`), or ``None`` to leave it.
        state: Wanted state (:data:`STATES`), or ``None`` to leave it.
        display_name: The name services.msc shows (for the by-hand path), if given.
        wait: Seconds to wait for a start or stop to finish.
        path: The runbook file, for messages.
        line: 1-based line of the body's first line in ``path``.
    """

    name: str
    start: str | None
    state: str | None
    display_name: str | None = None
    wait: float = DEFAULT_SERVICE_WAIT
    path: Path | None = None
    line: int = 0

    kind = "service"

    def satisfied_by(self, current: ServiceStatus) -> bool:
        """True when ``current`` has the wanted start mode and state."""
        return (self.start is None or current.start == self.start) and (
            self.state is None or current.state == self.state
        )


DeclarativeSpec = RegistrySpec | ServiceSpec
