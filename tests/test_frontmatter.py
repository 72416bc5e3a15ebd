"""Tests for front-matter detection and loading (runbook_engine.source.frontmatter).

Rules (DESIGN.md §2 and §7, FORMAT-SPEC.md "Front matter"): front matter only
when line 1 is exactly ``---`` (after CRLF normalisation), closed by ``---`` or
``...``; a document that merely starts with ``-``, ``--8<--``, ``----`` or a
template tag has none; invalid YAML, a non-mapping and an unclosed block are
errors naming the line, never silently treated as prose.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from runbook_engine.errors import RunbookSyntaxError

fm_mod = pytest.importorskip("runbook_engine.source.frontmatter")
split_front_matter = fm_mod.split_front_matter

PATH = Path("runbooks/sample.md")


# (text, expected mapping, expected 1-based body start line)
WITH_FRONT_MATTER = [
    pytest.param("---\nid: x\n---\n# T\n", {"id": "x"}, 4, id="basic"),
    pytest.param("---\nid: x\n...\n# T\n", {"id": "x"}, 4, id="closed-by-dots"),
    pytest.param("---\r\nid: x\r\n---\r\n# T\r\n", {"id": "x"}, 4, id="crlf"),
    pytest.param("---\nid: x\n---", {"id": "x"}, 4, id="closing-line-without-newline"),
    pytest.param(
        "---\ntitle: 'a --- b'\ntags: [a, b]\n---\n\nbody\n",
        {"title": "a --- b", "tags": ["a", "b"]},
        5,
        id="dashes-inside-value",
    ),
    pytest.param(
        "---\nroles:\n  dc: Domain controller\nparameters:\n  port:\n    type: port\n---\nx\n",
        {"roles": {"dc": "Domain controller"}, "parameters": {"port": {"type": "port"}}},
        8,
        id="nested",
    ),
]


@pytest.mark.parametrize(("text", "mapping", "body_line"), WITH_FRONT_MATTER)
def test_front_matter_found(text: str, mapping: dict, body_line: int) -> None:
    data, start = split_front_matter(text, PATH)
    assert data == mapping
    assert start == body_line


def test_empty_front_matter_block() -> None:
    data, start = split_front_matter("---\n---\n# T\n", PATH)
    assert data in (None, {})
    assert start == 3


# Documents that have no front matter; the body starts on line 1.
WITHOUT_FRONT_MATTER = [
    pytest.param("# Title\n\ntext\n", id="heading"),
    pytest.param("", id="empty-document"),
    pytest.param("- item\n- other\n", id="list-item"),
    pytest.param("- item\n---\n", id="list-then-rule"),
    pytest.param('--8<-- "x.md"\n', id="snippet-include"),
    pytest.param("----\ntext\n----\n", id="four-dashes"),
    pytest.param("{% if x %}\nA\n{% endif %}\n", id="template-tag"),
    pytest.param("--- \nid: x\n---\n", id="trailing-space-is-not-exact"),
    pytest.param(" ---\nid: x\n---\n", id="leading-space"),
    pytest.param("\n---\nid: x\n---\n", id="not-on-line-one"),
    pytest.param("text\n---\nid: x\n---\n", id="setext-heading-underline"),
]


@pytest.mark.parametrize("text", WITHOUT_FRONT_MATTER)
def test_no_front_matter(text: str) -> None:
    assert split_front_matter(text, PATH) == (None, 1)


# (text, acceptable 1-based lines of the problem)
INVALID = [
    pytest.param("---\nid: x\n  bad: indent: here\n---\nbody\n", {3}, id="mapping-values"),
    pytest.param("---\nid: x\n\tbad: 1\n---\n", {3}, id="tab-indent"),
    pytest.param("---\nid: x\ntitle: [unclosed\n---\n", {3, 4}, id="unclosed-flow-sequence"),
    pytest.param("---\r\nid: x\r\n  bad: indent: here\r\n---\r\n", {3}, id="crlf-invalid"),
    pytest.param("---\n- a\n- b\n---\n", {1, 2}, id="sequence-not-mapping"),
    pytest.param("---\njust text\n---\n", {1, 2}, id="scalar-not-mapping"),
    pytest.param("---\nid: x\n# Title\n\nbody\n", {1}, id="unclosed"),
    pytest.param("---\n", {1}, id="only-opening-line"),
]


@pytest.mark.parametrize(("text", "lines"), INVALID)
def test_invalid_front_matter(text: str, lines: set[int]) -> None:
    with pytest.raises(RunbookSyntaxError) as excinfo:
        split_front_matter(text, PATH)
    problems = excinfo.value.problems
    assert problems, "the error must carry a Problem"
    assert problems[0].path == PATH
    assert problems[0].line in lines
    assert problems[0].message


def _alias_bomb(levels: int) -> str:
    """Front matter whose aliases expand to 9**levels items ("billion laughs")."""
    lines = ["---", "lint:", "  a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for n in range(1, levels):
        lines.append(f"  a{n}: &a{n} [" + ", ".join([f"*a{n - 1}"] * 9) + "]")
    return "\n".join([*lines, "---", "# T", ""])


@pytest.mark.timeout(20)
def test_yaml_alias_expansion_does_not_hang() -> None:
    # 9**10 references: any walk that follows every alias never finishes.  Either
    # refuse aliases (an error) or look at each node once.
    try:
        split_front_matter(_alias_bomb(10), PATH)
    except RunbookSyntaxError as err:
        assert err.problems and err.problems[0].path == PATH
