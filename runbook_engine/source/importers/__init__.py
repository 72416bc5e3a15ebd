"""``runbook import``: runbooks from other formats, by one importer per format.

The registry follows papermill's engines (a name -> implementation mapping that new
formats join with :func:`register_importer`).  ``--from auto`` asks each importer's
``detect`` in registration order; the article importer, registered last, takes anything.
Importers read text and return an :class:`~.model.ImportResult`; :func:`outputs` turns it
into the files to write (runbooks, example environment, report).  Nothing here writes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from runbook_engine.errors import InputError
from runbook_engine.source.importers import article, innovation, markdown, rundoc, runme
from runbook_engine.source.importers.emit import environment_text, report_text, runbook_text
from runbook_engine.source.importers.model import ImportResult


@dataclass(frozen=True, slots=True)
class ImporterInfo:
    """One source format: its name, what it reads, how to recognise and convert it."""

    name: str
    description: str
    detect: Callable[[str, Path], bool]
    convert: Callable[[str, Path], ImportResult]


IMPORTERS: dict[str, ImporterInfo] = {}


def register_importer(info: ImporterInfo) -> None:
    """Add (or replace) the importer of ``info.name``."""
    IMPORTERS[info.name] = info


for _info in (
    ImporterInfo(
        "innovation-engine",
        "Innovation Engine executable docs",
        innovation.detect,
        innovation.convert,
    ),
    ImporterInfo("runme", "Runme notebooks (runme.dev)", runme.detect, runme.convert),
    ImporterInfo(
        "rundoc", "rundoc documents (bash#tag, env/secret blocks)", rundoc.detect, rundoc.convert
    ),
    ImporterInfo("markdown", "Markdown with shell blocks", markdown.detect, markdown.convert),
    ImporterInfo(
        "article", "a prose article: plain text, HTML or Markdown", article.detect, article.convert
    ),
):
    register_importer(_info)


def read_text(path: Path) -> str:
    """The source's text (UTF-8, a BOM dropped; CRLF read as LF).

    Raises:
        InputError: the file cannot be read or is not UTF-8 text.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(
            f"{path}: cannot read it ({exc.strerror or exc}); give a readable file"
        ) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path}: not UTF-8 text (byte {exc.start + 1}); convert it to UTF-8 and import again"
        ) from None
    if "\x00" in text:
        raise InputError(
            f"{path}: holds NUL bytes, not a text document; give a text, HTML or Markdown file"
        )
    return text.replace("\r\n", "\n").replace("\r", "\n")


def detect_format(text: str, path: Path) -> str:
    """The first importer whose ``detect`` accepts the text."""
    return next(name for name, info in IMPORTERS.items() if info.detect(text, path))


def import_source(path: Path, source_format: str = "auto") -> ImportResult:
    """Import ``path`` as ``source_format`` (``auto``: detected).

    Raises:
        InputError: unreadable input, an unknown format, or nothing to import.
    """
    text = read_text(path)
    name = detect_format(text, path) if source_format == "auto" else source_format
    if name not in IMPORTERS:
        raise InputError(f"--from {name}: unknown format; formats: auto, {', '.join(IMPORTERS)}")
    result = IMPORTERS[name].convert(text, path)
    if not any(d.steps() for d in result.drafts):
        raise InputError(
            f"{path}: no step found as {name} (no procedure, command block or instruction); "
            "try another --from"
        )
    result.drafts = [d for d in result.drafts if d.steps()]
    return result


def outputs(result: ImportResult, source: Path, output: Path | None) -> dict[Path, str]:
    """The files an import writes, by path, all under ``output``.

    One runbook and ``output`` a ``.md`` file: that file and ``NAME-env.yaml`` beside it.
    Otherwise ``output`` is a folder: ``ID.md`` per runbook, ``environments/example.yaml``
    and ``_import-report.md`` (a ``_`` name: no runbook).

    Raises:
        InputError: several runbooks and ``output`` a ``.md`` file, or no ``output``.
    """
    if output is None:
        raise InputError("give -o FILE.md (one runbook) or -o FOLDER")
    drafts = result.drafts
    if output.suffix.lower() == ".md":
        if len(drafts) != 1:
            raise InputError(f"{source} holds {len(drafts)} procedures: give -o a folder")
        env = output.with_name(output.stem + "-env.yaml")
        return {output: runbook_text(drafts[0]), env: environment_text(drafts, source.name)}
    files = {output / f"{d.id}.md": runbook_text(d) for d in drafts}
    files[output / "environments" / "example.yaml"] = environment_text(drafts, source.name)
    written = [str(p.relative_to(output)) for p in files]
    files[output / "_import-report.md"] = report_text(result, written, source.name)
    return files
