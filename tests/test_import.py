"""``runbook import`` (issue 15, item 6): every format's constructs, the seed article, safety.

Every import is run through the real command, then the real ``runbook lint`` (no errors)
and ``runbook plan OUT --env ENV`` (succeeds) on what it wrote.  The seed article's import
is compared with the golden output in ``tests/golden/import/seed/``
(``UPDATE_GOLDEN=1 pytest tests/test_import.py -k golden`` regenerates it).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from runbook_engine.cli import cli
from runbook_engine.errors import InputError
from runbook_engine.source.importers import IMPORTERS, detect_format, read_text
from runbook_engine.source.parser import parse_file

FIXTURES = Path(__file__).parent / "fixtures" / "import"
SEED = Path("/work/shared/seeds/000_74991bef89c2f338.txt")
GOLDEN = Path(__file__).parent / "golden" / "import" / "seed"
SEED_COPY = FIXTURES / "seed-article.txt"


def seed() -> Path:
    return SEED if SEED.is_file() else SEED_COPY


def runbook(*args: object) -> tuple[int, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=True)
    if isinstance(result.exception, InputError):
        return 2, str(result.exception)
    return result.exit_code, result.output


def imported(tmp_path: Path, source: Path, *extra: str) -> tuple[Path, dict]:
    out = tmp_path / "out"
    code, text = runbook("import", source, "-o", out, "--json", *extra)
    assert code == 0, text
    return out, json.loads(text)


def books(out: Path) -> list[Path]:
    return sorted(p for p in out.glob("*.md") if not p.name.startswith("_"))


def assert_lints_and_plans(out: Path) -> None:
    code, text = runbook("lint", out)
    assert code == 0 and " 0 errors" in text, text
    env = out / "environments" / "example.yaml"
    for book in books(out):
        code, text = runbook("plan", book, "--env", env)
        assert code == 0, f"{book.name}: {text}"


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("runme.md", "runme"),
        ("rundoc.md", "rundoc"),
        ("innovation.md", "innovation-engine"),
        ("markdown.md", "markdown"),
        ("article.html", "article"),
        ("article.md", "article"),
    ],
)
def test_auto_detects_the_format_and_the_output_lints_and_plans(
    tmp_path: Path, name: str, fmt: str
) -> None:
    source = FIXTURES / name
    assert detect_format(read_text(source), source) == fmt
    out, report = imported(tmp_path, source)
    assert report["format"] == fmt and report["runbooks"]
    assert_lints_and_plans(out)


def steps_of(path: Path) -> dict:
    return {s.id: s for s in parse_file(path).steps}


def test_runme_names_cwd_exclusion_and_front_matter(tmp_path: Path) -> None:
    out, report = imported(tmp_path, FIXTURES / "runme.md")
    steps = steps_of(out / "runme.md")
    assert set(steps) == {"install-deps", "write-config", "import-2"} or "install-deps" in steps
    assert steps["write-config"].kind == "bash" and steps["write-config"].attrs.get("cwd") == "conf"
    assert "never-run" not in steps  # excludeFromRunAll: an illustration
    whats = {m["what"] for m in report["mapped"]}
    assert any("runme front matter" in w and "01HF7BT3HEQBTBM9SSSFS3PQ3N" in w for w in whats)
    missing = {m["what"] for m in report["not_mapped"]}
    assert "Runme attribute interactive=false" in missing
    assert "front matter key 'category'" in missing
    assert any(s.kind == "bash" and "front matter's shell" in s.body for s in steps.values())


def test_rundoc_env_and_secret_blocks_become_parameters(tmp_path: Path) -> None:
    out, _ = imported(tmp_path, FIXTURES / "rundoc.md")
    book = parse_file(out / "rundoc.md")
    params = dict(book.parameters)
    assert params["release_host"].type == "fqdn" and params["deploy_password"].secret
    steps = {s.id: s for s in book.steps}
    assert set(steps) == {"build", "upload", "check"}  # the tag after the interpreter
    assert steps["upload"].body.startswith("export release_host={{ release_host }}\n")
    env = yaml.safe_load((out / "environments" / "example.yaml").read_text())
    assert env["parameters"]["release_dir"] == "/srv/release"
    assert "deploy_password" not in env["parameters"]  # a secret is never in a file


def test_innovation_engine_similarity_becomes_a_verification(tmp_path: Path) -> None:
    out, report = imported(tmp_path, FIXTURES / "innovation.md")
    steps = parse_file(out / "innovation.md").steps
    checks = [s for s in steps if s.kind == "manual"]
    assert [s.classes for s in checks] == [("verify",), ("verify",)] or all(
        "verify" in s.classes for s in checks
    )
    assert "at least 0.8" in checks[0].body and '"provisioningState"' in checks[0].body
    assert "regular expression `Succeeded`" in checks[1].body
    create = next(s for s in steps if "az group create" in s.body)
    assert create.body.startswith("export RESOURCE_GROUP={{ RESOURCE_GROUP }}\n")
    params = set(parse_file(out / "innovation.md").parameters)
    assert params == {"RESOURCE_GROUP", "REGION"}  # SUFFIX is computed, not a value
    assert any("expected_similarity=0.8" in m["what"] for m in report["mapped"])


def test_markdown_prompts_are_split_and_templates_kept_literal(tmp_path: Path) -> None:
    out, _ = imported(tmp_path, FIXTURES / "markdown.md")
    steps = parse_file(out / "markdown.md").steps
    first = steps[0]
    assert first.kind == "bash" and "$ " not in first.body and "notAfter" not in first.body
    assert "/etc/ssl/web.key" in first.body  # the continued command line
    assert steps[1].kind == "powershell" and steps[1].body == (
        "Restart-Service W3SVC\nGet-Service W3SVC\n"
    )
    text = (out / "markdown.md").read_text()
    assert "notAfter=Jun" in text and "{% raw %}docker ps --format '{{.Names}}'{% endraw %}" in text
    assert "<!-- include:" not in text  # an include in an imported file is never followed
    assert any(s.body == "systemctl reload nginx\n" for s in steps)  # inside a list item


def test_an_instruction_that_sets_a_service_is_one_service_step(tmp_path: Path) -> None:
    # "Set the “Print Spooler” service ..." stayed a manual step (the article "the"), and a
    # matched instruction was kept as a manual step too: the operator would do it twice.
    source = tmp_path / "spooler.md"
    source.write_text(
        "# Restart printing\n\n"
        "1. Set the “Print Spooler” service to Automatic and start it.\n"
        "2. Print a test page.\n"
    )
    out, _ = imported(tmp_path, source)
    (book_path,) = books(out)
    book = parse_file(book_path)
    assert [s.kind for s in book.steps] == ["service", "manual"], [s.kind for s in book.steps]
    svc = yaml.safe_load(book.steps[0].body)
    assert svc["display_name"] == "Print Spooler" and svc["start"] == "auto"
    assert svc["state"] == "running"
    assert "Print a test page" in book.steps[1].body
    assert "Set the “Print Spooler” service" in book_path.read_text()  # the words, as prose
    assert_lints_and_plans(out)


def test_article_html_registry_service_command_and_values(tmp_path: Path) -> None:
    out, _ = imported(tmp_path, FIXTURES / "article.html")
    book = parse_file(out / "enable-imap4-mail-server.md")
    kinds = [s.kind for s in book.steps]
    assert kinds.count("manual") == 3 and "registry" in kinds and "service" in kinds
    reg = next(s for s in book.steps if s.kind == "registry")
    assert yaml.safe_load(reg.body)["data"] == 200 and "REG_DWORD" in reg.body
    svc = yaml.safe_load(next(s for s in book.steps if s.kind == "service").body)
    assert svc == {
        "name": "IMAP4Svc",
        "display_name": "Microsoft Exchange IMAP4",
        "start": "auto",
        "state": "running",
    }
    types = {n: p.type for n, p in book.parameters.items()}
    assert types["mail_fqdn"] == "fqdn" and types["ip_address"] == "ipv4"
    assert types["postmaster_email"] == "email" and types["imap_port"] == "port"
    menu = book.steps[0].body
    assert "Administrative Groups –> First Administrative Group –> Servers" in menu


def test_article_markdown_procedures_and_domains(tmp_path: Path) -> None:
    out, report = imported(tmp_path, FIXTURES / "article.md", "--from", "article")
    assert [b["id"] for b in report["runbooks"]] == ["add-dns-record", "allow-web-port"]
    book = parse_file(out / "add-dns-record.md")
    types = {n: p.type for n, p in book.parameters.items()}
    assert types["corp_domain"] == "domain" and types["dc1_fqdn"] == "fqdn"
    assert "Forward Lookup Zones > {{ corp_domain }}" in book.steps[0].body
    cmd = next(s for s in book.steps if s.kind == "cmd")
    assert "{{ dc1_fqdn }}" in cmd.body
    assert_lints_and_plans(out)


def test_seed_article_gives_runbooks_that_plan(tmp_path: Path) -> None:
    out, report = imported(tmp_path, seed())
    assert len(report["runbooks"]) >= 9
    assert_lints_and_plans(out)
    numbered = len(re.findall(r"^\s*\d{1,2}\.\S|^\s*\d{1,2}\.\s", seed().read_text(), re.M))
    manual = sum(1 for b in books(out) for s in parse_file(b).steps if s.kind == "manual")
    assert numbered == 147 and manual * 5 >= numbered * 4, (manual, numbered)
    registry = [
        yaml.safe_load(s.body)
        for b in books(out)
        for s in parse_file(b).steps
        if s.kind == "registry"
    ]
    found = {(r["key"], r["value"].lower()) for r in registry}
    assert ("HKLM\\SOFTWARE\\Microsoft\\Rpc\\RpcProxy", "validports") in found
    assert (
        "HKLM\\SYSTEM\\CurrentControlSet\\Services\\NTDS\\Parameters",
        "nspi interface protocol sequences",
    ) in found
    nspi = next(r for r in registry if r["value"].lower().startswith("nspi"))
    assert nspi["type"] == "REG_MULTI_SZ" and nspi["data"] == ["ncacn_http:6004"]


def test_seed_import_matches_golden(tmp_path: Path) -> None:
    out, _ = imported(tmp_path, seed())
    made = {p.relative_to(out).as_posix(): p.read_text() for p in out.rglob("*") if p.is_file()}
    made = {k: v.replace(seed().name, "SEED") for k, v in made.items()}
    if os.environ.get("UPDATE_GOLDEN") == "1":
        shutil.rmtree(GOLDEN, ignore_errors=True)
        for name, text in made.items():
            (GOLDEN / name).parent.mkdir(parents=True, exist_ok=True)
            (GOLDEN / name).write_text(text)
    assert GOLDEN.is_dir(), f"no golden output; UPDATE_GOLDEN=1 pytest {__file__} -k golden"
    golden = {
        p.relative_to(GOLDEN).as_posix(): p.read_text() for p in GOLDEN.rglob("*") if p.is_file()
    }
    assert made == golden


def test_refuses_to_overwrite_without_force_and_writes_only_under_output(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert runbook("import", FIXTURES / "article.md", "-o", out)[0] == 0
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert all(str(p).startswith("out") for p in before)
    (out / "add-dns-record.md").write_text("mine\n")
    code, text = runbook("import", FIXTURES / "article.md", "-o", out)
    assert code == 2 and "--force" in text
    assert (out / "add-dns-record.md").read_text() == "mine\n"
    assert runbook("import", FIXTURES / "article.md", "-o", out, "--force")[0] == 0
    assert (out / "add-dns-record.md").read_text().startswith("---\n")


def test_a_symbolic_link_in_the_output_folder_cannot_take_the_import_elsewhere(
    tmp_path: Path,
) -> None:
    # Found by an attack: out/environments -> elsewhere wrote elsewhere/example.yaml.
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (out / "environments").symlink_to(elsewhere)
    code, text = runbook("import", FIXTURES / "article.md", "-o", out)
    assert code == 2 and "outside" in text and "symbolic link" in text, text
    assert list(elsewhere.iterdir()) == [] and sorted(p.name for p in out.iterdir()) == [
        "environments"
    ]


def test_a_command_holding_endraw_stays_literal(tmp_path: Path) -> None:
    # Found by an attack: a body holding "endraw" was left templated, so {{ 7*7 }} became 49.
    src = tmp_path / "src.md"
    src.write_text(
        "# T\n\n```sh\necho '{% endraw %}{{ 7*7 }}{{ environment.name }}{% raw %}'\n```\n"
    )
    out = tmp_path / "out"
    assert runbook("import", src, "-o", out)[0] == 0
    [book] = books(out)
    code, text = runbook("plan", book, "--env", out / "environments" / "example.yaml")
    assert code == 0, text
    assert "{% endraw %}{{ 7*7 }}{{ environment.name }}{% raw %}" in text
    assert "49" not in text


def test_one_runbook_to_a_file_with_its_environment_beside_it(tmp_path: Path) -> None:
    target = tmp_path / "book.md"
    code, _ = runbook("import", FIXTURES / "rundoc.md", "-o", target)
    assert code == 0 and (tmp_path / "book-env.yaml").is_file()
    assert runbook("plan", target, "--env", tmp_path / "book-env.yaml")[0] == 0
    code, text = runbook(
        "import", FIXTURES / "article.md", "--from", "article", "-o", tmp_path / "x.md"
    )
    assert code == 2 and "2 procedures" in text and not (tmp_path / "x.md").exists()


@pytest.mark.parametrize(
    ("data", "says"),
    [(b"\xff\xfe\x00bad", "not UTF-8"), (b"just words, no instruction\n", "no step found")],
)
def test_unreadable_input_is_one_clear_error(tmp_path: Path, data: bytes, says: str) -> None:
    source = tmp_path / "in.txt"
    source.write_bytes(data)
    code, text = runbook("import", source, "-o", tmp_path / "out")
    assert code == 2 and says in text and str(source) in text
    assert not (tmp_path / "out").exists()
    code, text = runbook("import", tmp_path / "missing.txt", "-o", tmp_path / "out")
    assert code == 2 and "cannot read" in text


def test_registry_names_every_format() -> None:
    assert list(IMPORTERS) == ["innovation-engine", "runme", "rundoc", "markdown", "article"]
