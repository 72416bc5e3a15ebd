"""The ``runbook`` command.  Thin commands over the library; one place maps errors to exit statuses.

Exit statuses (DESIGN.md §6): 0 done, 1 a step or run failed, 2 bad input,
3 paused at a gate, 130 interrupted.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from runbook_engine import __version__
from runbook_engine import approval as _approval  # registers the approval step kind
from runbook_engine.errors import InputError, RunbookError

_PATH = click.Path(path_type=Path, dir_okay=False)
_EXISTING = click.Path(path_type=Path, exists=True, dir_okay=False)


def _state_dir(value: Path | None) -> Path:
    from runbook_engine.store import default_state_dir

    return value or default_state_dir()


def _sets(values: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise InputError(f"--set {item!r}: write --set name=value")
        out[name.strip()] = value
    return out


env_option = click.option("--env", "env_path", type=_EXISTING, help="Environment file (YAML).")
set_option = click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="NAME=VALUE",
    help="Give a parameter value (repeatable); wins over the environment.",
)
state_option = click.option(
    "--state-dir",
    type=click.Path(path_type=Path, file_okay=False),
    envvar="RUNBOOK_STATE_DIR",
    help="State directory [env RUNBOOK_STATE_DIR; default ~/.local/state/runbook-engine].",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="runbook")
def cli() -> None:
    """Operations procedures as documentation that runs: guides, plans, checkpointed runs."""


@cli.command()
@click.argument("runbook", type=_EXISTING)
@env_option
@set_option
@click.option(
    "--to",
    "fmt",
    default="md",
    show_default=True,
    help="Output format: md, html (pdf and ipynb where installed).",
)
@click.option("-o", "--output", type=_PATH, help="Write here instead of standard output.")
@click.option("--change", "change_id", help="Change id printed in the guide's header.")
def render(
    runbook: Path,
    env_path: Path | None,
    sets: tuple[str, ...],
    fmt: str,
    output: Path | None,
    change_id: str | None,
) -> None:
    """Render RUNBOOK as a tailored guide (generic without --env)."""
    from runbook_engine.loading import load

    loaded = load(runbook, env_path, _sets(sets))
    data = _render(loaded.tailored, fmt, change_id)
    _write(data, output)


@cli.command()
@click.argument("runbook", type=_EXISTING)
@env_option
@set_option
@json_option
def plan(runbook: Path, env_path: Path | None, sets: tuple[str, ...], as_json: bool) -> None:
    """List every step with its host, transport, action and command; runs nothing."""
    from runbook_engine.loading import load
    from runbook_engine.plan import build_plan

    loaded = load(runbook, env_path, _sets(sets))
    _approval.check_policy(loaded.tailored, emergency=False)
    data = build_plan(loaded.tailored)
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    from runbook_engine.plan_view import print_plan

    print_plan(data)


def _run_options(
    operator: str | None,
    answers: Path | None,
    step_ids: set[str] | None,
    change_id: str | None,
    accept_changed: bool,
    no_input: bool,
    quiet: bool,
    stream: bool,
    reason: str | None = None,
    emergency: bool = False,
) -> Any:
    from runbook_engine.gates import load_answers
    from runbook_engine.reporter import Reporter
    from runbook_engine.runner import RunOptions, default_operator

    loaded_answers = load_answers(answers, step_ids) if answers else None
    interactive = sys.stdin.isatty() and not no_input and loaded_answers is None
    return RunOptions(
        operator=operator or default_operator(),
        answers=loaded_answers,
        interactive=interactive,
        change_id=change_id,
        accept_changed=accept_changed,
        reporter=Reporter(quiet=quiet, stderr=False, stream=stream),
        reason=reason,
        emergency=emergency,
    )


run_common = [
    click.option("--answers", type=_PATH, help="Answers file with gate decisions (YAML)."),
    click.option("--operator", help="Who runs the change [env RUNBOOK_OPERATOR; default: login]."),
    click.option("--no-input", is_flag=True, help="Never prompt; pause at gates (exit 3)."),
    click.option("--stream", is_flag=True, help="Show command output as it arrives."),
    click.option(
        "--forks",
        type=click.IntRange(1, 64),
        default=1,
        show_default=True,
        help="How many hosts of one step run at once.",
    ),
    click.option(
        "--max-failures",
        type=click.IntRange(1),
        default=None,
        help="Start no further host of a step after this many of its hosts failed "
        "[default: 1 for steps that stop on failure].",
    ),
    state_option,
    json_option,
]


def _apply(options: list[Any]) -> Any:
    def decorate(func: Any) -> Any:
        for option in reversed(options):
            func = option(func)
        return func

    return decorate


@cli.command()
@click.argument("runbook", type=_EXISTING)
@env_option
@set_option
@_apply(run_common)
@click.option("--run-id", help="Id for the new run (default: generated).")
@click.option("--change", "change_id", help="Change id (ticket) recorded with the run.")
@click.option("--reason", help="Why the change is made (recorded; required with --emergency).")
@click.option(
    "--emergency",
    is_flag=True,
    help="Bypass approval (recorded and flagged in the change record); needs --reason.",
)
@click.option("--guide", type=_PATH, help="Also write the tailored guide here (.md or .html).")
def run(
    runbook: Path,
    env_path: Path | None,
    sets: tuple[str, ...],
    answers: Path | None,
    operator: str | None,
    no_input: bool,
    stream: bool,
    forks: int,
    max_failures: int | None,
    state_dir: Path | None,
    as_json: bool,
    run_id: str | None,
    change_id: str | None,
    reason: str | None,
    emergency: bool,
    guide: Path | None,
) -> None:
    """Execute RUNBOOK: automated steps on their hosts, manual steps as gates."""
    from runbook_engine.loading import load
    from runbook_engine.runner import start_run
    from runbook_engine.store import CheckpointStore

    overrides = _sets(sets)
    loaded = load(runbook, env_path, overrides, need_env=True)
    options = _run_options(
        operator,
        answers,
        {s.id for s in loaded.runbook.steps},
        change_id,
        False,
        no_input,
        as_json,
        stream,
        reason,
        emergency,
    )
    options.forks, options.max_failures = forks, max_failures
    if guide is not None:
        fmt = "html" if guide.suffix.lower() in (".html", ".htm") else "md"
        _write(_render(loaded.tailored, fmt, change_id), guide)
    store = CheckpointStore(_state_dir(state_dir))
    _finish_run(
        lambda: start_run(runbook, env_path, overrides, store, options, run_id),
        store,
        as_json,
        guide,
    )


@cli.command()
@click.argument("run_id")
@_apply(run_common)
@click.option(
    "--accept-changed",
    is_flag=True,
    help="Resume although the runbook or environment changed (journaled).",
)
def resume(
    run_id: str,
    answers: Path | None,
    operator: str | None,
    no_input: bool,
    stream: bool,
    forks: int,
    max_failures: int | None,
    state_dir: Path | None,
    as_json: bool,
    accept_changed: bool,
) -> None:
    """Continue RUN_ID where it stopped."""
    from runbook_engine.parser import parse_file
    from runbook_engine.runner import resume_run
    from runbook_engine.store import CheckpointStore

    store = CheckpointStore(_state_dir(state_dir), create=False, run_id=run_id)
    record = store.get_run(run_id)
    step_ids = None
    if answers is not None:
        step_ids = {s.id for s in parse_file(Path(record.runbook_path)).steps}
    options = _run_options(
        operator, answers, step_ids, None, accept_changed, no_input, as_json, stream
    )
    options.forks, options.max_failures = forks, max_failures
    _finish_run(lambda: resume_run(run_id, store, options), store, as_json, None)


def _finish_run(action: Any, store: Any, as_json: bool, guide: Path | None) -> None:
    from runbook_engine.errors import RunPaused

    try:
        result = action()
    except RunPaused as paused:
        if as_json:
            click.echo(json.dumps({"status": "paused", "message": paused.message}))
        raise
    where = {
        "run_id": result.run_id,
        "status": result.status,
        "state_dir": str(result.state_dir.resolve()),
        "journal": str(result.journal.resolve()),
        "guide": str(guide.resolve()) if guide else None,
    }
    if as_json:
        click.echo(json.dumps(where, indent=2))
    else:
        if guide:
            click.echo(f"Guide:   {where['guide']}")
        click.echo(f"State:   {where['state_dir']}")
        click.echo(f"Journal: {where['journal']}")
    if result.status in ("failed", "aborted", "rejected"):
        if result.status == "failed" and not as_json:
            click.echo(f"After a fix, continue with: runbook resume {result.run_id}", err=True)
        sys.exit(1)


@cli.command()
@click.argument("run_id")
@click.argument("step")
@click.option("--as", "by", required=True, help="Who confirms (name).")
@click.option("--note", help="What was done, observed or attached.")
@click.option("--skip", "decision", flag_value="skip", help="Skip the step (needs --reason).")
@click.option("--abort", "decision", flag_value="abort", help="Abort the run at this step.")
@click.option("--rerun", "decision", flag_value="rerun", help="Run an interrupted step again.")
@click.option("--reason", help="Why the step is skipped.")
@click.option("--host", help="Only this host of the step's role (default: every host).")
@click.option(
    "--attach",
    "attachments",
    multiple=True,
    type=_EXISTING,
    metavar="FILE",
    help="Keep FILE as evidence of this gate (copied, SHA-256 journaled; repeatable).",
)
@state_option
def confirm(
    run_id: str,
    step: str,
    by: str,
    note: str | None,
    decision: str | None,
    reason: str | None,
    host: str | None,
    attachments: tuple[Path, ...],
    state_dir: Path | None,
) -> None:
    """Record a decision for a gate of a paused run; `runbook resume` then continues."""
    from runbook_engine.confirm import record_confirmation
    from runbook_engine.store import CheckpointStore

    store = CheckpointStore(_state_dir(state_dir), create=False, run_id=run_id)
    hosts = record_confirmation(
        store, run_id, step, by, decision or "confirm", note, reason, host, attachments
    )
    click.echo(
        f"Recorded {decision or 'confirm'} of {step} on {', '.join(hosts)} by {by}; "
        f"continue with: runbook resume {run_id}"
    )


def _vote(
    run_id: str, step: str, by: str, comment: str | None, state_dir: Path | None, decision: str
) -> None:
    from runbook_engine.approval import record_vote
    from runbook_engine.store import CheckpointStore

    store = CheckpointStore(_state_dir(state_dir), create=False, run_id=run_id)
    click.echo(record_vote(store, run_id, step, by, decision, comment))


@cli.command()
@click.argument("run_id")
@click.argument("step")
@click.option("--as", "by", required=True, help="Who approves (name; not the run's operator).")
@click.option("--comment", help="Comment recorded with the approval.")
@state_option
def approve(run_id: str, step: str, by: str, comment: str | None, state_dir: Path | None) -> None:
    """Approve approval step STEP of RUN_ID (the run waits there); `runbook resume` then goes on."""
    _vote(run_id, step, by, comment, state_dir, "approve")


@cli.command()
@click.argument("run_id")
@click.argument("step")
@click.option("--as", "by", required=True, help="Who rejects (name; an approver of the step).")
@click.option("--comment", help="Why (recorded).")
@state_option
def reject(run_id: str, step: str, by: str, comment: str | None, state_dir: Path | None) -> None:
    """Reject approval step STEP of RUN_ID: the run stops (aborted, rejected) at its next resume."""
    _vote(run_id, step, by, comment, state_dir, "reject")


@cli.group()
def keys() -> None:
    """Signing keys for journals (Ed25519)."""


@keys.command("init")
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path, file_okay=False),
    help="Folder for signing.key and signing.pub [default: STATE/keys].",
)
@click.option("--force", is_flag=True, help="Replace an existing key pair.")
@state_option
def keys_init(directory: Path | None, force: bool, state_dir: Path | None) -> None:
    """Create the Ed25519 key pair that signs every run's journal (private key mode 0600)."""
    from runbook_engine.evidence.keys import default_key_dir, init_keys

    made = init_keys(directory or default_key_dir(_state_dir(state_dir)), force=force)
    click.echo(f"Private key: {made.private} (keep it secret; mode 0600)")
    click.echo(
        f"Public key:  {made.public} (give it to auditors: "
        "runbook evidence verify --public-key FILE)"
    )
    click.echo(f"Key id:      {made.key_id}")
    if directory is not None:
        click.echo(f"Runs sign with it when RUNBOOK_SIGNING_KEY={made.private}")


