"""``runbook keys`` (init) and ``runbook evidence`` (export, bundle, verify): signing keys,
evidence.

The verbs: ``evidence export RUN_ID --to FORMAT [-o FILE]``, ``evidence bundle RUN_ID -o
OUT.zip``, ``evidence verify RUN_ID|PATH``.  The old forms still work with a warning on
standard error: ``evidence RUN_ID ...`` (export), ``evidence export RUN_ID --bundle OUT.zip``
and ``keys init --dir DIR`` (now ``-o/--output DIR``).
"""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

import click

from runbook_engine.cli.common import (
    EXISTING_FILE,
    FILE_PATH,
    current_store_url,
    json_option,
    open_store,
    output_option,
    state_dir_option,
    state_dir_or_default,
    state_option,
    warn_old_name,
    write_output,
)
from runbook_engine.errors import InputError


@click.group()
def keys() -> None:
    """Signing keys for journals (Ed25519)."""


@keys.command("init")
@output_option(
    "Folder for signing.key and signing.pub "
    "[default: $XDG_CONFIG_HOME/runbook-engine/keys, i.e. ~/.config/runbook-engine/keys].",
    folder=True,
    old_names=("--dir",),
)
@click.option("--force", is_flag=True, help="Replace an existing key pair.")
@state_dir_option
@json_option
def keys_init(output: Path | None, force: bool, state_dir: Path | None, as_json: bool) -> None:
    """Create the Ed25519 key pair that signs every record of every run's journal.

    The private key (mode 0600) goes to ~/.config/runbook-engine/keys/signing.key
    ($XDG_CONFIG_HOME respected), outside the state directory: whoever can edit a
    journal must not be able to re-sign it.  Runs sign with $RUNBOOK_SIGNING_KEY when
    it is set, else with that default key.  Give signing.pub to auditors by a channel
    they trust; they pin it with `runbook evidence verify --public-key signing.pub`
    (a run is `verified` only against a pinned key; the key inside a journal proves
    nothing on its own).  A folder inside the state directory is refused.
    """
    from runbook_engine.evidence.keys import default_key_dir, init_keys

    target = output or default_key_dir()
    state = state_dir_or_default(state_dir).resolve()
    if target.resolve() == state or state in target.resolve().parents:
        raise InputError(
            f"--output {target}: a signing key inside the state directory {state} could be "
            "used by whoever edits the journals; keep it elsewhere"
        )
    made = init_keys(target, force=force)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "private_key": str(made.private),
                    "public_key": str(made.public),
                    "key_id": made.key_id,
                },
                indent=2,
            )
        )
        return
    click.echo(f"Private key: {made.private} (keep it secret; mode 0600)")
    click.echo(
        f"Public key:  {made.public} (give it to auditors, who pin it: "
        "runbook evidence verify --public-key FILE)"
    )
    click.echo(f"Key id:      {made.key_id}")
    if output is not None:
        # an absolute path: a worker or another shell started elsewhere finds it too
        click.echo(f"Runs sign with it when RUNBOOK_SIGNING_KEY={made.private.resolve()}")


class _EvidenceGroup(click.Group):
    """The old form ``runbook evidence RUN_ID ...`` still exports, with a warning."""

    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            warn_old_name("`runbook evidence RUN_ID`", "`runbook evidence export RUN_ID`")
            return "export", self.commands["export"], args
        return super().resolve_command(ctx, args)


@click.group(cls=_EvidenceGroup)
def evidence() -> None:
    """Evidence of runs: `runbook evidence export RUN_ID --to html|pdf|md|json [-o FILE]`,
    `runbook evidence bundle RUN_ID -o OUT.zip`, `runbook evidence verify RUN_ID|PATH`."""


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
    "--public-key", type=EXISTING_FILE, help="Require signatures by this public key (PEM)."
)


