"""``runbook keys`` (init) and ``runbook evidence`` (export, verify): signing keys, evidence."""

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
    json_option,
    state_dir_or_default,
    state_option,
    write_output,
)
from runbook_engine.errors import InputError


@click.group()
def keys() -> None:
    """Signing keys for journals (Ed25519)."""


@keys.command("init")
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path, file_okay=False),
    help="Folder for signing.key and signing.pub "
    "[default: $XDG_CONFIG_HOME/runbook-engine/keys, i.e. ~/.config/runbook-engine/keys].",
)
@click.option("--force", is_flag=True, help="Replace an existing key pair.")
@state_option
def keys_init(directory: Path | None, force: bool, state_dir: Path | None) -> None:
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

    target = directory or default_key_dir()
    state = state_dir_or_default(state_dir).resolve()
    if target.resolve() == state or state in target.resolve().parents:
        raise InputError(
            f"--dir {target}: a signing key inside the state directory {state} could be "
            "used by whoever edits the journals; keep it elsewhere"
        )
    made = init_keys(target, force=force)
    click.echo(f"Private key: {made.private} (keep it secret; mode 0600)")
    click.echo(
        f"Public key:  {made.public} (give it to auditors, who pin it: "
        "runbook evidence verify --public-key FILE)"
    )
    click.echo(f"Key id:      {made.key_id}")
    if directory is not None:
        click.echo(f"Runs sign with it when RUNBOOK_SIGNING_KEY={made.private}")


class _EvidenceGroup(click.Group):
    """``runbook evidence RUN_ID ...`` exports; ``runbook evidence verify PATH`` verifies."""

    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            return "export", self.commands["export"], args
        return super().resolve_command(ctx, args)


@click.group(cls=_EvidenceGroup)
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
    "--public-key", type=EXISTING_FILE, help="Require signatures by this public key (PEM)."
)


@evidence.command("export")
@click.argument("run_id")
@click.option(
    "--to", "fmt", type=click.Choice(["html", "pdf", "md", "json"]), help="Change record format."
)
@click.option("-o", "--output", type=FILE_PATH, help="Write here instead of standard output.")
@click.option("--bundle", type=FILE_PATH, help="Write the evidence bundle (zip) here.")
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
    from runbook_engine.run.store import CheckpointStore

    if (fmt is None) == (bundle is None):
        raise InputError("give --to FORMAT or --bundle OUT.zip")
    store = CheckpointStore(state_dir_or_default(state_dir), create=False, run_id=run_id)
    store.get_run(run_id)
    run_dir = store.run_dir(run_id)
    pinned = _pinned_key(public_key)
    if bundle is not None:
        from runbook_engine.evidence.bundle import write_bundle

        check = write_bundle(run_dir, bundle, pinned, expected_run_id=run_id)
        click.echo(f"Bundle: {bundle.resolve()}", err=True)
    else:
        from runbook_engine.evidence.export import record_of, render_record

        record, check = record_of(run_dir, pinned, expected_run_id=run_id)
        write_output(render_record(record, fmt or "html"), output)
    if not check.ok:
        click.echo(check.text(), err=True)
        sys.exit(check.exit_status)


@evidence.command("verify")
@click.argument("path", type=click.Path(path_type=Path, exists=True))
@_public_key_option
@click.option(
    "--require-signature",
    is_flag=True,
    help="Fail unless every record is signed by a trusted key: --public-key, or else "
    "signing.pub in the default key folder (~/.config/runbook-engine/keys).",
)
@click.option("--run-id", help="The run the evidence must be of (a swapped run folder fails).")
@json_option
def evidence_verify(
    path: Path,
    public_key: Path | None,
    require_signature: bool,
    run_id: str | None,
    as_json: bool,
) -> None:
    """Check a run folder, its journal.jsonl, or an evidence bundle (.zip): chain, signatures,
    attachments, outputs, notebooks; the first bad line is reported.

    Verdicts: verified (key pinned, every record signed, a finished run sealed; exit 0),
    verified-unpinned (the same with the key the journal names; exit 0), unsigned (exit 0),
    incomplete (a valid signed prefix: unsigned records at the end, or the run not sealed;
    exit 3), failed (exit 1).
    """
    from runbook_engine.evidence.bundle import verify_bundle
    from runbook_engine.evidence.journal import verify_journal
    from runbook_engine.evidence.verify import verify_run

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
            anchor=_store_anchor(folder, run_id),
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