@cli.command()
@click.argument("run_id", required=False)
@state_option
@json_option
def status(run_id: str | None, state_dir: Path | None, as_json: bool) -> None:
    """Show a run's steps (the latest run without RUN_ID)."""
    from runbook_engine.status_view import show_status

    show_status(_state_dir(state_dir), run_id, as_json)


@cli.command()
@state_option
@json_option
def runs(state_dir: Path | None, as_json: bool) -> None:
    """List the runs in the state directory, newest first."""
    from runbook_engine.status_view import show_runs

    show_runs(_state_dir(state_dir), as_json)


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path, exists=True))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.option("--rules", "list_rules", is_flag=True, help="List the warning rules and exit.")
def lint(paths: tuple[Path, ...], fmt: str, list_rules: bool) -> None:
    """Check runbooks (default: runbooks/) and report every problem as file:line:col: code message.

    Exit status 1 when any error, 0 with warnings only. Disable a warning for one
    runbook in its front matter, with a reason: lint: {disable: {RB302: "why"}}.
    """
    from runbook_engine.lint import print_rules, run_lint

    if list_rules:
        print_rules(fmt)
        return
    sys.exit(run_lint(list(paths) or [Path("runbooks")], fmt))


class _EvidenceGroup(click.Group):
    """``runbook evidence RUN_ID ...`` exports; ``runbook evidence verify PATH`` verifies."""

    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            return "export", self.commands["export"], args
        return super().resolve_command(ctx, args)


