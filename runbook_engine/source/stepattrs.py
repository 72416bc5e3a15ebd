"""A step's attributes and classes (``{#id key=value .class}``): the known ones, checked.

Every problem goes to a callback, so the parser collects all problems of a file.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from runbook_engine.source.attrs import InfoString, parse_estimate
from runbook_engine.source.console import CONSOLE_KINDS
from runbook_engine.source.kinds import ERREXIT, errexit_mode

ATTRIBUTES = frozenset(
    {
        "target",
        "when",
        "timeout",
        "retries",
        "retry-delay",
        "on-failure",
        "check",
        "backout",
        "title",
        "cwd",
        "template",
        "estimate",
        "go-no-go",
        "errexit",
        "readonly",
        "expect",
    }
)
CLASSES = {"precheck": "precheck", "verify": "verify", "change": "change"}


def step_fields(info: InfoString, bad: Callable[[str], None]) -> dict[str, Any]:
    """Check a step's attributes and classes; return the :class:`Step` fields they set.

    Args:
        info: The parsed info string.
        bad: Called with a message for each bad attribute or class (RB116).
    """
    out: dict[str, Any] = {}
    attrs, classes, kind = info.attrs, info.classes, info.lang or ""

    for key, value in attrs.items():
        if key not in ATTRIBUTES:
            bad(f"unknown attribute {key!r}; known: {', '.join(sorted(ATTRIBUTES))}")
        elif key in ("timeout", "retry-delay"):
            number = _number(value)
            if (
                number is None
                or not math.isfinite(number)
                or number < 0
                or (key == "timeout" and number == 0)
            ):
                bad(f"{key}={value!r} must be a positive number of seconds")
            else:
                out["timeout" if key == "timeout" else "retry_delay"] = number
        elif key == "retries":
            if not (value.isascii() and value.isdigit() and int(value) <= 1000):
                bad(f"retries={value!r} must be a whole number from 0 to 1000")
            else:
                out["retries"] = int(value)
        elif key == "on-failure":
            if value not in ("stop", "continue"):
                bad(f"on-failure={value!r} must be 'stop' or 'continue'")
            out["on_failure"] = value
        elif key == "estimate":
            try:
                out["estimate"] = parse_estimate(value)
            except ValueError as exc:
                bad(str(exc))
        elif key == "go-no-go":
            if value not in ("true", "false"):
                bad(f"go-no-go={value!r} must be 'true' or 'false'")
            out["go_no_go"] = value == "true"
        elif key == "readonly":
            if value not in ("true", "false"):
                bad(f"readonly={value!r} must be 'true' or 'false'")
            out["readonly"] = value == "true"
        elif key == "template":
            if value not in ("true", "false"):
                bad(f"template={value!r} must be 'true' or 'false'")
            out["template"] = value != "false"
        elif key == "expect":
            if kind not in CONSOLE_KINDS or value not in ("none", "exact", "lines"):
                bad(
                    f"expect={value!r}: console steps compare output with expect=exact, "
                    "expect=lines or expect=none (the default)"
                )
        elif key == "errexit":
            if value not in ("true", "false"):
                bad(f"errexit={value!r} must be 'true' or 'false'")
            elif not errexit_mode(kind):
                bad(f"errexit= applies to {', '.join(ERREXIT)} steps, not {kind}")
            out["errexit"] = value != "false"
        else:
            out[key] = value
    phases = [c for c in classes if c in CLASSES]
    for cls in classes:
        if cls not in CLASSES:
            bad(f"unknown class .{cls}; known: .precheck, .verify, .change")
    if len(phases) > 1:
        bad("a step has one phase: use one of .precheck, .verify")
    if phases:
        out["phase"] = CLASSES[phases[0]]
    return out


def _number(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None
