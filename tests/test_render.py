"""Guide renderers: golden files and structural checks of the Markdown and HTML guides.

Golden files live in tests/golden/render/ and are regenerated only on purpose:
``UPDATE_GOLDEN=1 pytest tests/test_render.py``.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from runbook_engine.errors import InputError
from runbook_engine.outputs import RENDERERS, get_renderer
from runbook_engine.outputs.long_values import collect
from runbook_engine.outputs.mdtext import code, continuation, fence_for, prefix_lines
from runbook_engine.outputs.views import CHECKBOX_LINE
from runbook_engine.source.parser import parse_file, parse_text
from runbook_engine.tailor.environment import load_environment
from runbook_engine.tailor.tailoring import TailoredRunbook, tailor
from runbook_engine.tailor.values import resolve_values

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "render"
SEEDS = ROOT / "runbooks" / "exchange2003"
GOLDEN = ROOT / "tests" / "golden" / "render"
ENV_NAMES = ("lab", "single-server")
EPOCH = "1700000000"  # 2023-11-14 22:13:20 UTC


@pytest.fixture(autouse=True)
def _reproducible(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    monkeypatch.delenv("RUNBOOK_TEMPLATES", raising=False)


def _runbooks(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.md") if not p.name.startswith("_"))


def _cases() -> list:
    cases = []
    for label, folder in (("fixtures", FIXTURES), ("exchange2003", SEEDS)):
        envs = [folder / "environments" / f"{n}.yaml" for n in ENV_NAMES]
        for runbook in _runbooks(folder):
            for env in [*(e for e in envs if e.is_file()), None]:
                name = env.stem if env else "generic"
                cases.append(pytest.param(label, runbook, env, id=f"{label}/{runbook.stem}/{name}"))
    return cases


def tailored(runbook: Path, env: Path | None) -> TailoredRunbook:
    rb = parse_file(runbook)
    if env is None:
        return tailor(rb, None, None)
    environment = load_environment(env)
    return tailor(rb, environment, resolve_values(rb, environment))


def fixture(name: str, env: str | None) -> TailoredRunbook:
    return tailored(
        FIXTURES / f"{name}.md", FIXTURES / "environments" / f"{env}.yaml" if env else None
    )


def md(t: TailoredRunbook, **kw: str) -> str:
    return RENDERERS["md"].render(t, **kw).decode("utf-8")


def html(t: TailoredRunbook, **kw: str) -> str:
    return RENDERERS["html"].render(t, **kw).decode("utf-8")


def expand(text: str, t: TailoredRunbook) -> str:
    """``text`` with every reference to a long value (``‹V1›``) replaced by the value."""
    for value in collect(t).values:
        text = text.replace(value.ref, value.text)
    return text


def step_section(markdown: str, step_id: str) -> str:
    """The Markdown from a step's anchor to the next anchor."""
    start = markdown.index(f'<a id="{step_id}"></a>')
    end = markdown.find("<a id=", start + 1)
    return markdown[start : end if end > 0 else None]


# --- golden files -----------------------------------------------------------------------------


@pytest.mark.parametrize(("label", "runbook", "env"), _cases())
def test_golden(label: str, runbook: Path, env: Path | None) -> None:
    t = tailored(runbook, env)
    for fmt in ("md", "html"):
        out = RENDERERS[fmt].render(t, change_id="CHG-0001")
        path = GOLDEN / label / f"{runbook.stem}.{env.stem if env else 'generic'}.{fmt}"
        if os.environ.get("UPDATE_GOLDEN") == "1":
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(out)
            continue
        assert path.is_file(), f"no golden file {path}; run UPDATE_GOLDEN=1 pytest {__file__}"
        expected = path.read_bytes()
        if out != expected:
            diff = difflib.unified_diff(
                expected.decode().splitlines(),
                out.decode().splitlines(),
                str(path),
                "rendered",
                lineterm="",
                n=2,
            )
            pytest.fail(
                "guide differs from golden file (UPDATE_GOLDEN=1 to accept):\n"
                + "\n".join(list(diff)[:80])
            )


def test_fixture_set_is_not_empty() -> None:
    assert _runbooks(FIXTURES), "the golden tests need fixture runbooks"


# --- HTML structure ---------------------------------------------------------------------------


class Structure(HTMLParser):
    """Records, for every id and text, the stack of open elements (serial, tag, class)."""

    VOID = frozenset({"br", "hr", "img", "input", "meta", "link", "wbr", "col", "source"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[int, str, str]] = []
        self.ids: dict[str, list[tuple[int, str, str]]] = {}
        self.texts: list[tuple[str, list[tuple[int, str, str]]]] = []
        self.serial = 0
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append((tag, a))
        self.serial += 1
        element = (self.serial, tag, a.get("class") or "")
        if a.get("id"):
            assert a["id"] not in self.ids, f"duplicate id {a['id']}"
            self.ids[a["id"]] = [*self.stack, element]
        if tag not in self.VOID:
            self.stack.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in self.VOID:
            self.stack.pop()

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1][1] == tag, f"</{tag}> does not close {self.stack[-1:]}"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.texts.append((data, list(self.stack)))

    def text_stack(self, needle: str) -> list[tuple[int, str, str]]:
        for data, stack in self.texts:
            if needle in data:
                return stack
        raise AssertionError(f"text {needle!r} not found")


