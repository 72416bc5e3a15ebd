"""Value rules: what the out-of-band value mechanism cannot cover by itself.

- RB310: in a ``cmd`` body that takes values, a variable set from a value
  (``set "X=...{{ v }}..."``) is read with ``%X%`` (expanded before cmd.exe parses the
  line, so the value would be parsed), or read with ``!X!``/``%X%`` in a command that
  parses its text again (``for /f ... in ('...')``, ``call``, ``cmd /c``, ``start``).
- RB311: a ``sh``/``bash``/``powershell``/``python`` body sets a variable from a value and
  hands it to a code evaluator (``eval``, ``Invoke-Expression``, ``exec(``/``eval(``): the
  value would run as code, which no quoting or reference can prevent.

Tailoring already refuses a template expression that stands directly in such a place
(RB133); these rules follow the value one assignment further.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from runbook_engine.lint.rules.context import TEMPLATE_MARK, Finding, LintContext, body_lines

_EXPR = re.compile(re.escape(TEMPLATE_MARK) + "+")
_CMD_SET = re.compile(r'(?i)\bset\s+(?:/a\s+)?"?([A-Za-z_][\w]*)=')
_CMD_REPARSE = re.compile(
    r"(?i)(^|[\s&|(])(call|cmd(\.exe)?\s+/[ck]|start)\b|for\s+/f\b[^\n]*\bin\s*\(\s*['`]"
)
_SH_SET = re.compile(r"^\s*(?:export\s+|local\s+|readonly\s+)?([A-Za-z_]\w*)=")
_PS_SET = re.compile(r"^\s*\$([A-Za-z_]\w*)\s*=")
_PY_SET = re.compile(r"^\s*([A-Za-z_]\w*)\s*=[^=]")
_EVALUATORS = {
    "sh": re.compile(r"\beval\b|\btrap\b"),
    "bash": re.compile(r"\beval\b|\btrap\b"),
    "powershell": re.compile(r"(?i)\b(invoke-expression|iex)\b|scriptblock\]::create"),
    "python": re.compile(r"\b(exec|eval|compile)\s*\("),
}
_SETTERS = {"sh": _SH_SET, "bash": _SH_SET, "powershell": _PS_SET, "python": _PY_SET}


def _tainted(lines: list[str], setter: re.Pattern[str]) -> dict[str, int]:
    """Variables assigned on a line holding a template expression -> that line's offset."""
    names: dict[str, int] = {}
    for offset, line in enumerate(lines):
        if _EXPR.search(line):
            for match in setter.finditer(line):
                names.setdefault(match.group(1).upper(), offset)
    return names


def cmd_value_variables(ctx: LintContext) -> Iterator[Finding]:
    """RB310: yield each read of a value-derived cmd variable that cmd.exe would parse."""
    for step in ctx.runbook.steps:
        if step.kind != "cmd" or not step.template:
            continue
        lines = body_lines(step)
        if not any(_EXPR.search(line) for line in lines):
            continue
        tainted = _tainted(lines, _CMD_SET)
        for offset, line in enumerate(lines):
            reparse = _CMD_REPARSE.search(line) is not None
            for match in re.finditer(r"([%!])([A-Za-z_]\w*)\1", line):
                name = match.group(2).upper()
                if name not in tainted or tainted[name] >= offset:
                    continue
                if match.group(1) == "%" or reparse:
                    where = (
                        "in a command cmd.exe parses again"
                        if reparse
                        else "with %NAME%, which cmd.exe expands before parsing the line"
                    )
                    yield ctx.body_finding(
                        step,
                        offset,
                        match.start(),
                        "RB310",
                        f"{match.group(0)} reads a variable set from a value {where}: the "
                        "value would be parsed as cmd syntax; read it as !NAME! on a line that "
                        "cmd does not parse again",
                    )


def value_to_evaluator(ctx: LintContext) -> Iterator[Finding]:
    """RB311: yield each code evaluator given a variable that was set from a value."""
    for step in ctx.runbook.steps:
        evaluator = _EVALUATORS.get(step.kind)
        if evaluator is None or not step.template:
            continue
        lines = body_lines(step)
        tainted = _tainted(lines, _SETTERS[step.kind])
        if not tainted:
            continue
        for offset, line in enumerate(lines):
            if not evaluator.search(line):
                continue
            for name, where in tainted.items():
                pattern = rf"(?i)(\$\{{?{name}\b|\b{name}\b)"
                if where < offset and re.search(pattern, line):
                    yield ctx.body_finding(
                        step,
                        offset,
                        0,
                        "RB311",
                        f"a variable set from a value ({name.lower()}) reaches a code "
                        "evaluator on this line: the value would run as code; pass it as data",
                    )
                    break
