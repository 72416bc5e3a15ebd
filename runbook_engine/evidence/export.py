"""``runbook evidence RUN_ID --to json|md|html|pdf``: render a run's change record.

The record (:func:`runbook_engine.evidence.record.build_record`) is built from the
run's journal and the integrity check of its evidence; JSON is its canonical
text, Markdown and HTML come from ``templates/change-record.{md,html}.j2``, PDF
is the HTML printed by WeasyPrint (the optional ``pdf`` extra), reproducible:
its dates come from ``SOURCE_DATE_EPOCH`` when set, else from the record.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from runbook_engine.errors import InputError
from runbook_engine.evidence import JOURNAL_NAME
from runbook_engine.evidence.journal import read_journal
from runbook_engine.evidence.record import build_record
from runbook_engine.evidence.verify import EvidenceCheck, verify_run

FORMATS = ("json", "md", "html", "pdf")
SUFFIXES = {"json": ".json", "md": ".md", "html": ".html", "pdf": ".pdf"}


def record_of(
    run_dir: Path, public_key: bytes | None = None, expected_run_id: str | None = None
) -> tuple[dict[str, Any], EvidenceCheck]:
    """Check a run folder's evidence and build its change record.

    A damaged journal still gives a record of the good lines before the first bad
    one; its ``integrity`` section says what is wrong.  Of a signed journal only
    the records a signature covers count: records after the last signature are
    left out of the record (its ``integrity`` section says how many).

    Args:
        run_dir: The run folder (or an unpacked bundle).
        public_key: The pinned public key (PEM), or ``None``.
        expected_run_id: The run the folder must hold (``runbook evidence RUN_ID``).
    """
    check = verify_run(run_dir, public_key=public_key, expected_run_id=expected_run_id)
    records = read_journal(run_dir / JOURNAL_NAME, verify=False)
    if check.signed and not check.problems:
        records = records[: check.covered]
    return build_record(records, check), check


def render_record(record: dict[str, Any], fmt: str) -> bytes:
    """Render a change record as ``fmt`` (one of :data:`FORMATS`).

    Raises:
        InputError: unknown format, missing template, or PDF without WeasyPrint.
    """
    if fmt == "json":
        return (json.dumps(record, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()
    if fmt in ("md", "html"):
        from runbook_engine.outputs.templating import get_template

        if fmt == "html":
            from runbook_engine.outputs.templating import read_asset

            css = read_asset("change-record.css")
            return get_template("change-record.html.j2").render(r=record, css=css).encode()
        return get_template("change-record.md.j2").render(r=record).encode()
    if fmt == "pdf":
        return html_to_pdf(render_record(record, "html"), _pdf_time(record))
    raise InputError.single(
        f"--to {fmt}: unknown format; use one of: {', '.join(FORMATS)}", code="RB250"
    )


def html_to_pdf(html: bytes, when: datetime) -> bytes:
    """Print HTML to PDF with WeasyPrint; ``when`` is written as creation and modification date.

    Raises:
        InputError: WeasyPrint (``pip install 'runbook-engine[pdf]'``) or its system
            libraries (Pango) are missing.
    """
    try:
        import weasyprint
    except (ImportError, OSError) as exc:
        raise InputError(
            f"PDF output needs WeasyPrint and its system libraries "
            f"(pip install 'runbook-engine[pdf]'; from a checkout: pip install '.[pdf]'): {exc}"
        ) from None
    stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    text = html.decode("utf-8").replace(
        "<head>",
        f'<head><meta name="dcterms.created" content="{stamp}">'
        f'<meta name="dcterms.modified" content="{stamp}">',
        1,
    )
    document = weasyprint.HTML(string=text).render()
    data = document.write_pdf(identifier=b"runbook-engine-change-record")
    assert isinstance(data, bytes)
    return data


def _pdf_time(record: dict[str, Any]) -> datetime:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        try:
            return datetime.fromtimestamp(int(epoch), UTC)
        except ValueError:
            raise InputError(
                f"SOURCE_DATE_EPOCH={epoch!r} is not a whole number of seconds"
            ) from None
    text = record.get("finished_at") or record.get("started_at")
    if text:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    return datetime(1980, 1, 1, tzinfo=UTC)
