"""The runbook model: what the parser produces and everything else reads.

All classes are frozen dataclasses.  Every parsed element carries a
:class:`SourceSpan` so that any later error (tailoring, running, lint) can name
the runbook's own file and line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Step kinds whose body is a command for a target host (DESIGN.md §2).
COMMAND_KINDS: frozenset[str] = frozenset(
    {"cmd", "powershell", "sh", "bash", "python", "console", "shell-session"}
)
#: Step kinds whose body is Markdown instructions for a person.
MANUAL_KINDS: frozenset[str] = frozenset({"manual"})

#: Step phases, set with a class in the attribute list (``{#id .verify}``).
PHASES: tuple[str, ...] = ("precheck", "change", "verify")


@dataclass(frozen=True, slots=True)
class SourceSpan:
    """Where an element stands in its file.

    Attributes:
        path: The runbook file.
        start_line: First line, 1-based.
        end_line: Last line, 1-based, inclusive.
    """

    path: Path
    start_line: int
    end_line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.start_line}"


@dataclass(frozen=True, slots=True)
class Parameter:
    """A typed parameter declared in the front matter.

    Attributes:
        name: Identifier used in templates (``{{ name }}``).
        type: One of :data:`runbook_engine.source.types.TYPES`.
        description: What the value means, shown in guides.
        default: Value used when the environment gives none (``None``: no default).
        example: Example value, shown in generic guides.
        required: Whether a value must be supplied (default: true unless a default exists).
        secret: Value comes from the environment, a prompt or a keyring and is redacted.
        choices: Allowed values for type ``choice``.
        items: Item type for type ``list``.
        line: 1-based line of the declaration in the runbook file.
        multiline: A ``string`` whose value may hold newlines.
    """

    name: str
    type: str = "string"
    description: str = ""
    default: Any = None
    example: Any = None
    required: bool = True
    secret: bool = False
    choices: tuple[Any, ...] = ()
    items: str = "string"
    line: int = 0
    multiline: bool = False


@dataclass(frozen=True, slots=True)
class Prose:
    """A run of Markdown between steps, kept as source text.

    Attributes:
        text: The source lines, newline-terminated, exactly as written.
        span: Where the text stands.
    """

    text: str
    span: SourceSpan


@dataclass(frozen=True, slots=True)
class Step:
    """A fenced block with an id: something the runner executes or gates.

    Attributes:
        id: Unique id within the runbook (``{#id}``).
        kind: The block's language (``cmd``, ``sh``, ``manual``, ...).
        body: The block's content, byte for byte (CRLF normalised to LF,
            container indentation removed, always ending with a newline unless empty).
        attrs: Raw ``key=value`` attributes as written.
        classes: Classes as written (``.verify`` gives ``"verify"``).
        span: Lines of the whole fence, opening to closing.
        body_line: 1-based line of the first body line (for template errors).
        prefix: Text before the opening fence on its line (list marker, ``>``).
        title: Human title (attribute ``title``), may be empty.
        target: Role the step runs on; ``None`` means the operator's machine.
        when: Jinja expression; the step is skipped when it is false.
        timeout: Seconds before the step is killed; ``None`` means no limit.
        retries: Extra attempts after a failure.
        retry_delay: Seconds between attempts.
        on_failure: ``"stop"`` or ``"continue"``.
        check: Id of a read-only step whose success means "already done".
        backout: Id of the step that undoes this one.
        cwd: Working directory for local commands.
        template: Whether the body is rendered with jinja (``template=false`` keeps it literal).
        errexit: Whether a ``sh``/``bash``/``powershell`` body stops at its first failing
            command (``errexit=false`` turns it off); see :data:`.kinds.ERREXIT`.
        phase: ``precheck``, ``change`` or ``verify``.
        estimate: Seconds the step is expected to take (attribute ``estimate=5m``);
            ``None``: the guide's default for its kind.
        go_no_go: A decision point of the change (attribute ``go-no-go=true``): the
            guide's first page lists it with the approvals; a person gives the go by
            confirming the gate and the no-go by aborting.
        role: ``"step"`` for the normal flow, ``"check"`` or ``"backout"`` for helper
            steps that other steps reference (they never run in the normal flow).
        readonly: The author says the command only reads (``readonly=true``): check
            mode (``runbook run --check``) runs it.
    """

    id: str
    kind: str
    body: str
    attrs: dict[str, str]
    classes: tuple[str, ...]
    span: SourceSpan
    body_line: int
    prefix: str = ""
    title: str = ""
    target: str | None = None
    when: str | None = None
    timeout: float | None = None
    retries: int = 0
    retry_delay: float = 0.0
    on_failure: str = "stop"
    check: str | None = None
    backout: str | None = None
    cwd: str | None = None
    template: bool = True
    errexit: bool = True
    phase: str = "change"
    role: str = "step"
    estimate: int | None = None
    go_no_go: bool = False
    readonly: bool = False

    @property
    def is_manual(self) -> bool:
        """True for ``manual`` steps (gates by nature)."""
        return self.kind in MANUAL_KINDS

    @property
    def is_command(self) -> bool:
        """True for steps whose body is a command for a host."""
        return self.kind in COMMAND_KINDS

    @property
    def changes_state(self) -> bool:
        """True for steps in the ``change`` phase of the normal flow."""
        return self.role == "step" and self.phase == "change"

    def display_title(self) -> str:
        """Return the title, or the id made readable when no title was given."""
        return self.title or self.id.replace("-", " ").replace("_", " ").capitalize()


@dataclass(frozen=True, slots=True)
class Runbook:
    """A parsed runbook.

    Attributes:
        path: The source file.
        id: Runbook id (front matter ``id``, else the file stem).
        title: Title (front matter, else the first heading, else the id).
        version: Version string (front matter), ``""`` if absent.
        summary: One-paragraph summary.
        tags: Tags for the library index.
        roles: Role name to description.
        parameters: Declared parameters by name, in declaration order.
        references: Sources (KB articles, URLs) as written.
        meta: Other front-matter keys this version knows (``approval``, ``lint``...).
        segments: Prose and steps in document order.
        content_hash: SHA-256 (hex) of the file's bytes; runs are locked to it.
        body_start_line: First line after the front matter (1-based).
        foreign: Front-matter keys of other tools (``ms.author``, ``description``), kept as
            written, in file order; guides and the site carry them as metadata.
        foreign_lines: The 1-based line of each key of ``foreign``.
        templated: Whether prose and blocks that are not steps are templates: the front
            matter declares ``parameters`` or ``roles`` (a runbook of ours).  A document
            without them keeps every brace as written (step bodies included).
    """

    path: Path
    id: str
    title: str
    version: str
    summary: str
    tags: tuple[str, ...]
    roles: dict[str, str]
    parameters: dict[str, Parameter]
    references: tuple[str, ...]
    meta: dict[str, Any]
    segments: tuple[Prose | Step, ...]
    content_hash: str
    body_start_line: int = 1
    foreign: dict[str, Any] = field(default_factory=dict)
    foreign_lines: dict[str, int] = field(default_factory=dict)
    templated: bool = True

    @property
    def steps(self) -> tuple[Step, ...]:
        """All steps, helper steps included, in document order."""
        return tuple(s for s in self.segments if isinstance(s, Step))

    @property
    def flow(self) -> tuple[Step, ...]:
        """The steps of the normal flow (not check or backout helpers), in order."""
        return tuple(s for s in self.steps if s.role == "step")

    def step(self, step_id: str) -> Step:
        """Return the step with id ``step_id``.

        Raises:
            KeyError: no such step.
        """
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)


@dataclass(frozen=True, slots=True)
class Host:
    """One host of a role in an environment.

    Attributes:
        name: Short name shown to people (NetBIOS or inventory name).
        address: Host name, FQDN or IP address used to connect.
        transport: ``local``, ``manual`` or ``winrm``.
        options: Transport options (for WinRM: ``port``, ``transport``... as Ansible names them).
        line: 1-based line in the environment file.
    """

    name: str
    address: str
    transport: str = "local"
    options: dict[str, Any] = field(default_factory=dict)
    line: int = 0


@dataclass(frozen=True, slots=True)
class SecretRef:
    """Where a secret comes from; never the secret itself.

    Attributes:
        name: Parameter or credential name.
        env: Environment variable holding it.
        prompt: Ask on the terminal.
        keyring: ``(service, username)`` for a keyring entry.
        line: 1-based line in the environment file.
    """

    name: str
    env: str | None = None
    prompt: bool = False
    keyring: tuple[str, str] | None = None
    line: int = 0


@dataclass(frozen=True, slots=True)
class Contact:
    """A person to reach during a change (environment file, ``contacts:``).

    Attributes:
        name: The person's name (or a team's).
        phone: Telephone number as written, ``""`` when not given.
        email: E-mail address, ``""`` when not given.
        line: 1-based line in the environment file.
    """

    name: str
    phone: str = ""
    email: str = ""
    line: int = 0


@dataclass(frozen=True, slots=True)
class Contacts:
    """Who owns, approves and is called during a change in an environment.

    Attributes:
        change_owner: The person responsible for the change, ``None`` when not given.
        approvers: People who approve it, in order.
        escalation: People to call when something goes wrong, in the order to call them.
    """

    change_owner: Contact | None = None
    approvers: tuple[Contact, ...] = ()
    escalation: tuple[Contact, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.change_owner or self.approvers or self.escalation)


@dataclass(frozen=True, slots=True)
class Environment:
    """A target environment loaded from YAML (DESIGN.md §3).

    Attributes:
        path: The environment file.
        name: Environment name.
        description: Free text.
        values: Parameter values as written (validated against a runbook later).
        facts: Facts for conditions (``dc_is_exchange: true``).
        roles: Role name to hosts.
        secrets: Secret references by name.
        lines: Line of each key in ``values`` and ``facts`` (for error messages).
        content_hash: SHA-256 of the file's bytes.
        approvers: Approver groups for ``approval`` steps (group name to people).
        contacts: Change owner, approvers and escalation contacts for guides.
    """

    path: Path
    name: str
    description: str
    values: dict[str, Any]
    facts: dict[str, Any]
    roles: dict[str, tuple[Host, ...]]
    secrets: dict[str, SecretRef]
    lines: dict[str, int]
    content_hash: str
    approvers: dict[str, tuple[str, ...]] = field(default_factory=dict)
    contacts: Contacts = field(default_factory=Contacts)