@evidence.command("export")
@click.argument("run_id")
@click.option(
    "--to", "fmt", type=click.Choice(["html", "pdf", "md", "json"]), help="Change record format."
)
@output_option("Write the change record here instead of standard output.")
@click.option("--bundle", type=FILE_PATH, hidden=True, help="Old: `runbook evidence bundle`.")
@click.option("--json", "as_json", is_flag=True, hidden=True, help="The same as --to json.")
@_public_key_option
@state_option
def evidence_export(
    run_id: str,
    fmt: str | None,
    output: Path | None,
    bundle: Path | None,
    as_json: bool,
    public_key: Path | None,
    state_dir: Path | None,
) -> None:
    """Render RUN_ID's change record (--to FORMAT, default html); exit 1 if its evidence
    fails verification."""
    if as_json:  # the word every other command uses for machine-readable output
        if fmt not in (None, "json"):
            raise InputError(f"give --to {fmt} or --json (the same as --to json), not both")
        fmt = "json"
    if bundle is not None:  # the old spelling of `evidence bundle RUN_ID -o OUT.zip`
        warn_old_name("`evidence export --bundle FILE`", "`evidence bundle RUN_ID -o FILE`")
        if fmt is not None:
            raise InputError("give --to FORMAT or --bundle OUT.zip, not both")
        _write_bundle(run_id, bundle, public_key, state_dir, as_json=False)
        return
    from runbook_engine.evidence.export import record_of, render_record

    run_dir = _run_dir(run_id, state_dir)
    record, check = record_of(run_dir, _pinned_key(public_key), expected_run_id=run_id)
    write_output(render_record(record, fmt or "html"), output)
    if not check.ok:
        click.echo(check.text(), err=True)
        sys.exit(check.exit_status)


@evidence.command("bundle")
@click.argument("run_id")
@output_option("The evidence bundle (zip) to write.", required=True)
@_public_key_option
@state_option
@json_option
def evidence_bundle(
    run_id: str,
    output: Path,
    public_key: Path | None,
    state_dir: Path | None,
    as_json: bool,
) -> None:
    """Write RUN_ID's evidence bundle: a zip that `runbook evidence verify` checks offline;
    exit 1 if the evidence fails verification."""
    _write_bundle(run_id, output, public_key, state_dir, as_json)


def _run_dir(run_id: str, state_dir: Path | None) -> Path:
    """The folder of run ``run_id`` in the state directory.

    Raises:
        StateError: no such run (exit 2).
    """
    return _run_of(run_id, state_dir)[0]


def _run_of(run_id: str, state_dir: Path | None) -> tuple[Path, tuple[int, str] | None]:
    """The folder of run ``run_id`` (a working copy for a team's store) and the journal
    anchor its store keeps.

    Raises:
        StateError: no such run (exit 2).
    """
    store = open_store(state_dir, create=False, run_id=run_id)
    try:  # closed here: a PostgreSQL pool left to the garbage collector may be collected in
        # one of its own threads, which cannot join itself (a traceback on standard error)
        store.get_run(run_id)
        return store.run_dir(run_id), store.anchor(run_id)
    finally:
        store.close()


def _write_bundle(
    run_id: str, output: Path, public_key: Path | None, state_dir: Path | None, as_json: bool
) -> None:
    from runbook_engine.evidence.bundle import write_bundle

    run_dir = _run_dir(run_id, state_dir)
    check = write_bundle(run_dir, output, _pinned_key(public_key), expected_run_id=run_id)
    if as_json:
        click.echo(
            json.dumps(
                {"run_id": run_id, "bundle": str(output.resolve()), **check.summary()}, indent=2
            )
        )
    else:
        click.echo(f"Bundle: {output.resolve()}", err=True)
    if not check.ok:
        click.echo(check.text(), err=True)
        sys.exit(check.exit_status)


