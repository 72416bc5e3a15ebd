"""What every lint rule gets: the parsed runbook, its source lines and locators.

A rule returns :class:`Finding` values: a :class:`~runbook_engine.errors.Problem`
(file, 1-based line and column, code, message) plus the id of the step it is
about, so that a per-step ``lint: {disable: ...}`` entry can silence it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from runbook_engine.errors import Problem
from runbook_engine.source.kinds import KINDS
from runbook_engine.source.model import Runbook, Step

#: Character that replaces every character of a ``{{ ... }}`` expression in masked bodies.
TEMPLATE_MARK = "\x01"
_EXPRESSION = re.compile(r"\{\{.*?\}\}", re.S)
_STATEMENT = re.compile(r"\{%.*?%\}|\{#.*?#\}", re.S)


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem found by a rule.

    Attributes:
        problem: What and where (``severity`` is ``"warning"`` for RB3xx rules).
        step: Id of the step the finding is about, ``None`` for whole-file findings.
    """

    problem: Problem
    step: str | None = None


def mask_templates(text: str) -> str:
    """Return ``text`` with Jinja markup blanked out, keeping every offset and newline.

    ``{{ ... }}`` becomes :data:`TEMPLATE_MARK` characters (a value that is a
    parameter, not a literal); ``{% ... %}`` and ``{# ... #}`` become spaces.
    """
    if "{" not in text:
        return text

    def fill(char: str) -> Callable[[re.Match[str]], str]:
        return lambda m: "".join("\n" if c == "\n" else char for c in m.group(0))

    return _STATEMENT.sub(fill(" "), _EXPRESSION.sub(fill(TEMPLATE_MARK), text))


@dataclass
class LintContext:
    """A runbook under lint and helpers to locate findings in its files.

    Attributes:
        runbook: The parsed runbook (fragments already inlined).
    """

    runbook: Runbook
    _lines: dict[Path, list[str]] = field(default_factory=dict)

    def source_lines(self, path: Path) -> list[str]:
        """Return the lines of ``path`` (LF-normalised, empty list when unreadable)."""
        if path not in self._lines:
            try:
                text = path.read_text(encoding="utf-8-sig")
            except (OSError, UnicodeDecodeError):
                text = ""
            self._lines[path] = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        return self._lines[path]

    def changing(self, step: Step) -> bool:
        """True for a step of the normal flow, in the change phase, of a kind that changes state
        (commands and manual steps; not probes)."""
        info = KINDS.get(step.kind)
        return step.changes_state and info is not None and info.changes

    def step_finding(self, step: Step, code: str, message: str) -> Finding:
        """Return a warning located at the step's opening fence."""
        line = step.span.start_line
        return Finding(
            Problem(
                message,
                step.span.path,
                line,
                len(step.prefix) + 1,
                code,
                "warning",
                self._line_text(step.span.path, line),
            ),
            step.id,
        )

    def body_finding(self, step: Step, offset: int, col: int, code: str, message: str) -> Finding:
        """Return a warning located in the step's body.

        Args:
            step: The step.
            offset: 0-based line inside the body.
            col: 0-based column inside that body line (container indentation removed).
            code: Rule code.
            message: What is wrong.
        """
        line = step.body_line + offset
        source = self._line_text(step.span.path, line)
        body_lines = step.body.split("\n")
        text = body_lines[offset] if offset < len(body_lines) else ""
        indent = len(source) - len(text) if source is not None and source.endswith(text) else 0
        return Finding(
            Problem(message, step.span.path, line, indent + col + 1, code, "warning", source),
            step.id,
        )

    def _line_text(self, path: Path, line: int) -> str | None:
        lines = self.source_lines(path)
        return lines[line - 1] if 0 < line <= len(lines) else None


def body_lines(step: Step) -> list[str]:
    """Return the step body's lines with templates masked (when the step is a template)."""
    body = mask_templates(step.body) if step.template else step.body
    return body.split("\n")
