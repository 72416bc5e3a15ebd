"""Tests for the runbook parser (runbook_engine.source.parser).

The format is FORMAT-SPEC.md / DESIGN.md §2.  The parametrised tables below are
the cases other Markdown executors got wrong (DESIGN.md §7, issue 2 "Tests"),
each with its right answer, and the bad input of issue 2 "Bad input", each with
the line its problem must name.  Line numbers are 1-based and counted in the
file, front matter included.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from runbook_engine.errors import InputError, Problem, RunbookSyntaxError
from runbook_engine.source.model import Prose, Step

parser = pytest.importorskip("runbook_engine.source.parser")
parse_text = parser.parse_text
parse_file = parser.parse_file

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "parser"
PATH = Path("sample.md")
FM = "---\nroles:\n  dc: Domain controller\n---\n"  # four lines; the body starts on line 5


def parse(text: str, path: Path = PATH):
    """Parse ``text`` as if it were the file ``path``."""
    return parse_text(text, path)


def problems_of(text: str, path: Path = PATH) -> list[Problem]:
    """Parse ``text``, expect a RunbookSyntaxError and return its problems."""
    with pytest.raises(RunbookSyntaxError) as excinfo:
        parse(text, path)
    assert excinfo.value.problems, "a RunbookSyntaxError must carry its problems"
    return excinfo.value.problems


def line_of(text: str, needle: str) -> int:
    """Return the 1-based line of the first line of ``text`` containing ``needle``."""
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in text")


def crlf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\n", "\r\n")


# --------------------------------------------------------------------------
# Steps the parser must find: (text, [(id, kind, body, start_line, end_line)])
# --------------------------------------------------------------------------
STEP_CASES = [
    pytest.param("```sh {#a}\necho hi\n```\n", [("a", "sh", "echo hi\n", 1, 3)], id="plain"),
    pytest.param("~~~sh {#t}\necho hi\n~~~\n", [("t", "sh", "echo hi\n", 1, 3)], id="tilde-fence"),
    pytest.param(
        "~~~~ sh {#t}\necho\n~~~~~\n",
        [("t", "sh", "echo\n", 1, 3)],
        id="space-after-fence-longer-close",
    ),
    pytest.param(
        "````sh {#outer}\n```sh {#inner}\necho inner\n```\n````\n",
        [("outer", "sh", "```sh {#inner}\necho inner\n```\n", 1, 5)],
        id="fence-inside-longer-fence-is-text",
    ),
    pytest.param(
        "~~~sh {#t}\n```\nx\n```\n~~~\n",
        [("t", "sh", "```\nx\n```\n", 1, 5)],
        id="backticks-inside-tilde-fence",
    ),
    pytest.param(
        "````md\n```sh {#fake}\necho\n```\n````\n\n```sh {#real}\necho real\n```\n",
        [("real", "sh", "echo real\n", 7, 9)],
        id="fake-step-inside-illustration",
    ),
    pytest.param(
        "1. Do this:\n\n   ```sh {#l}\n   echo one\n     indented\n   ```\n",
        [("l", "sh", "echo one\n  indented\n", 3, 6)],
        id="numbered-list-item",
    ),
    pytest.param(
        "1. one\n   - sub\n\n     ```sh {#n}\n     echo n\n     ```\n",
        [("n", "sh", "echo n\n", 4, 6)],
        id="nested-list",
    ),
    pytest.param(
        "> ```sh {#q}\n> echo hi\n>   two\n> ```\n",
        [("q", "sh", "echo hi\n  two\n", 1, 4)],
        id="blockquote",
    ),
    pytest.param(
        "  ```sh {#i}\n  echo a\n    b\n  ```\n",
        [("i", "sh", "echo a\n  b\n", 1, 4)],
        id="indented-fence-strips-its-indent",
    ),
    pytest.param(
        "    ```sh {#x}\n    echo\n    ```\n", [], id="indented-code-block-is-not-a-fence"
    ),
    pytest.param(
        "```sh {#f}\necho hi\n```", [("f", "sh", "echo hi\n", 1, 3)], id="no-final-newline"
    ),
    pytest.param(
        "```sh {#f}\r\necho hi\r\n```", [("f", "sh", "echo hi\n", 1, 3)], id="no-final-newline-crlf"
    ),
    pytest.param("```sh {#e}\n```\n", [("e", "sh", "", 1, 2)], id="empty-body"),
    # Valid closing fences: up to 3 spaces of indentation (relative to the container),
    # trailing spaces, longer than the opening one.
    pytest.param(
        "```sh {#c}\necho\n   ```\n", [("c", "sh", "echo\n", 1, 3)], id="close-indented-3"
    ),
    pytest.param(
        "1. a\n\n   ```sh {#c}\n   echo\n      ```\n",
        [("c", "sh", "echo\n", 3, 5)],
        id="list-close-indented-3",
    ),
    pytest.param(
        "> ```sh {#c}\n> echo\n>    ```\n", [("c", "sh", "echo\n", 1, 3)], id="quote-close-indented"
    ),
    pytest.param(
        "```sh {#c}\necho\n```   \n", [("c", "sh", "echo\n", 1, 3)], id="close-trailing-space"
    ),
    pytest.param("````sh {#c}\necho\n``````\n", [("c", "sh", "echo\n", 1, 3)], id="close-longer"),
    pytest.param(
        "```sh {#d}\n$EDITOR /etc/hosts\n### not a heading\n$ echo prompt kept\n```\n",
        [("d", "sh", "$EDITOR /etc/hosts\n### not a heading\n$ echo prompt kept\n", 1, 5)],
        id="dollar-and-hash-lines-kept",
    ),
    pytest.param(
        "```sh {#h}\ncat <<'EOF'\nline1\n\n\nline4\nEOF\n```\n",
        [("h", "sh", "cat <<'EOF'\nline1\n\n\nline4\nEOF\n", 1, 8)],
        id="heredoc-blank-lines",
    ),
    pytest.param(
        "```sh {#w}\necho trailing   \n\techo tab\n\n```\n",
        [("w", "sh", "echo trailing   \n\techo tab\n\n", 1, 5)],
        id="trailing-space-tab-and-final-blank-line",
    ),
    pytest.param(
        "```sh {#j}\necho {{ host }} {% raw %}{{x}}{% endraw %}\n```\n",
        [("j", "sh", "echo {{ host }} {% raw %}{{x}}{% endraw %}\n", 1, 3)],
        id="jinja-kept-raw",
    ),
    pytest.param(
        "- item\n\n  ```sh {#b}\n  echo b\n  ```\n",
        [("b", "sh", "echo b\n", 3, 5)],
        id="document-starts-with-list-item",
    ),
    pytest.param(
        '--8<-- "x.md"\n\n```sh {#s}\necho s\n```\n',
        [("s", "sh", "echo s\n", 3, 5)],
        id="document-starts-with-snippet-line",
    ),
    pytest.param(
        "----\n\n```sh {#r}\necho r\n```\n", [("r", "sh", "echo r\n", 3, 5)], id="starts-with-rule"
    ),
    pytest.param(
        "{% if x %}\nA\n{% endif %}\n\n```sh {#k}\necho k\n```\n",
        [("k", "sh", "echo k\n", 5, 7)],
        id="starts-with-template-tag",
    ),
    pytest.param(
        FM + "\n```sh {#fm target=dc}\necho\n```\n",
        [("fm", "sh", "echo\n", 6, 8)],
        id="lines-count-front-matter",
    ),
    pytest.param(
        "```sh {#a}\na\n```\n```cmd {#b}\nb\n```\n",
        [("a", "sh", "a\n", 1, 3), ("b", "cmd", "b\n", 4, 6)],
        id="adjacent-fences",
    ),
    pytest.param(
        "```cmd\ndir\n```\n\n```ruby\nputs 1\n```\n\n```\nplain\n```\n\n```sh {.verify}\nx\n```\n",
        [],
        id="blocks-without-id-are-prose",
    ),
    pytest.param(
        '```python title="setup.py"\nx\n```\n\n```text extra words\nx\n```\n\n'
        "```js {.line-numbers}\nx\n```\n\n```c++\nx\n```\n\n```console $ prompt\nx\n```\n",
        [],
        id="other-tools-info-strings-are-prose",
    ),
]


def _summary(step: Step) -> tuple[str, str, str, int, int]:
    return (step.id, step.kind, step.body, step.span.start_line, step.span.end_line)


@pytest.mark.parametrize(("text", "expected"), STEP_CASES)
def test_steps_found(text: str, expected: list[tuple[str, str, str, int, int]]) -> None:
    runbook = parse(text)
    assert [_summary(s) for s in runbook.steps] == expected
    for step in runbook.steps:
        assert step.span.path == PATH
        if step.body:
            assert step.body_line == step.span.start_line + 1


@pytest.mark.parametrize(("text", "expected"), STEP_CASES)
def test_crlf_behaves_like_lf(text: str, expected: list) -> None:
    lf, cr = parse(text), parse(crlf(text))
    assert cr.steps == lf.steps
    assert cr.body_start_line == lf.body_start_line


def test_crlf_full_fixture_behaves_like_lf() -> None:
    text = (FIXTURES / "full.md").read_text(encoding="utf-8")
    lf, cr = parse(text), parse(crlf(text))
    assert cr.steps == lf.steps
    assert cr.parameters == lf.parameters
    assert cr.roles == lf.roles
    assert cr.body_start_line == lf.body_start_line
    assert len(lf.steps) == 7


def test_blocks_without_id_stay_in_prose() -> None:
    runbook = parse("# T\n\n```cmd\necho illustration\n```\n")
    assert runbook.steps == ()
    assert "echo illustration" in "".join(s.text for s in runbook.segments if isinstance(s, Prose))


@pytest.mark.parametrize(
    ("text", "prefix"),
    [
        pytest.param("```sh {#a}\nx\n```\n", "", id="top-level"),
        pytest.param("> ```sh {#a}\n> x\n> ```\n", ">", id="blockquote"),
        pytest.param("1. ```sh {#a}\n   x\n   ```\n", "1.", id="list-marker-same-line"),
    ],
)
def test_prefix(text: str, prefix: str) -> None:
    (step,) = parse(text).steps
    assert step.prefix.strip() == prefix
    assert step.body == "x\n"


@pytest.mark.parametrize("kind", ["cmd", "powershell", "sh", "bash", "python", "manual"])
def test_every_kind_of_this_issue_is_accepted(kind: str) -> None:
    (step,) = parse(f"```{kind} {{#s}}\nbody\n```\n").steps
    assert step.kind == kind


# --------------------------------------------------------------------------
# Bodies that must run as written (real subprocesses)
# --------------------------------------------------------------------------
PYTHON_STEP = """\
1. Run the script:

   ```python {#py}
   import sys

   def greet(name):
       if name:
           return "hello " + name

       return "nobody"

   print(greet("runbook"))
   sys.exit(0)
   ```
