"""The step table of a change record: one row per step and host, from journal records.

:func:`step_rows` replays a run's journal over its flow (the ``steps`` of
``run-started``) and returns one row per step and host with what happened to it.
A row holds the public columns of the record's ``steps`` table (:data:`TABLE_KEYS`)
and a few working fields the details and appendix are built from
(:mod:`runbook_engine.evidence.details`): ``command``, ``command_shown``,
``instructions_shown`` (a manual step's instructions as the person was shown them),
``values`` (the ``RUNBOOK_VALUE_*`` variables a command got), ``output_excerpt``,
``output_file``, ``detail``, ``note``.

A finished run's rows that never started are ``not reached``; ``pending`` is a row of a
run that has not finished (paused at a gate, or still running).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from runbook_engine.evidence import knowledge

#: The columns of the record's step table, in order (``record_version`` 4).
TABLE_KEYS = (
    "number",
    "id",
    "title",
    "kind",
    "phase",
    "host",
    "address",
    "transport",
    "status",
    "known",
    "how",
    "by",
    "source",
    "started_at",
    "finished_at",
    "duration_seconds",
    "exit_code",
    "attempts",
    "output_sha256",
    "command_ref",
    "command_sha256",
)
#: The status of a step a finished run never reached (``pending`` while it may still be).
NOT_REACHED = "not reached"
#: Statuses that count as failed in the outcome's counts.
FAILED = frozenset({"failed", "error", "rejected", "aborted"})


def _new_row(spec: dict[str, Any], host: str) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(TABLE_KEYS)
    row.update(
        number=spec.get("number"),
        id=spec["id"],
        title=spec.get("title"),
        kind=spec.get("kind"),
        phase=spec.get("phase", "change"),
        host=host,
        status="pending",
        attempts=0,
        command=None,
        command_shown=None,
        instructions_shown=None,
        values=None,
        output_excerpt=None,
        output_file=None,
        detail=None,
        note=None,
    )
    return row


def step_rows(records: list[dict[str, Any]], flow: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per step and host, in flow order (steps the flow does not name last).

    Args:
        records: The journal's records, in order.
        flow: The ``steps`` of ``run-started`` (see :func:`.record.flow_fields`).
    """
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for spec in flow:
        for host in spec.get("hosts") or ["operator"]:
            rows[(spec["id"], host)] = _new_row(spec, host)
    for r in records:
        if "step" not in r or "host" not in r:
            continue
        row = rows.get((r["step"], r["host"]))
        if row is None:
            row = rows.setdefault((r["step"], r["host"]), _new_row({"id": r["step"]}, r["host"]))
        _apply_event(row, r)
    out = list(rows.values())
    if any(r["event"] == "run-finished" for r in records):
        for row in out:
            if row["status"] == "pending":
                row["status"] = NOT_REACHED
    for row in out:
        if row["started_at"] and row["finished_at"]:
            row["duration_seconds"] = round(
                (parse_time(row["finished_at"]) - parse_time(row["started_at"])).total_seconds(),
                3,
            )
    return out


#: Verdicts of check mode (``runbook run --check``) a step row takes.
CHECK_VERDICTS = ("already-done", "would-change", "unknown")


def _apply_event(row: dict[str, Any], r: dict[str, Any]) -> None:
    event = r["event"]
    if event in ("step-started", "probe-started"):
        row["started_at"] = row["started_at"] or r["time"]
        row["attempts"] += 1
        row.update(
            command=r.get("command") if event == "step-started" else r.get("probe"),
            values=r.get("values") if event == "step-started" else None,
            address=r.get("address"),
            transport=r.get("transport"),
            how="run" if event == "step-started" else "probe",
            source="tool",
            status="running",
        )
    elif event in ("step-finished", "probe-finished"):
        row.update(
            finished_at=r["time"],
            known=knowledge.OBSERVED,
            status=r.get("status"),
            exit_code=r.get("exit_code"),
            output_excerpt=r.get("output_excerpt"),
            output_sha256=r.get("output_sha256"),
            output_file=r.get("output_file"),
        )
        if event == "probe-finished":
            row["detail"] = (r.get("result") or {}).get("message")
        if r.get("error"):
            row["detail"] = r["error"]
    elif event in ("gate-awaiting", "approval-requested"):
        row.update(
            status="awaiting",
            how="approval" if event.startswith("approval") else "gate",
            started_at=row["started_at"] or r["time"],
        )
        if r.get("gate") == "command-by-hand":
            row["command_shown"] = r.get("instructions")
        elif r.get("gate") == "manual" and r.get("instructions"):
            row["instructions_shown"] = r.get("instructions")
    elif event == "gate-passed":
        row.update(
            status="succeeded" if r.get("decision") != "rerun" else "rerun",
            how=row["how"] or "gate",
            known=knowledge.known_by_source(r.get("source")),
            finished_at=r["time"],
            by=r.get("by"),
            source=r.get("source"),
            note=r.get("note"),
        )
        row["started_at"] = row["started_at"] or r["time"]
        shown = r.get("command_shown") or r.get("command")  # "command": journals before 0.2
        if shown:
            row["command_shown"] = shown
        if r.get("instructions_shown"):
            row["instructions_shown"] = r["instructions_shown"]
    elif event == "step-skipped":
        row.update(
            status="not applicable" if "gate" not in r else "skipped",
            known=knowledge.SKIPPED,
            finished_at=r["time"],
            detail=r.get("reason"),
            by=r.get("by"),
            source=r.get("source") if "gate" in r else "tool",
        )
    elif event == "step-excluded":
        row.update(
            status="excluded",
            known=knowledge.SKIPPED,
            finished_at=r["time"],
            detail=r.get("reason"),
            source="selection",
        )
    elif event == "step-checked" and r.get("verdict") in CHECK_VERDICTS:
        row.update(
            status=r.get("verdict"),
            how=row["how"] or "check mode",
            known=knowledge.SKIPPED if r.get("verdict") == "unknown" else knowledge.OBSERVED,
            finished_at=r["time"],
            detail=r.get("detail"),
            source="tool",
        )
    elif event == "step-already-done":
        row.update(
            status="already-done",
            known=knowledge.OBSERVED,
            finished_at=r["time"],
            source="tool",
            detail=f"check {r.get('check')} succeeded: the change was already in place",
        )
    elif event in ("approval-passed", "approval-rejected", "approval-bypassed"):
        status = {
            "approval-passed": "succeeded",
            "approval-rejected": "rejected",
            "approval-bypassed": "skipped",
        }[event]
        known = knowledge.SKIPPED if event == "approval-bypassed" else knowledge.ATTESTED
        names = [a.get("by") for a in r.get("approvals") or [] if isinstance(a, dict)]
        by = ", ".join(str(n) for n in names if n) or r.get("by")
        row.update(status=status, how="approval", known=known, finished_at=r["time"], by=by)
        row["source"] = "approve"
        row["started_at"] = row["started_at"] or r["time"]
    elif event in ("run-aborted", "approval-missing"):
        row.update(
            status="aborted" if event == "run-aborted" else "failed",
            known=knowledge.ATTESTED if event == "run-aborted" else knowledge.OBSERVED,
            finished_at=r["time"],
            detail=r.get("reason") or f"aborted by {r.get('by')}",
            by=r.get("by"),
            source=r.get("source"),
        )
    elif event == "step-interrupted":
        row["detail"] = "interrupted in an earlier attempt"


def parse_time(text: str) -> datetime:
    """A journal time (``2024-01-02T03:04:05.678901Z``) as an aware UTC datetime."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
