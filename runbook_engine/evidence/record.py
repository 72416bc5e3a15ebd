"""The change record: what a change board or auditor reads, built from the journal alone.

:func:`build_record` turns the (verified) journal records of one run into
JSON-ready data; the renderers (``change-record.*.j2``, :mod:`.export`) only
format it, in the same order.  Everything comes from journal events (DESIGN.md §5),
so the record of a bundle can be rebuilt from the bundle's journal and compared;
the evidence verdict is :mod:`.verify`'s.

Shape (``record_version`` 4; :data:`SECTIONS` in order, field names stable):

``summary`` (page 1)
    ``change`` (id, reason, emergency, approval_policy); ``runbook`` as run (id,
    title, version, path, ``sha256`` of the last accepted change, with
    ``sha256_at_start`` and ``accepted_changes`` when one was accepted);
    ``environment`` (name, path, sha256); ``tool``; ``window`` (started_at,
    finished_at, duration_seconds); ``outcome`` (status, succeeded, finished, note,
    steps by status, ``counts``: steps, observed, attested, pre-answered,
    notebook-parameter, skipped, failed, not-reached); ``known``: per class of
    :mod:`.knowledge` its count, who (``by``) and how (``sources``), which is what
    separates what the tool observed from what people attested; ``verification``
    (count, all_passed, known); ``people`` (everyone named, once, with
    ``identity``: see :mod:`.people`); ``approvals``; ``deviations``; ``evidence``
    (:meth:`.verify.EvidenceCheck.summary`, ``verdict`` first); ``run_by``: who ran the
    tool (the operator of the run and of each resume), as against who answered steps;
    ``go_no_go``: the steps marked as go/no-go points; ``failures``: each failed
    step result (step, host, status, exit code, first line of its error, ``see``:
    ``details`` when the details section has its output or error).
``steps``
    One row per step and host: :data:`.rows.TABLE_KEYS` (status, ``known``: how the
    result is known, ``by``/``source``: who decided and how, times, exit code, output
    SHA-256, ``command_ref`` into the appendix).  A finished run's steps that never
    started are ``not reached``; ``pending`` only in a run that has not finished.
``backout``
    What became of the backout of each step that has one and ran (:func:`.details.backouts`):
    ran (and how it ended), by hand, declined, not decided, or not offered.
``details``
    Only the steps and hosts with something to say (:mod:`.details`).
``appendix``
    ``commands`` (each command and manual step's instructions once, with its SHA-256 and
    the run-form ``values`` it reads), ``parameters``, ``hosts``.
``sign_off``
    The review block for the change manager: ``role``, ``statement`` and the fields
    ``reviewed_by``/``decision``/``signed_at``, ``null`` until someone fills them in
    (on paper today).

Times are UTC ISO-8601 strings as the journal wrote them; durations are seconds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runbook_engine.evidence import details, knowledge, people
from runbook_engine.evidence.rows import FAILED, NOT_REACHED, TABLE_KEYS, parse_time, step_rows

if TYPE_CHECKING:
    from runbook_engine.evidence.verify import EvidenceCheck
    from runbook_engine.tailor.tailoring import TailoredRunbook

RECORD_VERSION = 4
#: The record's sections, in the order every format shows them.
SECTIONS = ("summary", "steps", "backout", "details", "appendix", "sign_off")
SIGN_OFF_STATEMENT = (
    "I have reviewed this change record: the outcome, how each result is known, "
    "the deviations and the evidence verdict."
)


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
            "go_no_go": ts.step.go_no_go,
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
        JSON-ready data, sections in :data:`SECTIONS` order (see the module docstring).
    """
    started = records[0] if records else {}
    flow = started.get("steps") or []
    rows = step_rows(records, flow)
    cmds = details.commands(rows, records, started.get("parameters"))
    refs = {c["sha256"]: c["ref"] for c in cmds}
    detail = details.details(rows, records, refs)
    environment = started.get("environment")
    backout = details.backouts(rows, records, flow, refs)
    for b in backout:
        b["short"] = details.BACKOUT_SHORT.get(b["status"], b["status"])
        if b["status"] == "ran" and b["result"]:
            b["short"] = f"ran: {b['result']}, exit code {b['exit_code']}"
    return {
        "record_version": RECORD_VERSION,
        "run_id": started.get("run_id"),
        "sections": list(SECTIONS),
        "summary": _summary(records, started, rows, check),
        "steps": [{k: row[k] for k in TABLE_KEYS} for row in rows],
        "backout": backout,
        "details": detail,
        "appendix": details.appendix(cmds, started, environment),
        "sign_off": {
            "role": "change manager",
            "statement": SIGN_OFF_STATEMENT,
            "reviewed_by": None,
            "decision": None,
            "signed_at": None,
        },
    }