@cli.group(cls=_EvidenceGroup)
def evidence() -> None:
    """Evidence of runs: `runbook evidence RUN_ID --to html|pdf|md|json [-o FILE]`,
    `runbook evidence RUN_ID --bundle OUT.zip`, `runbook evidence verify PATH`."""


def _pinned_key(public_key: Path | None) -> bytes | None:
    """Read ``--public-key``; a file that is not an Ed25519 public key is bad input (exit 2)."""
    if public_key is None:
        return None
    from runbook_engine.errors import EvidenceError
    from runbook_engine.evidence.keys import load_public_key

    data = public_key.read_bytes()
    try:
        load_public_key(data, str(public_key))
    except EvidenceError as exc:
        raise InputError(
            f"--public-key {exc.message} (give the .pub file `runbook keys init` "
            "exported, not the private key)"
        ) from None
    return data


_public_key_option = click.option(
    "--public-key", type=_EXISTING, help="Require signatures by this public key (PEM)."
)


@evidence.command("export")
@click.argument("run_id")
@click.option(
    "--to", "fmt", type=click.Choice(["html", "pdf", "md", "json"]), help="Change record format."
)
@click.option("-o", "--output", type=_PATH, help="Write here instead of standard output.")
@click.option("--bundle", type=_PATH, help="Write the evidence bundle (zip) here.")
@_public_key_option
@state_option
def evidence_export(
    run_id: str,
    fmt: str | None,
    output: Path | None,
    bundle: Path | None,
    public_key: Path | None,
    state_dir: Path | None,
) -> None:
    """Render RUN_ID's change record, or write its evidence bundle; exit 1 if evidence fails."""
    from runbook_engine.store import CheckpointStore

    if (fmt is None) == (bundle is None):
        raise InputError("give --to FORMAT or --bundle OUT.zip")
    store = CheckpointStore(_state_dir(state_dir), create=False, run_id=run_id)
    store.get_run(run_id)
    run_dir = store.run_dir(run_id)
    pinned = _pinned_key(public_key)
    if bundle is not None:
        from runbook_engine.evidence.bundle import write_bundle

        check = write_bundle(run_dir, bundle, pinned)
        click.echo(f"Bundle: {bundle.resolve()}", err=True)
    else:
        from runbook_engine.evidence.export import record_of, render_record

        record, check = record_of(run_dir, pinned)
        _write(render_record(record, fmt or "html"), output)
    if not check.ok:
        click.echo(check.text(), err=True)
        sys.exit(1)


