"""What a guide shows, as Markdown snippets: the view model the templates lay out.

Every string in a view is already valid Markdown (values escaped with
:mod:`runbook_engine.outputs.mdtext`), so templates only arrange them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from runbook_engine.errors import InputError
from runbook_engine.outputs.effort import automated_check, by_hand, duration_text, step_seconds
from runbook_engine.outputs.long_values import ValueRefs
from runbook_engine.outputs.mdtext import code, escape, fence_for, prefix_lines
from runbook_engine.source.kinds import errexit_mode
from runbook_engine.source.model import Host
from runbook_engine.tailor.binding import VALUES_NOTE
from runbook_engine.tailor.tailoring import LOCAL_HOST, TailoredRunbook, TailoredStep

#: How a transport is named to a reader.
TRANSPORT_LABELS: dict[str, str] = {
    "manual": "by hand",
    "local": "local",
    "winrm": "WinRM",
    "ssh": "SSH",
}
#: Badges shown after a step's heading, by phase.
PHASE_BADGES: dict[str, str] = {"precheck": "pre-check", "verify": "verification"}
CHECKBOX_LINE = "- [ ] Done — Initials: ______  Time: ______"
HASH_CHARS = 12
#: The label of the write-in box of a registry step done by hand.
FOUND_LABEL = "Value found before the change (the backout), written in full:"
#: What the write-in box of a registry step asks for, beyond its label.
FOUND_REGISTRY = (
    FOUND_LABEL + " its type (REG_SZ, REG_DWORD...) and data exactly as `reg query` showed"
    " them, or *absent* if it said the value was not found."
)
#: The write-in box of a service step done by hand: the two things its backout puts back.
FOUND_SERVICE = (
    "Found before the change (the backout): START_TYPE from `sc qc` ______________"
    "  STATE from `sc query` ______________"
)
#: The write-in box of a step whose instructions ask a person to note something.
NOTE_LABEL = "Noted as the instructions ask (also the gate's note):"
#: Instructions that ask a person to note something for the gate (the runbooks' wording).
NOTE_ASKED = re.compile(r"(?i)\b(?:this|the) gate's note\b|\bnote of this gate\b")
#: How the appendix labels the code of a check the tool runs itself.
APPENDIX_VALUES_NOTE = "values shown in place; the tool passes them as environment variables"

__all__ = ["by_hand"]


def _same(text: str) -> str:
    return text


@dataclass(frozen=True, slots=True)
class Block:
    """A command in a fence, or a person's instructions as a blockquote.

    Attributes:
        label: Markdown line shown before the block (``"Command:"``), may be empty.
        text: The Markdown of the block itself, without a final newline.
    """

    label: str
    text: str


@dataclass(frozen=True, slots=True)
class StepView:
    """One step as the guide shows it.

    Attributes:
        id: Step id, used as the HTML anchor.
        heading: ``Step N. Title`` (or ``Backout for step N``), escaped.
        badges: Short phase labels (``pre-check``, ``verification``, ``manual``).
        facts: Markdown lines: where it runs, limits, condition, skip reason.
        check: The check command that makes the step "already done", or ``None``.
        block: The command or instructions; ``None`` when skipped or automated.
        checkboxes: Task-list lines a person ticks on paper, one per host (may be empty).
        classes: CSS classes for the HTML wrapper (``step manual skipped``).
        writein: Label of a full-width box to write in (the value found), or ``None``.
        auto: For a check the tool runs itself: the one line shown instead of its code.
        writein_kind: CSS classes of the write-in box (``writein``; ``writein writein-note``
            for a note of a line or two).
    """

    id: str
    heading: str
    badges: tuple[str, ...]
    facts: tuple[str, ...]
    check: Block | None
    block: Block | None
    checkboxes: tuple[str, ...]
    classes: str
    writein: str | None = None
    auto: str | None = None
    writein_kind: str = "writein"


def rendered_at() -> str:
    """Return the render time: ``SOURCE_DATE_EPOCH`` (reproducible-builds.org) if set, else now.

    Raises:
        InputError: ``SOURCE_DATE_EPOCH`` is not a whole number of seconds.
    """
    raw = os.environ.get("SOURCE_DATE_EPOCH")
    if raw is None or raw.strip() == "":
        when = datetime.now(UTC)
    else:
        try:
            when = datetime.fromtimestamp(int(raw), UTC)
        except (ValueError, OverflowError, OSError):
            raise InputError.single(
                f"SOURCE_DATE_EPOCH={raw!r} must be a whole number of seconds since 1970-01-01 UTC",
                code="RB253",
            ) from None
    return when.strftime("%Y-%m-%d %H:%M:%S UTC")


def format_value(value: Any) -> str:
    """Return a parameter value as a reader writes it (YAML-like scalars, lists comma-joined)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ", ".join(format_value(v) for v in value)
    return str(value)


