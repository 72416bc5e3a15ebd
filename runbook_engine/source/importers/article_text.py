"""An article (plain text, HTML or Markdown) as a list of blocks with their source lines.

Blocks are headings, numbered instructions, bullets, paragraphs, data (lines without
spaces: registry keys, values, URLs), code and separators.  Plain text is read by its
layout (a short line standing alone is a heading; ``1.`` / ``1)`` starts an instruction,
indented or unbroken lines continue it); HTML by its elements (stdlib
:mod:`html.parser`); Markdown by markdown-it-py's tokens.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser

from markdown_it import MarkdownIt

_NUMBERED = re.compile(r"^\s*(\d{1,3})[.)](?!\d)\s*(\S.*)$")
_BULLET = re.compile(r"^\s*[•·‣▪◦*–-]\s+(\S.*)$")


@dataclass(slots=True)
class Block:
    """One block: ``kind`` is heading, item, bullet, para, data, code or sep."""

    kind: str
    text: str
    line: int
    number: int = 0
    lang: str = ""


def _heading_like(line: str) -> bool:
    text = line.strip()
    if not text or len(text) > 90 or re.search(r"\\|://|@|;$", text):
        return False
    if text.endswith(":"):
        return len(text.split()) <= 3
    return (
        len(text.split()) <= 12
        and not text.endswith((".", ",", "!", "?"))
        and (text[0].isupper() or text[0].isdigit() or text[0] in "«'\"‘“")
    )


def text_blocks(text: str) -> list[Block]:
    """Blocks of a plain-text article."""
    blocks: list[Block] = []
    para: list[tuple[int, str]] = []

    def flush() -> None:
        if not para:
            return
        first_no, first = para[0]
        if first.strip().endswith(":") and _heading_like(first) and len(para) > 1:
            blocks.append(Block("heading", first.strip(), first_no))
            del para[0]
        lines = [t.strip() for _, t in para]
        if len(para) == 1 and _heading_like(lines[0]):
            blocks.append(Block("heading", lines[0], para[0][0]))
        elif all(" " not in ln for ln in lines):
            blocks.append(Block("data", "\n".join(lines), para[0][0]))
        else:
            blocks.append(Block("para", "\n".join(lines), para[0][0]))
        para.clear()

    for no, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip()
        numbered, bullet = _NUMBERED.match(line), _BULLET.match(line)
        if not line.strip():
            flush()
            continue
        if numbered or bullet:
            flush()
            if numbered:
                blocks.append(Block("item", numbered.group(2), no, int(numbered.group(1))))
            else:
                blocks.append(Block("bullet", bullet.group(1), no))  # type: ignore[union-attr]
            continue
        last = blocks[-1] if blocks else None
        unbroken = last is not None and last.kind in ("item", "bullet") and not para
        if (
            unbroken
            and last is not None
            and (raw[:1].isspace() or last.line + last.text.count("\n") == no - 1)
        ):
            last.text += "\n" + line.strip()
            continue
        para.append((no, line))
    flush()
    return blocks


class _Html(HTMLParser):
    BLOCKS: frozenset[str] = frozenset(
        {
            "p",
            "div",
            "li",
            "h1",
            "h2",
            "h3",
            "h4",
            "h5",
            "h6",
            "pre",
            "tr",
            "blockquote",
            "dd",
            "dt",
        }
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[Block] = []
        self.lists: list[list[int]] = []  # [ordered?, counter]
        self.text: list[str] = []
        self.kind, self.line, self.number, self.skip = "para", 0, 0, 0

    def _flush(self) -> None:
        raw = "".join(self.text)
        text = (
            raw.strip("\n")
            if self.kind == "code"
            else "\n".join(" ".join(part.split()) for part in raw.split("\n") if part.strip())
        )
        if text.strip():
            kind = self.kind
            if kind == "para" and all(" " not in ln for ln in text.splitlines()):
                kind = "data"
            self.blocks.append(Block(kind, text, self.line, self.number))
        self.text, self.kind, self.number = [], "para", 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in ("script", "style", "head", "nav", "footer"):
            self.skip += 1
        elif tag in ("ol", "ul"):
            self._flush()
            self.lists.append([tag == "ol", 0])
        elif tag == "br":
            self.text.append("\n")
        elif tag == "hr":
            self._flush()
            self.blocks.append(Block("sep", "", self.getpos()[0]))
        elif tag in self.BLOCKS:
            self._flush()
            self.line = self.getpos()[0]
            if tag == "li" and self.lists:
                self.lists[-1][1] += 1
                self.kind = "item" if self.lists[-1][0] else "bullet"
                self.number = self.lists[-1][1]
            elif tag[0] == "h" and tag[1:].isdigit():
                self.kind = "heading"
            elif tag == "pre":
                self.kind = "code"

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "head", "nav", "footer"):
            self.skip = max(0, self.skip - 1)
        elif tag in ("ol", "ul"):
            self._flush()
            if self.lists:
                self.lists.pop()
        elif tag in self.BLOCKS:
            self._flush()

    def handle_data(self, data: str) -> None:
        if not self.skip:
            if not self.text and not data.strip():
                return
            if not self.text:
                self.line = self.line or self.getpos()[0]
            self.text.append(data)


def html_blocks(text: str) -> list[Block]:
    """Blocks of an HTML article."""
    parser = _Html()
    parser.feed(text)
    parser.close()
    parser._flush()
    return parser.blocks


def markdown_blocks(text: str, line0: int = 1) -> list[Block]:
    """Blocks of a Markdown article (``line0``: source line of the text's first line)."""
    blocks: list[Block] = []
    lists: list[list[int]] = []
    tokens = MarkdownIt("commonmark").parse(text)
    in_item = 0
    for i, tok in enumerate(tokens):
        line = (tok.map[0] if tok.map else 0) + line0
        if tok.type == "ordered_list_open":
            lists.append([1, int(tok.attrGet("start") or 1) - 1])
        elif tok.type == "bullet_list_open":
            lists.append([0, 0])
        elif tok.type in ("ordered_list_close", "bullet_list_close"):
            lists.pop()
        elif tok.type == "list_item_open":
            lists[-1][1] += 1
            kind = "item" if lists[-1][0] else "bullet"
            blocks.append(Block(kind, "", line, lists[-1][1]))
            in_item += 1
        elif tok.type == "list_item_close":
            in_item -= 1
        elif tok.type == "heading_open":
            blocks.append(Block("heading", tokens[i + 1].content, line))
        elif tok.type == "paragraph_open" and tokens[i + 1].type == "inline":
            content = tokens[i + 1].content
            if in_item and blocks and blocks[-1].kind in ("item", "bullet"):
                blocks[-1].text = (blocks[-1].text + "\n" + content).strip("\n")
            elif all(" " not in ln for ln in content.splitlines()):
                blocks.append(Block("data", content, line))
            else:
                blocks.append(Block("para", content, line))
        elif tok.type in ("fence", "code_block"):
            lang = tok.info.strip().split(" ")[0] if tok.type == "fence" else ""
            blocks.append(Block("code", tok.content.rstrip("\n"), line, lang=lang))
        elif tok.type == "hr":
            blocks.append(Block("sep", "", line))
    return blocks
