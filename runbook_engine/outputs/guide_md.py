"""The Markdown guide (``runbook render --to md``), also the source of the HTML guide.

The document body is the runbook's own Markdown in order: prose as tailored,
and each step rendered in place.  A step keeps its container: every line
emitted for it carries the step's :attr:`~runbook_engine.source.model.Step.prefix`
(first line) or its continuation (``"   "`` in a list item, ``"> "`` in a
blockquote), so a step inside a numbered list stays inside the list.
Layout lives in ``templates/guide.md.j2``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from runbook_engine.outputs import front_page, sections
from runbook_engine.outputs.backout_plan import backout_plan
from runbook_engine.outputs.effort import duration_text
from runbook_engine.outputs.long_values import ValueRefs, collect
from runbook_engine.outputs.markdown import MD
from runbook_engine.outputs.mdtext import continuation, escape, is_blank_line
from runbook_engine.outputs.templating import get_template
from runbook_engine.outputs.views import CHECKBOX_LINE, StepView, helper_users, step_view
from runbook_engine.tailor.tailoring import TailoredProse, TailoredRunbook, TailoredStep

TEMPLATE = "guide.md.j2"
_COLON_RUN = re.compile(r"^[ \t>]*(:{3,})", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Part:
    """One piece of the document body.

    Attributes:
        before: Separator emitted first (a blank line in the container), may be ``""``.
        prose: Prose Markdown, or ``None`` for a step.
        view: The step, or ``None`` for prose.
        first: Prefix of the step's first line (its list marker or ``>``).
        rest: Prefix of the step's other lines.
        wrap: Colon fence of the HTML wrapper (``":::"``), ``""`` for plain Markdown.
    """

    before: str
    prose: str | None = None
    view: StepView | None = None
    first: str = ""
    rest: str = ""
    wrap: str = ""


def render_markdown(tailored: TailoredRunbook, *, change_id: str | None = None) -> bytes:
    """Render the Markdown guide as UTF-8 bytes.

    Raises:
        InputError: templates missing, or ``SOURCE_DATE_EPOCH`` malformed.
    """
    return guide_markdown(tailored, change_id=change_id).encode("utf-8")


def guide_markdown(
    tailored: TailoredRunbook, *, change_id: str | None = None, html: bool = False
) -> str:
    """Return the guide's Markdown text.

    Args:
        tailored: The tailored (or generic) runbook.
        change_id: Change ticket shown in the details table.
        html: Wrap each step in a ``::: rb-step`` container for the HTML renderer
            (so print CSS can keep a step on one page).

    Raises:
        InputError: templates missing, or ``SOURCE_DATE_EPOCH`` malformed.
    """
    rb = tailored.runbook
    refs = collect(tailored)
    plan = front_page.time_plan(tailored)
    backouts = backout_plan(tailored, refs)
    body = body_parts(tailored, html=html, refs=refs)
    context = {
        "title": escape(rb.title),
        "summary": rb.summary.strip(),
        "generic": tailored.generic,
        "environment": tailored.environment,
        "html": html,
        "front_matter": "" if html else sections.front_matter(tailored),
        "details": sections.details(tailored, change_id),
        "values": sections.value_rows(tailored, refs),
        "long_values": refs.values,
        "hosts": sections.host_rows(tailored),
        "contacts": front_page.contact_rows(tailored),
        "change_owner": front_page.change_owner(tailored),
        "time_plan": plan,
        "total": duration_text(sum(r.seconds for r in plan)) or "—",
        "backout_total": duration_text(sum(b.seconds for b in backouts)) or "—",
        "undo_count": len([b for b in backouts if b.block is not None]),
        "go_no_go": front_page.go_no_go(tailored),
        "prerequisites": sections.prerequisites(tailored),
        "by_hand_note": front_page.by_hand_note(tailored, numbered=html),
        "references": sections.references(tailored),
        "body": body,
        "value_users": _value_users(refs, body),
        "verification": sections.verification(tailored),
        "backouts": backouts,
        "code": sections.appendix_code(tailored, refs),
        "descriptions": sections.descriptions(tailored),
        "roles": sections.role_descriptions(tailored),
        "checkbox_line": CHECKBOX_LINE,
    }
    return get_template(TEMPLATE).render(context)


def _value_users(refs: ValueRefs, body: list[Part]) -> dict[str, str]:
    """For each long value, the steps that refer to it (``steps 12, 25``, linked)."""
    users: dict[str, list[str]] = {v.label: [] for v in refs.values}
    for part in body:
        view = part.view
        if view is None:
            continue
        text = "\n".join(b.text for b in (view.block, view.check) if b is not None)
        for value in refs.used(text):
            number = view.heading.split(".", 1)[0].removeprefix("Step ")
            users[value.label].append(f"[{number}](#{view.id})")
    return {
        label: ("step " if len(found) == 1 else "steps ") + ", ".join(found) if found else ""
        for label, found in users.items()
    }


def body_parts(
    tailored: TailoredRunbook, *, html: bool = False, refs: ValueRefs | None = None
) -> list[Part]:
    """Split the document body into prose and steps, with the separators each needs."""
    users = helper_users(tailored)
    parts: list[Part] = []
    last_line = ""  # last line emitted so far ("" = a blank line or the start)
    after_step: str | None = None  # separator owed after a step, if the prose does not start blank
    for index, seg in enumerate(tailored.segments):
        if isinstance(seg, TailoredProse):
            text = _strip_title(seg.text, tailored.runbook.title) if index == 0 else seg.text
            if index == len(tailored.segments) - 1:
                text = close_open_fence(text)
            if not text:
                continue
            before = after_step if after_step and not is_blank_line(text.split("\n", 1)[0]) else ""
            parts.append(Part(before, prose=text))
            last_line, after_step = _last_line(text), None
            continue
        parts.append(_step_part(tailored, seg, users, last_line, html, refs or ValueRefs()))
        last_line, after_step = "x", continuation(seg.step.prefix).rstrip() + "\n"
    return parts


def _step_part(
    tailored: TailoredRunbook,
    ts: TailoredStep,
    users: dict[str, list[TailoredStep]],
    last_line: str,
    html: bool,
    refs: ValueRefs,
) -> Part:
    rest = continuation(ts.step.prefix)
    before = "" if is_blank_line(last_line) else rest.rstrip() + "\n"
    view = step_view(tailored, ts, users, refs)
    wrap = ""
    if html:
        inner = "\n".join(b.text for b in (view.block, view.check) if b is not None)
        if view.writein:
            inner += "\n:::"
        wrap = ":" * max(3, max((len(m) for m in _COLON_RUN.findall(inner)), default=0) + 1)
    return Part(before, view=view, first=ts.step.prefix, rest=rest, wrap=wrap)


def _last_line(text: str) -> str:
    lines = text.rstrip("\n").split("\n")
    return "" if text.endswith("\n\n") or not lines else lines[-1]


def _strip_title(text: str, title: str) -> str:
    """Drop a leading level-1 heading (ATX ``# Title`` or setext) that repeats the guide's
    own title (its text without markup)."""
    tokens = MD.parse(text)
    if len(tokens) < 2 or tokens[0].type != "heading_open" or tokens[0].tag != "h1":
        return text
    inline = tokens[1]
    shown = "".join(
        c.content if c.type in ("text", "code_inline") else " " if c.type == "softbreak" else ""
        for c in inline.children or []
    ).strip()
    if shown != title.strip() or not tokens[0].map:
        return text
    lines = text.split("\n")
    return "\n".join(lines[tokens[0].map[1] :]).lstrip("\n")


def close_open_fence(text: str) -> str:
    """Close a top-level illustration fence left open at the end of the document.

    CommonMark runs an unclosed fence to the end of the document; in the guide
    it would swallow the sections that follow the body.
    """
    if "```" not in text and "~~~" not in text:
        return text
    lines = text.rstrip("\n").split("\n")
    for token in reversed(MD.parse(text)):
        if token.level == 0 and token.map:
            if token.type == "fence" and token.map[1] >= len(lines):
                last = lines[-1].strip()
                closed = (
                    token.map[1] - token.map[0] > 1
                    and set(last) == {token.markup[0]}
                    and len(last) >= len(token.markup)
                )
                if not closed:
                    return text.rstrip("\n") + "\n" + token.markup + "\n"
            break
    return text