def host_text(host: Host) -> str:
    """``**PDC** (pdc.internaldomain.local) — by hand``; the operator machine in words."""
    label = TRANSPORT_LABELS.get(host.transport, host.transport)
    if host is LOCAL_HOST:
        return f"the operator machine — {label}"
    if host.address and host.address != host.name:
        return f"**{escape(host.name)}** ({escape(host.address)}) — {label}"
    return f"**{escape(host.name)}** — {label}"


def location_text(tailored: TailoredRunbook, ts: TailoredStep) -> str:
    """Where a step runs: hosts with transports, or the role in a generic guide."""
    target = ts.step.target
    if tailored.generic or not ts.hosts:
        if target is None:
            return "the operator machine — local"
        description = tailored.runbook.roles.get(target, "")
        return f"role **{escape(target)}**" + (f" ({escape(description)})" if description else "")
    return "; ".join(host_text(h) for h in ts.hosts)


def where_text(tailored: TailoredRunbook, ts: TailoredStep) -> str:
    """``On <location> · about 5 min`` for a step's facts line."""
    text = "On " + location_text(tailored, ts)
    if ts.skip_reason is None and (seconds := step_seconds(ts)):
        text += f" · about {duration_text(seconds)}"
    return text


def limits_text(ts: TailoredStep) -> str:
    """Limits that matter to whoever carries the step out, when set; else ``""``.

    A timeout and a working directory concern the tool only: a step done by hand
    does not show them; its retries read as an instruction to the person.
    """
    step = ts.step
    hand = by_hand(ts)
    parts = []
    if step.timeout is not None and not hand:
        parts.append(f"Timeout: {step.timeout:g} s")
    if step.retries:
        delay = f", {step.retry_delay:g} s apart" if step.retry_delay else ""
        if hand:
            parts.append(f"Until it succeeds, repeat up to {step.retries} more times{delay}")
        else:
            parts.append(f"Retries: {step.retries}{delay}")
    if step.on_failure != "stop":
        parts.append(
            "If it fails: note it and go on" if hand else f"On failure: {escape(step.on_failure)}"
        )
    if step.cwd and not hand:
        parts.append(f"Working directory: {code(step.cwd)}")
    if errexit := errexit_text(ts):
        parts.append(errexit)
    return " · ".join(parts)


def errexit_text(ts: TailoredStep) -> str:
    """Whether a ``sh``/``bash``/``powershell`` step stops at its first failing command
    (``Stops at the first error (`set -eo pipefail`)``), or ``""`` for other kinds and
    for steps a person types by hand (the mode is the tool's, not the person's)."""
    if not errexit_mode(ts.step.kind) or by_hand(ts):
        return ""
    mode = errexit_mode(ts.step.kind, ts.step.errexit)
    return f"Stops at the first error ({code(mode)})" if mode else "Errexit: off"


def command_block(
    ts: TailoredStep,
    label: str,
    sub: Callable[[str], str] = _same,
    values_note: str = VALUES_NOTE,
) -> Block:
    """The step's body: a fence in the step's language, or quoted instructions.

    ``sub`` replaces long values by their reference (:class:`ValueRefs.sub`);
    ``values_note`` says how values appear in a body the tool runs (not for a person).
    """
    body = sub(ts.body)
    if ts.step.is_manual:
        return Block(label, prefix_lines(body or "(no instructions)\n", "> ").rstrip("\n"))
    fence = fence_for(body)
    if ts.env and not by_hand(ts):  # how a run passes values is no concern of a person
        label = f"{label} *({values_note})*".strip()
    return Block(label, f"{fence}{ts.step.kind}\n{body}{fence}")