"""


def test_python_body_keeps_indentation_and_runs(tmp_path: Path) -> None:
    (step,) = parse(PYTHON_STEP).steps
    assert step.body.startswith("import sys\n\ndef greet(name):\n    if name:\n        return")
    script = tmp_path / "step.py"
    script.write_text(step.body, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "hello runbook\n"


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX shell")
def test_heredoc_body_runs_with_blank_lines(tmp_path: Path) -> None:
    text = "> ```sh {#h}\n> cat <<'EOF'\n> line1\n>\n>\n> line4\n> EOF\n> ```\n"
    (step,) = parse(text).steps
    script = tmp_path / "step.sh"
    script.write_text(step.body, encoding="utf-8")
    done = subprocess.run(
        ["sh", str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "line1\n\n\nline4\n"


# --------------------------------------------------------------------------
# The full fixture: every attribute, front matter, roles of helper steps
# --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def full_text() -> str:
    return (FIXTURES / "full.md").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def full():
    return parse_file(FIXTURES / "full.md")


def test_full_runbook_metadata(full, full_text: str) -> None:
    assert full.path == FIXTURES / "full.md"
    assert full.id == "sample-full"
    assert full.title == "Sample runbook"
    assert full.version == "1.0"
    assert full.summary == "Exercises every construct of the format."
    assert tuple(full.tags) == ("exchange2003", "sample")
    assert full.roles == {
        "dc": "Domain controller that is a Global Catalog server",
        "exchange": "Exchange Server 2003 SP2 server",
    }
    assert tuple(full.references) == (
        "KB 833401: How to configure RPC over HTTP in Exchange Server 2003",
    )
    assert full.body_start_line == line_of(full_text, "# Sample runbook body heading")
    raw = (FIXTURES / "full.md").read_bytes()
    assert full.content_hash == hashlib.sha256(raw).hexdigest()


def test_full_parameters(full, full_text: str) -> None:
    params = full.parameters
    assert list(params) == [
        "external_host",
        "dc_is_exchange",
        "processing",
        "admin_password",
        "smart_host",
        "contacts",
    ]
    host = params["external_host"]
    assert (host.name, host.type, host.example) == ("external_host", "fqdn", "mail.example.com")
    assert host.description == "Public name of the Exchange server"
    assert host.required is True
    assert params["dc_is_exchange"].type == "bool"
    assert params["dc_is_exchange"].default is False
    assert params["dc_is_exchange"].required is False  # a default exists
    assert tuple(params["processing"].choices) == ("report-only", "cleanup")
    assert params["processing"].default == "report-only"
    assert params["admin_password"].secret is True
    assert params["smart_host"].required is False
    assert params["smart_host"].default is None
    assert (params["contacts"].type, params["contacts"].items) == ("list", "email")
    for name, param in params.items():
        assert param.line == line_of(full_text, f"  {name}:"), name


def test_full_steps(full, full_text: str) -> None:
    ids = [s.id for s in full.steps]
    assert ids == [
        "pre",
        "nspi-set",
        "rpc-backend",
        "local-note",
        "verify-nspi",
        "nspi-check",
        "nspi-backout",
    ]
    for step in full.steps:
        start = line_of(full_text, "{#" + step.id)
        assert step.span.start_line == start, step.id
        assert step.body_line == start + 1, step.id
        assert step.span.path == FIXTURES / "full.md"

    pre = full.step("pre")
    assert (pre.kind, pre.phase, pre.target, pre.role) == ("cmd", "precheck", "dc", "step")
    assert pre.classes == ("precheck",)
    assert pre.body == 'reg query "HKLM\\SOFTWARE\\Microsoft\\Exchange"\n'
    assert pre.span.end_line == pre.span.start_line + 2

    nspi = full.step("nspi-set")
    assert nspi.title == "Set NSPI protocol sequence"
    assert (nspi.target, nspi.check, nspi.backout) == ("dc", "nspi-check", "nspi-backout")
    assert nspi.timeout == 60.0 and isinstance(nspi.timeout, float)
    assert nspi.retries == 2 and isinstance(nspi.retries, int)
    assert nspi.retry_delay == 2.5
    assert nspi.on_failure == "continue"
    assert nspi.phase == "change" and nspi.role == "step" and nspi.changes_state
    assert nspi.attrs["timeout"] == "60" and nspi.attrs["retry-delay"] == "2.5"
    assert nspi.body.startswith('reg add "HKLM\\SYSTEM\\CurrentControlSet')
    assert nspi.body.endswith("/f\n") and nspi.body.count("\n") == 1
    assert nspi.span.end_line == nspi.span.start_line + 2

    manual = full.step("rpc-backend")
    assert manual.is_manual and manual.target == "exchange"
    assert manual.when == "not dc_is_exchange"
    assert manual.body == (
        "In **Exchange System Manager**, expand *Administrative Groups > First Administrative"
        " Group >\nServers*, right-click the server, choose **Properties**.\n"
    )

    note = full.step("local-note")
    assert note.cwd == "my dir" and note.template is False and note.target is None
    assert note.body == "docker ps --format '{{.Names}}'\n"
    assert (note.timeout, note.retries, note.retry_delay, note.on_failure) == (None, 0, 0.0, "stop")
    assert note.check is None and note.backout is None and note.when is None
    assert note.template is False and full.step("pre").template is True

    verify = full.step("verify-nspi")
    assert (verify.phase, verify.role) == ("verify", "step")

    assert full.step("nspi-check").role == "check"
    assert full.step("nspi-backout").role == "backout"
    assert [s.id for s in full.flow] == [
        "pre",
        "nspi-set",
        "rpc-backend",
        "local-note",
        "verify-nspi",
    ]


def test_full_segments_in_document_order(full) -> None:
    spans = [(seg.span.start_line, seg.span.end_line) for seg in full.segments]
    for (start, end), (next_start, _) in itertools.pairwise(spans):
        assert start <= end < next_start
    prose = "".join(seg.text for seg in full.segments if isinstance(seg, Prose))
    assert "echo illustration only" in prose
    assert "Intro prose mentioning {{ external_host }}." in prose
    assert "## Backout" in prose
    assert "reg delete" not in prose  # step bodies are not duplicated into prose
    assert "id: sample-full" not in prose  # neither is the front matter


def test_id_defaults_to_stem_and_title_to_first_heading() -> None:
    runbook = parse("Intro.\n\n# First heading\n\n## Second\n", Path("dir/my-book.md"))
    assert runbook.id == "my-book"
    assert runbook.title == "First heading"
    assert runbook.body_start_line == 1
    assert runbook.parameters == {} and runbook.roles == {}


@pytest.mark.parametrize(
    ("text", "title"),
    [
        pytest.param("Intro.\n\n# ATX heading\n", "ATX heading", id="atx"),
        pytest.param("My Title\n========\n\ntext\n", "My Title", id="setext-h1"),
        pytest.param("Sub title\n---------\n", "Sub title", id="setext-h2"),
        pytest.param("text only\n", "book", id="no-heading-gives-id"),
        pytest.param(
            "---\ntitle: From front matter\n---\n# Heading\n", "From front matter", id="fm"
        ),
    ],
)
def test_title(text: str, title: str) -> None:
    assert parse(text, Path("book.md")).title == title


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("\ufeff```sh {#x}\necho\n```\n", id="bom-no-front-matter"),
        pytest.param("\ufeff---\nid: b\n---\n```sh {#x}\necho\n```\n", id="bom-front-matter"),
    ],
)
def test_byte_order_mark_is_not_content(text: str, tmp_path: Path) -> None:
    # Notepad on Windows writes UTF-8 with a BOM; the first block must not be lost.
    path = tmp_path / "bom.md"
    path.write_bytes(text.encode("utf-8"))
    from_file, from_text = parse_file(path), parse(text)
    assert [(s.id, s.body) for s in from_file.steps] == [("x", "echo\n")], "parse_file"
    assert [(s.id, s.body) for s in from_text.steps] == [("x", "echo\n")], "parse_text"


def test_zero_retry_delay_and_retries_are_allowed() -> None:
    (step,) = parse("```sh {#x retries=0 retry-delay=0 timeout=0.5}\necho\n```\n").steps
    assert (step.retries, step.retry_delay, step.timeout) == (0, 0.0, 0.5)


@pytest.mark.parametrize(
    "ptype",
    [
        "string", "hostname", "fqdn", "netbios-name", "domain", "ipv4", "ip",
        "port", "path", "bool", "int", "choice", "list", "email",
    ],
)  # fmt: skip
def test_every_parameter_type_is_accepted(ptype: str) -> None:
    extra = "    choices: [a, b]\n" if ptype == "choice" else ""
    runbook = parse(f"---\nparameters:\n  p:\n    type: {ptype}\n{extra}---\n# T\n")
    assert runbook.parameters["p"].type == ptype


# --------------------------------------------------------------------------
# Bad input: (text, acceptable lines of the single problem, words the message names)
# --------------------------------------------------------------------------
def _step(info: str, prefix: str = "") -> str:
    return f"{prefix}```{info}\necho\n```\n"


ERROR_CASES = [
    pytest.param(_step("sh {#x colour=red}"), {1}, ["colour"], id="unknown-attribute"),
    pytest.param(_step("sh {#x .fast}"), {1}, ["fast"], id="unknown-class"),
    pytest.param(_step("sh {#x timeout=abc}"), {1}, ["timeout"], id="timeout-not-a-number"),
    pytest.param(_step("sh {#x timeout=-5}"), {1}, ["timeout"], id="timeout-negative"),
    # A number of seconds must be finite: nan compares false with everything and an
    # infinite timeout or delay overflows the OS wait (leave timeout out for "no limit").
    pytest.param(_step("sh {#x timeout=nan}"), {1}, ["timeout"], id="timeout-nan"),
    pytest.param(_step("sh {#x timeout=inf}"), {1}, ["timeout"], id="timeout-inf"),
    pytest.param(_step("sh {#x retry-delay=nan}"), {1}, ["retry-delay"], id="retry-delay-nan"),
    pytest.param(_step("sh {#x retry-delay=inf}"), {1}, ["retry-delay"], id="retry-delay-inf"),
    pytest.param(_step("sh {#x retry-delay=-1}"), {1}, ["retry-delay"], id="retry-delay-negative"),
    pytest.param(_step("sh {#x retries=-1}"), {1}, ["retries"], id="retries-negative"),
    pytest.param(_step("sh {#x retries=1.5}"), {1}, ["retries"], id="retries-not-int"),
    pytest.param(_step("sh {#x retry-delay=soon}"), {1}, ["retry-delay"], id="retry-delay-bad"),
    pytest.param(_step("sh {#x on-failure=maybe}"), {1}, ["on-failure"], id="on-failure-bad"),
    pytest.param(_step("sh {#x template=maybe}"), {1}, ["template"], id="template-bad"),
    pytest.param(_step('sh {#x title="open}'), {1}, [], id="unterminated-quote"),
    pytest.param(_step("sh {#a #b}"), {1}, [], id="two-ids"),
    pytest.param(_step("sh {#x} trailing"), {1}, [], id="text-after-brace"),
    pytest.param(_step("ruby {#x}"), {1}, ["ruby"], id="unknown-kind"),
    pytest.param(_step("{#a}"), {1}, [], id="id-without-language"),
    pytest.param(_step("sh {#x check=nope}"), {1}, ["nope"], id="check-missing"),
    pytest.param(_step("sh {#x backout=nope}"), {1}, ["nope"], id="backout-missing"),
    pytest.param(_step("sh {#x target=web}"), {1}, ["web"], id="target-no-roles"),
    pytest.param(FM + "\n" + _step("sh {#x target=web}"), {6}, ["web"], id="target-undeclared"),
    pytest.param(FM + "\n" + _step("sh {#x colour=red}"), {6}, ["colour"], id="after-front-matter"),
    pytest.param(
        "1. Step:\n\n" + _step("sh {#x colour=red}", "   ").replace("\n", "\n   ", 2),
        {3},
        ["colour"],
        id="in-list-item",
    ),
    pytest.param(
        _step("sh {#x colour=red}", "> ").replace("\n", "\n> ", 2), {1}, ["colour"], id="in-quote"
    ),
    pytest.param("# T\n\n```sh {#x}\necho\n", {3}, [], id="unclosed-fence"),
    pytest.param(FM + "```sh {#x target=dc}\necho\n", {5}, [], id="unclosed-after-front-matter"),
    pytest.param("````sh {#x}\necho\n```\n", {1}, [], id="unclosed-shorter-close"),
    # CommonMark: a closing fence is indented at most 3 spaces (relative to its container);
    # an over-indented one is body text, so these fences are never closed.
    pytest.param("```sh {#x}\necho\n    ```\n", {1}, [], id="closing-fence-indented-4"),
    pytest.param("```sh {#x}\necho\n\t```\n", {1}, [], id="closing-fence-after-tab"),
    pytest.param(
        "1. a\n\n   ```sh {#x}\n   echo\n       ```\n", {3}, [], id="list-closing-fence-indented-4"
    ),
    pytest.param("```sh {#x}\necho\n``` not closing\n", {1}, [], id="closing-fence-with-text"),
    # A step fence ended by the end of its container (body line not indented into the
    # list item, blockquote ended by a blank line) would silently lose the rest of the body.
    pytest.param("1. x\n\n   ```sh {#a}\necho\n   ```\n", {3}, [], id="list-body-not-indented"),
    pytest.param("> ```sh {#q}\n> echo hi\n\nafter\n", {1}, [], id="blockquote-ends-inside-fence"),
    pytest.param("---\nid: x\n  bad: indent: here\n---\n# T\n", {3}, [], id="invalid-front-matter"),
    pytest.param("---\nid: x\n# T\n", {1}, [], id="unclosed-front-matter"),
    pytest.param("---\n- a\n---\n# T\n", {1, 2}, [], id="front-matter-not-mapping"),
    pytest.param(
        "---\nparameters:\n  port:\n    type: integer\n---\n",
        {3, 4},
        ["integer"],
        id="unknown-parameter-type",
    ),
    pytest.param(
        "---\nparameters:\n  port:\n    typ: int\n---\n",
        {3, 4},
        ["typ"],
        id="unknown-parameter-key",
    ),
    pytest.param("---\nparameters: [a, b]\n---\n", {1, 2}, [], id="parameters-not-mapping"),
    # A quoted "false" or "no" is a string; bool() of it is True, which silently turns the
    # author's intent around.  Flags must be YAML booleans.
    pytest.param(
        "---\nparameters:\n  p:\n    type: int\n    required: maybe\n---\n",
        {3, 5},
        ["required"],
        id="parameter-required-not-bool",
    ),
    pytest.param(
        '---\nparameters:\n  p:\n    type: int\n    required: "no"\n---\n',
        {3, 5},
        ["required"],
        id="parameter-required-quoted-no",
    ),
    pytest.param(
        '---\nparameters:\n  p:\n    type: string\n    secret: "false"\n---\n',
        {3, 5},
        ["secret"],
        id="parameter-secret-quoted-false",
    ),
    pytest.param(
        "---\nparameters:\n  p:\n    type: int\n    description: [a, b]\n---\n",
        {3, 5},
        ["description"],
        id="parameter-description-not-text",
    ),
    pytest.param("---\nroles: [dc]\n---\n", {1, 2}, [], id="roles-not-mapping"),
    pytest.param("---\nroles:\n  dc: [a, b]\n---\n", {3}, ["dc"], id="role-description-not-text"),
    # YAML says mapping keys are unique; PyYAML keeps the last one silently, which would
    # rewrite the author's front matter instead of reporting it.
    pytest.param("---\nid: a\nid: b\n---\n", {2, 3}, ["id"], id="duplicate-front-matter-key"),
    pytest.param(
        "---\nparameters:\n  p:\n    type: int\n  p:\n    type: string\n---\n",
        {3, 5},
        ["p"],
        id="duplicate-parameter",
    ),
]


@pytest.mark.parametrize(("text", "lines", "words"), ERROR_CASES)
def test_bad_input(text: str, lines: set[int], words: list[str]) -> None:
    problems = problems_of(text)
    assert len(problems) == 1, [p.format() for p in problems]
    problem = problems[0]
    assert problem.path == PATH
    assert problem.line in lines, problem.format()
    message = problem.message.lower().replace("_", "-")
    for word in words:
        assert word in message, problem.format()


@pytest.mark.parametrize(("text", "lines", "words"), ERROR_CASES)
def test_bad_input_crlf_names_the_same_line(text: str, lines: set[int], words: list[str]) -> None:
    lf = [(p.line, p.message) for p in problems_of(text)]
    assert [(p.line, p.message) for p in problems_of(crlf(text))] == lf


def test_id_without_language_is_not_a_language() -> None:
    (problem,) = problems_of("```{#a}\necho\n```\n")
    message = problem.message.lower()
    assert "language" in message or "kind" in message
    assert "'{#a}'" not in message  # the attribute list is never reported as the kind


def test_duplicate_id_names_both_lines_and_is_never_renamed() -> None:
    text = "# T\n\n```sh {#x}\na\n```\n\n1. again:\n\n   ```sh {#x}\n   b\n   ```\n"
    (problem,) = problems_of(text)
    assert problem.line == 9
    assert "3" in problem.message
    assert "x" in problem.message


def test_error_text_names_file_and_line() -> None:
    with pytest.raises(RunbookSyntaxError) as excinfo:
        parse(FM + "\n" + _step("sh {#x colour=red}"), Path("books/rpc.md"))
    assert isinstance(excinfo.value, InputError) and excinfo.value.exit_status == 2
    assert "books/rpc.md:6" in excinfo.value.format()
    (problem,) = excinfo.value.problems
    assert problem.source_line is not None and "colour=red" in problem.source_line


def test_all_problems_of_a_file_are_collected() -> None:
    text = (
        "```sh {#a colour=red}\necho\n```\n"  # 1 unknown attribute
        "\n"
        "```sh {#b size=2}\necho\n```\n"  # 5 unknown attribute
        "\n"
        "```sh {#a}\necho\n```\n"  # 9 duplicate of line 1
        "\n"
        "```sh {#c check=missing}\necho\n```\n"  # 13 check id that does not exist
        "\n"
        "```sh {#d timeout=abc}\necho\n```\n"  # 17 bad value
    )
    problems = problems_of(text)
    assert sorted(p.line for p in problems) == [1, 5, 9, 13, 17], [p.format() for p in problems]


def test_two_unknown_attributes_on_different_lines_give_two_problems() -> None:
    problems = problems_of("```sh {#a colour=red}\n```\n\n```sh {#b size=2}\n```\n")
    assert sorted(p.line for p in problems) == [1, 4]


@pytest.mark.timeout(120)
def test_large_runbook_with_unclosed_fence_at_top_completes() -> None:
    lines = ["````sh {#top}"]
    for n in range(3333):
        lines += [f"```sh {{#s{n}}}", f"echo {n}", "```"]
    text = "\n".join(lines) + "\n"
    assert text.count("\n") >= 10_000
    (problem,) = problems_of(text)
    assert problem.line == 1


@pytest.mark.timeout(120)
def test_large_runbook_with_unclosed_illustration_at_top_completes() -> None:
    # CommonMark: an unclosed fence runs to the end of the document, so nothing after
    # it is a step; the parser must get there without hanging.
    lines = ["````"]
    for n in range(3400):
        lines += [f"```sh {{#s{n}}}", f"echo {n}", "```"]
    runbook = parse("\n".join(lines))
    assert runbook.steps == ()


@pytest.mark.timeout(120)
def test_large_runbook_parses() -> None:
    chunks = [f"## Step {n}\n\n```sh {{#s{n}}}\necho {n}\n```\n\n" for n in range(1500)]
    runbook = parse("".join(chunks))
    assert len(runbook.steps) == 1500
    assert runbook.steps[-1].span.start_line == 1 + 6 * 1499 + 2


def test_invalid_utf8_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.md"
    path.write_bytes("# Caf\xe9\n\n```sh {#a}\necho\n```\n".encode("latin-1"))
    with pytest.raises(InputError):
        parse_file(path)


# --------------------------------------------------------------------------
# Includes
# --------------------------------------------------------------------------
def test_include_splices_fragment_and_merges_front_matter() -> None:
    runbook = parse_file(FIXTURES / "includes" / "main.md")
    assert [s.id for s in runbook.steps] == ["before", "shared-step", "inner-step", "after"]
    assert runbook.roles == {"exchange": "Exchange server", "dc": "Domain controller"}
    assert set(runbook.parameters) == {"external_host", "contact_name"}
    assert runbook.parameters["contact_name"].description == "Display name of the contact"
    assert runbook.step("shared-step").body == 'dsquery contact -name "{{ contact_name }}"\n'
    assert runbook.step("after").target == "dc"
    prose = "".join(s.text for s in runbook.segments if isinstance(s, Prose))
    assert "## Shared part" in prose
    assert "The inner fragment has no front matter." in prose
    assert "include:" not in prose


def test_included_steps_point_at_their_own_file_and_line() -> None:
    runbook = parse_file(FIXTURES / "includes" / "main.md")
    shared = runbook.step("shared-step").span
    assert shared.path.resolve() == (FIXTURES / "includes" / "_shared" / "common.md").resolve()
    assert shared.start_line == 13
    inner = runbook.step("inner-step").span
    assert inner.path.resolve() == (FIXTURES / "includes" / "_shared" / "_inner.md").resolve()
    assert inner.start_line == 3
    after = runbook.step("after").span
    assert after.path == FIXTURES / "includes" / "main.md"
    assert after.start_line == 17


def test_include_cycle_is_an_error() -> None:
    with pytest.raises(RunbookSyntaxError) as excinfo:
        parse_file(FIXTURES / "cycle" / "a.md")
    assert excinfo.value.problems
    assert any("cycl" in p.message.lower() or "recurs" in p.message.lower()
               for p in excinfo.value.problems), excinfo.value.format()  # fmt: skip


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_missing_include_names_the_line(tmp_path: Path) -> None:
    main = _write(tmp_path / "main.md", "# T\n\ntext\n\n<!-- include: _shared/nope.md -->\n")
    with pytest.raises(RunbookSyntaxError) as excinfo:
        parse_file(main)
    (problem,) = excinfo.value.problems
    assert problem.line == 5
    assert problem.path == main
    assert "nope.md" in problem.message


def test_include_inside_a_fence_is_text(tmp_path: Path) -> None:
    main = _write(tmp_path / "main.md", "```\n<!-- include: _missing.md -->\n```\n")
    runbook = parse_file(main)
    assert runbook.steps == ()


def test_duplicate_id_across_include_is_an_error(tmp_path: Path) -> None:
    _write(tmp_path / "_frag.md", "```sh {#same}\necho frag\n```\n")
    main = _write(
        tmp_path / "main.md", "```sh {#same}\necho main\n```\n\n<!-- include: _frag.md -->\n"
    )
    with pytest.raises(RunbookSyntaxError) as excinfo:
        parse_file(main)
    assert len(excinfo.value.problems) == 1


def test_conflicting_parameter_declarations_are_an_error(tmp_path: Path) -> None:
    _write(tmp_path / "_frag.md", "---\nparameters:\n  port:\n    type: int\n---\ntext\n")
    main = _write(
        tmp_path / "main.md",
        "---\nparameters:\n  port:\n    type: port\n---\n<!-- include: _frag.md -->\n",
    )
    with pytest.raises(RunbookSyntaxError) as excinfo:
        parse_file(main)
    assert any("port" in p.message for p in excinfo.value.problems), excinfo.value.format()


def test_fragment_front_matter_only_holds_parameters_and_roles(tmp_path: Path) -> None:
    _write(tmp_path / "_frag.md", "---\ntitle: Not allowed here\n---\ntext\n")
    main = _write(tmp_path / "main.md", "# T\n\n<!-- include: _frag.md -->\n")
    with pytest.raises(RunbookSyntaxError) as excinfo:
        parse_file(main)
    assert any("title" in p.message for p in excinfo.value.problems), excinfo.value.format()


def test_conflicting_role_declarations_are_an_error(tmp_path: Path) -> None:
    # FORMAT-SPEC "Includes": the same name declared twice must be identical.
    _write(tmp_path / "_frag.md", "---\nroles:\n  dc: Some other machine\n---\ntext\n")
    main = _write(
        tmp_path / "main.md",
        "---\nroles:\n  dc: Domain controller\n---\n<!-- include: _frag.md -->\n",
    )
    with pytest.raises(RunbookSyntaxError) as excinfo:
        parse_file(main)
    assert any("dc" in p.message for p in excinfo.value.problems), excinfo.value.format()


def test_identical_declarations_in_fragment_are_fine(tmp_path: Path) -> None:
    _write(tmp_path / "_frag.md", "---\nroles:\n  dc: DC\nparameters:\n  p:\n    type: int\n---\n")
    main = _write(
        tmp_path / "main.md",
        "---\nroles:\n  dc: DC\nparameters:\n  p:\n    type: int\n---\n"
        "<!-- include: _frag.md -->\n",
    )
    runbook = parse_file(main)
    assert runbook.roles == {"dc": "DC"} and list(runbook.parameters) == ["p"]


def test_absolute_include_path_is_an_error(tmp_path: Path) -> None:
    # FORMAT-SPEC "Includes": the path is relative to the including file; an absolute
    # path would splice any file of the machine into the guide.
    frag = _write(tmp_path / "_frag.md", "text\n")
    main = _write(tmp_path / "main.md", f"# T\n\n<!-- include: {frag} -->\n")
    with pytest.raises(RunbookSyntaxError) as excinfo:
        parse_file(main)
    assert [p.line for p in excinfo.value.problems] == [3]


def test_error_in_fragment_names_the_fragment(tmp_path: Path) -> None:
    frag = _write(tmp_path / "_frag.md", "text\n\n```sh {#e colour=red}\necho\n```\n")
    main = _write(tmp_path / "main.md", "# T\n\n<!-- include: _frag.md -->\n")
    with pytest.raises(RunbookSyntaxError) as excinfo:
        parse_file(main)
    (problem,) = excinfo.value.problems
    assert (problem.path.resolve(), problem.line) == (frag.resolve(), 3)


def test_fragment_parameters_merge_into_runbook_without_front_matter(tmp_path: Path) -> None:
    _write(tmp_path / "_p.md", "---\nparameters:\n  p:\n    type: int\n---\n")
    runbook = parse_file(_write(tmp_path / "main.md", "# T\n\n<!-- include: _p.md -->\n"))
    assert runbook.parameters["p"].type == "int"
    assert runbook.body_start_line == 1


def test_include_with_space_in_path_is_not_silently_dropped(tmp_path: Path) -> None:
    # The directive is an HTML comment, invisible in every guide: if it is not
    # honoured, the author must hear about it.
    _write(tmp_path / "shared parts" / "_f.md", "spliced text\n")
    main = _write(tmp_path / "main.md", "# T\n\n<!-- include: shared parts/_f.md -->\n")
    try:
        runbook = parse_file(main)
    except RunbookSyntaxError as err:
        assert [p.line for p in err.problems] == [3]
    else:
        assert "spliced text" in "".join(s.text for s in runbook.segments if isinstance(s, Prose))


def test_include_without_path_is_an_error(tmp_path: Path) -> None:
    main = _write(tmp_path / "main.md", "# T\n\n<!-- include: -->\n")
    with pytest.raises(RunbookSyntaxError) as excinfo:
        parse_file(main)
    assert [p.line for p in excinfo.value.problems] == [3]


def test_fragments_are_parsed_on_their_own(tmp_path: Path) -> None:
    # A list left open at the end of a fragment must not swallow the including file's
    # next block, and a fragment without a final newline must not glue onto it.
    _write(tmp_path / "_list.md", "1. item")
    main = _write(tmp_path / "main.md", "<!-- include: _list.md -->\n```sh {#x}\necho\n```\n")
    (step,) = parse_file(main).steps
    assert (step.id, step.body, step.span.start_line, step.prefix) == ("x", "echo\n", 2, "")


def test_fragment_role_used_by_including_step(tmp_path: Path) -> None:
    _write(tmp_path / "_shared" / "roles.md", "---\nroles:\n  dc: Domain controller\n---\n")
    main = _write(
        tmp_path / "main.md",
        "<!-- include: _shared/roles.md -->\n\n```cmd {#x target=dc}\nver\n```\n",
    )
    runbook = parse_file(main)
    assert runbook.step("x").target == "dc"
    assert runbook.step("x").span.start_line == 3


# --------------------------------------------------------------------------
# Every real runbook in the repository parses
# --------------------------------------------------------------------------
def _runbook_files() -> list[Path]:
    base = ROOT / "runbooks"
    if not base.is_dir():
        return []
    return sorted(
        p
        for p in base.rglob("*.md")
        if not any(part.startswith("_") for part in p.relative_to(base).parts)
        and p.name not in {"FORMAT.md", "README.md"}  # format documentation, not a runbook
    )


RUNBOOK_FILES = _runbook_files()
_STEP_FENCE = re.compile(r"^[\s>]*(\d+[.)]\s+|[-*+]\s+)?(`{3,}|~{3,})[^`]*\{[^}]*#")


@pytest.mark.parametrize(
    "path",
    RUNBOOK_FILES
    or [pytest.param(None, marks=pytest.mark.skip(reason="no runbooks under runbooks/ yet"))],
    ids=lambda p: str(p.relative_to(ROOT)) if isinstance(p, Path) else "none",
)
def test_every_runbook_parses(path: Path) -> None:
    runbook = parse_file(path)
    assert runbook.steps, f"{path} has no steps"
    assert len({s.id for s in runbook.steps}) == len(runbook.steps)
    # A fence line with an {#id} left in prose is a step lost to a container or
    # indentation mistake (over-indented into a code block, lazy list line...).
    lost = [
        line
        for seg in runbook.segments
        if isinstance(seg, Prose)
        for line in seg.text.splitlines()
        if _STEP_FENCE.match(line)
    ]
    assert lost == [], f"{path}: step fences left in prose"
    # A fence line inside a command body is a fence that swallowed its neighbour.
    swallowed = [
        (step.id, line)
        for step in runbook.steps
        if step.is_command
        for line in step.body.splitlines()
        if re.match(r"^\s*(`{3,}|~{3,})", line)
    ]
    assert swallowed == [], f"{path}: fence lines inside command bodies"


_BOMB_SCRIPT = """
import resource, sys
from pathlib import Path
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
from runbook_engine.errors import RunbookSyntaxError
from runbook_engine.source.parser import parse_text
lines = ["---", "lint:", "  a0: &a0 [x, x, x, x, x, x, x, x, x]"]
for n in range(1, 10):
    lines.append(f"  a{n}: &a{n} [" + ", ".join([f"*a{n - 1}"] * 9) + "]")
