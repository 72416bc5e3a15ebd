"""Tests for ``runbook lint`` (issue 6, part 3): runbook_engine.lint.check and runbook_engine.lint.rules.

Every rule has a fixture that triggers it (``rbNNN-bad.md``) and one that does
not (``rbNNN-good.md``) in tests/fixtures/lint/.  Expected places are given as
a needle: the 1-based line and column where the needle first occurs in the
fixture file, so a finding must point at the exact text.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from runbook_engine.errors import Problem
from runbook_engine.lint.check import lint_file, lint_paths, runbook_files
from runbook_engine.lint.rules import RULES
from runbook_engine.lint.rules.context import TEMPLATE_MARK, mask_templates
from runbook_engine.lint.rules.hosts import looks_like_host
from runbook_engine.lint.rules.secrets import is_literal_secret

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "lint"


def place(path: Path, needle: str) -> tuple[int, int]:
    """Return the 1-based (line, column) of the first occurrence of ``needle`` in ``path``."""
    for number, line in enumerate(path.read_text(encoding="utf-8").split("\n"), start=1):
        col = line.find(needle)
        if col >= 0:
            return number, col + 1
    raise AssertionError(f"{needle!r} not in {path}")


def places(problems: list[Problem], code: str) -> set[tuple[str, int, int]]:
    return {(Path(p.path).name, p.line, p.col) for p in problems if p.code == code}


# (fixture, code, [(file, needle, offset)]): every finding of ``code`` and nothing else;
# the finding's column is the needle's plus ``offset``.
BAD = [
    ("rb301-bad.md", "RB301", [("rb301-bad.md", "```cmd {#svc-start", 0)]),
    ("rb302-bad.md", "RB302", [("rb302-bad.md", "```cmd {#svc-start", 0)]),
    (
        "rb303-bad.md",
        "RB303",
        [
            ("rb303-bad.md", "```manual {#set-profile", 0),
            ("rb303-bad.md", "```manual {#check-profile", 0),
            ("rb303-bad.md", "```manual {#reset-profile", 0),
        ],
    ),
    (
        "rb304-bad.md",
        "RB304",
        [("rb304-bad.md", "old_setting:", 0), ("_shared/unused-param.md", "fragment_only:", 0)],
    ),
    (
        "rb305-bad.md",
        "RB305",
        [
            ("rb305-bad.md", "Secret123", 0),
            ("rb305-bad.md", "Hunter22", 0),
            ("rb305-bad.md", "S3cr3t!", 0),
            ("rb305-bad.md", "-Password 'x'", len("-Password '")),
            ("rb305-bad.md", "AKIAIOSFODNN7EXAMPLE", 0),
            ("rb305-bad.md", "pa55word", 0),
            ("rb305-bad.md", "ghp_", 0),
            ("rb305-bad.md", "-----BEGIN RSA PRIVATE KEY", 0),
        ],
    ),
    (
        "rb306-bad.md",
        "RB306",
        [
            ("rb306-bad.md", "10.1.2.30", 0),
            ("rb306-bad.md", "mail.example.com", 0),
            ("rb306-bad.md", "fileserver.corp.local", 0),
            ("rb306-bad.md", "internaldomain.local", 0),
            ("rb306-bad.md", "owa.contoso.com", 0),
            ("rb306-bad.md", "*.internaldomain.local", 0),
        ],
    ),
    ("rb307-bad.md", "RB307", [("rb307-bad.md", "{{ exchange_fqdn }};", 0)]),
    (
        "rb310-bad.md",
        "RB310",
        [("rb310-bad.md", '%IS%" -limit', 0), ("rb310-bad.md", "!IS!\" -limit 0')", 0)],
    ),
    (
        "rb311-bad.md",
        "RB311",
        [("rb311-bad.md", 'eval "ls', 0), ("rb311-bad.md", "print(eval", 0)],
    ),
]


@pytest.mark.parametrize(("fixture", "code", "expected"), BAD, ids=[b[0] for b in BAD])
def test_bad_fixture_triggers_its_rule_at_the_right_place(fixture, code, expected):
    problems = lint_file(FIXTURES / fixture)
    want = set()
    for file, needle, offset in expected:
        line, col = place(FIXTURES / file, needle)
        want.add((Path(file).name, line, col + offset))
    assert places(problems, code) == want
    assert {p.code for p in problems} == {code}, [p.format() for p in problems]
    assert all(p.severity == "warning" for p in problems)


GOOD = sorted(p.name for p in FIXTURES.glob("rb3*-good.md"))


def test_every_rule_has_a_good_and_a_bad_fixture():
    assert sorted(RULES) == [f"RB30{n}" for n in range(1, 8)] + ["RB310", "RB311"] + [
        f"RB32{n}" for n in range(4)
    ]
    for code in RULES:
        assert (FIXTURES / f"{code.lower()}-bad.md").is_file()
        assert (FIXTURES / f"{code.lower()}-good.md").is_file()


@pytest.mark.parametrize("fixture", GOOD)
def test_good_fixture_is_clean(fixture):
    problems = lint_file(FIXTURES / fixture)
    assert problems == [], [p.format() for p in problems]


def test_step_inside_a_list_item_reports_the_fence_column():
    (problem,) = lint_file(FIXTURES / "rb302-bad.md")
    assert (problem.line, problem.col) == place(FIXTURES / "rb302-bad.md", "```cmd {#svc-start")
    assert problem.col == 4


def test_crlf_file_gives_the_same_places(tmp_path):
    source = (FIXTURES / "rb306-bad.md").read_text(encoding="utf-8")
    crlf = tmp_path / "rb306-bad.md"
    crlf.write_bytes(source.replace("\n", "\r\n").encode())
    lf = [(p.line, p.col, p.code) for p in lint_file(FIXTURES / "rb306-bad.md")]
    assert [(p.line, p.col, p.code) for p in lint_file(crlf)] == lf


# ---------------------------------------------------------------- disables


def test_disable_with_reason_silences_the_rule():
    assert lint_file(FIXTURES / "disable-ok.md") == []


def test_disable_for_steps_silences_only_those_steps():
    problems = lint_file(FIXTURES / "disable-steps.md")
    assert [(p.code, p.line) for p in problems] == [
        ("RB302", place(FIXTURES / "disable-steps.md", "{#flush")[0])
    ]


def test_disable_problems_are_warnings_with_codes():
    path = FIXTURES / "disable-bad.md"
    problems = lint_file(path)
    got = sorted((p.code, p.line) for p in problems)
    assert got == sorted(
        [
            ("RB311", place(path, "RB302:")[0]),
            ("RB312", place(path, "RB999:")[0]),
            ("RB312", place(path, "RB132:")[0]),
            ("RB313", place(path, "RB301:")[0]),
            # RB301 is disabled for a step that does not exist, so 'restart' still warns;
            # RB302 is disabled without a reason: disabled all the same, and RB311 says so.
            ("RB301", place(path, "{#restart")[0]),
        ]
    )
    assert all(p.severity == "warning" for p in problems)


def test_malformed_lint_key_is_an_error():
    (problem,) = lint_file(FIXTURES / "disable-malformed.md")
    assert (problem.code, problem.severity, problem.line) == ("RB310", "error", 2)


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("fixture", "code", "needle"),
    [
        ("error-syntax.md", "RB116", "```cmd {#restart"),
        ("error-undefined.md", "RB132", "{{ reason }}"),
        ("error-probe.md", "RB403", "port: 99999"),
    ],
)
def test_parser_tailoring_and_probe_errors_are_errors(fixture, code, needle):
    problems = lint_file(FIXTURES / fixture)
    errors = [p for p in problems if p.severity == "error"]
    assert [(p.code, p.line) for p in errors] == [(code, place(FIXTURES / fixture, needle)[0])]


def test_tailoring_error_does_not_hide_warnings():
    problems = lint_file(FIXTURES / "error-undefined.md")
    assert sorted(p.code for p in problems) == ["RB132", "RB301"]


# ---------------------------------------------------------------- detectors


@pytest.mark.parametrize(
    ("line", "flagged"),
    [
        ("ping mail.example.com", ["mail.example.com"]),
        ("ping exchange1.internaldomain.local", ["exchange1.internaldomain.local"]),
        ("dir \\\\files.corp.local\\share", ["files.corp.local"]),
        ("open https://owa.contoso.com/owa", ["owa.contoso.com"]),
        ("mail admin@contoso.com", ["contoso.com"]),
        ("ping 192.168.10.5", ["192.168.10.5"]),
        ("ping heise.de.", ["heise.de."]),
        ("reg query HKLM\\SYSTEM\\CurrentControlSet\\Services\\NTDS\\Parameters", []),
        ("cscript %SystemDrive%\\Inetpub\\AdminScripts\\adsutil.vbs GET W3SVC/1/Root/Rpc", []),
        ("sysocmgr /i:%windir%\\inf\\sysoc.inf /u:C:\\x\\on.txt", []),
        ("regsvr32 C:\\WINDOWS\\system32\\a.b.dll", []),
        ("start https://{{ h }}/rpc/rpcproxy.dll", []),
        ("echo 1.2.3 and 6.5.7638.2 and 5.2.", []),
        ("ping 127.0.0.1 & ping 0.0.0.0 & route add 0.0.0.0 mask 255.255.255.0", []),
        ("echo {{ exchange_fqdn }} {{ a }}.{{ b }}", []),
        ("x = re.fullmatch(p, s) or m.group(1) or os.path.join(a, b)", []),
        (
            "[System.IO.File]::ReadAllText($p); Add-Type -AssemblyName 'System.Web, Version=2.0.0.0'",
            [],
        ),
        ("outlook.exe /rpcdiag & notepad readme.md & python setup.py", []),
        ("start https://support.microsoft.com/kb/833401", []),
    ],
)
def test_host_detector(tmp_path, line, flagged):
    problems = _lint_body(tmp_path, "cmd", line)
    found = [p for p in problems if p.code == "RB306"]
    assert len(found) == len(flagged), [p.format() for p in found]
    assert [
        line[p.col - 1 : p.col - 1 + len(f)] for p, f in zip(found, flagged, strict=True)
    ] == flagged


@pytest.mark.parametrize(
    ("line", "flagged"),
    [
        ("net use x: \\\\srv\\s /user:d\\u /p:Secret123", True),
        ("cmdkey /add:srv /user:u /pass:Secret123", True),
        ("set PASSWORD=Hunter22", True),
        ("$Password = 'correct horse'", True),
        ('Connect -Password "p"', True),
        ("--token abc123def", True),
        ("secret: Sup3r!", True),
        ("net use x: \\\\srv\\s /p:{{ share_password }}", False),
        ("net use x: \\\\srv\\s /p:yes", False),
        ("set PASSWORD=%RUNBOOK_PW%", False),
        ("$password = Read-Host -AsSecureString", False),
        ("password = os.environ['X']", False),
        ("for /f \"tokens=2,*\" %%a in ('dir') do echo %%a", False),
        ("password_file = 'C:/pw.txt'", False),
        ("the password: prompt appears", False),
    ],
)
def test_secret_detector(tmp_path, line, flagged):
    problems = _lint_body(tmp_path, "cmd", line)
    assert any(p.code == "RB305" for p in problems) is flagged, [p.format() for p in problems]


@pytest.mark.parametrize(
    ("line", "entries"),
    [
        (
            'reg add K /v ValidPorts /d "E1:100-5000;E1:6001-6002;E1.internaldomain.local;E1:6004" /f',
            ["E1.internaldomain.local"],
        ),
        ("reg add K /v ValidPorts /d E1.internaldomain.local; /f", ["E1.internaldomain.local"]),
        ('reg add K /v ValidPorts /d "{{ fqdn }}:6004;{{ fqdn }};{{ other }}" /f', ["{{ fqdn }}"]),
        ('reg add K /v ValidPorts /d "E1:6001-6002;E1:6004" /f', []),
        ("set PATH=C:\\Tools;%PATH%", []),
        ("import re; import sys", []),
        ("echo ValidPorts is set; see the note", []),
    ],
)
def test_host_list_detector(tmp_path, line, entries):
    problems = _lint_body(tmp_path, "cmd", line)
    found = [p for p in problems if p.code == "RB307"]
    assert [re.search(r"entry '(.*?)' ", p.message).group(1) for p in found] == entries
    for p, entry in zip(found, entries, strict=True):
        assert line[p.col - 1 :].startswith(entry)


def _lint_body(tmp_path: Path, kind: str, line: str) -> list[Problem]:
    path = tmp_path / "one.md"
    path.write_text(
        "---\nroles:\n  srv: s\nparameters:\n  fqdn: {type: fqdn}\n  other: {type: string}\n"
        "  h: {type: hostname}\n  a: {type: string}\n  b: {type: string}\n"
        "  exchange_fqdn: {type: fqdn}\n  share_password: {type: string, secret: true}\n---\n"
        f"```{kind} {{#s .precheck target=srv}}\n{line}\n```\n",
        encoding="utf-8",
    )
    return lint_file(path)


def test_mask_templates_keeps_offsets():
    text = "a {{ x }}.b {% if y %}\nc{# note #}d {{\nz }}"
    masked = mask_templates(text)
    assert len(masked) == len(text)
    assert masked.split("\n")[0] == "a " + TEMPLATE_MARK * 7 + ".b " + " " * len("{% if y %}")
    assert masked.count("\n") == text.count("\n")


@pytest.mark.parametrize(
    ("token", "before", "host"),
    [
        ("mail.example.com", " ", True),
        ("rpcproxy.dll", "/", False),
        ("x.example.com", "c/", False),
        ("x.example.com", "//", True),
        ("os.path", " ", False),
        ("step.id", " ", False),
        ("contoso.local", " ", True),
        ("*.contoso.local", " ", True),
        ("a.b.c", " ", False),
    ],
)
def test_looks_like_host(token, before, host):
    assert looks_like_host(token, before) is host


@pytest.mark.parametrize(
    ("value", "quoted", "secret"),
    [
        ("Secret123", False, True),
        ("x", True, True),
        ("", True, False),
        ("yes", False, False),
        ("$pw", False, False),
        ("%PW%", False, False),
        (TEMPLATE_MARK * 5, False, False),
        ("getpass()", False, False),
        ("required", False, False),
        ("<password>", True, False),
    ],
)
def test_is_literal_secret(value, quoted, secret):
    assert is_literal_secret(value, quoted) is secret


# ---------------------------------------------------------------- paths, CLI, library


def test_fragment_problem_is_listed_once_for_all_runbooks(tmp_path):
    (tmp_path / "_shared").mkdir()
    (tmp_path / "_shared" / "ask.md").write_text(
        "```manual {#ask .precheck}\nAsk the user.\n```\n", encoding="utf-8"
    )
    for name in ("one", "two"):
        (tmp_path / f"{name}.md").write_text("<!-- include: _shared/ask.md -->\n", encoding="utf-8")
    files, problems = lint_paths([tmp_path])
    assert [f.name for f in files] == ["one.md", "two.md"]
    assert [(Path(p.path).name, p.code) for p in problems] == [("ask.md", "RB303")]


def test_runbook_files_skips_fragments_and_docs(tmp_path):
    for rel in ("a.md", "_frag.md", "_shared/b.md", "sub/c.md", "README.md", ".hidden/d.md"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("# x\n", encoding="utf-8")
    assert [p.relative_to(tmp_path).as_posix() for p in runbook_files([tmp_path])] == [
        "a.md",
        "sub/c.md",
    ]


def _cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runbook_engine", "lint", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_cli_text_output_and_exit_status():
    warn = _cli(str(FIXTURES / "rb306-bad.md"))
    assert warn.returncode == 0, warn.stderr
    lines = warn.stdout.splitlines()
    assert len(lines) == 6
    for line in lines:
        assert re.match(r"^\S*rb306-bad\.md:\d+:\d+: RB306 step '", line), line
    assert "0 errors, 6 warnings" in warn.stderr
    error = _cli(str(FIXTURES / "error-undefined.md"), str(FIXTURES / "rb301-good.md"))
    assert error.returncode == 2  # bad input, as `runbook run` says of the same runbook
    assert "RB132" in error.stdout and "2 runbooks checked, 1 error, 1 warning" in error.stderr


def test_cli_json_output():
    result = _cli("--json", str(FIXTURES / "rb307-bad.md"))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    old = _cli("--format", "json", str(FIXTURES / "rb307-bad.md"))  # the old name still works
    assert old.stdout == result.stdout and "write --json" in old.stderr
    (item,) = json.loads(result.stdout)
    line, col = place(FIXTURES / "rb307-bad.md", "{{ exchange_fqdn }};")
    assert item["code"] == "RB307" and item["severity"] == "warning"
    assert (item["line"], item["col"]) == (line, col)
    assert item["path"].endswith("rb307-bad.md")


def test_cli_defaults_to_runbooks_folder(tmp_path):
    (tmp_path / "runbooks").mkdir()
    (tmp_path / "runbooks" / "x.md").write_text("# X\n\n```sh {#s .precheck}\ntrue\n```\n")
    result = _cli(cwd=tmp_path)
    assert result.returncode == 0 and "1 runbook checked, 0 errors, 0 warnings" in result.stderr


def test_library_is_clean():
    """The whole library (runbooks/) lints with no error and no warning (issue 6, Done when)."""
    files, problems = lint_paths([ROOT / "runbooks"])
    assert files, "no runbooks found"
    assert problems == [], "\n" + "\n".join(p.format() for p in problems)


def test_generated_500_runbook_library_lints(tmp_path):
    bench = ROOT / "benchmarks" / "bench_core.py"
    spec = importlib.util.spec_from_file_location("bench_core", bench)
    assert spec is not None and spec.loader is not None
    bench_core = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_core)
    bench_core.generate_library(tmp_path, 500)
    files, problems = lint_paths([tmp_path])
    assert len(files) == 500
    assert not [p for p in problems if p.severity == "error"]
    assert {p.code for p in problems} <= set(RULES)
    assert len({p.path for p in problems}) == 500  # each generated runbook has findings


def test_cli_lists_rules():
    result = _cli("--rules", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    warnings = [r["code"] for r in rows if r["severity"] == "warning"]
    errors = [r["code"] for r in rows if r["severity"] == "error"]
    assert warnings == sorted(RULES)
    # the errors users actually see are listed too, each once
    assert {"RB000", "RB116", "RB132", "RB201", "RB214", "RB222"} <= set(errors)
    assert len(errors) == len(set(errors)) and all(r["summary"] for r in rows)


def test_rb302_leaves_manual_steps_alone(tmp_path):
    book = tmp_path / "m.md"
    book.write_text(
        "---\nroles: {ops: Operations}\n---\n# M\n\n"
        "```manual {#tell target=ops}\nTell the users.\n```\n\n"
        "```sh {#change}\ntouch x\n```\n\n```sh {#v .verify}\ntest -e x\n```\n",
        encoding="utf-8",
    )
    result = _cli(str(book))
    found = [line for line in result.stdout.splitlines() if "RB302" in line]
    assert len(found) == 1 and "'change'" in found[0]


def test_not_utf8_and_bad_set_messages_say_where_and_what_to_do(tmp_path):
    book = tmp_path / "latin1.md"
    book.write_bytes(b"# T\n\nCaf\xe9 au lait\n")
    result = _cli(str(book))
    assert "latin1.md:3:" in result.stdout and "RB000" in result.stdout
    assert "byte 0xe9 at column 4" in result.stdout and "save the file as UTF-8" in result.stdout
    env = tmp_path / "env.yaml"
    env.write_bytes(b"name: x\nfacts:\n  a: caf\xe9\n")
    book.with_name("ok.md").write_text("---\nparameters: {n: {type: int}}\n---\n# OK\n")
    other = subprocess.run(
        [sys.executable, "-m", "runbook_engine", "plan", str(book.with_name("ok.md")), "--env",
         str(env)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert other.returncode == 2
    assert "env.yaml:3: RB201 file is not UTF-8 text: byte 0xe9" in other.stderr
    bad_set = subprocess.run(
        [sys.executable, "-m", "runbook_engine", "plan", str(book.with_name("ok.md")), "--set",
         "n=abc"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert bad_set.returncode == 2
    assert bad_set.stderr.startswith("--set n: RB222 parameter 'n' (int)")


def test_registry_step_data_with_a_port_less_entry(tmp_path):
    """A ``registry`` step's YAML body names ValidPorts on one line and the data on another."""
    from dataclasses import replace

    from runbook_engine.lint.rules import LintContext
    from runbook_engine.lint.rules.hosts import validports_missing_port
    from runbook_engine.source.parser import parse_text

    body = (
        "key: HKLM\\SOFTWARE\\Microsoft\\Rpc\\RpcProxy\nvalue: ValidPorts\ntype: REG_SZ\n"
        'data: "E1:6001-6002;E1.internaldomain.local;E1:6004"\n'
    )
    path = tmp_path / "reg.md"
    path.write_text(f"# R\n\n```sh {{#vp}}\n{body}```\n", encoding="utf-8")
    runbook = parse_text(path.read_text(encoding="utf-8"), path)
    step = replace(runbook.steps[0], kind="registry")
    runbook = replace(runbook, segments=(step,))
    (finding,) = validports_missing_port(LintContext(runbook))
    assert (finding.problem.line, finding.problem.col) == place(path, "E1.internaldomain.local;")
    assert finding.step == "vp"
    # Without the word ValidPorts, entries with ports still make it a host list ...
    plain = replace(step, kind="sh", body=body.replace("ValidPorts", "Other"))
    assert len(list(validports_missing_port(LintContext(replace(runbook, segments=(plain,)))))) == 1
    # ... but a list with no port at all is not one.
    words = replace(plain, body="data: a.b;c.d;e\n")
    assert list(validports_missing_port(LintContext(replace(runbook, segments=(words,))))) == []