def declarative_block(
    ts: TailoredStep, label: str, sub: Callable[[str], str] = _same
) -> Block | None:
    """A ``registry``/``service`` step: what it ensures, its exact commands and the GUI path.

    Returns ``None`` when the body does not parse (a generic guide's placeholder in
    a number), so the caller shows the YAML body instead.
    """
    from runbook_engine.declarative import (
        change_commands,
        describe,
        gui_steps,
        parse_declarative,
        read_commands,
    )
    from runbook_engine.declarative.compile import expected_text

    try:
        spec = parse_declarative(ts.step.kind, ts.body, ts.step.span.path, ts.step.body_line)
    except InputError:
        return None
    reads = read_commands(spec)
    lines = [
        "REM read first: if it already shows the wanted setting, nothing changes",
        *reads,
        "REM change",
        *change_commands(spec),
        "REM read back: it must show the setting",
        *reads,
    ]
    if by_hand(ts):  # a person needs the value found, written down: it is the backout
        want = expected_text(spec)
        lines = [
            "REM 1. Read the current setting first and write it down (it is the backout):",
            *reads,
            f"REM 2. Unless it already shows {want}, change it:",
            *change_commands(spec),
            f"REM 3. Read it again; it must now show {want}:",
            *reads,
        ]
    body = sub("\n".join(lines) + "\n")
    fence = fence_for(body)
    gui = escape(sub(" ".join(gui_steps(spec))))
    return Block(
        f"Ensures {escape(sub(describe(spec)))}. {label}",
        f"{fence}cmd\n{body}{fence}\n\nOr in the GUI: {gui}",
    )


def checkbox_lines(ts: TailoredStep) -> tuple[str, ...]:
    """One task-list line per host a person works on (one line for a single host)."""
    hosts = [h for h in ts.hosts if h.transport == "manual" or ts.step.is_manual]
    if len(hosts) <= 1:
        return (CHECKBOX_LINE,)
    return tuple(f"- [ ] **{escape(h.name)}** — Initials: ______  Time: ______" for h in hosts)


