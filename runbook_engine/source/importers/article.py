"""A prose article: each procedure becomes a runbook skeleton.

The article is read as blocks (:mod:`.article_text`).  Procedures are separated by
thematic breaks and by a short line repeated three times or more (a blog archive's
"Online" between posts); a page header ("Archive for ...") and paging links are left out.
In a procedure, every numbered instruction becomes a ``manual`` step holding its exact
text (menu paths as written), registry values (:mod:`.article_facts`) ``registry`` steps,
services ``service`` steps (an instruction that sets a service stays as prose above its
step, never a manual step too), commands and code blocks command steps; headings, paragraphs
and bullets stay prose.  Host names, domains, addresses, e-mail addresses and ports
(:mod:`.values`) become typed parameters.  Deterministic: no guessing beyond these rules,
and whatever they leave is in the report.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import yaml

import runbook_engine.source.importers.article_facts as facts
from runbook_engine.source.importers.article_text import (
    Block,
    html_blocks,
    markdown_blocks,
    text_blocks,
)
from runbook_engine.source.importers.fences import LANGS, protect, split_prompts
from runbook_engine.source.importers.model import Draft, DraftStep, ImportResult, Param, Prose
from runbook_engine.source.importers.names import Unique, slug, title_of
from runbook_engine.source.importers.values import Catalog

ROLE = "server"
ROLE_TEXT = "Where the procedure is carried out: the article's servers and consoles"
_PAGE = re.compile(r"^(Archive for\b|Archives?:|Category:|Tag:|Posts tagged\b)", re.I)
_PAGING = re.compile(r"(Previous|Next|Older|Newer) (posts|entries)|Back to top", re.I)


def read_blocks(text: str, path: Path) -> tuple[list[Block], str]:
    """The article's blocks and what it was read as (text, html, markdown)."""
    if path.suffix.lower() in (".html", ".htm") or re.match(r"\s*<(!doctype|html)", text, re.I):
        return html_blocks(text), "html"
    if path.suffix.lower() in (".md", ".markdown"):
        return markdown_blocks(text), "markdown"
    return text_blocks(text), "text"


def procedures(blocks: list[Block], result: ImportResult) -> list[list[Block]]:
    """The article cut into procedures (see the module docstring)."""
    repeated = Counter(
        b.text for b in blocks if b.kind in ("heading", "para") and "\n" not in b.text
    )
    groups: list[list[Block]] = [[]]
    for block in blocks:
        if block.kind == "sep" or (repeated[block.text] >= 3 and block.kind in ("heading", "para")):
            groups.append([])
        elif block.kind in ("heading", "para") and (
            _PAGE.match(block.text) or _PAGING.search(block.text)
        ):
            result.note(
                block.line,
                f"page text {block.text!r}",
                "left out (not the article's)",
                mapped=False,
            )
        else:
            groups[-1].append(block)
    out = []
    for group in groups:
        if any(b.kind in ("item", "code") for b in group) or facts.registry_values(group):
            out.append(group)
        elif group:
            result.note(group[0].line, "text without instructions", "not a procedure", mapped=False)
    return out