def structure(text: str) -> Structure:
    parser = Structure()
    parser.feed(text)
    parser.close()
    assert not parser.stack, f"unclosed elements {parser.stack}"
    return parser


def nearest(stack: list[tuple[int, str, str]], tag: str) -> int:
    for serial, t, _cls in reversed(stack):
        if t == tag:
            return serial
    raise AssertionError(f"no <{tag}> around {stack}")


def step_div(stack: list[tuple[int, str, str]]) -> int:
    for serial, tag, cls in reversed(stack):
        if tag == "div" and "step" in cls.split():
            return serial
    raise AssertionError(f"not inside a step div: {stack}")


@pytest.mark.parametrize("render", ["html", "markdown-as-html"])
def test_step_in_numbered_list_stays_in_the_list(render: str) -> None:
    t = fixture("rpc-over-https", "lab")
    text = html(t) if render == "html" else MarkdownIt("commonmark").enable("table").render(md(t))
    s = structure(text)
    anchor = s.ids["valid-ports"]
    assert [tag for _, tag, _ in anchor if tag in ("ol", "li")] == ["ol", "li"]
    # The prose after the step is still in the same list item, the next item in the same list.
    assert nearest(s.text_stack("The value lists every server"), "li") == nearest(anchor, "li")
    assert nearest(s.ids["nspi-set"], "ol") == nearest(anchor, "ol")
    assert nearest(s.ids["install-proxy"], "ol") == nearest(anchor, "ol")
    # A step inside a blockquote stays in the blockquote with the correction it belongs to.
    assert nearest(s.ids["restart-gc"], "blockquote") == nearest(
        s.text_stack("The article says no reboot is needed"), "blockquote"
    )


def test_step_that_opens_a_list_item_stays_in_it() -> None:
    s = structure(html(fixture("local-only", None)))
    anchor = s.ids["first-item"]
    assert nearest(anchor, "ol") == nearest(s.text_stack("Second item text."), "ol")
    assert nearest(anchor, "li") != nearest(s.text_stack("Second item text."), "li")
    assert "ul" in [tag for _, tag, _ in s.ids["do-rotate"]]


def test_each_step_is_one_unbreakable_block_in_html() -> None:
    t = fixture("rpc-over-https", "lab")
    s = structure(html(t))
    for ts in t.steps:
        heading = s.text_stack(f"Step {ts.number}. {ts.step.display_title()}")
        assert step_div(heading) == step_div(s.ids[ts.id])
    assert len({step_div(s.ids[ts.id]) for ts in t.steps}) == len(t.steps)
    css = (ROOT / "templates" / "guide.css").read_text()
    assert re.search(r"\.step\s*\{[^}]*break-inside:\s*avoid", css)
    assert "size: A4" in css and "counter(page)" in css


def test_html_guide_printed_from_a_browser_has_the_pdfs_page_one_rules() -> None:
    """The print rules of the first page (prerequisites checklist kept whole, small print
    for the estimates note) are one source, guide.css's @media print block, which the HTML
    guide inlines and the PDF prints; guide-pdf.css keeps only what only a PDF has."""
    page = html(fixture("rpc-over-https", "lab"))
    style = page[page.index("<style") : page.index("</style>")]
    printing = style[style.index("@media print") :]
    for rule in (
        "#prerequisites { break-after: avoid; }",
        "#prerequisites + ul li { break-inside: avoid; }",
        "#time-plan + table + p { font-size: 8pt;",
        ".step > p:first-child + p { break-before: avoid; }",
    ):
        assert rule in printing, rule
    pdf_css = (ROOT / "templates" / "guide-pdf.css").read_text()
    rules = re.sub(r"/\*.*?\*/", "", pdf_css, flags=re.S)
    assert not re.search(r"#prerequisites|#time-plan|#hosts-and-roles|\.checkbox|\.signoff", rules)


# --- what the guide says ----------------------------------------------------------------------


def test_every_command_is_shown_exactly() -> None:
    for env in (*ENV_NAMES, None):
        t = fixture("rpc-over-https", env)
        tokens = MarkdownIt("commonmark").parse(md(t))
        fences = {tok.content for tok in tokens if tok.type == "fence"}
        for ts in t.steps:
            if ts.step.is_command and ts.skip_reason is None:
                assert ts.body in fences, f"{env}: body of {ts.id} not shown as written"
    assert fence_for("echo '``` ````'") == "`````"