def step_view(
    tailored: TailoredRunbook,
    ts: TailoredStep,
    users: dict[str, list[TailoredStep]],
    refs: ValueRefs | None = None,
) -> StepView:
    """Build the view of a flow step, or of a check/backout helper shown in place.

    Args:
        tailored: The tailored runbook.
        ts: The step.
        users: Helper id to the flow steps that reference it (from :func:`helper_users`).
        refs: Long values shown as ``‹V1›`` (printed once, in the "Values to copy" box).
    """
    refs = refs or ValueRefs()
    step = ts.step
    if not ts.number:
        return _helper_view(ts, users.get(step.id, []))
    badges = [PHASE_BADGES[step.phase]] if step.phase in PHASE_BADGES else []
    classes = ["step", f"step-{step.phase}"]
    if step.is_manual:
        badges.append("manual")
        classes.append("step-manual")
    facts = [where_text(tailored, ts)]
    if ts.skip_reason is None and (limits := limits_text(ts)):  # a skipped step has none
        facts.append(limits)
    heading = f"Step {ts.number}. {escape(step.display_title())}"
    if ts.skip_reason is not None:
        reason = (
            f"condition {code(ts.condition)} is false" if ts.condition else escape(ts.skip_reason)
        )
        facts.append(f"Skipped in this environment: {reason}")
        return StepView(
            step.id,
            heading,
            tuple(badges),
            tuple(facts),
            None,
            None,
            (),
            " ".join([*classes, "step-skipped"]),
        )
    if automated_check(ts):
        where = location_text(tailored, ts).removesuffix(" — local")
        auto = (
            f"The tool runs this check on {where}; "
            f"its code is in [appendix A](#code-{ts.id})."
        )
        return StepView(
            step.id,
            heading,
            tuple(badges),
            (),
            None,
            None,
            (),
            " ".join([*classes, "step-auto"]),
            auto=auto,
        )
    if ts.condition:
        facts.append(
            f"Only when: {code(ts.condition)}"
            + ("" if tailored.generic else " — true in this environment")
        )
    check = None
    if step.check and step.check in tailored.helpers:
        helper = tailored.helpers[step.check]
        where = "" if helper.hosts == ts.hosts else f" (on {location_text(tailored, helper)})"
        check = command_block(helper, check_label(by_hand(ts), where), refs.sub)
    manual_host = by_hand(ts)
    if step.is_manual:
        label = "Instructions:"
    elif step.is_command:
        label = "Run by hand:" if manual_host else "Command:"
    else:
        label = f"Declarative {code(step.kind)} step" + (" (by hand):" if manual_host else ":")
    block = None
    if step.kind in ("registry", "service"):
        block = declarative_block(ts, "Run by hand:" if manual_host else "Commands:", refs.sub)
    block = block or command_block(ts, label, refs.sub)
    for value in refs.used(block.text + (check.text if check else "")):
        facts.append(
            f"{value.ref} is value **{value.label}** of [Values to copy](#_values): "
            f"{len(value.text)} characters, SHA-256 {code(value.sha256)}…"
        )
    if manual_host:
        classes.append("step-by-hand")
    writein = writein_label(ts) if manual_host else None
    return StepView(
        step.id,
        heading,
        tuple(badges),
        tuple(facts),
        check,
        block,
        checkbox_lines(ts) if manual_host else (),
        " ".join(classes),
        writein,
        writein_kind="writein writein-note" if writein == NOTE_LABEL else "writein",
    )


def check_label(hand: bool, where: str = "") -> str:
    """The line before a step's read-only check: for a person, what to do with it."""
    if hand:
        return (
            f"First run this read-only check{where}: if it succeeds, the step is already "
            "done; tick Done and go on:"
        )
    return f"Skipped if already done, that is when this read-only check succeeds{where}:"


def writein_label(ts: TailoredStep) -> str | None:
    """The write-in box a step done by hand needs, or ``None``.

    A registry or service step asks for the value found (its backout); a step whose
    instructions ask the person to note something in the gate's note gets a box for it.
    """
    if ts.step.kind == "registry":
        return FOUND_REGISTRY
    if ts.step.kind == "service":
        return FOUND_SERVICE
    if NOTE_ASKED.search(ts.body):
        return NOTE_LABEL
    return None


def _helper_view(ts: TailoredStep, users: list[TailoredStep]) -> StepView:
    """A check or backout helper in place: a short pointer, its command is shown elsewhere."""
    role = ts.step.role
    links = ", ".join(f"[{u.number}](#{u.id})" for u in users) or "?"
    noun = "steps" if len(users) > 1 else "step"
    heading = f"{'Check' if role == 'check' else 'Backout'} for {noun} " + ", ".join(
        str(u.number) for u in users
    )
    if ts.step.title:
        heading += f": {escape(ts.step.title)}"
    if users and all(u.skip_reason is not None for u in users):
        facts = [f"Not used in this environment: {noun} {links} is skipped."]
    elif role == "check":
        facts = [
            f"Read-only check, shown with {noun} {links}: when it succeeds, the step is "
            "already done and is skipped."
        ]
    else:
        facts = [
            f"Undoes {noun} {links} if it fails; listed in the [backout plan](#_backout-plan)."
        ]
    return StepView(
        ts.step.id,
        heading,
        (),
        (),
        None,
        None,
        (),
        f"step step-helper step-{role}",
        auto=facts[0],
    )


def helper_users(tailored: TailoredRunbook) -> dict[str, list[TailoredStep]]:
    """Map each check/backout helper id to the flow steps that name it."""
    users: dict[str, list[TailoredStep]] = {}
    for ts in tailored.steps:
        for ref in (ts.step.check, ts.step.backout):
            if ref:
                users.setdefault(ref, []).append(ts)
    return users
