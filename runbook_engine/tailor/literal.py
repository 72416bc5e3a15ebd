"""Which braces are ours: template constructs a runbook uses, and text that stays as written.

Runbooks adopted from other tools carry braces that are not our templates: Hugo shortcodes
(``{{< param "v" >}}``, ``{{% note %}}``), Go templates (``{{range .items}}…{{end}}``,
``{{ .Name }}``), Ansible Jinja (``{{ x ~ ':' ~ y }}``, ``{{ name | lower }}``).  Before a
text is rendered, :func:`protect` scans it and replaces every construct that is not ours by
a placeholder; :meth:`Protected.restore` puts the text back byte for byte after rendering.

A construct (``{{ … }}``, ``{% … %}``) is **ours** when it parses as Jinja on its own and:

* ``strict`` (step bodies of a runbook that declares ``parameters`` or ``roles``): always;
  an undeclared name stays an error (RB132) there;
* otherwise (prose, blocks that are not steps, any text of a document that declares
  neither): when every name it reads is known (a parameter, a fact, ``environment``,
  ``roles``, a name set earlier in the text) or it reaches for Python internals (reported,
  RB134).

A construct that does not parse (``{{ .Name }}``), a lone Go keyword (``{{end}}``,
``{{ else }}``) and every construct on a line that holds one of those are never ours.  In
prose, a fenced or indented code block is templated only when all of its constructs are
ours.  ``{% else %}``/``{% end… %}`` follow the tag they close.

``{% raw %}…{% endraw %}`` is handled here too: its content is kept, the tags removed; a tag
alone on its line takes that line with it, a tag inside a line takes nothing else (jinja's
``trim_blocks`` would eat the newline after an inline ``{% endraw %}``).
"""

from __future__ import annotations

import functools
import re
import secrets as _random
from dataclasses import dataclass, field

import jinja2
from jinja2 import nodes
from markdown_it import MarkdownIt

from runbook_engine.tailor.sandbox import make_environment, reaches_internals

_CONSTRUCT = re.compile(
    r"(?P<raw>\{%[-+]?\s*raw\s*[-+]?%\}(?P<rawtext>.*?)\{%[-+]?\s*endraw\s*[-+]?%\})"
    r"|(?P<comment>\{##.*?##\})"
    r"|(?P<expr>\{\{.*?\}\})"
    r"|(?P<stmt>\{%.*?%\})",
    re.DOTALL,
)
_GO_WORDS = frozenset({"end", "else", "range", "with", "define", "template", "block", "break"})
_OPENERS = {
    "if": "endif",
    "for": "endfor",
    "macro": "endmacro",
    "call": "endcall",
    "filter": "endfilter",
    "with": "endwith",
    "set": "endset",
}
_MIDDLES = frozenset({"elif", "else"})
_MD = MarkdownIt("commonmark")
_PARSER = make_environment()


@dataclass
class Literal:
    """A construct kept as written.

    Attributes:
        text: The source text.
        line: 1-based line in the scanned text.
        jinja: The construct parses as Jinja (kept because it reads undeclared names);
            ``runbook lint`` warns about those in runbooks (RB321).
        names: The undeclared names it reads (for the lint message).
    """

    text: str
    line: int
    jinja: bool = False
    names: tuple[str, ...] = ()


@dataclass
class Protected:
    """A text with its foreign constructs replaced by placeholders.

    Attributes:
        text: The text to render (newlines kept where they were, so template lines hold).
        literals: What each placeholder stands for.
    """

    text: str
    literals: list[Literal] = field(default_factory=list)
    nonce: str = ""

    def restore(self, rendered: str) -> str:
        """Put every literal back in ``rendered`` (the text after rendering)."""
        for index in range(len(self.literals) - 1, -1, -1):
            rendered = rendered.replace(self._mark(index), self.literals[index].text)
        return rendered

    def _mark(self, index: int) -> str:
        return f"RBL{self.nonce}L{index}Z" + "\n" * self.literals[index].text.count("\n")


def _names(ast: nodes.Template) -> tuple[set[str], set[str]]:
    loaded: set[str] = set()
    stored: set[str] = set()
    for node in ast.find_all(nodes.Name):
        (loaded if node.ctx == "load" else stored).add(node.name)
    return loaded, stored


@functools.lru_cache(maxsize=8192)
def _parse(source: str) -> nodes.Template | None:
    """One construct's tree (a cache of its own: tailoring's trees stay shared with lint)."""
    try:
        return _PARSER.parse(source)
    except jinja2.TemplateSyntaxError:
        return None


@dataclass
class _Item:
    start: int
    end: int
    kind: str
    ours: bool = True
    jinja: bool = True
    names: tuple[str, ...] = ()
    keep: str = ""  # raw blocks: the content kept


