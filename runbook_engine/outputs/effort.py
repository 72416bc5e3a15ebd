"""How long a step takes and who carries it out, for the guide's time plan.

Estimates come from the step's ``estimate=`` attribute, else from its kind's
defaults (:class:`~runbook_engine.source.kinds.KindInfo` ``estimate`` when the
tool runs it, ``estimate_by_hand`` when a person does); a step on several hosts
takes that long on each.  A step skipped in this environment takes no time.
"""

from __future__ import annotations

from runbook_engine.source.kinds import KINDS
from runbook_engine.tailor.tailoring import TailoredStep


def by_hand(ts: TailoredStep) -> bool:
    """True when a person carries the step out (manual kind, or a host reached by hand)."""
    return ts.step.is_manual or any(h.transport == "manual" for h in ts.hosts)


def automated_check(ts: TailoredStep) -> bool:
    """True for a read-only pre-check or verification the tool runs itself (no person)."""
    return (
        ts.step.phase in ("precheck", "verify")
        and not by_hand(ts)
        and ts.step.kind != "approval"
        and ts.skip_reason is None
    )


def step_seconds(ts: TailoredStep) -> int:
    """Expected duration of ``ts`` in seconds on all its hosts (0 when skipped)."""
    if ts.skip_reason is not None:
        return 0
    info = KINDS.get(ts.step.kind)
    if ts.step.estimate is not None:
        each = ts.step.estimate
    elif info is None:
        each = 60
    else:
        each = info.estimate_by_hand if by_hand(ts) else info.estimate
    return each * max(1, len(ts.hosts))


def duration_text(seconds: int) -> str:
    """``45 s``, ``5 min``, ``1 h 20 min``: minutes rounded up from 60 s on; ``""`` for 0."""
    if not seconds:
        return ""
    if seconds < 60:
        return f"{seconds} s"
    minutes = -(-seconds // 60)
    hours, minutes = divmod(minutes, 60)
    if not hours:
        return f"{minutes} min"
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def clock_text(seconds: int) -> str:
    """An offset from the start of the change window: ``+0:25``, ``+1:05``."""
    minutes = -(-seconds // 60)
    return f"+{minutes // 60}:{minutes % 60:02d}"