def test_generic_guide_shows_placeholders_roles_and_conditions() -> None:
    text = md(fixture("rpc-over-https", None))
    assert "‹exchange_netbios›:6001-6002" in text
    nspi = step_section(text, "nspi-set")
    assert "Only when: `not dc_is_exchange`" in nspi
    assert "On role **dc**" in nspi
    assert "Skipped in this environment" not in text
    assert "generic" in text and "`‹external_host›` (e.g. `mail.externaldomain.com`)" in text


def test_manual_step_has_checkbox_line() -> None:
    t = fixture("rpc-over-https", "lab")
    text = md(t)
    assert CHECKBOX_LINE in step_section(text, "rpc-backend")
    assert "> In **Exchange System Manager**" in step_section(text, "rpc-backend")
    s = structure(html(t))
    boxes = {
        step_div(stack)
        for data, stack in s.texts
        if "☐" in data and any(tag == "div" and "step" in c.split() for _, tag, c in stack)
    }
    assert step_div(s.ids["rpc-backend"]) in boxes
    assert step_div(s.ids["install-proxy"]) not in boxes  # a local command: no checkbox


def test_command_on_manual_host_is_run_by_hand() -> None:
    text = md(fixture("rpc-over-https", "lab"))
    nspi = step_section(text, "nspi-set")
    assert "On **PDC** (pdc.internaldomain.local) — by hand" in nspi
    assert "Run by hand:" in nspi and CHECKBOX_LINE in nspi
    local = step_section(text, "install-proxy")
    assert "Command:" in local and CHECKBOX_LINE not in local
    assert "On the operator machine — local" in step_section(text, "note-local")


def test_skipped_step_has_reason_and_no_command() -> None:
    single = md(fixture("rpc-over-https", "single-server"))
    nspi = step_section(single, "nspi-set")
    assert "Skipped in this environment:" in nspi
    assert "reg add" not in nspi and CHECKBOX_LINE not in nspi
    plan = single[single.index("## Backout plan") :]
    assert "Undo step 4." not in plan and "Undo step 3." in plan
    lab = md(fixture("rpc-over-https", "lab"))
    assert "Undo step 4." in lab[lab.index("## Backout plan") :]


def test_check_and_limits_are_shown_with_the_step() -> None:
    text = step_section(md(fixture("rpc-over-https", "lab")), "valid-ports")
    assert "Skipped if already done" in text
    assert 'find "exchange1.internaldomain.local:6004"' in text
    assert "Retries: 2, 5 s apart" in text


def test_verification_summary_and_sign_off() -> None:
    text = md(fixture("rpc-over-https", "lab"))
    summary = text[text.index("## Verification summary") : text.index("## Backout plan")]
    assert "[Step 8. Test the RPC proxy](#verify-rpc)" in summary
    assert re.search(r"\| Implementer \|.*\n\| Reviewer \|", text)
    assert "| Role | Name | Date | Signature |" in text


def test_values_table_and_secrets() -> None:
    t = fixture("rpc-over-https", "lab")
    text = md(t)
    assert "| `admin_password` | [secret] |" in text
    assert "`admin_password` (string) — " in text  # type and description: appendix B
    assert "| `dc` | PDC | pdc.internaldomain.local | by hand |" in text
    cells = structure(html(t)).text_stack("| shown in tables")
    assert "li" in [tag for _, tag, _ in cells]  # a pipe in a description stays in its item


def _valid_ports(markdown: str, t: TailoredRunbook) -> list[list[str]]:
    """The ValidPorts entries of each ``reg add`` shown, long values (‹V1›) resolved."""
    tokens = MarkdownIt("commonmark").parse(markdown)
    fences = [expand(tok.content, t) for tok in tokens if tok.type == "fence"]
    found = []
    for body in fences:
        # a literal value, or the seed's merge (other servers' entries, then these)
        for m in re.finditer(r'/v "?ValidPorts"? /t REG_SZ /d "([^"!%]+)"', body):
            found.append(m.group(1).split(";"))
        for m in re.finditer(r'set "MERGED=!KEEP!([^"]+)"', body):
            found.append(m.group(1).split(";"))
    return found


