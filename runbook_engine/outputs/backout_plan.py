"""The guide's backout plan: every change of this environment undone, in reverse order.

For each changing step that runs here, last first:

* a step with a ``backout=`` helper: that helper, where it runs, ticked per host;
* a ``registry`` or ``service`` step: its generated backout, which puts back the
  value or service state found before the change (recorded in the journal, or
  written in the step's box when done by hand);
* any other step (a restart): nothing to undo itself; when an earlier change on
  the same host is undone, the step is repeated after the last of those backouts
  so that the undone setting takes effect (a restart after removing a registry value).
"""

from __future__ import annotations

from dataclasses import dataclass

from runbook_engine.errors import InputError
from runbook_engine.outputs.effort import by_hand, duration_text, step_seconds
from runbook_engine.outputs.long_values import ValueRefs
from runbook_engine.outputs.mdtext import escape, fence_for
from runbook_engine.outputs.views import (
    Block,
    checkbox_lines,
    command_block,
    location_text,
)
from runbook_engine.tailor.tailoring import TailoredRunbook, TailoredStep


@dataclass(frozen=True, slots=True)
class BackoutEntry:
    """One entry of the backout plan.

    Attributes:
        heading: ``Undo step 8. Title`` (escaped Markdown).
        where: Where it runs and how long it takes (Markdown), ``""`` for a note only.
        note: One Markdown line saying what the entry is, may be ``""``.
        block: The commands or instructions, ``None`` when nothing is to be done.
        checkboxes: Task-list lines, one per host a person works on.
        seconds: Expected duration.
    """

    heading: str
    where: str
    note: str
    block: Block | None
    checkboxes: tuple[str, ...]
    seconds: int


def backout_plan(tailored: TailoredRunbook, refs: ValueRefs | None = None) -> list[BackoutEntry]:
    """The backout plan of ``tailored``: one entry per changing step, in reverse order.

    Raises:
        Nothing: a declarative body that does not parse (a generic guide's
        placeholder) gives an entry that names the step's generated backout.
    """
    refs = refs or ValueRefs()
    changes = [ts for ts in tailored.steps if ts.step.changes_state and ts.skip_reason is None]
    undoable = {ts.id for ts in changes if _undoable(tailored, ts)}
    repeats: dict[str, list[TailoredStep]] = {}  # step id -> steps repeated after its backout
    plain: dict[str, str] = {}
    for index, ts in enumerate(changes):
        if ts.id in undoable:
            continue
        names = {h.name for h in ts.hosts}
        before = [
            e for e in changes[:index] if e.id in undoable and names & {h.name for h in e.hosts}
        ]
        if before:
            repeats.setdefault(before[0].id, []).append(ts)
            plain[ts.id] = (
                f"Nothing to undo; repeated below, after the backout of step {before[0].number}."
            )
        else:
            plain[ts.id] = "Nothing to undo."
    out: list[BackoutEntry] = []
    for ts in reversed(changes):
        title = escape(ts.step.display_title())
        if ts.id not in undoable:
            out.append(BackoutEntry(f"Step {ts.number}. {title}", "", plain[ts.id], None, (), 0))
            continue
        out.append(_undo(tailored, ts, refs))
        for again in repeats.get(ts.id, []):
            out.append(
                BackoutEntry(
                    f"Repeat step {again.number}. {escape(again.step.display_title())}",
                    _where(tailored, again, step_seconds(again)),
                    f"So that the change undone above (step {ts.number}) takes effect."
                    + _gate_note(tailored, again),
                    command_block(again, "", refs.sub),
                    checkbox_lines(again) if by_hand(again) else (),
                    step_seconds(again),
                )
            )
    return out


def _gate_note(tailored: TailoredRunbook, ts: TailoredStep) -> str:
    """A note naming the go/no-go gate that comes right before ``ts`` in the flow (a
    restart's decision point), so that a repeat in the backout is decided the same way;
    ``""`` when there is none."""
    steps = [s for s in tailored.steps if s.skip_reason is None]
    at = next((i for i, s in enumerate(steps) if s.id == ts.id), 0)
    if at and steps[at - 1].step.go_no_go:
        gate = steps[at - 1]
        return (
            f" Only when the go/no-go of step {gate.number}"
            f" ({escape(gate.step.display_title())}) gives the go again."
        )
    return ""


def _undoable(tailored: TailoredRunbook, ts: TailoredStep) -> bool:
    if ts.step.kind in ("registry", "service"):
        return True
    return bool(ts.step.backout and ts.step.backout in tailored.helpers)


def _where(tailored: TailoredRunbook, ts: TailoredStep, seconds: int) -> str:
    text = "On " + location_text(tailored, ts)
    return text + (f" · about {duration_text(seconds)}" if seconds else "")


def _undo(tailored: TailoredRunbook, ts: TailoredStep, refs: ValueRefs) -> BackoutEntry:
    heading = f"Undo step {ts.number}. {escape(ts.step.display_title())}"
    helper = tailored.helpers.get(ts.step.backout or "")
    if helper is not None:
        seconds = step_seconds(helper)
        return BackoutEntry(
            heading,
            _where(tailored, helper, seconds),
            "",
            command_block(helper, "", refs.sub),
            checkbox_lines(helper) if by_hand(helper) else (),
            seconds,
        )
    seconds = step_seconds(ts)
    return BackoutEntry(
        heading,
        _where(tailored, ts, seconds),
        _generated_note(ts),
        _generated_block(ts, refs),
        checkbox_lines(ts) if by_hand(ts) else (),
        seconds,
    )


def _generated_note(ts: TailoredStep) -> str:
    if by_hand(ts):
        return (
            f"Generated backout: put back what was written in the box of step {ts.number} "
            "(the value found before the change); the words in capitals below say which "
            "part of the box goes where."
        )
    return (
        "Generated backout: the run offers it when the step fails, made from the value the "
        "step recorded in the journal (event `step-previous`, shown in the change record's "
        f"details of step {ts.number}); by hand, with the words in capitals taken from there:"
    )


def _generated_block(ts: TailoredStep, refs: ValueRefs) -> Block | None:
    from runbook_engine.declarative import parse_declarative
    from runbook_engine.declarative.compile import reg_delete, sc_qc
    from runbook_engine.declarative.spec import RegistrySpec

    try:
        spec = parse_declarative(ts.step.kind, ts.body, ts.step.span.path, ts.step.body_line)
    except InputError:
        return None
    source = f"the box of step {ts.number}" if by_hand(ts) else f"step {ts.number}'s value found"
    if isinstance(spec, RegistrySpec):
        lines = [
            f"REM If {source} says the value was absent:",
            reg_delete(spec),
            f"REM Otherwise TYPE_FOUND = the type in {source} (REG_SZ, REG_DWORD...),",
            "REM DATA_FOUND = its data, character for character:",
            reg_delete(spec).replace("reg delete", "reg add", 1).removesuffix(" /f")
            + ' /t TYPE_FOUND /d "DATA_FOUND" /f',
        ]
    else:
        lines = [
            f"REM START_MODE_FOUND from the START_TYPE in {source}:",
            "REM AUTO_START = auto, DEMAND_START = demand, DISABLED = disabled",
            f"sc config {spec.name} start= START_MODE_FOUND",
            f"REM then the STATE in {source}: RUNNING = sc start {spec.name},",
            f"REM STOPPED = sc stop {spec.name}; read it back:",
            sc_qc(spec.name),
        ]
    body = refs.sub("\n".join(lines) + "\n")
    fence = fence_for(body)
    return Block("", f"{fence}cmd\n{body}{fence}")