where = sys.argv[1]
lines += [where + ":", "  dc: *a9"] if where == "roles" else ["parameters:", "  p:",
          "    type: string", "    description: *a9"]
try:
    parse_text("\\n".join([*lines, "---", "# T", ""]), Path("bomb.md"))
except RunbookSyntaxError as err:
    print("error", err.problems[0].line)
else:
    print("parsed")
"""


@pytest.mark.skipif(sys.platform == "win32", reason="uses RLIMIT_AS")
@pytest.mark.parametrize("where", ["roles", "parameters"])
def test_yaml_alias_bomb_in_a_value_does_not_exhaust_memory(where: str) -> None:
    # 9**10 list items behind one alias: turning the value into text (str()) would need
    # gigabytes; run in a child with 1 GiB of address space so a regression fails cleanly.
    done = subprocess.run(
        [sys.executable, "-c", _BOMB_SCRIPT, where],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[0] in ("error", "parsed")


def test_check_must_be_a_step_that_runs_unattended() -> None:
    # Found by a new user: check= naming an approval step ran "successfully" with an error.
    text = (
        "```approval {#cab}\nrequired: 1\napprovers: [a]\n```\n\n```sh {#c check=cab}\necho\n```\n"
    )
    with pytest.raises(RunbookSyntaxError) as excinfo:
        parse(text)
    assert [(p.code, p.line) for p in excinfo.value.problems] == [("RB118", 6)]


def test_unknown_front_matter_keys_are_kept_not_refused() -> None:
    # Another tool's keys (issue 15): kept as written, with their lines; lint warns (RB320).
    rb = parse("---\nid: x\nms.author: jdoe\ncolour: red\n---\n# T\n", PATH)
    assert rb.foreign == {"ms.author": "jdoe", "colour": "red"}
    assert rb.foreign_lines == {"ms.author": 3, "colour": 4}
    assert rb.id == "x" and not rb.templated


def test_unknown_keys_in_a_fragment_are_still_errors(tmp_path: Path) -> None:
    _write(tmp_path / "_frag.md", "---\ncolour: red\n---\ntext\n")
    main = _write(tmp_path / "main.md", "# T\n\n<!-- include: _frag.md -->\n")
    with pytest.raises(RunbookSyntaxError, match="colour"):
        parse_file(main)