@pytest.mark.parametrize("folder", [FIXTURES, SEEDS], ids=["fixtures", "exchange2003"])
def test_rpc_over_https_lab_and_single_server_differ_as_the_article_says(folder: Path) -> None:
    runbook = folder / "rpc-over-https.md"
    envs = [folder / "environments" / f"{n}.yaml" for n in ENV_NAMES]
    if not runbook.is_file() or not all(e.is_file() for e in envs):
        pytest.skip(f"{runbook} or its environments not written yet")
    lab, single = (tailored(runbook, e) for e in envs)
    lab_ports, single_ports = _valid_ports(md(lab), lab), _valid_ports(md(single), single)
    assert len(lab_ports) == 1 and len(single_ports) == 1, "one ValidPorts command per environment"
    lab_dc = {lab.values.params[k] for k in lab.values.params if k in ("gc_netbios", "dc_netbios")}
    assert lab_dc and all(f"{dc}:6004" in lab_ports[0] for dc in lab_dc)
    exchange = {
        str(single.values.params[k]).lower()
        for k in ("exchange_netbios", "exchange_fqdn", "external_host")
    }
    assert {entry.split(":")[0].lower() for entry in single_ports[0]} <= exchange
    assert len(single_ports[0]) < len(lab_ports[0])


def test_change_details() -> None:
    t = fixture("rpc-over-https", "lab")
    text = md(t, change_id="CHG<7>")
    assert "| Change id | CHG\\<7\\> |" in text
    assert "| Rendered at | 2023-11-14 22:13:20 UTC |" in text
    assert f"`{t.runbook.content_hash[:12]}`" in text
    page = html(t, change_id="CHG<7>")
    assert "CHG&lt;7&gt;" in page and "CHG<7>" not in page
    assert "Change id" not in md(t)


# --- safety of the HTML -----------------------------------------------------------------------


def _all_html() -> list[str]:
    return [
        html(fixture(name, env))
        for name in ("rpc-over-https", "local-only")
        for env in (*ENV_NAMES, None)
    ]


def test_html_is_self_contained() -> None:
    for page in _all_html():
        s = structure(page)
        for tag, attrs in s.tags:
            assert tag not in ("script", "link", "img", "iframe", "object", "embed"), tag
            assert "src" not in attrs
            href = attrs.get("href")
            assert href is None or href.startswith("#"), href
        assert "@import" not in page and "url(" not in page
        assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//", page)
        assert 'name="viewport"' in page


def test_html_escapes_bodies() -> None:
    page = html(fixture("rpc-over-https", "lab"))
    # raw HTML goes through the allow-list sanitizer (issue 15): a script is dropped whole
    assert "Type  nowhere." in page and "alert(1)" not in page
    assert "<script" not in page.lower()
    assert "a &lt; b &amp; c &gt; d" in html(fixture("local-only", None))


def test_raw_html_in_prose_is_not_trusted(tmp_path: Path) -> None:
    source = (
        "# Raw HTML\n\n<script>alert('x')</script>\n\nText <img src=\"https://example.com/t.png\">"
        " and ![remote](https://example.com/r.png) and <kbd>Ctrl</kbd>.\n\n"
        '<!-- a comment -->\n\n<div onclick="x()">block</div>\n\n'
        "[a link](https://example.com/kb) and [bad](javascript:alert(1))\n\n"
        "```sh {#s1}\necho '</code></pre><script>x</script>'\n```\n\n```sh\nunclosed fence\n"
    )
    t = tailor(parse_text(source, tmp_path / "raw.md"), None, None)
    page = html(t)
    s = structure(page)
    tags = {tag for tag, _ in s.tags}
    assert not tags & {"script", "img", "iframe"}
    assert "<kbd>Ctrl</kbd>" in page and "a comment" not in page
    assert "<div>block</div>" in page and "onclick" not in page  # sanitized, not escaped
    assert 'href="javascript' not in page
    assert "[image: remote] (https://example.com/r.png)" in page
    assert any(a.get("href") == "https://example.com/kb" for tag, a in s.tags if tag == "a")
    # the unclosed illustration fence does not swallow the guide's closing sections
    assert any(
        tag == "h2" and "Sign-off" in data for data, stack in s.texts for _, tag, _ in stack[-1:]
    )


# --- settings and registry --------------------------------------------------------------------


def test_renders_are_reproducible_with_source_date_epoch() -> None:
    t = fixture("rpc-over-https", "single-server")
    assert RENDERERS["html"].render(t) == RENDERERS["html"].render(t)


def test_bad_source_date_epoch_is_an_input_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(InputError, match="SOURCE_DATE_EPOCH"):
        md(fixture("local-only", None))


def test_templates_folder_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    custom = tmp_path / "templates"
    shutil.copytree(ROOT / "templates", custom)
    (custom / "guide.css").write_text("/* house style */\nbody { color: black; }\n")
    monkeypatch.setenv("RUNBOOK_TEMPLATES", str(custom))
    assert "/* house style */" in html(fixture("local-only", None))
    monkeypatch.setenv("RUNBOOK_TEMPLATES", str(tmp_path / "missing"))
    with pytest.raises(InputError, match="RUNBOOK_TEMPLATES"):
        md(fixture("local-only", None))


def test_registry() -> None:
    assert {"md", "html"} <= set(RENDERERS)
    assert RENDERERS["html"].suffix == ".html"
    assert RENDERERS["html"].media_type.startswith("text/html")
    assert get_renderer("md").suffix == ".md"
    with pytest.raises(InputError, match="unknown output format"):
        get_renderer("docx")


