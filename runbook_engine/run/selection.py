"""Part of a runbook: which steps on which hosts a run leaves out (``runbook run --only``,
``--from``, ``--to``, ``--limit``, ``--tags``, ``--skip-tags``).

A :class:`Selection` is resolved against the tailored runbook before anything is written
(:func:`excluded`): an unknown step id, tag or host pattern is bad input naming it (with
the closest matches).  Each step result left out is journaled ``step-excluded`` with the
reason and stored ``skipped`` (:func:`exclude`), so the flow passes it, a resume keeps
the selection (it is in ``run-started`` and applied again to steps still pending), and
the change record lists it as a deviation.  A run that left anything out ends with the
outcome ``partial``, never plain ``succeeded`` (:mod:`runbook_engine.evidence.knowledge`).

Tags of a step are its phase (``precheck``, ``change``, ``verify``) and its kind
(``cmd``, ``registry``, ``probe``, ...).  ``--limit`` patterns are :mod:`fnmatch`
patterns (case-insensitive) over host names, host addresses and role names; steps that
run on the operator's machine (no ``target=``) are not hosts of the environment and are
kept.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any

from runbook_engine.errors import InputError
from runbook_engine.source.kinds import KINDS
from runbook_engine.source.model import PHASES

if TYPE_CHECKING:
    from runbook_engine.tailor.tailoring import TailoredRunbook, TailoredStep

#: ``(step id, host name) -> why it is left out``
Excluded = dict[tuple[str, str], str]


@dataclass(frozen=True, slots=True)
class Selection:
    """What part of a runbook a run carries out.

    Attributes:
        only: Step ids to run (empty: every step).
        start: Run from this step on (``--from``), inclusive.
        stop: Run up to this step (``--to``), inclusive.
        limit: Host patterns (fnmatch over host name, address or role).
        tags: Run only steps with one of these tags (phase or kind).
        skip_tags: Leave out steps with one of these tags.
    """

    only: tuple[str, ...] = ()
    start: str | None = None
    stop: str | None = None
    limit: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    skip_tags: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return any((self.only, self.start, self.stop, self.limit, self.tags, self.skip_tags))

    def to_dict(self) -> dict[str, Any]:
        """The selection as journaled in ``run-started`` (flag names as keys)."""
        return {
            "only": list(self.only),
            "from": self.start,
            "to": self.stop,
            "limit": list(self.limit),
            "tags": list(self.tags),
            "skip_tags": list(self.skip_tags),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Selection:
        """The selection journaled by :meth:`to_dict` (``None``: everything)."""
        data = data or {}
        return cls(
            tuple(data.get("only") or ()),
            data.get("from"),
            data.get("to"),
            tuple(data.get("limit") or ()),
            tuple(data.get("tags") or ()),
            tuple(data.get("skip_tags") or ()),
        )

    def describe(self) -> str:
        """The selection as flags (``--only a,b --limit EX*``)."""
        parts = []
        for flag, value in (
            ("--only", ",".join(self.only)),
            ("--from", self.start or ""),
            ("--to", self.stop or ""),
            ("--limit", ",".join(self.limit)),
            ("--tags", ",".join(self.tags)),
            ("--skip-tags", ",".join(self.skip_tags)),
        ):
            if value:
                parts.append(f"{flag} {value}")
        return " ".join(parts)


def split_list(values: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Items of a repeatable, comma-separated option (``--only a,b --only c``)."""
    return tuple(x.strip() for v in values for x in v.split(",") if x.strip())


def step_tags(ts: TailoredStep) -> set[str]:
    """The tags ``--tags``/``--skip-tags`` match: the step's phase and kind."""
    return {ts.step.phase, ts.step.kind}


