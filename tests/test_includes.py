"""Includes stay in the runbook library: no absolute paths, no ``..`` out, no symlinks out.

A fragment is spliced into guides, site pages and notebook downloads, so a runbook someone
sent you must not pull ``/etc/passwd`` or ``/proc/self/environ`` into them (RB123).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from runbook_engine.cli import main
from runbook_engine.errors import RunbookSyntaxError
from runbook_engine.source.parser import parse_file

SECRET = "TOP-SECRET-OUTSIDE-THE-LIBRARY"


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def lib(tmp_path: Path) -> Path:
    """``tmp/lib`` (the library) beside ``tmp/outside`` (a secret it must not reach)."""
    _write(tmp_path / "outside" / "secret.md", f"{SECRET}\n")
    _write(tmp_path / "lib" / "_shared" / "ok.md", "shared text\n\n<!-- include: _inner.md -->\n")
    _write(
        tmp_path / "lib" / "_shared" / "_inner.md", "inner text\n\n<!-- include: ../_top.md -->\n"
    )
    _write(tmp_path / "lib" / "_top.md", "top text\n")
    return tmp_path / "lib"


def _refused(main_md: Path, line: int, why: str, where: Path | None = None) -> None:
    with pytest.raises(RunbookSyntaxError) as excinfo:
        parse_file(main_md)
    problems = excinfo.value.problems
    assert [(p.code, p.line) for p in problems] == [("RB123", line)], excinfo.value.format()
    assert why in problems[0].message
    assert (problems[0].path or Path()).resolve() == (where or main_md).resolve()
    assert SECRET not in excinfo.value.format()


@pytest.mark.parametrize(
    ("target", "why"),
    [
        ("../../../../etc/passwd", "'..'"),
        ("../outside/secret.md", "'..'"),
        ("../../../../proc/self/environ", "'..'"),
        ("/etc/passwd", "absolute"),
        ("~/secret.md", "absolute"),
        ("C:/Windows/win.ini", "absolute"),
        ("\\\\server\\share\\x.md", "absolute"),
    ],
)
def test_paths_out_of_the_library_are_refused(lib: Path, target: str, why: str) -> None:
    main_md = _write(lib / "main.md", f"# T\n\ntext\n\n<!-- include: {target} -->\n")
    _refused(main_md, 5, why)


def test_absolute_path_to_a_file_inside_is_refused_too(lib: Path) -> None:
    main_md = _write(lib / "main.md", f"# T\n\n<!-- include: {lib / '_top.md'} -->\n")
    _refused(main_md, 3, "absolute")


def test_symlinked_fragment_pointing_outside_is_refused(lib: Path) -> None:
    (lib / "_frag.md").symlink_to(lib.parent / "outside" / "secret.md")
    main_md = _write(lib / "main.md", "# T\n\n<!-- include: _frag.md -->\n")
    _refused(main_md, 3, "symbolic link")


def test_symlinked_folder_pointing_outside_is_refused(lib: Path) -> None:
    (lib / "_linked").symlink_to(lib.parent / "outside", target_is_directory=True)
    main_md = _write(lib / "main.md", "# T\n\n<!-- include: _linked/secret.md -->\n")
    _refused(main_md, 3, "symbolic link")


def test_nested_include_keeps_the_top_level_root(lib: Path) -> None:
    # A fragment in a sub-folder may not climb out either: the root is the runbook's folder.
    frag = _write(lib / "_shared" / "_bad.md", "x\n\n<!-- include: ../../outside/secret.md -->\n")
    main_md = _write(lib / "main.md", "# T\n\n<!-- include: _shared/_bad.md -->\n")
    _refused(main_md, 3, "'..'", where=frag)


def test_legit_includes_still_work(lib: Path) -> None:
    (lib / "_alias.md").symlink_to(lib / "_top.md")  # a link that stays inside is fine
    main_md = _write(
        lib / "main.md",
        "# T\n\n<!-- include: _shared/ok.md -->\n\n<!-- include: ./_shared/../_alias.md -->\n",
    )
    text = "".join(getattr(s, "text", "") for s in parse_file(main_md).segments)
    assert "shared text" in text and "inner text" in text and text.count("top text") == 2


def test_runbook_library_env_widens_the_root_for_runbooks_inside_it(
    lib: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    main_md = _write(lib / "sub" / "main.md", "# T\n\n<!-- include: ../_top.md -->\n")
    monkeypatch.delenv("RUNBOOK_LIBRARY", raising=False)
    _refused(main_md, 3, "'..'")
    monkeypatch.setenv("RUNBOOK_LIBRARY", str(lib))
    assert "top text" in parse_file(main_md).segments[-1].text  # type: ignore[union-attr]
    # A library that does not hold the runbook is ignored: the runbook's folder stays the root.
    monkeypatch.setenv("RUNBOOK_LIBRARY", str(lib.parent / "outside"))
    _refused(main_md, 3, "'..'")


def _cli(capsys: pytest.CaptureFixture[str], *args: Any) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    out = capsys.readouterr()
    code = exc.value.code
    return (code if isinstance(code, int) else (0 if code is None else 1)), out.out + out.err


@pytest.mark.parametrize("command", [("render",), ("render", "--to", "ipynb"), ("lint",)])
def test_cli_refuses_and_lint_reports(
    lib: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    command: tuple[str, ...],
) -> None:
    monkeypatch.setenv("RUNBOOK_TEST_SECRET", SECRET)
    (lib / "_frag.md").symlink_to(lib.parent / "outside" / "secret.md")
    main_md = _write(
        lib / "main.md",
        "# T\n\n<!-- include: ../../../../proc/self/environ -->\n\n"
        "<!-- include: /etc/passwd -->\n\n<!-- include: _frag.md -->\n",
    )
    code, output = _cli(capsys, command[0], main_md, *command[1:])
    assert code == 2, output  # lint exits 2 for an error, as render does
    for line in (3, 5, 7):
        assert f"main.md:{line}" in output
    assert output.count("RB123") == 3
    assert SECRET not in output and "root:" not in output and "Traceback" not in output
    assert os.environ["RUNBOOK_TEST_SECRET"] == SECRET


def test_parse_file_reuses_a_parse_only_while_the_file_and_its_includes_are_unchanged(
    tmp_path: Path,
) -> None:
    """One command reads a runbook several times: the same bytes parse once, any change
    to the runbook or to a file it includes parses anew (content hash and steps follow)."""
    lib = tmp_path / "lib"
    shared = _write(lib / "_shared" / "step.md", "```sh {#one}\necho one\n```\n")
    main_md = _write(lib / "main.md", "# T\n\n<!-- include: _shared/step.md -->\n")
    first = parse_file(main_md)
    assert parse_file(main_md) is first
    shared.write_text("```sh {#two}\necho two\n```\n", encoding="utf-8")
    second = parse_file(main_md)
    assert [s.id for s in second.steps] == ["two"]
    assert second.content_hash != first.content_hash
    main_md.write_text("# T2\n\n<!-- include: _shared/step.md -->\n", encoding="utf-8")
    third = parse_file(main_md)
    assert third.title == "T2" and third is not second
    shared.unlink()
    with pytest.raises(RunbookSyntaxError, match="not found"):
        parse_file(main_md)