def test_markdown_helpers() -> None:
    assert continuation("1. ") == "   "
    assert continuation("> 1. ") == ">    "
    assert continuation(">") == "> "
    assert prefix_lines("a\n\nb\n", "> ") == "> a\n>\n> b\n"
    assert prefix_lines("a\nb\n", "1. ", "   ") == "1. a\n   b\n"
    assert code("a`b") == "``a`b``" and code("`x") == "`` `x ``"


def test_registry_step_by_hand_asks_for_the_value_found(tmp_path: Path) -> None:
    # A new user found the printed guide told a person less than the terminal gate: on a
    # manual host the value found must be written down, since it is the backout.  (The seed
    # runbook merges ValidPorts with a cmd step now; this is its former registry step.)
    runbook = tmp_path / "validports.md"
    runbook.write_text(
        "---\nroles:\n  exchange: Exchange server\nparameters:\n"
        "  exchange_netbios: {type: netbios-name}\n---\n\n# ValidPorts\n\n"
        '```registry {#validports-set target=exchange title="Set ValidPorts"}\n'
        "key: HKLM\\SOFTWARE\\Microsoft\\Rpc\\RpcProxy\nvalue: ValidPorts\ntype: REG_SZ\n"
        'data: "{{ exchange_netbios }}:6001-6002;{{ exchange_netbios }}:6004"\n```\n'
    )
    text = md(tailored(runbook, SEEDS / "environments" / "lab.yaml"))
    card = text.split('<a id="validports-set"></a>', 1)[1].split("<a id=", 1)[0]
    assert "write it down (it is the backout)" in card
    assert "Value found before the change (the backout), written in full:" in card
    assert "its type (REG_SZ, REG_DWORD...) and data" in card
    plan = text[text.index("## Backout plan") :]
    undo = plan[plan.index("Undo step 1. Set ValidPorts") :]
    assert "put back what was written in the box of step 1" in undo
    # Paper review: each placeholder says where its text comes from.
    assert "TYPE_FOUND = the type in the box of step 1" in undo
    assert "DATA_FOUND = its data, character for character" in undo
    assert 'reg delete "HKLM\\SOFTWARE\\Microsoft\\Rpc\\RpcProxy" /v "ValidPorts" /f' in undo


# --- the guide on paper (issue 13) -------------------------------------------------------------


def _lab_seed() -> TailoredRunbook:
    return tailored(SEEDS / "rpc-over-https.md", SEEDS / "environments" / "lab.yaml")


def _box_lines(markdown: str, label: str) -> list[str]:
    """The value lines of box ``label`` (offsets removed) from the guide's Markdown."""
    box = markdown[markdown.index(f"**{label}** — ") :]
    tokens = [tok for tok in MarkdownIt("commonmark").parse(box) if tok.type == "fence"]
    return [line.split(" │ ", 1)[1] for line in tokens[0].content.splitlines()]


def test_values_to_copy_box_prints_a_long_value_once(tmp_path: Path) -> None:
    import hashlib

    # The seed's ValidPorts value used to be the 327-character case; it is merged by a cmd
    # step now, so the registry step and its verification are written out here.
    long = ";".join(
        f"EXCHANGE{i}:6001-6002;exchange{i}.internaldomain.local:6004" for i in range(1, 7)
    )
    runbook = tmp_path / "validports.md"
    runbook.write_text(
        "---\nroles:\n  exchange: Exchange server\nparameters:\n"
        "  ports: {type: string, description: ValidPorts}\n---\n\n# ValidPorts\n\n"
        '```registry {#validports-set target=exchange title="Set ValidPorts"}\n'
        "key: HKLM\\SOFTWARE\\Microsoft\\Rpc\\RpcProxy\nvalue: ValidPorts\ntype: REG_SZ\n"
        'data: "{{ ports }}"\n```\n'
    )
    env = tmp_path / "env.yaml"
    env.write_text(
        "name: t\nroles:\n  exchange:\n    - {name: EXCHANGE1, address: exchange1.example, transport: manual}\n"
        "parameters:\n  ports: " + json.dumps(long) + "\n"
    )
    t = tailored(runbook, env)
    text = md(t)
    [value] = collect(t).values
    assert value.text == long and len(long) >= 80
    # Printed once, in the box, cut into lines that join to the value; never whole elsewhere.
    assert "".join(_box_lines(text, "V1")) == value.text
    assert value.text not in text and text.count("**V1** — ") == 1
    digest = hashlib.sha256(value.text.encode()).hexdigest()[:12]
    assert f"**V1** — {len(long)} characters · SHA-256 `{digest}`…" in text
    # The step that writes it refers to it, with its length and hash.
    card = step_section(text, "validports-set")
    assert "‹V1›" in card and f"{len(long)} characters, SHA-256 `{digest}`" in card


