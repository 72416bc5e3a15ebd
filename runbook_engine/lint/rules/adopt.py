"""Rules for documents adopted from other tools (issue 15).

- RB320: a front-matter key that is not ours (``ms.author``, ``weight``): kept and carried
  into the guide's metadata, but a typo of one of ours (``paramters``) would be lost.
- RB321: braces in prose or an example block that look like one of our templates but read
  names the runbook does not declare (``{{ x ~ ':' ~ y }}``): kept as written.
- RB322: a command step line that starts with a prompt (``$ ``, ``PS>``): the prompt would be
  run as part of the command.
- RB323: lines after such a prompt line that look like pasted output: they would be run.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from runbook_engine.errors import Problem
from runbook_engine.lint.rules.context import Finding, LintContext
from runbook_engine.source.metadata import RUNBOOK_KEYS
from runbook_engine.source.model import Prose
from runbook_engine.tailor.literal import protect
from runbook_engine.tailor.sandbox import make_environment

_PROMPT = re.compile(r"^(?:\$ |PS(?: [^>]*)?> ?)")
_PROMPTED_KINDS = frozenset({"sh", "bash", "powershell", "cmd"})
_GLOBALS = frozenset(make_environment().globals)


def foreign_front_matter(ctx: LintContext) -> Iterator[Finding]:
    """RB320: yield each front-matter key that is not ours."""
    rb = ctx.runbook
    for key, line in rb.foreign_lines.items():
        yield Finding(
            Problem(
                f"front-matter key {key!r} is not a runbook key: kept as written and carried "
                "into the guide's metadata; if it is a typo, ours are: "
                + ", ".join(sorted(RUNBOOK_KEYS)),
                rb.path,
                line,
                1,
                "RB320",
                "warning",
            )
        )


def template_kept_literal(ctx: LintContext) -> Iterator[Finding]:
    """RB321: yield each Jinja-like construct of prose that reads undeclared names."""
    rb = ctx.runbook
    if not rb.templated:
        return
    known = set(rb.parameters) | {"environment", "roles"} | _GLOBALS
    for seg in rb.segments:
        if not isinstance(seg, Prose) or "{" not in seg.text:
            continue
        for literal in protect(seg.text, known, strict=False, blocks=True).literals:
            if not literal.jinja or not literal.names:
                continue
            line = seg.span.start_line + literal.line - 1
            yield Finding(
                Problem(
                    f"{literal.text.splitlines()[0]} reads {', '.join(literal.names)}, which "
                    "this runbook does not declare: it is kept as written. To fill it in, "
                    "declare the parameter (or give the fact in the environment)",
                    seg.span.path,
                    line,
                    1,
                    "RB321",
                    "warning",
                    ctx._line_text(seg.span.path, line),
                )
            )


def prompt_in_command(ctx: LintContext) -> Iterator[Finding]:
    """RB322: yield each command step line that starts with a prompt."""
    return (f for f in _prompts_in_commands(ctx) if f.problem.code == "RB322")


def pasted_output(ctx: LintContext) -> Iterator[Finding]:
    """RB323: yield the lines after a prompt line of a command step that look like output."""
    return (f for f in _prompts_in_commands(ctx) if f.problem.code == "RB323")


def _prompts_in_commands(ctx: LintContext) -> Iterator[Finding]:
    """RB322 and RB323: yield prompt lines and the pasted output after them in command steps."""
    for step in ctx.runbook.steps:
        if step.kind not in _PROMPTED_KINDS:
            continue
        lines = step.body.split("\n")
        prompted = False
        for offset, line in enumerate(lines):
            if _PROMPT.match(line):
                prompted = True
                yield ctx.body_finding(
                    step,
                    offset,
                    0,
                    "RB322",
                    f"step {step.id!r}: this line starts with a prompt ({line.split()[0]}), "
                    "which would be run as part of the command; remove the prompt, or make "
                    "the block a transcript (```console) whose commands follow their prompts",
                )
            elif prompted and line.strip() and not lines[offset - 1].rstrip().endswith(("\\", "`")):
                yield ctx.body_finding(
                    step,
                    offset,
                    0,
                    "RB323",
                    f"step {step.id!r}: after a prompt line this looks like pasted output, "
                    "which would be run as a command; remove it, or make the block a "
                    "transcript (```console: lines without a prompt are expected output)",
                )