@evidence.command("verify")
@click.argument("path", type=click.Path(path_type=Path, exists=True))
@_public_key_option
@click.option("--require-signature", is_flag=True, help="Fail an unsigned journal.")
@json_option
def evidence_verify(
    path: Path, public_key: Path | None, require_signature: bool, as_json: bool
) -> None:
    """Check a run folder, its journal.jsonl, or an evidence bundle (.zip): chain, signatures,
    attachments, outputs, notebooks; the first bad line is reported."""
    from runbook_engine.evidence.bundle import verify_bundle
    from runbook_engine.evidence.verify import verify_run
    from runbook_engine.journal import verify_journal

    pinned = _pinned_key(public_key)
    if path.is_file() and path.suffix.lower() == ".zip":
        check = verify_bundle(path, pinned)
        if require_signature and check.ok and not check.signed:
            check.add(path.name, None, "the journal is not signed")
    elif path.is_dir() or path.name == "journal.jsonl":
        check = verify_run(
            path if path.is_dir() else path.parent,
            public_key=pinned,
            require_signature=require_signature,
        )
    else:
        plain = verify_journal(path)
        click.echo(plain.message)
        sys.exit(0 if plain.ok else 1)
    if as_json:
        click.echo(
            json.dumps(
                {
                    **check.summary(),
                    "problems": [str(p) for p in check.problems],
                    "notes": check.notes,
                },
                indent=2,
            )
        )
    else:
        click.echo(check.text())
    sys.exit(0 if check.ok else 1)


