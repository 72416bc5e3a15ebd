"""``runbook evidence RUN_ID --to json|md|html|pdf``: render a run's change record.

The record (:func:`runbook_engine.evidence.record.build_record`) is built from the
run's journal and the integrity check of its evidence; JSON is its canonical
text (keys in the record's order: summary, steps, backout, details, appendix, sign-off),
Markdown and HTML come from ``templates/change-record.{md,html}.j2`` in the same
order, PDF is the HTML printed by WeasyPrint (the optional ``pdf`` extra) on
portrait A4 (``templates/change-record.css``), through the guide's PDF path
(:mod:`runbook_engine.outputs.pdf`: nothing fetched but ``data:`` URLs);
reproducible: its dates come from ``SOURCE_DATE_EPOCH`` when set, else from the
record.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from runbook_engine.errors import InputError
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
    records = check.records  # read once, by the check
    if check.signed and not check.problems:
        records = unsigned_claims_dropped(records[: check.covered], check)
    return build_record(records, check), check


#: Fields by which a record says its person was signed in to the web console.
_CLAIMS = ("authenticated", "auth_method", "operator_authenticated", "operator_auth_method")


def unsigned_claims_dropped(
    records: list[dict[str, Any]], check: EvidenceCheck
) -> list[dict[str, Any]]:
    """``records`` where a record saying its person was signed in (``authenticated``,
    ``operator_authenticated``) keeps it only when the record has a signature of its own.

    The console and the runner sign such a record the moment they write it, with the
    run's key; one covered only by a later signature was written by someone without the
    key (a row added to a team's database, a line added to the file) and names a person
    as given, not as signed in.  Each is named in ``check.notes``.
    """
    kept = []
    for rec in records:
        claims = rec.get("authenticated") is True or rec.get("operator_authenticated") is True
        if claims and rec.get("seq") not in check.signed_seqs:
            rec = {k: v for k, v in rec.items() if k not in _CLAIMS}
            check.notes.append(
                f"line {rec.get('seq')} ({rec.get('event')}) says its person was signed in, "
                "but has no signature of its own: counted as a name given"
            )
        kept.append(rec)
    return kept


def render_record(record: dict[str, Any], fmt: str) -> bytes:
    """Render a change record as ``fmt`` (one of :data:`FORMATS`).

    Raises:
        InputError: unknown format, missing template, or PDF without WeasyPrint.
    """
    if fmt == "json":
        return (json.dumps(record, indent=2, ensure_ascii=False) + "\n").encode()
    if fmt in ("md", "html"):
        from runbook_engine.outputs.templating import get_template

        if fmt == "html":
            from markupsafe import Markup

            from runbook_engine.outputs.markdown import to_html
            from runbook_engine.outputs.templating import read_asset

            css = read_asset("change-record.css")
            page = get_template("change-record.html.j2").render(
                r=record, css=css, markdown=lambda text: Markup(to_html(text))
            )
            return page.encode()
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
    from runbook_engine.outputs.pdf import _data_only_fetcher, weasyprint_module

    weasyprint = weasyprint_module()
    stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    text = html.decode("utf-8").replace(
        "<head>",
        f'<head><meta name="dcterms.created" content="{stamp}">'
        f'<meta name="dcterms.modified" content="{stamp}">',
        1,
    )
    fetcher = _data_only_fetcher(weasyprint)
    document = weasyprint.HTML(string=text, base_url=None, url_fetcher=fetcher).render()
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
    window = (record.get("summary") or {}).get("window") or {}
    text = window.get("finished_at") or window.get("started_at")
    if text:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    return datetime(1980, 1, 1, tzinfo=UTC)
