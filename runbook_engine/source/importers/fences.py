"""The Markdown family of importers: walk a document, keep its prose, turn fences into steps.

markdown-it-py (the parser runbooks are read with) finds fenced blocks, headings and HTML
blocks with their lines.  A format's importer decides what each fence becomes
(:class:`Decision`); this module does the rest the same way for every format: the prose is
kept line for line (made safe for the runbook's templates, includes disarmed), a step's
info string is rewritten to today's grammar, shell prompts are split from output, and
values the source declares reach a command through ``{{ name }}``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from markdown_it import MarkdownIt

from runbook_engine.source.importers.model import Draft, DraftStep, ImportResult, Param, Prose
from runbook_engine.source.importers.names import Unique, slug

_MD = MarkdownIt("commonmark")
LANGS = {
    "sh": "sh",
    "shell": "sh",
    "bash": "bash",
    "zsh": "bash",
    "console": "bash",
    "shell-session": "bash",
    "shellsession": "bash",
    "terminal": "bash",
    "powershell": "powershell",
    "ps1": "powershell",
    "pwsh": "powershell",
    "ps": "powershell",
    "cmd": "cmd",
    "bat": "cmd",
    "batch": "cmd",
    "python": "python",
    "py": "python",
    "python3": "python",
}
_PROMPT = re.compile(r"^(?:\$ |PS(?: [A-Za-z]:\\[^>]*)?> ?|[A-Za-z]:\\[^>]*> ?)")
_ID = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,59}")
_INCLUDE = re.compile(r"<!--(\s*)include:", re.IGNORECASE)


@dataclass(slots=True)
class Fence:
    """A fenced block of the source: lines ``start``..``end`` (0-based, end exclusive)."""

    start: int
    end: int
    info: str
    body: str
    indent: str
    marker: str
    quoted: bool
    comment_before: str | None = None
    heading: str = ""

    @property
    def lang(self) -> str:
        """The first word of the info string, lower-case, up to ``{``, ``#`` or ``:``."""
        return re.split(r"[\s{#:]", self.info.strip(), maxsplit=1)[0].lower()


@dataclass(slots=True)
class Decision:
    """What a format makes of one fence.

    ``kind`` None keeps the block as an illustration; ``drop`` removes it (its content
    went elsewhere, e.g. parameters).  ``id_hint`` is slugged into the step id.
    """

    kind: str | None
    id_hint: str = ""
    title: str = ""
    attrs: dict[str, str] = field(default_factory=dict)
    classes: tuple[str, ...] = ()
    drop: bool = False
    why: str = ""
    body: str | None = None


def protect(text: str) -> str:
    """Prose made safe for the runbook's templates: literal ``{{``/``{%`` and no includes."""
    text = text.replace("{{", "\x00").replace("{%", "\x01")
    text = text.replace("\x00", "{{ '{{' }}").replace("\x01", "{{ '{%' }}")
    return _INCLUDE.sub(r"<!--\1(imported, not followed) include:", text)


def split_prompts(body: str) -> tuple[str, str, str]:
    """Commands and output of a transcript: ``(commands, output, prompt kind)``.

    Lines starting with a prompt (``$ ``, ``PS> ``, ``PS C:\\x> ``, ``C:\\x>``) are
    commands, and so are the lines continuing them (after a trailing ``\\`` or `````, or
    starting with ``> ``); other lines are output.  Without a prompt the body is all
    commands and the kind is "".
    """
    lines = body.splitlines()
    if not any(_PROMPT.match(line) for line in lines):
        return body, "", ""
    commands: list[str] = []
    output: list[str] = []
    kind, cont = "", False
    for line in lines:
        match = _PROMPT.match(line)
        if match:
            prompt = match.group(0)
            kind = kind or (
                "powershell" if prompt.startswith("PS") else "cmd" if prompt[0] != "$" else "sh"
            )
            commands.append(line[len(prompt) :])
        elif cont or (commands and line.startswith("> ") and kind != "cmd"):
            commands.append(line[2:] if line.startswith("> ") and not cont else line)
        else:
            output.append(line)
            cont = False
            continue
        cont = commands[-1].rstrip().endswith(("\\", "`"))
    return "\n".join(commands) + "\n", "\n".join(output).strip("\n"), kind


def with_values(body: str, kind: str, params: dict[str, Param]) -> tuple[str, list[str]]:
    """``body`` made to read the values it uses from the runbook: a first line per value
    (``export NAME={{ NAME }}``; PowerShell ``$env:NAME = {{ NAME }}``), the original body
    below, literal (``{% raw %}``) when it holds template markers.  Returns the body and
    the names used."""
    used = []
    for name in params:
        if (kind in ("sh", "bash") and re.search(rf"\$\{{?{re.escape(name)}\b", body)) or (
            kind == "powershell" and re.search(rf"\$env:{re.escape(name)}\b", body, re.I)
        ):
            used.append(name)
    if "endraw" in body:  # a raw block cannot hold it: each marker becomes a string literal
        body = re.sub(r"\{[{%#]", lambda m: '{{ "' + m.group(0) + '" }}', body)
    elif "{{" in body or "{%" in body or "{#" in body:
        body = "{% raw %}" + body.rstrip("\n") + "{% endraw %}\n"
    if kind == "powershell":
        prelude = [f"$env:{n} = {{{{ {n} }}}}" for n in used]
    else:
        prelude = [f"export {n}={{{{ {n} }}}}" for n in used]
    return "".join(line + "\n" for line in prelude) + body, used


class Walker:
    """Turns one Markdown document into one draft, asking ``decide`` about each fence.

    Attributes:
        result: Where notes go.
        draft: The draft being filled.
        line0: Source line of the document's first line (after front matter), 1-based.
    """

    def __init__(
        self,
        text: str,
        draft: Draft,
        result: ImportResult,
        line0: int,
        decide: Callable[[Fence, Walker], Decision],
    ) -> None:
        self.lines = text.splitlines()
        self.draft, self.result, self.line0, self.decide = draft, result, line0, decide
        self.ids = Unique()
        self.last_step: DraftStep | None = None

    def line(self, index: int) -> int:
        """1-based source line of the 0-based document line ``index``."""
        return index + self.line0

    def fences(self) -> list[Fence]:
        """Every fenced block with its heading and the HTML comment just before it."""
        tokens = _MD.parse("\n".join(self.lines) + "\n")
        out: list[Fence] = []
        heading, comment, comment_end = "", None, -1
        for i, tok in enumerate(tokens):
            if tok.type == "heading_open" and i + 1 < len(tokens):
                heading = tokens[i + 1].content
            elif tok.type == "html_block" and tok.map:
                comment, comment_end = tok.content.strip(), tok.map[1]
            elif tok.type == "fence" and tok.map:
                start, end = tok.map
                first = self.lines[start]
                indent = first[: len(first) - len(first.lstrip())]
                gap = self.lines[comment_end:start] if comment_end >= 0 else ["x"]
                before = (
                    comment if comment_end <= start and not any(s.strip() for s in gap) else None
                )
                out.append(
                    Fence(
                        start,
                        end,
                        tok.info,
                        tok.content,
                        indent,
                        tok.markup,
                        first.lstrip().startswith(">"),
                        before,
                        heading,
                    )
                )
        return out

    def run(self) -> None:
        """Walk the document and fill the draft."""
        pos = 0
        for fence in self.fences():
            self._prose(pos, fence.start)
            self._fence(fence)
            pos = fence.end
        self._prose(pos, len(self.lines))

    def _prose(self, start: int, end: int) -> None:
        chunk = "\n".join(self.lines[start:end])
        if chunk.strip():
            if _INCLUDE.search(chunk):
                self.result.note(
                    self.line(start), "include comment", "kept as text, not followed", mapped=False
                )
            self.draft.parts.append(Prose(protect(chunk)))

    def illustration(self, fence: Fence, lang: str | None = None) -> None:
        """Keep ``fence`` as a block that is shown, never run (its info string cut to a word)."""
        lang = fence.lang if lang is None else lang
        body = fence.body.rstrip("\n")
        longest = max((len(m) for m in re.findall(r"^\s*(`{3,}|~{3,})", body, re.M)), default=0)
        marker = fence.marker[0] * max(len(fence.marker), longest + 1)
        lines = [marker + lang, *body.split("\n"), marker] if body else [marker + lang, marker]
        text = "\n".join(fence.indent + line if line else line for line in lines)
        self.draft.parts.append(Prose(protect(text)))

    def _fence(self, fence: Fence) -> None:
        decision = self.decide(fence, self)
        where = self.line(fence.start)
        if decision.drop:
            return
        if decision.kind is None or fence.quoted:
            if fence.quoted and decision.kind:
                self.result.note(
                    where,
                    f"{fence.lang} block in a blockquote",
                    "kept as an illustration",
                    mapped=False,
                )
            elif decision.why:
                self.result.note(
                    where, f"{fence.lang or 'plain'} block", decision.why, mapped=False
                )
            self.illustration(fence)
            return
        source = fence.body if decision.body is None else decision.body
        commands, output, prompt = split_prompts(source)
        kind = decision.kind if prompt in ("", "sh") else prompt
        body, used = with_values(commands, kind, self.draft.params)
        hint = decision.id_hint or fence.heading or commands.strip().split("\n")[0]
        base = hint if _ID.fullmatch(hint) else slug(hint, limit=4)
        step = DraftStep(
            kind,
            self.ids(base),
            body,
            where,
            decision.title,
            "",
            decision.classes,
            dict(decision.attrs),
            fence.indent,
        )
        if body.startswith("{% raw %}") or "{% raw %}\n" in body:
            self.result.note(where, "template markers in a command", "kept literal (a raw block)")
        self.draft.parts.append(step)
        self.last_step = step
        became = f"{kind} step #{step.id}"
        if used:
            became += f" (values: {', '.join(used)})"
        self.result.note(where, f"{fence.lang or 'plain'} block", became)
        if output:
            self.result.note(where, "output after prompts", "kept as an illustration")
            text = "\n".join(
                fence.indent + ln if ln else ln for ln in ["```text", *output.split("\n"), "```"]
            )
            self.draft.parts.append(Prose(protect(text)))