def protect(text: str, known: set[str], *, strict: bool, blocks: bool = False) -> Protected:
    """Replace the constructs of ``text`` that are not ours by placeholders (module doc).

    Args:
        text: Prose or a body, as written.
        known: Names a template may read (parameters, facts, ``environment``, globals).
        strict: Every construct that parses is ours (step bodies of a runbook).
        blocks: ``text`` is Markdown: a code block is templated only when all of its
            constructs are ours.
    """
    if "{" not in text:
        return Protected(text)
    items = _scan(text, set(known), strict)
    if not items:
        return Protected(text)
    if blocks:
        _whole_blocks(text, items)
    _whole_lines(text, items)
    out: list[str] = []
    result = Protected("", nonce=_random.token_hex(4))
    last = 0
    for item in items:
        if item.kind == "raw":
            start, end, keep = _raw_span(text, item)
            out.append(text[last:start])
            result.literals.append(Literal(keep, text.count("\n", 0, start) + 1))
            out.append(result._mark(len(result.literals) - 1))
            last = end
            continue
        if item.ours:
            continue
        source = text[item.start : item.end]
        out.append(text[last : item.start])
        result.literals.append(
            Literal(source, text.count("\n", 0, item.start) + 1, item.jinja, item.names)
        )
        out.append(result._mark(len(result.literals) - 1))
        last = item.end
    out.append(text[last:])
    result.text = "".join(out)
    return result


def _scan(text: str, known: set[str], strict: bool) -> list[_Item]:
    items: list[_Item] = []
    stack: list[bool] = []
    for m in _CONSTRUCT.finditer(text):
        kind = m.lastgroup or ""
        if kind == "rawtext":
            kind = "raw"
        item = _Item(m.start(), m.end(), kind)
        if kind == "raw":
            item.keep = m.group("rawtext")
        elif kind == "expr":
            _judge(item, m.group(0), known, strict)
        elif kind == "stmt":
            _statement(item, m.group(0), known, strict, stack)
        items.append(item)
    return items


def _judge(item: _Item, source: str, known: set[str], strict: bool) -> None:
    inner = source[2:-2].strip(" \t\n-+")
    ast = _parse(source)
    if ast is None or inner in _GO_WORDS:
        item.ours, item.jinja = False, False
        return
    loaded, stored = _names(ast)
    missing = loaded - stored - known - {"loop", "caller", "varargs", "kwargs"}
    if strict or not missing or reaches_internals(ast):
        known.update(stored)
        return
    item.ours, item.names = False, tuple(sorted(missing))


def _statement(item: _Item, source: str, known: set[str], strict: bool, stack: list[bool]) -> None:
    body = source[2:-2].strip(" \t\n-+")
    word = body.split(None, 1)[0] if body else ""
    if word in _MIDDLES or word.startswith("end"):
        item.ours = stack[-1] if stack else False
        item.jinja = item.ours
        if word.startswith("end") and stack:
            stack.pop()
        return
    if word == "set" and "=" in body:
        _judge(item, source, known, strict)
        return
    closer = _OPENERS.get(word)
    if closer is None:  # include, extends, import...: not a runbook's
        item.ours, item.jinja = False, False
        return
    _judge(item, source + "{% " + closer + " %}", known, strict)
    stack.append(item.ours)


def _whole_lines(text: str, items: list[_Item]) -> None:
    """A line holding a construct that is no Jinja keeps every expression of it."""
    foreign_lines: set[int] = set()
    for item in items:
        if item.kind == "expr" and not item.jinja:
            first = text.count("\n", 0, item.start)
            foreign_lines.update(range(first, first + text.count("\n", item.start, item.end) + 1))
    if not foreign_lines:
        return
    for item in items:
        if item.kind == "expr" and item.ours and text.count("\n", 0, item.start) in foreign_lines:
            item.ours = False


def _whole_blocks(text: str, items: list[_Item]) -> None:
    """A code block of the Markdown is templated only when all of its constructs are ours."""
    if "```" not in text and "~~~" not in text and "    " not in text:
        return
    starts = [0]
    for line in text.split("\n"):
        starts.append(starts[-1] + len(line) + 1)
    for token in _MD.parse(text):
        if token.type not in ("fence", "code_block") or not token.map:
            continue
        lo, hi = starts[token.map[0]], starts[min(token.map[1], len(starts) - 1)]
        inside = [i for i in items if lo <= i.start < hi and i.kind in ("expr", "stmt")]
        if any(not i.ours for i in inside):
            for i in inside:
                i.ours = False


def _raw_span(text: str, item: _Item) -> tuple[int, int, str]:
    """The span a raw block replaces and the text it keeps (see the module doc)."""
    start, end, keep = item.start, item.end, item.keep
    line_start = text.rfind("\n", 0, start) + 1
    open_end = text.index("%}", start) + 2
    if text[line_start:start].strip() == "" and text[open_end:].startswith("\n"):
        start = line_start
        keep = keep[1:] if keep.startswith("\n") else keep
    close_start = text.rindex("{%", start, end)
    line_end = text.find("\n", end)
    line_end = len(text) if line_end < 0 else line_end
    close_line = text.rfind("\n", 0, close_start) + 1
    alone = text[close_line:close_start].strip() == "" and text[end:line_end].strip() == ""
    if alone and close_line > start and keep.endswith("\n"):
        end = min(line_end + 1, len(text))
    return start, end, keep
