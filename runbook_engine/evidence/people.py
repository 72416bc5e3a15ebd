"""The people of a change record: everyone who acted, how their names were given, and
the approvals.

Built from journal records only (:mod:`runbook_engine.evidence.record`).

Identity (``people[].identity`` of a record, stable field names):

``authenticated``
    ``true`` when every act of the person was done signed in to the web console or its
    API (its records carry ``authenticated: true`` and ``auth_method``; a run the console
    started or continued for its signed-in operator carries ``operator_authenticated``
    in ``run-started`` and ``authenticated`` in ``run-resumed``); ``false`` when any act
    rests on a name only given (``run --operator``, ``RUNBOOK_OPERATOR`` or the login
    name; ``--as``; an answers file), which the tool takes as given and checks none.
``auth_methods``
    How the person signed in, in order of first use: ``password``, ``oidc``,
    ``proxy-header``, ``token`` (an API bearer token; empty when never).
``given_by``
    How the name reached the journal, in order of first use; codes are the keys of
    :data:`CHANNELS`.
``answers_files``
    ``[{"path", "sha256"}]`` of the answers files that name the person as operator.
``text``
    The same in words, as printed: ``authenticated (password): ...`` and/or
    ``claimed, not authenticated: ...``.
"""

from __future__ import annotations

from typing import Any

#: How a name was given (``identity.given_by`` codes) and what the record prints for it.
CHANNELS = {
    "run-operator": "operator of runbook run/resume (--operator, RUNBOOK_OPERATOR or the "
    "login name; the journal does not say which)",
    "operator-option": "operator of runbook run/resume, given with --operator",
    "operator-env": "operator of runbook run/resume, given by the RUNBOOK_OPERATOR "
    "environment variable",
    "operator-login": "the login name of the computer account that ran the tool (no name "
    "given with --operator or RUNBOOK_OPERATOR)",
    "operator-run": "resumed under the name the run was started with",
    "operator-notebook": "operator given in the notebook",
    "answers-file": "named as operator in the answers file",
    "confirm": "name given when confirming a step (runbook confirm --as)",
    "approve": "name given with the vote (runbook approve/reject --as)",
    "terminal": "typed at the run's terminal",
    "notebook": "given in the notebook",
    "console": "signed in to the web console",
}


def _operator(source: Any) -> str:
    """The channel of a run's operator: ``operator-<source>`` when the journal says how
    the name was given (``run-started.operator_source``, ``run-resumed.by_source``),
    else ``run-operator`` (journals written before it was recorded)."""
    channel = f"operator-{source}"
    return channel if channel in CHANNELS else "run-operator"


