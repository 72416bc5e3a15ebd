"""The ``lint`` front-matter key: rules disabled for one runbook, each with a reason.

```yaml
lint:
  disable:
    RB306: "The lab's addresses are the point of this training runbook"
    RB302: {reason: "A restart has nothing to undo", steps: [gc-restart, server-restart]}
```

A plain string disables the rule for the whole file; a mapping with ``reason``
and ``steps`` disables it for those steps only.  Problems with the key itself:

- RB310 (error): ``lint`` or ``disable`` is not a mapping, or has unknown keys.
- RB311 (warning): a disable without a reason (the rule is still disabled).
- RB312 (warning): a code that names no rule that can be disabled (errors cannot be).
- RB313 (warning): ``steps`` names a step the runbook does not have.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runbook_engine.errors import Problem
from runbook_engine.lint.rules.context import Finding, LintContext
from runbook_engine.source.frontmatter import key_lines


@dataclass(frozen=True, slots=True)
class Disable:
    """One disabled rule.

    Attributes:
        code: Rule code (``RB301``).
        reason: Why, as written ("" when missing).
        steps: Step ids it applies to; ``None`` for the whole file.
    """

    code: str
    reason: str
    steps: frozenset[str] | None = None

    def covers(self, finding: Finding) -> bool:
        """True when ``finding`` is silenced by this entry."""
        if finding.problem.code != self.code:
            return False
        return self.steps is None or finding.step in self.steps


@dataclass(frozen=True, slots=True)
class Settings:
    """A runbook's lint settings."""

    disables: tuple[Disable, ...] = ()

    def silenced(self, finding: Finding) -> bool:
        """True when a disable entry covers ``finding``."""
        return any(d.covers(finding) for d in self.disables)


def read_settings(ctx: LintContext, codes: frozenset[str]) -> tuple[Settings, list[Problem]]:
    """Read ``lint:`` from the runbook's front matter.

    Args:
        ctx: The runbook under lint.
        codes: Codes of the rules that may be disabled.

    Returns:
        The settings and the problems of the ``lint`` key itself (RB310-RB313).
    """
    raw = ctx.runbook.meta.get("lint")
    if raw is None:
        return Settings(), []
    path = ctx.runbook.path
    lines = key_lines("\n".join(ctx.source_lines(path)), ctx.runbook.body_start_line)
    problems: list[Problem] = []

    def add(message: str, key: str, code: str, severity: str = "warning") -> None:
        line = lines.get(key) or lines.get("lint.disable") or lines.get("lint", 1)
        problems.append(Problem(message, path, line, 1, code, severity))

    if not isinstance(raw, dict) or set(raw) - {"disable"}:
        add(
            "'lint' must be a mapping with one key, 'disable' (rule code -> reason)",
            "lint",
            "RB310",
            "error",
        )
        return Settings(), problems
    disable = raw.get("disable") or {}
    if not isinstance(disable, dict):
        add(
            "'lint.disable' must map rule codes to reasons, e.g. {RB301: \"why\"}",
            "lint.disable",
            "RB310",
            "error",
        )
        return Settings(), problems
    step_ids = {s.id for s in ctx.runbook.steps}
    disables = []
    for code, value in disable.items():
        key = f"lint.disable.{code}"
        if code not in codes:
            known = ", ".join(sorted(codes))
            add(
                f"lint.disable: {code!r} is not a rule that can be disabled (rules: {known}; "
                "errors cannot be disabled)",
                key,
                "RB312",
            )
            continue
        entry = _entry(str(code), value, lambda m, k=key: add(m, k, "RB310", "error"))
        if entry is None:
            continue
        if not entry.reason:
            add(
                f"lint.disable: {code} has no reason; write why it does not apply, e.g. "
                f'{code}: "..."',
                key,
                "RB311",
            )
        for step in sorted((entry.steps or set()) - step_ids):
            add(
                f"lint.disable: {code} names step {step!r}, which this runbook does not have",
                key,
                "RB313",
            )
        disables.append(entry)
    return Settings(tuple(disables)), problems


def _entry(code: str, value: Any, bad: Any) -> Disable | None:
    if value is None or isinstance(value, str):
        return Disable(code, (value or "").strip())
    if not isinstance(value, dict) or set(value) - {"reason", "steps"}:
        bad(f"lint.disable.{code} must be a reason, or a mapping with 'reason' and 'steps'")
        return None
    steps = value.get("steps")
    if steps is not None and (
        not isinstance(steps, list) or not all(isinstance(s, str) for s in steps)
    ):
        bad(f"lint.disable.{code}.steps must be a list of step ids")
        return None
    reason = value.get("reason")
    reason = reason.strip() if isinstance(reason, str) else ""
    return Disable(code, reason, frozenset(steps) if steps is not None else None)
