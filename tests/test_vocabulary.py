"""One vocabulary across the ``runbook`` commands (issue 14, part 1).

The first tests walk every command of the click group (found by introspection, not
listed here) and check its options: ``--json`` where results are printed,
``-o/--output`` for what is written, ``--note`` for free text, no old name visible.
The others run the real command on a real run: old names still work and warn, the
decision words, ``evidence verify`` by run id, ``lint`` and ``run`` agreeing on exit 2,
``resume`` recording the run's operator, a paused ``run --json`` naming the run,
``status`` showing a recorded decision, and the README's own commands.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from runbook_engine.cli import cli
from runbook_engine.errors import InputError
from runbook_engine.run.gates import DECISIONS, load_answers

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures" / "run"

#: Commands whose result is a document written out (``--to FORMAT``), not a report.
DOCUMENT_COMMANDS = {"render", "evidence export"}
#: Commands that serve rather than print results (``runbook serve``: the web console).
SERVERS = {"serve"}
#: Path options that name something read, or the state, not what a command writes.
INPUT_PATHS = {"--answers", "--state-dir"}
#: Path options that write something besides the command's result.
EXTRA_OUTPUTS = {("run", "--guide")}
#: Names a visible option must not have: one word per thing.
OLD_NAMES = {"--comment", "--reason", "--format", "--dir", "--bundle", "--confirm"}
FREE_TEXT = {"note", "reason", "comment", "message", "remark"}


def leaf_commands(
    group: click.Group = cli, prefix: tuple[str, ...] = ()
) -> Iterator[tuple[str, click.Command]]:
    """Every command of ``group`` that is not itself a group, as ``("evidence verify", cmd)``."""
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        if isinstance(command, click.Group):
            yield from leaf_commands(command, (*prefix, name))
        else:
            yield " ".join((*prefix, name)), command


COMMANDS = dict(leaf_commands())


def visible_options(command: click.Command) -> list[click.Option]:
    return [p for p in command.params if isinstance(p, click.Option) and not p.hidden]


def test_the_walk_finds_every_command() -> None:
    # Guards the walk itself: groups are entered, hidden aliases are not commands.
    assert {"run", "confirm", "evidence export", "evidence bundle", "evidence verify"} <= set(
        COMMANDS
    )
    assert {"keys init", "notebook run", "site build", "lint"} <= set(COMMANDS)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_help_of_every_command_speaks_the_shared_vocabulary(name: str) -> None:
    command = COMMANDS[name]
    result = CliRunner().invoke(cli, [*name.split(), "--help"])
    assert result.exit_code == 0, result.output
    shown = set(re.findall(r"(?<![\w-])--?[a-z][\w-]*", result.output))
    assert not shown & OLD_NAMES, f"{name} --help shows {shown & OLD_NAMES}"
    names = {opt for o in visible_options(command) for opt in o.opts}
    if name not in DOCUMENT_COMMANDS | SERVERS:
        assert "--json" in names and "--json" in shown, f"{name} prints results without --json"
    for option in visible_options(command):
        if option.name in FREE_TEXT:
            assert option.opts == ["--note"], f"{name}: free text is --note, not {option.opts}"
        if "-o" in option.opts or "--output" in option.opts:
            assert option.opts == ["-o", "--output"], f"{name}: {option.opts}"
        writes = isinstance(option.type, click.Path) and not option.type.exists
        primary = option.opts[-1]
        if writes and primary not in INPUT_PATHS and (name, primary) not in EXTRA_OUTPUTS:
            assert option.opts == ["-o", "--output"], f"{name} writes with {option.opts}"


def test_decision_words_are_the_same_in_confirm_notebook_and_answers(tmp_path: Path) -> None:
    confirm = COMMANDS["confirm"]
    flags = {p.flag_value for p in confirm.params if isinstance(p, click.Option) and p.is_flag}
    assert {"confirm", *flags} >= set(DECISIONS)  # confirm is the default, the rest are flags
    decide = next(p for p in COMMANDS["notebook run"].params if p.name == "confirms")
    assert decide.opts == ["--decide"]
    assert all(word in (decide.help or "") for word in DECISIONS)
    answers = tmp_path / "answers.yml"
    lines = ["operator: Ann", "answers:"] + [
        f"  s-{word}: {{decision: {word}, note: why}}" for word in DECISIONS
    ]
    answers.write_text("\n".join([*lines, "  s-old: done", ""]))
    loaded = load_answers(answers)
    assert {w: loaded.entries[f"s-{w}"]["decision"] for w in DECISIONS} == {w: w for w in DECISIONS}
    assert loaded.entries["s-old"]["decision"] == "confirm"  # the old word, read as the new
    (warning,) = loaded.warnings
    assert "answers.yml:7" in warning and "'done'" in warning and "'confirm'" in warning
    assert loaded.decision("s-skip").reason == "why"  # a skip's note is its reason


def test_answers_take_note_and_read_reason_as_the_old_name(tmp_path: Path) -> None:
    answers = tmp_path / "answers.yml"
    answers.write_text(
        "operator: Ann\nanswers:\n  a: {decision: skip, note: no time}\n"
        "  b: {decision: skip, reason: old}\n  c: {decision: confirm, note: green}\n"
    )
    loaded = load_answers(answers)
    assert [loaded.decision(s).reason for s in "abc"] == ["no time", "old", None]
    assert loaded.decision("c").note == "green"
    (warning,) = loaded.warnings
    assert "answers.yml:4" in warning and "'reason' is an old name; write 'note'" in warning
    answers.write_text("operator: Ann\nanswers:\n  a: skip\n")
    with pytest.raises(InputError) as bad:
        load_answers(answers)
    assert "answers.yml:3" in bad.value.message and "note:" in bad.value.message


def test_readme_vocabulary_table_lists_the_words() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("| what | the word |") :]
    table = table[: table.index("\n\n")]
    for word in (
        "`--json`",
        "`-o/--output`",
        "`--note`",
        "`evidence export`",
        "`evidence bundle`",
        "`evidence verify`",
        "`rejected`",
        "lint",
        *(f"`{w}`" for w in DECISIONS),
        *sorted(OLD_NAMES),
        "`done`",
    ):
        assert word in table, word


# -- the real command ------------------------------------------------------------------------


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNBOOK_")}
    env.update({"NO_COLOR": "1", "COLUMNS": "200", **extra})
    return env


class Book:
    """A copy of the run fixtures and a state directory, driven by ``python -m runbook_engine``."""

    def __init__(self, tmp_path: Path) -> None:
        self.dir = tmp_path / "book"
        shutil.copytree(FIXTURES, self.dir)
        self.state = tmp_path / "state"

    def __call__(self, *args: Any, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "runbook_engine", *(str(a) for a in args)],
            cwd=self.dir,
            env=cli_env(
                **{
                    "RUNBOOK_STATE_DIR": str(self.state),
                    # a signing key in the real ~/.config must not sign these runs
                    "XDG_CONFIG_HOME": str(self.state.parent / "config"),
                    **env,
                }
            ),
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )

    def paused_run(self, *extra: str) -> subprocess.CompletedProcess[str]:
        proc = self(
            "run", "gate.md", "--env", "env-manual.yml", "--run-id", "r1", "--no-input", *extra
        )
        assert proc.returncode == 3, proc.stderr
        return proc

    def events(self, name: str) -> list[dict[str, Any]]:
        lines = (self.state / "runs" / "r1" / "journal.jsonl").read_text().splitlines()
        return [r for r in map(json.loads, lines) if r["event"] == name]


@pytest.fixture
def book(tmp_path: Path) -> Book:
    return Book(tmp_path)


def test_paused_run_json_names_the_run(book: Book) -> None:
    proc = book.paused_run("--json", "--operator", "Ann")
    data = json.loads(proc.stdout)
    assert data["run_id"] == "r1" and data["status"] == "paused"
    assert Path(data["journal"]).is_file() and Path(data["state_dir"]) == book.state.resolve()


def step_row(status_text: str, step: str) -> str:
    """The table row of ``step`` in ``runbook status`` output."""
    return next(line for line in status_text.splitlines() if f"│ {step} " in line)


def test_status_shows_a_recorded_decision_until_resume(book: Book) -> None:
    book.paused_run("--operator", "Ann")
    assert book("confirm", "r1", "by-hand", "--as", "Bob", "--note", "green").returncode == 0
    shown = book("status", "r1")
    row = step_row(shown.stdout, "by-hand")
    assert "confirmed-awaiting-resume" in row and "Bob" in row
    data = json.loads(book("status", "r1", "--json").stdout)
    step = next(s for s in data["steps"] if s["step_id"] == "by-hand")
    assert step["status"] == "awaiting" and step["decision"]["decision"] == "confirm"
    in_advance = book("confirm", "r1", "last", "--as", "Bob", "--in-advance", "--json")
    assert json.loads(in_advance.stdout)["decision"] == "confirm"
    assert "confirmed-in-advance" in book("status", "r1").stdout
    book("resume", "r1", "--no-input")  # applies by-hand, then waits at on-web
    after = book("status", "r1").stdout
    row = step_row(after, "by-hand")
    assert "succeeded" in row and "awaiting-resume" not in row


def test_status_names_the_gate_it_waits_at_in_full_on_a_narrow_terminal(book: Book) -> None:
    """The step id and host are what `runbook confirm` needs: never cut with an ellipsis."""
    (book.dir / "gate.md").write_text(
        (book.dir / "gate.md").read_text().replace("by-hand", "look-at-the-console-by-hand")
    )
    book.paused_run("--operator", "Ann")
    shown = book("status", "r1", COLUMNS="60").stdout
    assert "…" not in shown, shown
    for step in ("first", "look-at-the-console-by-hand", "on-web", "last"):
        assert f" {step} " in shown, shown
    assert "Waits at look-at-the-console-by-hand on " in shown, shown
    journal = book.state / "runs" / "r1" / "journal.jsonl"
    assert f"Journal: {journal.resolve()}\n" in shown, shown  # one line, to copy and paste
    confirmed = book("confirm", "r1", "look-at-the-console-by-hand", "--as", "Bob")
    assert confirmed.returncode == 0, confirmed.stderr
    assert "Waits at" not in book("status", "r1").stdout  # decided: resume applies it


def test_resume_records_the_runs_operator_not_the_login(book: Book) -> None:
    book.paused_run("--operator", "Ann Operator")
    book("confirm", "r1", "by-hand", "--as", "Bob")
    assert book("resume", "r1", "--no-input").returncode == 3
    assert [e["by"] for e in book.events("run-resumed")] == ["Ann Operator"]
    book("confirm", "r1", "on-web", "--as", "Bob")
    assert book("resume", "r1", "--no-input", "--operator", "Carl").returncode == 0
    assert [e["by"] for e in book.events("run-resumed")] == ["Ann Operator", "Carl"]


def test_old_names_still_work_and_warn(book: Book, tmp_path: Path) -> None:
    book.paused_run("--reason", "planned work")
    started = book.events("run-started")[0]
    assert "planned work" in json.dumps(started)
    skip = book("confirm", "r1", "by-hand", "--as", "Bob", "--skip", "--reason", "not here")
    assert skip.returncode == 0 and "write --note" in skip.stderr
    (recorded,) = book.events("gate-decision-recorded")
    assert (recorded["decision"], recorded["reason"]) == ("skip", "not here")
    new = book(
        "confirm", "r1", "on-web", "--as", "Bob", "--skip", "--note", "nor here", "--in-advance"
    )
    assert new.returncode == 0 and new.stderr == ""
    assert book.events("gate-decision-recorded")[1]["reason"] == "nor here"  # same meaning
    assert book("resume", "r1", "--no-input").returncode == 0
    new_export = book("evidence", "export", "r1", "--to", "json")
    assert new_export.returncode == 0 and new_export.stderr == ""
    old_export = book("evidence", "r1", "--to", "json")
    assert old_export.stdout == new_export.stdout and "evidence export RUN_ID" in old_export.stderr
    old_bundle = book("evidence", "export", "r1", "--bundle", tmp_path / "old.zip")
    assert old_bundle.returncode == 0 and "evidence bundle RUN_ID -o" in old_bundle.stderr
    assert book("evidence", "verify", tmp_path / "old.zip").returncode == 0
    old_keys = book("keys", "init", "--dir", tmp_path / "k", "--json")
    assert old_keys.returncode == 0 and "write -o/--output" in old_keys.stderr
    assert Path(json.loads(old_keys.stdout)["public_key"]).parent == tmp_path / "k"
    both = book("keys", "init", "-o", tmp_path / "k2", "--dir", tmp_path / "k3")
    assert both.returncode == 2 and not (tmp_path / "k2").exists()


def test_evidence_verbs_and_verify_by_run_id(book: Book, tmp_path: Path) -> None:
    book.paused_run()
    by_id = book("evidence", "verify", "r1", "--json")
    assert by_id.returncode == 0, by_id.stderr  # no key: unsigned, as for its folder
    by_path = book("evidence", "verify", book.state / "runs" / "r1", "--json")
    assert json.loads(by_id.stdout) == json.loads(by_path.stdout)
    assert json.loads(by_id.stdout)["verdict"] == "unsigned"
    bundle = book("evidence", "bundle", "r1", "-o", tmp_path / "b.zip", "--json")
    assert json.loads(bundle.stdout)["bundle"] == str((tmp_path / "b.zip").resolve())
    unknown = book("evidence", "verify", "no-such-run")
    assert unknown.returncode == 2 and "no-such-run" in unknown.stderr
    assert "Traceback" not in unknown.stderr


def test_lint_and_run_agree_that_an_error_is_bad_input(book: Book) -> None:
    bad = book.dir / "bad" / "undefined-param.md"
    linted = book("lint", bad)
    assert linted.returncode == 2, linted.stdout + linted.stderr
    assert book("run", bad, "--no-input").returncode == 2
    as_json = book("lint", bad, "--json")
    assert as_json.returncode == 2
    assert "error" in {p["severity"] for p in json.loads(as_json.stdout)}


def test_readme_commands_work_as_written(tmp_path: Path) -> None:
    """Every `runbook ...` command in the README's sh blocks, run from a copy of the library.

    ``sh`` blocks are meant to be run as written; ``shell`` blocks are illustrations with
    placeholders (a team's database URL, RUN-ID) and are not run."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", readme, re.S):
        for line in block.splitlines():
            part = line.split("&&")[-1].strip()
            words = shlex.split(part)
            if words and Path(words[0]).name == "runbook":
                commands.append(words[1:])
    assert len(commands) >= 3 and commands[0][0] == "run"
    shutil.copytree(ROOT / "runbooks", tmp_path / "runbooks")
    for words in commands:
        proc = subprocess.run(
            [sys.executable, "-m", "runbook_engine", *words],
            cwd=tmp_path,
            env=cli_env(),
            capture_output=True,
            text=True,
            timeout=300,
            stdin=subprocess.DEVNULL,
        )
        assert proc.returncode == 0, (words, proc.stderr[-2000:])
        assert "is an old name" not in proc.stderr
    assert (tmp_path / "out" / "rpc-over-https-lab.html").is_file()
    assert (tmp_path / ".runbook-state" / "state.db").is_file()


def test_suggested_commands_name_a_state_dir_that_is_not_the_default(book: Book) -> None:
    # The README runs with `--state-dir .runbook-state`: the pause message's commands must
    # carry it, or copying them fails with "no run 'r1' in ~/.local/state/…".
    env = {"RUNBOOK_STATE_DIR": "", "XDG_STATE_HOME": str(book.state.parent / "xdg")}
    proc = book(
        "run", "gate.md", "--env", "env-manual.yml", "--run-id", "r1", "--no-input",
        "--state-dir", ".runbook-state", **env,
    )  # fmt: skip
    assert proc.returncode == 3, proc.stderr
    commands = re.findall(r"`(runbook [^`]*)`", proc.stderr)
    assert commands and all(c.endswith(" --state-dir .runbook-state") for c in commands), commands
    confirm = next(c for c in commands if c.startswith("runbook confirm"))
    confirmed = book(*shlex.split(confirm.replace("NAME", "Bob"))[1:], **env)
    assert confirmed.returncode == 0, confirmed.stderr
    assert "continue with: runbook resume r1 --state-dir .runbook-state" in confirmed.stdout
    resume = next(c for c in commands if c.startswith("runbook resume"))
    resumed = book(*shlex.split(resume)[1:], **env)  # goes on to the next gate
    assert resumed.returncode == 3 and confirm.split()[3] not in resumed.stderr, resumed.stderr
    assert "`runbook resume r1 --state-dir .runbook-state`" in resumed.stderr


def test_resume_uses_the_runs_answers_file_again_while_it_is_unchanged(book: Book) -> None:
    # A new user's resume forgot the answers file and paused at a gate that file answers.
    answers = book.dir / "answers-web.yml"
    answers.write_text("operator: Ann Answers\nanswers:\n  on-web: confirm\n")
    book.paused_run("--answers", answers.name)  # by-hand is not in the file
    assert book("confirm", "r1", "by-hand", "--as", "Bob").returncode == 0
    answers.write_text(answers.read_text() + "# edited\n")
    changed = book("resume", "r1", "--no-input")
    assert changed.returncode == 3 and "changed since it was given" in changed.stderr
    assert "waiting at on-web" in changed.stderr, changed.stderr
    answers.write_text("operator: Ann Answers\nanswers:\n  on-web: confirm\n")
    book("resume", "r1", "--no-input", "--answers", answers.name)  # now recorded as given
    answers.unlink()
    gone = book("resume", "r1", "--no-input")
    assert "is gone; not used" in gone.stderr, gone.stderr


def test_resume_without_answers_reuses_an_unchanged_file(book: Book) -> None:
    answers = book.dir / "answers-web.yml"
    answers.write_text("operator: Ann Answers\nanswers:\n  on-web: confirm\n")
    book.paused_run("--answers", answers.name)
    assert book("confirm", "r1", "by-hand", "--as", "Bob").returncode == 0
    resumed = book("resume", "r1", "--no-input")
    assert resumed.returncode == 0, resumed.stderr
    assert f"using the run's answers file {answers.resolve()} again" in resumed.stderr
    (decided,) = [e for e in book.events("gate-passed") if e.get("step") == "on-web"]
    assert decided.get("source") == "answers-file", decided


def test_no_command_declares_an_option_twice() -> None:
    # `runbook serve` had two --store options (click warned on every serve and users add).
    for name, command in leaf_commands():
        opts = [o for p in command.params for o in getattr(p, "opts", []) + p.secondary_opts]
        assert len(opts) == len(set(opts)), (
            f"{name}: {sorted(o for o in opts if opts.count(o) > 1)}"
        )


def test_serve_takes_the_shared_store_option_and_says_an_unreachable_team_store(
    tmp_path: Path,
) -> None:
    pytest.importorskip("starlette")
    serve = COMMANDS["serve"]
    (store,) = [p for p in serve.params if "--store" in getattr(p, "opts", [])]
    assert "postgresql://" in (store.help or "")  # the one shared help text
    result = subprocess.run(
        [sys.executable, "-m", "runbook_engine", "serve", "--store", "postgresql://ann:pw@db/r"],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert "cannot reach the store postgresql://ann@db/r" in result.stderr
    assert "pw" not in result.stderr and "Traceback" not in result.stderr
    assert "used more than once" not in result.stderr


def test_readme_names_every_way_a_run_ends() -> None:
    # partial and checked were missing; status and outcome of --json must be told apart.
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    row = next(line for line in readme.splitlines() if line.startswith("| how a run ended |"))
    words = ("succeeded", "succeeded-attested", "succeeded-pre-answered", "unverified",
             "partial", "checked", "failed", "aborted", "rejected")  # fmt: skip
    assert all(f"`{w}`" in row for w in words), row
    assert "`outcome`" in row and "`status`" in row and "Scripts should read `outcome`" in row


def test_small_words_a_new_user_tripped_on(book: Book, tmp_path: Path) -> None:
    import pty

    pytest.importorskip("weasyprint")
    primary, secondary = pty.openpty()  # a terminal as standard output
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "runbook_engine", "render", "gate.md", "--to", "pdf"],
            cwd=book.dir,
            env=cli_env(),
            stdout=secondary,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    finally:
        os.close(secondary)
        os.close(primary)
    assert proc.returncode == 2 and "give -o FILE.pdf" in proc.stderr, proc.stderr
    linted = book("lint", "gate.md")
    assert "1 runbook checked, 0 errors, 3 warnings" in linted.stderr, linted.stderr
    book.paused_run()
    exported = book("evidence", "export", "r1", "--json")
    assert json.loads(exported.stdout)["run_id"] == "r1", exported.stderr
    verify_help = book("evidence", "verify", "--help").stdout
    assert "TARGET" not in verify_help and "RUN_ID|PATH" in verify_help