def _summary(
    records: list[dict[str, Any]],
    started: dict[str, Any],
    rows: list[dict[str, Any]],
    check: EvidenceCheck | None,
) -> dict[str, Any]:
    finished = next((r for r in reversed(records) if r["event"] == "run-finished"), None)
    verify_rows = [r for r in rows if r["phase"] == "verify" and r["status"] != "not applicable"]
    environment = started.get("environment")
    start, end = started.get("time"), finished["time"] if finished else None
    duration = (
        round((parse_time(end) - parse_time(start)).total_seconds(), 3) if start and end else None
    )
    return {
        "change": {
            "id": started.get("change_id"),
            "reason": started.get("reason"),
            "emergency": bool(started.get("emergency")),
            "approval_policy": started.get("approval_policy", "optional"),
        },
        "runbook": _as_run(started.get("runbook"), records, "runbook"),
        "environment": (
            None
            if environment is None
            else _as_run(
                {k: v for k, v in environment.items() if k != "hosts"}, records, "environment"
            )
        ),
        "tool": started.get("tool"),
        "window": {"started_at": start, "finished_at": end, "duration_seconds": duration},
        "outcome": _outcome(records, finished, rows, verify_rows),
        "failures": _failures(rows),
        "run_by": _run_by(records),
        "go_no_go": [f["id"] for f in started.get("steps") or [] if f.get("go_no_go")],
        "known": _known(rows),
        "verification": {
            "count": len(verify_rows),
            "all_passed": all(r["status"] in ("succeeded", "already-done") for r in verify_rows),
            "known": knowledge.counts(verify_rows),
        },
        "people": people.people(records),
        "approvals": people.approvals(records),
        "deviations": _deviations(records),
        "evidence": check.summary() if check is not None else None,
    }


def _failures(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The step results that failed, for page 1: which step on which host, its exit code,
    what went wrong in a line, and where the record has more."""
    out = []
    for r in rows:
        if r["status"] not in FAILED:
            continue
        has_output = bool((r.get("output_excerpt") or "").strip())
        detail = (r.get("detail") or "").strip().splitlines()
        out.append(
            {
                "number": r["number"],
                "step": r["id"],
                "title": r["title"],
                "host": r["host"],
                "status": r["status"],
                "exit_code": r["exit_code"],
                "error": detail[0] if detail else None,
                "output_sha256": r["output_sha256"],
                "output_file": r["output_file"],
                "see": "details" if has_output or detail or r.get("note") else None,
            }
        )
    return out


def _run_by(records: list[dict[str, Any]]) -> list[str]:
    """Who ran the tool: the operator of ``run-started`` and of each ``run-resumed``."""
    names: list[str] = []
    for r in records:
        name = r.get("operator") if r["event"] == "run-started" else None
        name = r.get("by") if r["event"] == "run-resumed" else name
        if name and str(name) not in names:
            names.append(str(name))
    return names


def _known(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per class of :mod:`.knowledge` present: how many results, by whom, how given."""
    out: dict[str, dict[str, Any]] = {}
    for cls in knowledge.CLASSES:
        mine = [r for r in rows if r["known"] == cls]
        if not mine:
            continue
        by = sorted({str(r["by"]) for r in mine if r["by"]})
        sources = sorted({str(r["source"]) for r in mine if r["source"]})
        out[cls] = {"count": len(mine), "by": by, "sources": sources}
    return out


def _counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    known = knowledge.counts(rows)
    counts = {"steps": len(rows)}
    counts |= {c: known.get(c, 0) for c in knowledge.CLASSES}
    counts["failed"] = sum(1 for r in rows if r["status"] in FAILED)
    counts["not-reached"] = sum(1 for r in rows if r["known"] is None)
    return counts


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
        elif e == "transport-weakened":
            add("transport-weakened", r, f"{r.get('transport')} {r.get('weakening')}")
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
            words = details.offer_words(r.get("decision"), r.get("source"))
            add("backout", r, f"backout {r.get('backout')} offered: {words}")
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
            "note": f"the run has not finished (last event: {last})",
            "steps": None,
            "counts": _counts(rows),
        }
    status, note = knowledge.outcome(finished.get("status"), verify_rows, _excluded(rows))
    return {
        "status": status,
        "succeeded": status == "succeeded",
        "finished": True,
        "note": note,
        # Journals written before the summary said "not reached" call those steps pending.
        "steps": {
            (NOT_REACHED if k == "pending" else k): n
            for k, n in (finished.get("steps") or {}).items()
        },
        "counts": _counts(rows),
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
