"""The people of a change record: operators, everyone who acted, and the approvals.

Built from journal records only (:mod:`runbook_engine.evidence.record`).
"""

from __future__ import annotations

from typing import Any

from runbook_engine.evidence import knowledge


def operators(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for r in records:
        if r["event"] == "run-started":
            out.append(
                {
                    "name": r.get("operator"),
                    "role": "started the run",
                    "at": r["time"],
                    "answers_path": None,
                    "answers_sha256": None,
                }
            )
        elif r["event"] == "run-resumed":
            out.append(
                {
                    "name": r.get("by"),
                    "role": "resumed the run",
                    "at": r["time"],
                    "answers_path": None,
                    "answers_sha256": None,
                }
            )
        answers = r.get("answers") if r["event"] in ("run-started", "run-resumed") else None
        if isinstance(answers, dict):
            out.append(
                {
                    "name": answers.get("operator"),
                    "role": "answers file",
                    "at": r["time"],
                    "answers_path": answers.get("path"),
                    "answers_sha256": answers.get("sha256"),
                }
            )
    return out


def approvals(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for r in records:
        event = r["event"]
        if not event.startswith("approval-"):
            continue
        entry = found.setdefault(
            r["step"],
            {
                "step": r["step"],
                "status": "waiting",
                "required": None,
                "approvers": [],
                "expires_hours": None,
                "votes": [],
                "approved_by": [],
                "discarded": [],
                "rejected_by": None,
                "comment": None,
                "reason": None,
                "by": None,
                "at": None,
            },
        )
        if event == "approval-requested":
            entry.update(
                required=r.get("required"),
                approvers=r.get("approvers", []),
                expires_hours=r.get("expires_hours"),
            )
        elif event == "approval-recorded":
            entry["votes"].append(
                {
                    "by": r.get("by"),
                    "decision": r.get("decision"),
                    "comment": r.get("comment"),
                    "at": r["time"],
                }
            )
        elif event == "approval-passed":
            entry.update(
                status="approved",
                at=r["time"],
                required=r.get("required"),
                approved_by=r.get("approvals", []),
                discarded=r.get("discarded", []),
            )
        elif event == "approval-rejected":
            entry.update(
                status="rejected",
                at=r["time"],
                rejected_by=r.get("by"),
                comment=r.get("comment"),
                discarded=r.get("discarded", []),
            )
        elif event == "approval-bypassed":
            entry.update(
                status="bypassed (emergency)", at=r["time"], reason=r.get("reason"), by=r.get("by")
            )
    return list(found.values())


def people(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Everyone the journal names, once each, with what they did (in order of first act)."""
    people: dict[str, dict[str, Any]] = {}

    def add(name: Any, role: str, at: str, step: str | None = None) -> None:
        if not name:
            return
        person = people.setdefault(
            str(name), {"name": str(name), "roles": [], "steps": [], "first_at": at}
        )
        if role not in person["roles"]:
            person["roles"].append(role)
        if step and step not in person["steps"]:
            person["steps"].append(step)

    for r in records:
        e, at = r["event"], r["time"]
        if e == "run-started":
            add(r.get("operator"), "started the run", at)
        elif e == "run-resumed":
            add(r.get("by"), "resumed the run", at)
        elif e == "gate-passed":
            how = knowledge.known_by_source(r.get("source"))
            add(
                r.get("by"),
                "confirmed steps" + ("" if how == knowledge.ATTESTED else f" ({how})"),
                at,
                r.get("step"),
            )
        elif e == "step-skipped" and "gate" in r:
            add(r.get("by"), "skipped steps", at, r.get("step"))
        elif e == "run-aborted":
            add(r.get("by"), "aborted the run", at, r.get("step"))
        elif e == "approval-recorded":
            verb = "approved" if r.get("decision") == "approve" else "rejected"
            add(r.get("by"), f"{verb} steps", at, r.get("step"))
        elif e == "attachment-added":
            add(r.get("by"), "attached files", at, r.get("step"))
        answers = r.get("answers") if e in ("run-started", "run-resumed") else None
        if isinstance(answers, dict):
            add(answers.get("operator"), "gave the answers file", at)
    return list(people.values())