@cli.group()
def notebook() -> None:
    """Runbooks as Jupyter notebooks (render one with `runbook render --to ipynb`)."""


@notebook.command("run")
@click.argument("runbook", type=_EXISTING)
@env_option
@set_option
@click.option("--answers", type=_EXISTING, help="Answers file with gate decisions (YAML).")
@click.option("--run-id", help="Id for a new run, or an existing run to continue.")
@click.option("--operator", help="Who runs the change [env RUNBOOK_OPERATOR; default: login].")
@click.option("--change", "change_id", help="Change id (ticket) recorded with a new run.")
@click.option(
    "--confirm",
    "confirms",
    multiple=True,
    metavar="STEP[=DECISION]",
    help="Gate decision passed as a notebook parameter (repeatable): STEP, "
    "STEP=confirm:note or STEP=skip:reason.",
)
@click.option("-o", "--output", type=_PATH, help="Also copy the executed notebook here.")
@state_option
def notebook_run(
    runbook: Path,
    env_path: Path | None,
    sets: tuple[str, ...],
    answers: Path | None,
    run_id: str | None,
    operator: str | None,
    change_id: str | None,
    confirms: tuple[str, ...],
    output: Path | None,
    state_dir: Path | None,
) -> None:
    """Execute RUNBOOK's notebook with papermill; one executed notebook per attempt is kept."""
    from runbook_engine.errors import RunPaused
    from runbook_engine.notebook.execute import run_notebook

    confirmations = {
        step: decision or "confirm"
        for step, _, decision in (item.partition("=") for item in confirms)
    }
    outcome = run_notebook(
        runbook,
        env_path,
        state_dir=_state_dir(state_dir),
        overrides=_sets(sets),
        answers=answers,
        run_id=run_id,
        operator=operator,
        change_id=change_id,
        output=output,
        confirmations=confirmations,
    )
    if outcome.notebook is not None:
        click.echo(f"Run:      {outcome.run_id} ({outcome.status})")
        click.echo(
            f"Notebook: {outcome.notebook} (attempt {outcome.attempt}, sha256 {outcome.sha256})"
        )
    if outcome.exit_status == 3:
        raise RunPaused(outcome.message or f"run {outcome.run_id} is paused at a gate")
    if outcome.exit_status:
        click.echo(outcome.message or f"run {outcome.run_id}: {outcome.status}", err=True)
        sys.exit(outcome.exit_status)


