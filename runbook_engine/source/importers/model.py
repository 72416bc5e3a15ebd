"""What an importer makes: draft runbooks, their parameters and the import report.

Importers never write files; they return an :class:`ImportResult` that
:mod:`.emit` turns into runbook text, an example environment and a report.
Every part carries the 1-based line of the source it came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Prose:
    """Markdown kept as prose (already safe for the runbook's templates)."""

    text: str


@dataclass(slots=True)
class DraftStep:
    """One step of a draft runbook.

    Attributes:
        kind: A step kind of today's format (sh, bash, powershell, cmd, python, manual,
            registry, service).
        id: The step id (unique in its runbook).
        body: The fenced block's body, ending with a newline.
        line: Source line the step came from.
        title: Human title, or "".
        target: Role name, or "" for the operator's machine.
        classes: ``verify`` / ``precheck``.
        attrs: Further attributes (``cwd``, ``template``).
        indent: Prefix of every emitted line (a list item's indentation).
    """

    kind: str
    id: str
    body: str
    line: int
    title: str = ""
    target: str = ""
    classes: tuple[str, ...] = ()
    attrs: dict[str, str] = field(default_factory=dict)
    indent: str = ""


@dataclass(slots=True)
class Param:
    """A typed parameter found in the source; ``example`` is the source's value."""

    name: str
    type: str
    example: Any
    line: int
    description: str = ""
    secret: bool = False


@dataclass(frozen=True, slots=True)
class Note:
    """One line of the import report: what a source construct became, or why it did not."""

    line: int
    what: str
    became: str
    mapped: bool = True


@dataclass(slots=True)
class Draft:
    """A runbook skeleton: front matter facts and the parts of its body in order."""

    id: str
    title: str
    line: int
    summary: str = ""
    tags: list[str] = field(default_factory=list)
    roles: dict[str, str] = field(default_factory=dict)
    params: dict[str, Param] = field(default_factory=dict)
    parts: list[Prose | DraftStep] = field(default_factory=list)
    instructions: int = 0
    lint: dict[str, str] = field(default_factory=dict)

    def steps(self) -> list[DraftStep]:
        """The draft's steps, in order."""
        return [p for p in self.parts if isinstance(p, DraftStep)]


@dataclass(slots=True)
class ImportResult:
    """Everything one import produced.

    Attributes:
        source_format: The importer's name (``runme``, ``article`` ...).
        drafts: The runbooks, in source order.
        notes: The report: every mapping and everything that could not be mapped.
    """

    source_format: str
    drafts: list[Draft]
    notes: list[Note] = field(default_factory=list)

    def note(self, line: int, what: str, became: str, *, mapped: bool = True) -> None:
        """Add a line to the report."""
        self.notes.append(Note(line, what, became, mapped))
