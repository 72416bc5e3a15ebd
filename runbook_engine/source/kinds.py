"""The registry of step kinds (a fenced block's language): what each kind is and which
executor carries it out.

Shell kinds are commands for a host; ``manual`` holds instructions for a person;
declarative kinds take a YAML body (DESIGN.md §2).  Each entry names its executor as
``"module:Class"`` (a subclass of :class:`runbook_engine.run.steps.base.StepExecutor`),
imported only when a run needs it, so parsing never loads execution code.  A new kind
is one :func:`register_kind` call and one executor module; the runner is not touched.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class KindInfo:
    """What a step kind is.

    Attributes:
        name: The language word in the fence (``cmd``).
        category: ``"command"``, ``"manual"`` or ``"declarative"``.
        description: One line for docs and errors.
        local_ok: Whether it can run on the operator's machine.
        changes: Whether steps of this kind change state by default
            (probes and approvals do not).
        executor: ``"module:Class"`` of the executor that runs steps of this kind.
        estimate: Seconds a step of this kind takes when the tool runs it, unless its
            ``estimate=`` attribute says otherwise (the guide's time plan).
        estimate_by_hand: Seconds when a person carries it out (a manual step, or a
            host reached by hand), per host.
        errexit: How a failing command stops the script, as people know it (``set -e``,
            ``set -eo pipefail``, ``$ErrorActionPreference = 'Stop'``); empty for kinds
            without such a mode (``cmd``, ``python``).  Steps have it on unless they say
            ``errexit=false``; the transports apply it (interpreter options or a fixed
            first line), never by editing the body.
        template: Whether bodies of this kind are templates (transcripts are not: a value
            could only reach them as command text).
    """

    name: str
    category: str
    description: str
    local_ok: bool = True
    changes: bool = True
    executor: str = ""
    estimate: int = 60
    estimate_by_hand: int = 180
    errexit: str = ""
    template: bool = True


_STEPS = "runbook_engine.run.steps"
KINDS: dict[str, KindInfo] = {}


def register_kind(info: KindInfo) -> None:
    """Add ``info`` to :data:`KINDS` (replacing a kind of the same name)."""
    KINDS[info.name] = info


#: Fence languages that hold data or plain text, never a step (a clear message names the kinds).
DATA_LANGS: frozenset[str] = frozenset(
    {"json", "yaml", "yml", "toml", "xml", "ini", "text", "txt", "plaintext", "output", "csv"}
)

#: How each kind's errexit mode is shown to people (the transports apply the same).
ERREXIT: dict[str, str] = {
    "sh": "set -e",
    "bash": "set -eo pipefail",
    "powershell": "$ErrorActionPreference = 'Stop'",
}

for _name, _desc, _local in (
    ("cmd", "Windows cmd.exe script", False),
    ("powershell", "Windows PowerShell (2.0-compatible) script", True),
    ("sh", "POSIX shell script", True),
    ("bash", "bash script", True),
    ("python", "Python 3 script", True),
):
    register_kind(
        KindInfo(
            _name,
            "command",
            _desc,
            _local,
            True,
            f"{_STEPS}.command:CommandStep",
            errexit=ERREXIT.get(_name, ""),
        )
    )
for _name in ("console", "shell-session"):
    register_kind(
        KindInfo(
            _name,
            "command",
            "a pasted terminal session: commands after '$ ' (sh) or 'PS> ' (PowerShell) "
            "prompts, the other lines their expected output",
            True,
            True,
            f"{_STEPS}.console:ConsoleStep",
            errexit="set -e / $ErrorActionPreference = 'Stop'",
            template=False,
        )
    )
register_kind(
    KindInfo(
        "manual",
        "manual",
        "instructions for a person (a gate)",
        True,
        True,
        f"{_STEPS}.manual:ManualStep",
        estimate=600,
        estimate_by_hand=600,
    )
)
register_kind(
    KindInfo(
        "probe",
        "declarative",
        "verification probe run from the operator's machine",
        True,
        False,
        f"{_STEPS}.probe:ProbeStep",
    )
)
for _name, _desc in (
    ("registry", "a registry value, ensured present with its data or absent (YAML body)"),
    ("service", "a Windows service's start mode and state (YAML body)"),
):
    register_kind(
        KindInfo(
            _name,
            "declarative",
            _desc,
            local_ok=False,
            executor=f"{_STEPS}.declarative:DeclarativeStep",
            estimate_by_hand=300,
        )
    )
register_kind(
    KindInfo(
        "approval",
        "declarative",
        "approval gate: a quorum of named approvers",
        True,
        False,
        f"{_STEPS}.approval:ApprovalStep",
        estimate=0,
        estimate_by_hand=0,
    )
)


def errexit_mode(kind: str, on: bool = True) -> str:
    """The errexit mode a ``kind`` step runs with (``"set -eo pipefail"``), or ``""`` when
    the kind has none or the step turned it off (``on`` false: ``errexit=false``)."""
    info = KINDS.get(kind)
    return info.errexit if on and info is not None else ""