def test_values_box_shows_values_as_literal_text(tmp_path: Path) -> None:
    value = "<script>alert(1)</script> *bold* | `tick` [link](https://x.example) " + "y" * 40
    runbook = tmp_path / "long.md"
    runbook.write_text(
        "---\nid: long\nparameters:\n  note: {type: string, description: A long note}\n---\n"
        "# Long\n\n```sh {#s1 title=\"Echo it\"}\necho '{{ note }}'\n```\n"
    )
    env = tmp_path / "env.yaml"
    env.write_text("name: t\nparameters:\n  note: " + json.dumps(value) + "\n")
    t = tailored(runbook, env)
    [long] = collect(t).values
    assert long.text == value
    text = md(t)
    assert "".join(_box_lines(text, "V1")) == value and value not in text
    assert "‹V1›" in step_section(text, "s1")
    assert "`‹V1›` (see [Values to copy](#_values))" in text  # the values table refers to it
    page = html(t)
    assert "<script" not in page.lower() and "&lt;script&gt;alert(1)" in page
    assert 'href="https://x.example"' not in page


def test_long_value_computed_by_the_template_goes_to_the_box(tmp_path: Path) -> None:
    # Issue 13: a long value the runbook builds ({% set %} from short parameters) is printed
    # once, in the box, like a parameter's; the commands run with the whole value.
    computed = (
        '{% set entries = a ~ ":6001-6002;" ~ b ~ ":6001-6002;" ~ a ~ ":6004;" ~ b ~ ":6004" %}'
    )
    runbook = tmp_path / "computed.md"
    runbook.write_text(
        "---\nid: computed\nroles:\n  exchange: Exchange server\nparameters:\n"
        "  a: {type: netbios-name}\n  b: {type: fqdn}\n---\n# Computed\n\n"
        '```cmd {#merge target=exchange title="Merge"}\n' + computed + "\n"
        'reg add "HKLM\\SOFTWARE\\Microsoft\\Rpc\\RpcProxy" /v ValidPorts /t REG_SZ /d "{{ entries }}" /f\n'
        "echo {{ a }}:6004;{{ b }}:6004\n```\n\n"
        '```manual {#look target=exchange title="Look"}\n' + computed + "\n"
        "ValidPorts reads `{{ entries }}`; short: `{{ a ~ ':593' }}`.\n```\n"
    )
    env = tmp_path / "env.yaml"
    env.write_text(
        "name: t\nroles:\n  exchange:\n    - {name: E1, address: e1.example, transport: manual}\n"
        "parameters:\n  a: EXCHANGE1\n  b: exchange1.internaldomain.example\n"
    )
    t = tailored(runbook, env)
    want = "EXCHANGE1:6001-6002;exchange1.internaldomain.example:6001-6002;"
    want += "EXCHANGE1:6004;exchange1.internaldomain.example:6004"
    [value] = collect(t).values  # the pieced-together echo and the short value are not
    assert value.text == want and len(want) >= 80
    text = md(t)
    assert want not in text and "".join(_box_lines(text, "V1")) == want
    assert '/d "‹V1›" /f' in step_section(text, "merge")
    assert "ValidPorts reads `‹V1›`" in step_section(text, "look")
    assert (
        "EXCHANGE1:593" in text
        and "echo EXCHANGE1:6004;exchange1.internaldomain.example:6004" in text
    )
    merge = t.step("merge")
    assert '/d "!RUNBOOK_VALUE_ENTRIES!" /f' in merge.run_body
    assert merge.env["RUNBOOK_VALUE_ENTRIES"] == want  # a run passes the whole value


def test_manual_step_on_two_hosts_has_one_checkbox_row_per_host(tmp_path: Path) -> None:
    import yaml

    data = yaml.safe_load((SEEDS / "environments" / "lab.yaml").read_text())
    data["roles"]["client"] = [
        {"name": "CLIENT-A", "address": "client-a.internaldomain.local", "transport": "manual"},
        {"name": "CLIENT-B", "address": "client-b.internaldomain.local", "transport": "manual"},
    ]
    env = tmp_path / "two-clients.yaml"
    env.write_text(yaml.safe_dump(data, sort_keys=False))
    text = md(tailored(SEEDS / "rpc-over-https.md", env))
    card = step_section(text, "outlook-profile")
    rows = [line for line in card.splitlines() if line.startswith("- [ ] ")]
    assert rows == [
        "- [ ] **CLIENT-A** — Initials: ______  Time: ______",
        "- [ ] **CLIENT-B** — Initials: ______  Time: ______",
    ]
    assert "about 20 min" in card  # 10 minutes on each of the two hosts
    plan = text[text.index("## Backout plan") :]
    undo = plan[plan.index("Undo step 18.") :]
    assert "- [ ] **CLIENT-A**" in undo and "- [ ] **CLIENT-B**" in undo