class _Builder:
    """Builds one draft from one procedure's blocks."""

    def __init__(
        self, blocks: list[Block], number: int, catalog: Catalog, result: ImportResult, ids: Unique
    ) -> None:
        self.blocks, self.catalog, self.result = blocks, catalog, result
        heading = next((b for b in blocks if b.kind == "heading"), None)
        first = next((b for b in blocks if b.kind == "item"), blocks[0])
        self.skip_first = blocks[0].kind == "heading"
        if heading:
            title, base = heading.text.rstrip(":"), slug(heading.text, limit=6)
        else:
            title, base = f"Procedure {number}: {title_of(first.text, 60)}", f"procedure-{number}"
        self.draft = Draft(ids(base), title, blocks[0].line, roles={ROLE: ROLE_TEXT})
        para = next((b for b in blocks if b.kind == "para"), None)
        if para:
            self.draft.summary = " ".join(para.text.split())[:400]
        self.heading = heading
        self.steps = Unique()

    def text(self, raw: str) -> str:
        out, used = self.catalog.substitute(protect(raw))
        for name in used:
            f = next(f for f in self.catalog.found.values() if f.name == name)
            self.draft.params.setdefault(
                name,
                Param(
                    name,
                    f.type,
                    int(f.value) if f.type == "port" else f.value,
                    f.line,
                    f"{f.type} found in the article at line {f.line}",
                ),
            )
        return out

    def step(
        self, kind: str, hint: str, body: str, line: int, title: str, **extra: str
    ) -> DraftStep:
        step = DraftStep(
            kind,
            self.steps(slug(hint, limit=4)),
            body,
            line,
            protect(title),
            ROLE,
            attrs=dict(extra),
        )
        self.draft.parts.append(step)
        return step

    def build(self) -> Draft:
        registry = {v.used[0]: v for v in facts.registry_values(self.blocks)}
        consumed = {i for v in registry.values() for i in v.used}
        bullets: list[str] = []
        self.draft.parts.append(Prose(f"# {protect(self.draft.title)}"))
        for i, block in enumerate(self.blocks):
            if block.kind != "bullet" and bullets:
                self.draft.parts.append(Prose("\n".join(bullets)))
                bullets = []
            if i in registry:
                self.registry(registry[i])
            if i in consumed:
                continue
            if block.kind == "heading":
                if not (i == 0 and self.skip_first):
                    self.draft.parts.append(Prose(f"## {self.text(block.text)}"))
            elif block.kind == "item":
                self.instruction(block)
            elif block.kind == "bullet":
                bullets.append("- " + self.text(block.text).replace("\n", "\n  "))
                self.result.note(block.line, "bullet", "kept as prose", mapped=False)
            elif block.kind == "code":
                self.code(block)
            elif block.kind == "data":
                self.draft.parts.append(Prose("```text\n" + self.text(block.text) + "\n```"))
            else:
                self.draft.parts.append(Prose(self.text(block.text)))
            if block.kind in ("para", "bullet", "item"):
                self.prose_facts(block)
        if bullets:
            self.draft.parts.append(Prose("\n".join(bullets)))
        if not any("verify" in s.classes for s in self.draft.steps()):
            self.draft.lint = {
                "RB301": "imported: the article states no check of its changes; add a .verify step"
            }
            self.result.note(
                self.draft.line,
                f"runbook {self.draft.id}",
                "no verification step (RB301 disabled with that reason)",
                mapped=False,
            )
        return self.draft

    def instruction(self, block: Block) -> None:
        self.draft.instructions += 1
        if facts.services(block.text):  # its service step does it: not a second, manual one
            self.draft.parts.append(Prose(self.text(block.text)))
            self.result.note(
                block.line,
                f"numbered instruction {block.number}",
                "kept as prose above its service step (not also a manual step)",
                mapped=False,
            )
            return
        step = self.step(
            "manual", block.text, self.text(block.text) + "\n", block.line, title_of(block.text)
        )
        self.result.note(
            block.line, f"numbered instruction {block.number}", f"manual step #{step.id}"
        )

    def registry(self, value: facts.RegistryValue) -> None:
        data = value.data
        if isinstance(data, list):
            data = [self.text(d) for d in data]
        elif isinstance(data, str):
            data = self.text(data)
        spec = {
            "key": value.key,
            "value": value.name,
            "type": value.type,
            "data": data,
            "ensure": "present",
        }
        body = yaml.safe_dump(spec, sort_keys=False, allow_unicode=True, width=100000)
        step = self.step(
            "registry", value.name, body, value.line, f"Set {value.name} under {value.key}"
        )
        self.result.note(
            value.line,
            f"registry value {value.name!r} under {value.key}",
            f"registry step #{step.id}",
        )
        for caveat in [*value.assumed, "the step sets the whole value (the article may add to it)"]:
            self.result.note(value.line, f"registry value {value.name!r}", caveat, mapped=False)

    def prose_facts(self, block: Block) -> None:
        for svc in facts.services(block.text):
            spec = {"name": svc.name, "display_name": svc.display, "start": svc.start}
            if svc.state:
                spec["state"] = svc.state
            body = yaml.safe_dump(spec, sort_keys=False, allow_unicode=True)
            step = self.step(
                "service",
                svc.name,
                body,
                block.line,
                f"{svc.display}: {svc.start}" + (f", {svc.state}" if svc.state else ""),
            )
            self.result.note(block.line, f"service {svc.display!r}", f"service step #{step.id}")
            if not svc.known:
                self.result.note(
                    block.line,
                    f"service {svc.display!r}",
                    "key name unknown: the display name is used; check it with 'sc getkeyname'",
                    mapped=False,
                )
        for command in facts.commands(block.text):
            step = self.step(
                "cmd", command, self.text(command) + "\n", block.line, f"Run {command.split()[0]}"
            )
            self.result.note(block.line, f"command {command!r}", f"cmd step #{step.id}")

    def code(self, block: Block) -> None:
        commands, output, prompt = split_prompts(block.text + "\n")
        kind = LANGS.get(block.lang.lower(), "")
        if prompt and prompt != "sh":
            kind = prompt
        if not kind:
            windows = re.search(r"\\|\b(reg|sc|net|netsh|iisreset)\s|\.exe\b", commands, re.I)
            kind = "cmd" if windows else "sh"
        step = self.step(kind, commands.strip().split("\n")[0], self.text(commands), block.line, "")
        self.result.note(block.line, "code block", f"{kind} step #{step.id}")
        if output:
            self.draft.parts.append(Prose("```text\n" + self.text(output) + "\n```"))


def convert(text: str, path: Path) -> ImportResult:
    """Import an article (see the module docstring)."""
    result = ImportResult("article", [])
    blocks, read_as = read_blocks(text, path)
    result.note(1, f"article read as {read_as}", f"{len(blocks)} blocks")
    groups = procedures(blocks, result)
    catalog = Catalog()
    texts = [(b.text, b.line) for group in groups for b in group]
    for body, line in texts:
        catalog.scan(body, line)
    catalog.finish(texts, "\n".join(b.text for g in groups for b in g if b.kind == "data"))
    ids = Unique()
    for number, group in enumerate(groups, start=1):
        result.drafts.append(_Builder(group, number, catalog, result, ids).build())
    for f in sorted(catalog.found.values(), key=lambda f: f.line):
        result.note(f.line, f"{f.type} {f.value}", f"parameter {f.name}")
    return result


def detect(text: str, path: Path) -> bool:
    """Anything: the article importer is the last resort of ``--from auto``."""
    return True