def approvals(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each approval step of the run, as the journal tells it.

    Returns:
        One dict per approval step: ``step``, ``status``, ``required``, ``approvers``
        (who may approve: the step's list without the people who operated the run),
        ``operators`` (people on the step's list who operated the run and so cannot
        approve it), ``expires_hours``, ``votes``, ``approved_by``, ``discarded``,
        ``rejected_by``, ``comment``, ``reason``, ``by``, ``at``.
    """
    from runbook_engine.run.approval import operators, person_key

    found: dict[str, dict[str, Any]] = {}
    decided: dict[str, int] = {}  # step -> index of the record that decided it
    for i, r in enumerate(records):
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
                "operators": [],
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
        if event in ("approval-passed", "approval-rejected", "approval-bypassed"):
            decided.setdefault(r["step"], i)
        if event == "approval-passed":
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
    for entry in found.values():
        # who had operated the run by the time the step was decided (or by now)
        ran = operators(records[: decided.get(entry["step"], len(records)) + 1])
        listed = entry["approvers"]
        entry["approvers"] = [n for n in listed if person_key(str(n)) not in ran]
        entry["operators"] = [n for n in listed if person_key(str(n)) in ran]
    return list(found.values())


def people(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Everyone the journal names, once each, in order of first act.

    Returns:
        ``[{"name", "roles", "steps", "first_at", "identity"}]``; ``identity`` is
        ``{"authenticated", "given_by", "answers_files", "text"}`` (see the module docstring).
    """
    found: dict[str, dict[str, Any]] = {}

    def add(
        name: Any, role: str, at: str, channel: str, step: str | None = None, rec: Any = None
    ) -> None:
        if not name:
            return
        method = None
        if rec and rec.get("authenticated") is True:
            method = rec.get("auth_method")
        elif rec and rec.get("operator_authenticated") is True:
            method = rec.get("operator_auth_method")
        channel = "console" if method else channel
        person = found.setdefault(
            str(name),
            {
                "name": str(name),
                "roles": [],
                "steps": [],
                "first_at": at,
                "identity": {
                    "authenticated": False,
                    "auth_methods": [],
                    "given_by": [],
                    "answers_files": [],
                },
            },
        )
        if method and method not in person["identity"]["auth_methods"]:
            person["identity"]["auth_methods"].append(method)
        if role not in person["roles"]:
            person["roles"].append(role)
        if step and step not in person["steps"]:
            person["steps"].append(step)
        if channel not in person["identity"]["given_by"]:
            person["identity"]["given_by"].append(channel)

    answering: str | None = None  # the operator the answers file in use names
    for r in records:
        e, at = r["event"], r["time"]
        if e == "backout-offered" and r.get("source") == "answers-file" and answering:
            decided = r.get("decision")
            if decided in ("run", "skip"):
                verb = "agreed to run" if decided == "run" else "declined"
                role = f"{verb} a backout in advance in the answers file"
                add(answering, role, at, "answers-file", r.get("step"), r)
        if e == "run-started":
            source = _operator(r.get("operator_source"))
            add(r.get("operator"), "ran the tool (started the run)", at, source, None, r)
        elif e == "run-resumed":
            add(r.get("by"), "resumed the run", at, _operator(r.get("by_source")), None, r)
        elif e == "gate-passed":
            role = _GATE_ROLES.get(r.get("source") or "", "confirmed steps")
            add(r.get("by"), role, at, _channel(r.get("source")), r.get("step"), r)
        elif e == "step-skipped" and "gate" in r:
            add(r.get("by"), "skipped steps", at, _channel(r.get("source")), r.get("step"), r)
        elif e == "run-aborted":
            add(r.get("by"), "aborted the run", at, _channel(r.get("source")), r.get("step"), r)
        elif e == "approval-recorded":
            verb = "approved" if r.get("decision") == "approve" else "rejected"
            add(r.get("by"), f"{verb} steps", at, "approve", r.get("step"), r)
        elif e == "attachment-added":
            add(r.get("by"), "attached files", at, "confirm", r.get("step"), r)
        answers = r.get("answers") if e in ("run-started", "run-resumed") else None
        if e in ("run-started", "run-resumed"):
            answering = (
                str(answers["operator"])
                if isinstance(answers, dict) and answers.get("operator")
                else None
            )
        if isinstance(answers, dict) and answers.get("operator"):
            add(answers["operator"], "named as the answers file's operator", at, "answers-file")
            files = found[str(answers["operator"])]["identity"]["answers_files"]
            entry = {"path": answers.get("path"), "sha256": answers.get("sha256")}
            if entry not in files:
                files.append(entry)
    for person in found.values():
        identity = person["identity"]
        identity["authenticated"] = identity["given_by"] == ["console"]
        identity["text"] = identity_text(identity)
    return list(found.values())


#: What a person did when the result was decided before the run reached the step.
_GATE_ROLES = {
    "answers-file": "answered steps in advance in the answers file (attests those answers; "
    "confirmed nothing while the run ran)",
    "cli-in-advance": "confirmed steps in advance (runbook confirm --in-advance)",
    "console-in-advance": "confirmed steps in advance in the web console",
    "notebook-parameter": "decided steps in advance as notebook parameters",
}


def _channel(source: str | None) -> str:
    return {
        "answers-file": "answers-file",
        "cli": "confirm",
        "cli-in-advance": "confirm",
        "terminal": "terminal",
        "notebook": "notebook",
        "notebook-parameter": "notebook",
    }.get(source or "", "confirm")


def identity_text(identity: dict[str, Any]) -> str:
    """How a person's name was given, in words: ``authenticated (password): signed in to
    the web console`` for acts done signed in, ``claimed, not authenticated: ...`` for the
    rest (a person may have both)."""
    claimed = [CHANNELS.get(c, c) for c in identity["given_by"] if c != "console"]
    parts = []
    if "console" in identity["given_by"]:
        methods = ", ".join(identity.get("auth_methods") or ()) or "unknown method"
        parts.append(f"authenticated ({methods}): {CHANNELS['console']}")
    if claimed:
        parts.append(f"claimed, not authenticated: {'; '.join(claimed)}")
    return "; ".join(parts)