def test_steps_done_by_hand_show_no_timeout() -> None:
    t = _lab_seed()
    text = md(t)
    by_hand_steps = [ts for ts in t.steps if ts.skip_reason is None and ts.step.target]
    assert any(ts.step.timeout for ts in by_hand_steps)  # the source gives timeouts...
    for ts in by_hand_steps:
        assert "Timeout" not in step_section(text, ts.id), ts.id  # ...a person never sees them
    verify = step_section(text, "verify-nspi-listening")
    assert "Until it succeeds, repeat up to 15 more times, 60 s apart" in verify
    # A step the tool runs keeps its limits.
    local = md(fixture("rpc-over-https", "lab"))
    assert "Retries: 2, 5 s apart" in step_section(local, "valid-ports")


def test_automated_checks_are_one_line_with_code_in_the_appendix() -> None:
    t = _lab_seed()
    text = md(t)
    card = step_section(text, "names-check").split("\n\n", 1)[0]
    assert "\n" not in card  # one line: heading, what it checks, who runs it
    assert "The tool runs this check on the operator machine" in card
    assert "(#code-names-check)" in card
    appendix = text[text.index("## Appendix A.") :]
    assert '<a id="code-names-check"></a>' in appendix
    assert t.step("names-check").body in appendix


def test_backout_plan_is_complete_in_reverse_order() -> None:
    text = md(_lab_seed())
    plan = text[text.index("## Backout plan") : text.index("## Sign-off")]
    headings = re.findall(r"^\*\*((?:Undo|Repeat) step|Step) (\d+)\.", plan, re.MULTILINE)
    assert [(kind, int(n)) for kind, n in headings] == [
        ("Undo step", 18),
        ("Undo step", 17),
        ("Undo step", 14),
        ("Undo step", 13),
        ("Undo step", 12),  # the ValidPorts merge: its own backout step
        ("Undo step", 11),
        ("Step", 10),  # the restart: nothing to undo itself...
        ("Undo step", 8),  # the NSPI step's backout puts back the value it saved
        ("Repeat step", 10),  # ...but repeated so that the removed NSPI value takes effect
    ]
    nspi = plan[plan.index("Undo step 8.") :]
    assert 'reg delete "HKLM\\SYSTEM\\CurrentControlSet\\Services\\NTDS\\Parameters"' in nspi
    assert "nspi-before.txt" in nspi  # the NSPI step is a cmd step now: its own backout
    assert "shutdown /r" in plan[plan.index("Repeat step 10.") :]
    # the repeated restart is decided as the first one was: at its go/no-go gate
    assert "Only when the go/no-go of step 9" in plan[plan.index("Repeat step 10.") :]


def test_first_page_has_contacts_time_plan_and_go_no_go() -> None:
    text = md(_lab_seed(), change_id="CHG-1042")
    first = text[: text.index("## Environment values")]
    for needle in (
        "| Change owner | Dana Lead | +44 20 7946 0100 | dana.lead@internaldomain.local |",
        "| Escalation 1 | Exchange on-call | +44 20 7946 0199 |",
        "### Time plan",
        "| Pre-checks | 1–7, 9, 15 | 8 |",
        "| **Total** |",
        "### Go/no-go points",
        # step 9, a pre-check (the restart's gate), comes after the first change
        "before [step 8](#nspi-set), the first change:** every pre-check before it passed",
        "[step 9](#gc-restart-go), Go/no-go: restart the global catalog now:",
        "after [step 31](#verify-outlook-https), the last verification:",
        "### Prerequisites",
        # the runbook's own prerequisites (front matter), then the operator machine
        "- [ ] Windows Server 2003 CD or its files (proxy install, section 3)",
        "- [ ] The operator machine, for the steps that run locally",
        # access to each host is ticked in the hosts table, once per host
        "| `dc` | PDC | pdc.internaldomain.local | by hand | 4, 5, 8, 9, 10, 21, 22 | ☐ |",
        "| Change id | CHG-1042 |",
    ):
        assert needle in first, needle
    # The sign-off names the change owner; a generic guide leaves the contacts to fill in.
    assert "| Change owner | Dana Lead | | |" in text
    generic = md(tailored(SEEDS / "rpc-over-https.md", None))
    assert "| Change owner |   |   |   |" in generic
    assert "- [ ] Access to the hosts of role `dc`" in generic  # no hosts to tick yet
    assert "Access to **PDC**" not in text


def test_values_table_tells_an_empty_value_from_none() -> None:
    # as the change record does: probe_connect defaults to "", probe_ca_file has no value
    text = md(_lab_seed())
    assert "| `probe_connect` | *(empty)* |" in text
    assert "| `probe_ca_file` | *(not set)* |" in text


