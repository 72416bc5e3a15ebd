"""The change record: what a change board or auditor reads, built from the journal alone.

:func:`build_record` turns the (verified) journal records of one run into
JSON-ready data; the renderers (``change-record.*.j2``, :mod:`.export`) only
format it.  Everything comes from journal events (DESIGN.md §5), so the record of
a bundle can be rebuilt from the bundle's journal and compared.

Shape (``record_version`` 2): ``run_id``, ``change`` (id, reason, emergency,
approval policy), ``runbook`` and ``environment`` (as run: ``sha256`` is the last
accepted change's, ``sha256_at_start`` and ``accepted_changes`` when one was accepted),
``operators``, ``people`` (everyone the journal names, once each, with their roles),
``approvals``, ``prechecks``, ``steps`` (each with ``known``: how the result is known,
see :mod:`.knowledge`; ``command`` as run by the tool, ``command_shown`` to a person),
``gates``, ``attachments``, ``deviations``, ``verification``, ``outcome`` (with
``known`` counts), ``integrity``, ``started_at``, ``finished_at``.
Times are UTC ISO-8601 strings as the journal wrote them; durations are seconds.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from runbook_engine.evidence import knowledge, people

if TYPE_CHECKING:
    from runbook_engine.evidence.verify import EvidenceCheck
    from runbook_engine.tailor.tailoring import TailoredRunbook

RECORD_VERSION = 2


def flow_fields(tailored: TailoredRunbook) -> list[dict[str, Any]]:
    """Return the flow's steps for the ``run-started`` record (so the record knows phases)."""
    return [
        {
            "id": ts.id,
            "number": ts.number,
            "title": ts.step.display_title(),
            "kind": ts.step.kind,
            "phase": ts.step.phase,
            "target": ts.step.target,
            "backout": ts.step.backout,
            "hosts": [h.name for h in ts.hosts],
        }
        for ts in tailored.steps
    ]


def build_record(records: list[dict[str, Any]], check: EvidenceCheck | None) -> dict[str, Any]:
    """Build the change record of one run from its journal records.

    Args:
        records: The journal's records, in order (``run-started`` first).
        check: The integrity check of the run's evidence (``None``: not checked).

    Returns:
        JSON-ready data (see the module docstring).
    """
    started = records[0] if records else {}
    flow = started.get("steps") or []
    rows = step_rows(records, flow)
    finished = next((r for r in reversed(records) if r["event"] == "run-finished"), None)
    verify_rows = [r for r in rows if r["phase"] == "verify" and r["status"] != "not applicable"]
    all_passed = all(r["status"] in ("succeeded", "already-done") for r in verify_rows)
    verification = {"steps": verify_rows, "all_passed": all_passed, "count": len(verify_rows)}
    verification["known"] = knowledge.counts(verify_rows)
    return {
        "record_version": RECORD_VERSION,
        "run_id": started.get("run_id"),
        "change": {
            "id": started.get("change_id"),
            "reason": started.get("reason"),
            "emergency": bool(started.get("emergency")),
            "approval_policy": started.get("approval_policy", "optional"),
        },
        "runbook": _as_run(started.get("runbook"), records, "runbook"),
        "environment": _as_run(started.get("environment"), records, "environment"),
        "tool": started.get("tool"),
        "parameters": started.get("parameters"),
        "started_at": started.get("time"),
        "finished_at": finished["time"] if finished else None,
        "operators": people.operators(records),
        "people": people.people(records),
        "approvals": people.approvals(records),
        "prechecks": [r for r in rows if r["phase"] == "precheck"],
        "steps": rows,
        "gates": _gates(records),
        "attachments": _attachments(records),
        "deviations": _deviations(records),
        "verification": verification,
        "outcome": _outcome(records, finished, rows, verify_rows),
        "integrity": check.summary() if check is not None else None,
    }


def _new_row(spec: dict[str, Any], host: str) -> dict[str, Any]:
    return {
        "number": spec.get("number"),
        "id": spec["id"],
        "title": spec.get("title"),
        "kind": spec.get("kind"),
        "phase": spec.get("phase", "change"),
        "host": host,
        "address": None,
        "transport": None,
        "status": "pending",
        "how": None,
        "known": None,
        "command": None,
        "command_shown": None,
        "values": None,
        "started_at": None,
        "finished_at": None,
        "duration_seconds": None,
        "exit_code": None,
        "attempts": 0,
        "output_excerpt": None,
        "output_sha256": None,
        "detail": None,
    }