def excluded(selection: Selection, tailored: TailoredRunbook, *, strict: bool = True) -> Excluded:
    """The step results ``selection`` leaves out of a run of ``tailored``.

    Args:
        selection: The flags.
        tailored: The runbook tailored to the run's environment.
        strict: Refuse unknown step ids and patterns that match no host (a resume of a
            runbook changed since passes ``False``: what is gone is ignored).

    Returns:
        ``(step id, host name) -> reason`` for every result left out.

    Raises:
        InputError: (exit 2) an unknown step id, tag or host pattern, ``--from`` after
            ``--to``, or a selection that leaves nothing to run.
    """
    steps = list(tailored.steps)
    ids = [ts.id for ts in steps]
    if strict:
        _known_ids(selection, tailored, ids)
        _known_tags(selection)
        _patterns_match(selection, steps)
    position = {sid: i for i, sid in enumerate(ids)}
    first = position.get(selection.start or "", 0)
    last = position.get(selection.stop or "", len(ids) - 1)
    if strict and first > last:
        raise InputError(
            f"--from {selection.start} comes after --to {selection.stop} in the runbook; "
            "nothing would run"
        )
    out: Excluded = {}
    for index, ts in enumerate(steps):
        reason = _step_reason(selection, ts, index, first, last)
        for host in ts.hosts:
            why = reason or _host_reason(selection, ts, host.name, host.address)
            if why:
                out[(ts.id, host.name)] = why
    total = sum(len(ts.hosts) for ts in steps)
    if strict and total and len(out) == total:
        raise InputError(f"{selection.describe()}: the selection leaves no step to run")
    return out


def _step_reason(
    selection: Selection, ts: TailoredStep, index: int, first: int, last: int
) -> str | None:
    if selection.only and ts.id not in selection.only:
        return f"not in --only {','.join(selection.only)}"
    if index < first:
        return f"before --from {selection.start}"
    if index > last:
        return f"after --to {selection.stop}"
    tags = step_tags(ts)
    if selection.tags and not tags & set(selection.tags):
        return f"not tagged {' or '.join(selection.tags)} (--tags)"
    skipped = sorted(tags & set(selection.skip_tags))
    if skipped:
        return f"tagged {skipped[0]} (--skip-tags)"
    return None


def _host_reason(selection: Selection, ts: TailoredStep, name: str, address: str) -> str | None:
    if not selection.limit or ts.step.target is None:
        return None
    words = [name, address, ts.step.target]
    if any(fnmatchcase(w.lower(), p.lower()) for p in selection.limit for w in words):
        return None
    return f"host {name} not in --limit {','.join(selection.limit)}"


def _known_ids(selection: Selection, tailored: TailoredRunbook, ids: list[str]) -> None:
    named = [(f"--only {sid}", sid) for sid in selection.only]
    named += [
        (f"--{flag} {sid}", sid)
        for flag, sid in (("from", selection.start), ("to", selection.stop))
        if sid
    ]
    for flag, sid in named:
        if sid in ids:
            continue
        if sid in tailored.helpers:
            raise InputError(
                f"{flag}: {sid!r} is a check= or backout= helper; it runs with the step "
                "that names it: select that step"
            )
        close = difflib.get_close_matches(sid, ids, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; steps: {', '.join(ids)}"
        raise InputError(f"{flag}: no step {sid!r} in this runbook{hint}")


def _known_tags(selection: Selection) -> None:
    known = sorted(set(PHASES) | set(KINDS))
    for flag, tags in (("--tags", selection.tags), ("--skip-tags", selection.skip_tags)):
        for tag in tags:
            if tag not in known:
                close = difflib.get_close_matches(tag, known, n=3)
                hint = f"did you mean {', '.join(close)}? " if close else ""
                raise InputError(
                    f"{flag} {tag}: not a tag; {hint}tags are phases and kinds: {', '.join(known)}"
                )


def _patterns_match(selection: Selection, steps: list[TailoredStep]) -> None:
    words = {
        w.lower()
        for ts in steps
        if ts.step.target is not None
        for h in ts.hosts
        for w in (h.name, h.address, ts.step.target)
    }
    for pattern in selection.limit:
        if not any(fnmatchcase(w, pattern.lower()) for w in words):
            hosts = sorted({h.name for ts in steps if ts.step.target for h in ts.hosts})
            raise InputError(
                f"--limit {pattern}: matches no host or role of this run "
                f"(hosts: {', '.join(hosts) or 'none'})"
            )


def exclude(ctx: Any, tailored: TailoredRunbook, out: Excluded) -> int:
    """Journal ``step-excluded`` and store ``skipped`` (through ``ctx``, the run's
    :class:`~runbook_engine.run.steps.base.StepContext`) for each result of ``out`` still
    pending (a resume applies the selection again: nothing is excluded twice).

    Returns:
        How many results were excluded now.
    """
    count = 0
    for ts in tailored.steps:
        for host in ts.hosts:
            reason = out.get((ts.id, host.name))
            if reason is None or ctx.state(ts, host).status != "pending":
                continue
            ctx.journal.append("step-excluded", step=ts.id, host=host.name, reason=reason)
            ctx.finish(ts, host, "skipped", reason=f"excluded: {reason}")
            count += 1
    return count