@pytest.mark.parametrize(
    ("kind", "body", "code"),
    [
        ("approval", "required: two\napprovers: [a]\n", "RB410"),
        ("approval", "required: 1\n", "RB410"),
        ("registry", "key: HKLM\\SOFTWARE\\X\nvalue: V\ntype: REG_DWORD\ndata: lots\n", "RB412"),
        ("service", "name: IMAP4Svc\nstart: sometimes\n", "RB412"),
    ],
)
def test_lint_checks_yaml_bodies_like_run_does(
    tmp_path: Path, kind: str, body: str, code: str
) -> None:
    # Found by a new user: lint passed approval bodies that `runbook run` then rejected.
    path = tmp_path / "y.md"
    path.write_text(f"---\nroles:\n  srv: a server\n---\n```{kind} {{#s target=srv}}\n{body}```\n")
    codes = {p.code for p in lint_file(path) if p.severity == "error"}
    assert code in codes, codes


def test_lint_reports_missing_required_approval(tmp_path: Path) -> None:
    path = tmp_path / "a.md"
    path.write_text("---\napproval: required\n---\n```sh {#c}\necho hi\n```\n")
    assert [p.line for p in lint_file(path) if p.code == "RB411"] == [4]


def test_bad_estimate_is_an_error_at_its_line(tmp_path):
    runbook = tmp_path / "estimate.md"
    runbook.write_text(
        "---\nid: estimate\n---\n# Estimate\n\n```sh {#a estimate=5m}\ntrue\n```\n\n"
        "```sh {#b estimate=5min}\ntrue\n```\n"
    )
    problems = lint_file(runbook)
    errors = [p for p in problems if "estimate" in p.message]
    assert len(errors) == 1, problems
    assert errors[0].line == 10 and errors[0].code == "RB116"
    assert "estimate='5min' must be a duration such as 5m, 90s or 1h30m" in errors[0].message
    assert str(runbook) in errors[0].format()


def test_lint_parses_each_template_once():
    """Tailoring and RB304 share one syntax tree per template text (issue 12, part 4)."""
    from runbook_engine.lint.rules.params import template_names
    from runbook_engine.tailor import sandbox

    sandbox._parse_cached.cache_clear()
    template_names.cache_clear()
    problems = lint_file(FIXTURES / "rb304-good.md")
    assert problems == []
    info = sandbox._parse_cached.cache_info()
    # prose, the fragment, bodies and when= conditions: each text parsed once (a miss)
    # and found again by RB304 (a hit); nothing parsed twice
    assert info.misses >= 4
    assert info.hits >= info.misses