def test_prerequisites_must_be_a_list_of_text(tmp_path: Path) -> None:
    from runbook_engine.errors import InputError
    from runbook_engine.source.parser import parse_file

    book = tmp_path / "rb.md"
    book.write_text("---\nprerequisites: {a: 1}\n---\n# T\n\n```sh {#a}\ntrue\n```\n")
    with pytest.raises(InputError, match="'prerequisites' must be a list of text items"):
        parse_file(book)


def test_estimates_make_the_time_plan() -> None:
    from runbook_engine.outputs.effort import duration_text, step_seconds

    t = _lab_seed()
    assert step_seconds(t.step("gc-restart")) == 15 * 60  # estimate=15m
    assert step_seconds(t.step("exchange-version")) == 3 * 60  # a command by hand: default
    assert step_seconds(t.step("names-check")) == 60  # run by the tool: default
    assert step_seconds(t.step("server-restart")) == 0  # skipped here
    assert duration_text(5400) == "1 h 30 min" and duration_text(90) == "2 min"


# --- values in prose are text -----------------------------------------------------------------
PROSE_BOOK = """\
---
parameters:
  v: {type: string}
  w: {type: string}
---
# Prose values

Point at {{ v }} and **{{ w }}**.

{{ w }}

Run `echo {{ v }}` here.

```text
{{ v }}
```

```manual {#m}
Click **{{ v }}**.
```
"""
EVIL = "[x](http://evil) **b** <script>alert(1)</script> C:\\Temp &amp;"


def test_values_in_prose_are_text_never_markup(tmp_path: Path) -> None:
    (tmp_path / "env.yaml").write_text(
        json.dumps({"name": "t", "parameters": {"v": EVIL, "w": "# Heading **bold**"}}),
        encoding="utf-8",
    )
    rb = parse_text(PROSE_BOOK, tmp_path / "prose.md")
    env = load_environment(tmp_path / "env.yaml")
    t = tailor(rb, env, resolve_values(rb, env))
    markdown = md(t)
    parsed = MarkdownIt("commonmark").parse(markdown)
    inline = [c for tok in parsed if tok.children for c in tok.children]
    assert not any(c.type == "link_open" and "evil" in str(c.attrs) for c in inline)
    assert not any(c.type == "html_inline" and "script" in c.content for c in inline)
    paragraphs = [
        "".join(c.content for c in tok.children or [] if c.type == "text")
        for tok in parsed
        if tok.type == "inline"
    ]
    # every character shown as written
    assert f"Point at {EVIL} and # Heading **bold**." in paragraphs
    assert "# Heading **bold**" in paragraphs  # a paragraph, not a heading
    headings = [parsed[i + 1].content for i, t in enumerate(parsed) if t.type == "heading_open"]
    assert not any("Heading" in h for h in headings)
    assert f"`echo {EVIL}`" in markdown  # code spans and blocks keep the value raw
    assert f"```text\n{EVIL}\n```" in markdown
    page = html(t)
    assert "<script" not in page.lower() and 'href="http://evil"' not in page
    assert "<strong>b</strong>" not in page and "<h1>Heading" not in page
    assert "Click <strong>[x](http://evil) **b** &lt;script&gt;" in page  # manual steps too


def seed_lab() -> TailoredRunbook:
    """The seed rpc-over-https runbook for the article's lab (every host by hand)."""
    return tailored(SEEDS / "rpc-over-https.md", SEEDS / "environments" / "lab.yaml")


def test_a_note_the_instructions_ask_for_gets_a_box() -> None:
    # Paper review: "write who gave the go ... in this gate's note" needs room on paper.
    text = md(seed_lab())
    assert "Noted as the instructions ask" in step_section(text, "gc-restart-go")
    assert "Noted as the instructions ask" in step_section(text, "firewall-443")
    assert "Noted as the instructions ask" not in step_section(text, "outlook-profile")


def test_a_check_done_by_hand_says_what_to_do_with_it() -> None:
    text = step_section(md(seed_lab()), "gc-restart")
    assert "First run this read-only check: if it succeeds, the step is already done" in text
    assert "Skipped if already done" not in text


def test_a_skipped_step_shows_no_limits() -> None:
    text = step_section(md(seed_lab()), "verify-443-open")
    assert "Skipped in this environment" in text and "On failure" not in text


def test_printed_command_lines_are_numbered_but_not_the_values_box() -> None:
    from runbook_engine.outputs.guide_html import guide_html

    html = guide_html(seed_lab())
    cmd = html[html.index('<pre><code class="language-cmd">') :]
    cmd = cmd[: cmd.index("</code></pre>")]
    assert cmd.count('<span class="ln">') == cmd.count("</span>") >= 1
    values = html[html.index('<pre><code class="language-text">') :]
    assert '<span class="ln">' not in values[: values.index("</code></pre>")]
    assert "each numbered line is one line to type" in html