@evidence.command("verify")
@click.argument("target", metavar="RUN_ID|PATH")
@_public_key_option
@click.option(
    "--require-signature",
    is_flag=True,
    help="Fail unless every record is signed by a trusted key: --public-key, or else "
    "signing.pub in the default key folder (~/.config/runbook-engine/keys).",
)
@click.option("--run-id", help="The run the evidence must be of (a swapped run folder fails).")
@state_option
@json_option
def evidence_verify(
    target: str,
    public_key: Path | None,
    require_signature: bool,
    run_id: str | None,
    state_dir: Path | None,
    as_json: bool,
) -> None:
    """Check a run (RUN_ID, in --state-dir), a run folder, its journal.jsonl, or an evidence
    bundle (.zip): chain, signatures, attachments, outputs, notebooks; the first bad line
    is reported.  RUN_ID|PATH is read as a PATH when such a file or folder exists, else as
    a run id.

    Verdicts: verified (key pinned, every record signed, a finished run sealed; exit 0),
    verified-unpinned (the same with the key the journal names; exit 0), unsigned (exit 0),
    incomplete (a valid signed prefix: unsigned records at the end, or the run not sealed;
    exit 3), failed (exit 1).
    """
    from runbook_engine.evidence.bundle import verify_bundle
    from runbook_engine.evidence.journal import verify_journal
    from runbook_engine.evidence.verify import verify_run

    path, anchor = Path(target), None
    if not path.exists():  # a run id: its folder in the store (a working copy of a team's)
        path, anchor = _verify_target(target, state_dir)
        run_id = run_id or target
    pinned = _pinned_key(public_key)
    if require_signature and pinned is None:
        pinned = _trusted_default_key()
    folder = path if path.is_dir() else path.parent
    if run_id is None and path.name != "journal.jsonl" and folder.parent.name == "runs":
        run_id = folder.name  # a run folder of a state directory: runs/RUN_ID
    if path.is_file() and path.suffix.lower() == ".zip":
        check = verify_bundle(path, pinned, expected_run_id=run_id)
    elif path.is_dir() or path.name == "journal.jsonl":
        check = verify_run(
            folder,
            public_key=pinned,
            require_signature=require_signature,
            expected_run_id=run_id,
            anchor=anchor or _store_anchor(folder, run_id),
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
                    "gaps": check.gaps,
                    "notes": check.notes,
                },
                indent=2,
            )
        )
    else:
        from runbook_engine.evidence.safeio import terminal_safe

        click.echo(terminal_safe(check.text()))
    sys.exit(check.exit_status)


def _verify_target(target: str, state_dir: Path | None) -> tuple[Path, tuple[int, str] | None]:
    """The run folder of run id ``target`` and its anchor; neither a path nor a run is bad
    input (exit 2)."""
    from runbook_engine.errors import StateError

    state = state_dir_or_default(state_dir)
    try:
        return _run_of(target, state_dir)
    except StateError as exc:
        if current_store_url():  # a team's store says what it lacks (or why it cannot say)
            raise InputError(f"{target}: no such file or folder; {exc.message}") from None
        raise InputError(
            f"{target}: no such file or folder, and no run {target!r} in {state} "
            "(give a run id with --state-dir, a run folder, its journal.jsonl or a bundle)"
        ) from None


def _trusted_default_key() -> bytes:
    """The public key of the verifier's own default key folder (``--require-signature``)."""
    from runbook_engine.evidence.keys import PUBLIC_NAME, default_key_dir

    path = default_key_dir() / PUBLIC_NAME
    if not path.is_file():
        raise InputError(
            "--require-signature needs a key you trust: pass --public-key FILE (the "
            f"organisation's signing.pub), or keep it as {path}"
        )
    return _pinned_key(path) or b""


def _store_anchor(folder: Path, run_id: str | None) -> tuple[int, str] | None:
    """The journal anchor the checkpoint store keeps for a run folder of a state directory
    (``STATE/runs/RUN_ID``), or ``None`` (a bundle, a copied folder, an older run)."""
    from runbook_engine.errors import StateError
    from runbook_engine.run.store import CheckpointStore

    state_dir = folder.parent.parent
    if run_id is None or folder.parent.name != "runs" or not (state_dir / "state.db").is_file():
        return None
    try:
        store = CheckpointStore(state_dir, create=False)
    except StateError:
        return None
    try:
        return store.anchor(run_id)
    except sqlite3.Error:  # an older or damaged database: the head file decides
        return None
    finally:
        store.close()