def step_rows(records: list[dict[str, Any]], flow: list[dict[str, Any]]) -> list[dict[str, Any]]:
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
    for row in out:
        if row["started_at"] and row["finished_at"]:
            row["duration_seconds"] = round(
                (_time(row["finished_at"]) - _time(row["started_at"])).total_seconds(), 3
            )
    return out


def _apply_event(row: dict[str, Any], r: dict[str, Any]) -> None:
    event = r["event"]
    if event in ("step-started", "probe-started"):
        row["started_at"] = row["started_at"] or r["time"]
        row["attempts"] += 1
        row.update(
            command=r.get("command", row["command"]),
            values=r.get("values") or row["values"],
            address=r.get("address"),
            transport=r.get("transport"),
            how="run" if event == "step-started" else "probe",
            status="running",
        )
        if event == "probe-started":
            row["command"] = r.get("probe")
    elif event in ("step-finished", "probe-finished"):
        row.update(
            finished_at=r["time"],
            known=knowledge.OBSERVED,
            status=r.get("status"),
            exit_code=r.get("exit_code"),
            output_excerpt=r.get("output_excerpt"),
            output_sha256=r.get("output_sha256"),
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
    elif event == "gate-passed":
        row.update(
            status="succeeded" if r.get("decision") != "rerun" else "rerun",
            how=row["how"] or "gate",
            known=knowledge.known_by_source(r.get("source")),
            finished_at=r["time"],
            detail=f"{r.get('decision')} by {r.get('by')} ({r.get('source')})",
        )
        row["started_at"] = row["started_at"] or r["time"]
        shown = r.get("command_shown") or r.get("command")  # "command": journals before 0.2
        if shown:
            row["command_shown"] = shown
    elif event == "step-skipped":
        row.update(
            status="not applicable" if "gate" not in r else "skipped",
            known=knowledge.SKIPPED,
            finished_at=r["time"],
            detail=r.get("reason"),
        )
    elif event == "step-excluded":
        row.update(
            status="excluded",
            known=knowledge.SKIPPED,
            finished_at=r["time"],
            detail=r.get("reason"),
        )
    elif event == "step-checked" and r.get("verdict") in (
        "already-done",
        "would-change",
        "unknown",
    ):
        row.update(
            status=r.get("verdict"),
            how=row["how"] or "check mode",
            known=knowledge.SKIPPED if r.get("verdict") == "unknown" else knowledge.OBSERVED,
            finished_at=r["time"],
            detail=r.get("detail"),
        )
    elif event == "step-already-done":
        row.update(
            status="already-done",
            known=knowledge.OBSERVED,
            finished_at=r["time"],
            detail=f"check {r.get('check')} succeeded",
        )
    elif event in ("approval-passed", "approval-rejected", "approval-bypassed"):
        status = {
            "approval-passed": "succeeded",
            "approval-rejected": "rejected",
            "approval-bypassed": "skipped",
        }[event]
        known = knowledge.SKIPPED if event == "approval-bypassed" else knowledge.ATTESTED
        row.update(status=status, how="approval", known=known, finished_at=r["time"])
        row["started_at"] = row["started_at"] or r["time"]
    elif event in ("run-aborted", "approval-missing"):
        row.update(
            status="aborted" if event == "run-aborted" else "failed",
            known=knowledge.ATTESTED if event == "run-aborted" else knowledge.OBSERVED,
            finished_at=r["time"],
            detail=r.get("reason") or f"aborted by {r.get('by')}",
        )
    elif event == "step-interrupted":
        row["detail"] = "interrupted in an earlier attempt"


def _gates(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    keys = (
        "step",
        "host",
        "gate",
        "decision",
        "by",
        "source",
        "note",
        "reason",
        "answers_path",
        "answers_sha256",
    )
    out = []
    for r in records:
        e = r["event"]
        if e in ("gate-passed", "run-aborted") or (e == "step-skipped" and "gate" in r):
            out.append({"at": r["time"], "event": r["event"], **{k: r.get(k) for k in keys}})
    return out


def _attachments(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    keys = ("step", "host", "name", "path", "sha256", "size_bytes", "by")
    return [
        {"at": r["time"], "journal_seq": r["seq"], **{k: r.get(k) for k in keys}}
        for r in records
        if r["event"] == "attachment-added"
    ]


def _deviations(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def add(kind: str, r: dict[str, Any], detail: str) -> None:
        out.append(
            {
                "kind": kind,
                "step": r.get("step"),
                "host": r.get("host"),
                "at": r["time"],
                "detail": detail,
            }
        )

    by_hand_changes = set()  # (step, host) of declarative steps waiting for a person
    for r in records:
        e = r["event"]
        if e == "gate-awaiting" and r.get("ensures"):
            by_hand_changes.add((r.get("step"), r.get("host")))
        if (
            e == "gate-passed"
            and (r.get("step"), r.get("host")) in by_hand_changes
            and not (r.get("note") or "").strip()
        ):
            add(
                "no-previous-value",
                r,
                "confirmed without the value found before the change (no note): its backout "
                "value is unknown",
            )
        if e == "run-started" and r.get("emergency"):
            add("emergency", r, f"emergency run: {r.get('reason')}")
        elif e == "step-skipped" and "gate" in r:
            add("skip", r, f"skipped by {r.get('by')}: {r.get('reason')}")
        elif e == "step-retry":
            add(
                "retry",
                r,
                f"attempt {r.get('attempt')} failed; retried after {r.get('delay_seconds')} s",
            )
        elif e in ("step-finished", "probe-finished") and r.get("status") != "succeeded":
            add(
                "failure", r, r.get("error") or f"{r.get('status')}, exit code {r.get('exit_code')}"
            )
        elif e == "backout-offered":
            add("backout", r, f"backout {r.get('backout')} offered: {r.get('decision')}")
        elif e == "backout-finished":
            add(
                "backout",
                r,
                f"backout {r.get('id')} {r.get('status')}, exit code {r.get('exit_code')}",
            )
        elif e == "backout-by-hand":
            add("backout", r, f"backout {r.get('backout')} to be done by hand")
        elif e == "run-aborted":
            add("abort", r, f"aborted by {r.get('by')}")
        elif e == "approval-rejected":
            add("rejection", r, f"rejected by {r.get('by')}: {r.get('comment') or ''}".rstrip(": "))
        elif e == "approval-bypassed":
            add("approval-bypassed", r, f"approval bypassed (emergency): {r.get('reason')}")
        elif e == "change-accepted":
            add(
                "change-accepted",
                r,
                f"{r.get('what')} changed during the run; accepted by {r.get('by')}",
            )
        elif e in ("step-interrupted", "run-interrupted"):
            add("interrupted", r, "interrupted")
        elif e == "step-excluded":
            add("excluded", r, f"left out of the run: {r.get('reason')}")
        elif e == "run-started" and r.get("mode") == "check":
            add("check-mode", r, "check run: only steps that read ran; nothing was changed")
    return out


def _excluded(rows: list[dict[str, Any]]) -> int:
    """How many step results the run's selection left out."""
    return sum(1 for r in rows if r["status"] == "excluded")


def finished_summary(records: list[dict[str, Any]], status: str) -> dict[str, Any]:
    """What a run that ends now with the runner's ``status`` has shown, for its
    ``run-finished`` record and the terminal.

    Returns:
        ``outcome`` (the word, see :func:`.knowledge.outcome`), ``note``, ``known``
        (counts per class over every step result) and ``verification_known``.
    """
    flow = (records[0].get("steps") if records else None) or []
    rows = step_rows(records, flow)
    verify_rows = [r for r in rows if r["phase"] == "verify" and r["status"] != "not applicable"]
    word, note = knowledge.outcome(status, verify_rows, _excluded(rows))
    return {
        "outcome": word,
        "note": note,
        "known": knowledge.counts(rows),
        "verification_known": knowledge.counts(verify_rows),
    }


def _outcome(
    records: list[dict[str, Any]],
    finished: dict[str, Any] | None,
    rows: list[dict[str, Any]],
    verify_rows: list[dict[str, Any]],
) -> dict[str, Any]:
    if finished is None:
        last = records[-1]["event"] if records else "none"
        return {
            "status": "in progress",
            "succeeded": False,
            "finished": False,
            "steps": None,
            "known": knowledge.counts(rows),
            "note": f"the run has not finished (last event: {last})",
        }
    status, note = knowledge.outcome(finished.get("status"), verify_rows, _excluded(rows))
    return {
        "status": status,
        "succeeded": status == "succeeded",
        "finished": True,
        "steps": finished.get("steps"),
        "known": knowledge.counts(rows),
        "note": note,
    }


def _as_run(
    started: dict[str, Any] | None, records: list[dict[str, Any]], what: str
) -> dict[str, Any] | None:
    """The runbook or environment as run: its SHA-256 is the last accepted change's."""
    if started is None:
        return None
    accepted = [
        {k: r.get(k) for k in ("old_sha256", "new_sha256", "by")} | {"at": r["time"]}
        for r in records
        if r["event"] == "change-accepted" and r.get("what") == what
    ]
    if not accepted:
        return started
    return {
        **started,
        "sha256": accepted[-1]["new_sha256"],
        "sha256_at_start": started.get("sha256"),
        "accepted_changes": accepted,
    }


def _time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
