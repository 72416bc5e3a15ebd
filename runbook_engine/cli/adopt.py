"""``runbook import``: runbooks from Runme, rundoc, Innovation Engine, Markdown or an article."""

from __future__ import annotations

from pathlib import Path

import click

from runbook_engine.cli.common import json_option
from runbook_engine.errors import InputError

#: The built-in importers' names, in registration order (``--from`` choices).  Kept here so
#: that every other command starts without importing the importers (markdown-it rules,
#: the article reader: ~70 ms); ``tests/test_cli.py`` checks it against ``IMPORTERS``.
FORMATS = ("innovation-engine", "runme", "rundoc", "markdown", "article")


@click.command("import")
@click.argument("source", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    help="FILE.md for one runbook (its environment beside it: FILE-env.yaml), or a folder.",
)
@click.option(
    "--from",
    "source_format",
    type=click.Choice(["auto", *FORMATS]),
    default="auto",
    show_default=True,
    help="The source's format (auto: detected).",
)
@click.option("--force", is_flag=True, help="Overwrite files the import writes.")
@json_option
def import_(
    source: Path, output: Path | None, source_format: str, force: bool, as_json: bool
) -> None:
    """Make runbooks from SOURCE: a Runme, rundoc, Innovation Engine or Markdown document, or
    a prose article (text, HTML, Markdown), with an example environment and a report of what
    became what and what was not mapped. Nothing is written outside -o; existing files are
    kept unless --force. Deterministic and offline.
    """
    # Imported here, not at module level: only `runbook import` needs the importers.
    from runbook_engine.source.importers import import_source, outputs
    from runbook_engine.source.importers.emit import report_json, report_text

    result = import_source(source, source_format)
    files = outputs(result, source, output)
    existing = sorted(str(p) for p in files if p.exists() or p.is_symlink())
    if existing and not force:
        raise InputError(
            f"{existing[0]} exists ({len(existing)} file(s) would be overwritten): "
            "give --force, or another -o"
        )
    if output is not None and output.suffix.lower() != ".md" and output.is_file():
        raise InputError(f"-o {output}: a file; give a folder for {len(result.drafts)} runbooks")
    assert output is not None
    _refuse_escapes(files, output.parent if output.suffix.lower() == ".md" else output)
    from runbook_engine.evidence.safeio import write_atomic

    for path, text in files.items():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, text.encode("utf-8"))
        except OSError as exc:
            raise InputError(f"cannot write {path}: {exc.strerror or exc}") from None
    base = output.parent if output.suffix.lower() == ".md" else output
    written = [str(p.relative_to(base)) for p in files]
    text = report_json(result, written) if as_json else report_text(result, written, source.name)
    click.echo(text, nl=False)


def _refuse_escapes(files: dict[Path, str], base: Path) -> None:
    """Refuse, before anything is written, a target whose real path leaves ``base``'s
    (a symbolic link in the output folder pointing elsewhere).

    Raises:
        InputError: a target would be written outside ``-o``.
    """
    root = base.resolve()
    for path in files:
        real = path.resolve()
        if real != root and root not in real.parents:
            raise InputError(
                f"{path} resolves to {real}, outside {base} (a symbolic link): the import "
                "writes only inside -o; remove the link or give another -o"
            )

