"""Markdown written for other tools renders as a guide without edits (issue 15).

The fixtures in ``tests/fixtures/adopt/`` mimic what public runbooks hold: Hugo shortcodes,
Go templates in ``console`` blocks, Ansible Jinja in YAML examples and prose, ``{{ .Name }}``,
other tools' front-matter keys, ``<a name>`` anchors in headings, ``<div>`` tab panes and tab
links, a setext title with bold, trailing whitespace in PowerShell blocks, list-continuation
paragraphs after a step and ``{% raw %}`` written inline.
"""

from __future__ import annotations

import json
from datetime import date
from html.parser import HTMLParser
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from runbook_engine.lint.check import lint_file
from runbook_engine.outputs.guide_html import guide_html
from runbook_engine.outputs.guide_md import guide_markdown
from runbook_engine.outputs.notebook import render_ipynb
from runbook_engine.source.console import output_matches, parse_transcript
from runbook_engine.source.frontmatter import split_front_matter
from runbook_engine.source.parser import parse_text
from runbook_engine.tailor.loading import load
from runbook_engine.tailor.tailoring import tailor

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "adopt"
ALL = sorted(FIXTURES.glob("*.md"))
_MD = MarkdownIt("commonmark")


def fences(text: str) -> list[str]:
    """The content of every fenced block of ``text``, as markdown-it reads it."""
    return [t.content for t in _MD.parse(text) if t.type == "fence"]


def source_fences(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    _, body = split_front_matter(text, path)
    return fences("\n".join(text.split("\n")[body - 1 :]))


class _Ids(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.links: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        found = dict(attrs)
        if found.get("id"):
            self.ids.append(str(found["id"]))
        href = found.get("href") or ""
        if href.startswith("#"):
            self.links.append(href[1:])


def html_of(path: Path) -> _Ids:
    parser = _Ids()
    parser.feed(guide_html(load(path, None).tailored))
    return parser


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.stem)
def test_renders_md_and_html_without_edits_every_block_byte_for_byte(path: Path) -> None:
    tailored = load(path, None).tailored
    guide = fences(guide_markdown(tailored))
    for content in source_fences(path):
        if "{% raw %}" in content:  # our own template: rendered, checked below
            continue
        assert content in guide, content
    assert guide_html(tailored)


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.stem)
def test_every_in_page_link_has_its_target(path: Path) -> None:
    page = html_of(path)
    missing = sorted(set(page.links) - set(page.ids))
    assert missing == []
    assert len(page.ids) == len(set(page.ids)), "ids are unique"


def test_foreign_braces_stay_as_written() -> None:
    md = guide_markdown(load(FIXTURES / "k8s-task.md", None).tailored)
    assert 'This page applies to Kubernetes {{< param "fullversion" >}} and later.' in md
    assert "{{< note >}}\n" in md and '{{% code_sample file="pods/simple-pod.yaml" %}}' in md
    md = guide_markdown(load(FIXTURES / "ansible-role.md", None).tailored)
    assert "`{{ ansible_host ~ ':' ~ http_port }}`" in md
    assert "as in {{ inventory_hostname | upper }}." in md
    assert "Then it deploys to ‹web_host›." in md  # our parameter is still a template


def test_inline_raw_keeps_the_lines_around_it(tmp_path: Path) -> None:
    md = guide_markdown(load(FIXTURES / "ansible-role.md", None).tailored)
    assert "```sh\necho '{{ item }}'\n```" in md
    assert "Literal braces inline: {{ not_a_parameter }}\nand the line after stays." in md
    text = "---\nparameters: {}\n---\n```text\n{% raw %}{{ x }}{% endraw %}\n```\n\nAfter.\n"
    rb = parse_text(text, tmp_path / "r.md")
    (prose,) = tailor(rb, None, None).segments
    assert prose.text == "```text\n{{ x }}\n```\n\nAfter.\n"  # the fence stays closed
    block = "---\nparameters: {}\n---\n{% raw %}\n{{ x }}\n{% endraw %}\nAfter.\n"
    (prose,) = tailor(parse_text(block, tmp_path / "r.md"), None, None).segments
    assert prose.text == "{{ x }}\nAfter.\n"


def test_our_templates_still_render_and_still_fail_loudly(tmp_path: Path) -> None:
    text = (
        "---\nparameters:\n  v: {type: string, default: a}\n---\n"
        "Value {{ v }} and {{ v ~ '!' }}.\n\n```text\n{{ v }}\n```\n\n"
        "```sh {#s}\necho {{ missing }}\necho {{ other }}\n```\n"
    )
    rb = parse_text(text, tmp_path / "r.md")
    problems = lint_file_text(tmp_path, text)
    assert [(p.code, p.line) for p in problems if p.severity == "error"] == [
        ("RB132", 12),
        ("RB132", 13),
    ]  # every problem of the file in one run
    assert rb.templated


def lint_file_text(folder: Path, text: str) -> list:
    path = folder / "lint-me.md"
    path.write_text(text, encoding="utf-8")
    return lint_file(path)


