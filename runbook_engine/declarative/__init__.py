"""Declarative Windows steps: ``registry`` and ``service`` (issue 3, part 2).

A step's YAML body says what must be true on the host; it is validated by a
schema (:func:`parse_declarative`), compiled to the exact cmd.exe commands for
Windows Server 2003 (``reg``, ``sc``; :mod:`.compile`), shown in guides both as
those commands and as the GUI path for someone doing it by hand, and run by
:func:`runbook_engine.run.steps.declarative.execute_declarative`: read first
(already right: already-done), record the previous value, change, read back,
and a generated backout that restores the previous value.

```registry {#nspi target=dc}
key: HKLM\\SYSTEM\\CurrentControlSet\\Services\\NTDS\\Parameters
value: NSPI interface protocol sequences
type: REG_MULTI_SZ
data: [ncacn_http:6004]
```

```service {#imap4 target=exchange}
name: IMAP4Svc
start: auto
state: running
```

The kinds are registered in :mod:`runbook_engine.source.kinds`.  Importing this package
is cheap: jsonschema is imported only when a body is parsed.
"""

from __future__ import annotations

from .compile import (
    by_hand_script,
    change_commands,
    describe,
    gui_steps,
    read_commands,
    restore_commands,
)
from .output import OutputError, parse_reg_query, parse_sc
from .parse import parse_declarative
from .spec import DeclarativeSpec, RegistrySpec, RegValue, ServiceSpec, ServiceStatus

#: Step kinds handled by this package.
DECLARATIVE_KINDS: frozenset[str] = frozenset({"registry", "service"})

__all__ = [
    "DECLARATIVE_KINDS",
    "DeclarativeSpec",
    "OutputError",
    "RegValue",
    "RegistrySpec",
    "ServiceSpec",
    "ServiceStatus",
    "by_hand_script",
    "change_commands",
    "describe",
    "gui_steps",
    "parse_declarative",
    "parse_reg_query",
    "parse_sc",
    "read_commands",
    "restore_commands",
]