@cli.group()
def site() -> None:
    """The runbook library as a static site."""


@site.command("build")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("site/_build"),
    show_default=True,
    help="Site folder (replaced when it holds an earlier build).",
)
@click.option(
    "--source",
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    default=Path("runbooks"),
    show_default=True,
    help="Folder of runbooks.",
)
@click.option("--no-pdf", is_flag=True, help="Leave out the PDF downloads (faster).")
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    help="Worker processes [default: CPU count, at most 4].",
)
def site_build(output: Path, source: Path, no_pdf: bool, jobs: int | None) -> None:
    """Build the site: an index of every runbook, and per runbook the generic and tailored
    guides with their printable, PDF, notebook and source downloads.  A runbook that fails
    is reported and left out; the exit status is then 1."""
    from runbook_engine.sitebuild import build_site, download_formats

    formats, notes = download_formats()
    if no_pdf and "pdf" in formats:
        formats = tuple(f for f in formats if f != "pdf")
        notes = (*notes, "PDF downloads left out: --no-pdf")

    def progress(result: Any) -> None:
        mark = "ok  " if not result.problems else ("FAIL" if result.entry is None else "some")
        click.echo(f"{mark} {result.path}", err=True)

    report = build_site(source, output, formats=formats, notes=notes, jobs=jobs, progress=progress)
    click.echo(f"Site: {(report.out / 'index.html').resolve()}")
    click.echo(
        f"{len(report.entries)} runbooks, {report.pages} guide pages; downloads: "
        f"{', '.join(formats)}"
    )
    for note in report.notes:
        click.echo(f"Note: {note}")
    if report.failures:
        click.echo(f"{len(report.failures)} problems (the pages affected are left out):", err=True)
        for problem in report.failures:
            click.echo(problem, err=True)
        sys.exit(1)


def _render(tailored: Any, fmt: str, change_id: str | None) -> bytes:
    from runbook_engine.render import RENDERERS

    renderer = RENDERERS.get(fmt)
    if renderer is None:
        raise InputError(f"--to {fmt}: unknown format; formats: {', '.join(sorted(RENDERERS))}")
    return renderer.render(tailored, change_id=change_id)


def _write(data: bytes, output: Path | None) -> None:
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    tmp = output.with_name(f".{output.name}.tmp")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(data)
        tmp.replace(output)
    except OSError as exc:
        if tmp.parent.is_dir():
            tmp.unlink(missing_ok=True)
        raise InputError(f"cannot write {output}: {exc.strerror or exc}") from None


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; map errors to exit statuses and print them without a traceback."""
    try:
        cli.main(args=argv, prog_name="runbook", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2 if exc.exit_code in (1, 2) else exc.exit_code)
    except RunbookError as exc:
        click.echo(exc.format(), err=True)
        sys.exit(exc.exit_status)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(1)
    sys.exit(0)