def test_lint_reports_foreign_keys_and_kept_braces_as_warnings() -> None:
    problems = lint_file(FIXTURES / "ansible-role.md")
    assert all(p.severity == "warning" for p in problems)
    codes = {(p.code, p.line) for p in problems}
    assert {("RB320", 3), ("RB320", 4), ("RB320", 5), ("RB321", 16), ("RB321", 26)} <= codes
    rb = load(FIXTURES / "ansible-role.md", None).runbook
    assert rb.foreign == {"ms.author": "jdoe", "ms.date": date(2024, 3, 1), "stage": "Verify"}
    page = guide_html(load(FIXTURES / "ansible-role.md", None).tailored)
    assert '<meta name="ms.date" content="2024-03-01">' in page


def test_foreign_front_matter_is_the_guides_metadata() -> None:
    tailored = load(FIXTURES / "k8s-task.md", None).tailored
    assert '<meta name="min-kubernetes-server-version" content="v1.28">' in guide_html(tailored)
    md = guide_markdown(tailored)
    assert md.startswith("---\ndescription: Find out why a Pod stays Pending.\n")


def test_html_keeps_navigation_and_drops_what_is_unsafe() -> None:
    tailored = load(FIXTURES / "gitlab-install.md", None).tailored
    page = guide_html(tailored)
    assert '<a id="requirements" name="requirements"></a>' in page
    assert "&lt;a name" not in page and "&lt;div" not in page
    assert '<div id="tab-linux">' in page and "<details>" in page
    assert "<script" not in page and "onclick" not in page
    assert page.count("Install GitLab (PREMIUM SELF)</h1>") == 1  # setext title once, as text
    assert "**(PREMIUM SELF)**" not in page
    assert '<h2 id="configure">Configure</h2>' in page


def test_console_steps_are_transcripts() -> None:
    t = parse_transcript(
        'PS> Get-WebSite -Name "x" |  \n'
        "Stopped\nPS C:\\> Get-Service W3SVC `\n  -ErrorAction Stop\nRunning\n"
    )
    assert t.shell == "powershell"
    assert [c.text for c in t.commands] == [
        'Get-WebSite -Name "x" |  ',
        "Get-Service W3SVC `\n  -ErrorAction Stop",
    ]
    assert t.expected == "Stopped\nRunning\n"
    assert output_matches("a\nb\n", "a  \nb\n\n", "exact")
    assert not output_matches("a\nb\n", "a\nc\n", "exact")
    assert output_matches("a\nb\n", "a\nx\nb\n", "lines")
    sh = parse_transcript("$ kubectl get pods \\\n>   -A\nNAME\n")
    assert sh.shell == "sh" and sh.script == "kubectl get pods \\\n>   -A\n"


@pytest.mark.parametrize(
    ("block", "words"),
    [
        ("```console {#c}\njust output\n```\n", ["at least one command", "$ "]),
        ("```console {#c}\n$ ls\nPS> dir\n```\n", ["one shell"]),
        ("```json {#c}\n{}\n```\n", ["data", "console", "sh"]),
        ("```yml {#c}\na: 1\n```\n", ["data", "leave out the {#id}"]),
        ("``` {#c}\nls\n```\n", ["no kind", "console", "powershell"]),
    ],
)
def test_blocks_that_are_no_steps_get_a_message_naming_the_kinds(
    tmp_path: Path, block: str, words: list[str]
) -> None:
    problems = lint_file_text(tmp_path, "# T\n\n" + block)
    (problem,) = [p for p in problems if p.severity == "error"]
    assert all(w in problem.message for w in words), problem.message


def test_lint_warns_on_prompts_and_pasted_output_in_command_steps(tmp_path: Path) -> None:
    text = "# T\n\n```sh {#s}\n$ systemctl status nginx\nactive (running)\n```\n"
    codes = [(p.code, p.line) for p in lint_file_text(tmp_path, text)]
    assert ("RB322", 4) in codes and ("RB323", 5) in codes


def test_notebook_keeps_list_continuations_as_paragraphs() -> None:
    nb = json.loads(render_ipynb(load(FIXTURES / "iis-logs.md", None).tailored))
    text = next("".join(c["source"]) for c in nb["cells"] if "Wait until" in "".join(c["source"]))
    assert text.startswith("Wait until the site shows **Stopped**")
    assert "\n    Indented four more" in text  # code in the source stays code


def test_console_steps_run_their_commands_and_compare_output(tmp_path: Path) -> None:
    import subprocess
    import sys

    book = tmp_path / "c.md"
    book.write_text(
        "# C\n\n```console {#greet .verify expect=exact}\n$ echo hello\nhello\n"
        '$ printf "a\\nb\\n"\na\nb\n```\n\n'
        "```console {#other .verify expect=exact}\n$ echo other\nhello\n```\n",
        encoding="utf-8",
    )
    result = subprocess.run(
        [sys.executable, "-m", "runbook_engine", "run", str(book), "--state-dir", "st", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 1, result.stderr
    journal = next((tmp_path / "st" / "runs").glob("*/journal.jsonl")).read_text("utf-8")
    records = [json.loads(line) for line in journal.splitlines()]
    started = [r for r in records if r.get("event") == "step-started"]
    assert started and all(r.get("kind") == "sh" for r in started)  # $ prompts: sh
    assert 'echo hello\nprintf "a\\nb\\n"\n' in [r.get("command") for r in started]
    compared = {r["step"]: r["matched"] for r in records if r.get("event") == "output-compared"}
    assert compared == {"greet": True, "other": False}
    assert records[-1]["event"] == "run-finished" and records[-1]["status"] == "failed"
