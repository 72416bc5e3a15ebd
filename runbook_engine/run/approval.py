"""Approval gates: the ``approval`` step kind, quorum with separation of duties, expiry.

An approval step's body is YAML::

    ```approval {#cab title="Change board approval"}
    required: 2                          # how many different people must approve
    approvers: [change-board, Dana Lead] # names, or group names from the environment's `approvers:`
    expires_hours: 24                    # optional: an approval counts for this many hours
    ```

Approvals are given while the run waits at the step (it pauses with exit 3):
``runbook approve RUN_ID STEP --as NAME [--note TEXT]`` or ``runbook reject ...``.
Each is a journal event (``approval-recorded``), so the votes are in the hash
chain.  When the run reaches (or resumes at) the step, the runner counts them
(:func:`tally`):

* a person who operates the run (started or resumed it, or gave its answers
  file) cannot approve it (separation of duties);
* only people the step names (directly or through a group) count;
* one person counts once (names compare case-insensitively);
* an approval older than ``expires_hours`` no longer counts;
* any valid rejection stops the run (status aborted, outcome ``rejected``).

A runbook whose front matter says ``approval: required`` must have an approval
step before its first changing step (:func:`check_policy`, exit 2 otherwise),
unless the run is an emergency (``--emergency --note``): then approval steps
are bypassed and the journal and change record say so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runbook_engine.errors import InputError, Problem, StateError
from runbook_engine.source.kinds import KINDS

if TYPE_CHECKING:
    from runbook_engine.run.store_api import Store
    from runbook_engine.source.model import Environment, Step
    from runbook_engine.tailor.tailoring import TailoredRunbook

KIND = "approval"

SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["required", "approvers"],
    "properties": {
        "required": {"type": "integer", "minimum": 1},
        "approvers": {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}},
        "expires_hours": {"type": "number", "exclusiveMinimum": 0},
    },
}
CODE = "RB410"


@dataclass(frozen=True, slots=True)
class ApprovalSpec:
    """A parsed approval body: ``required`` people from ``approvers``, valid ``expires_hours``."""

    required: int
    approvers: tuple[str, ...]
    expires_hours: float | None = None


@dataclass(frozen=True, slots=True)
class Vote:
    """One ``approval-recorded`` event: ``decision`` is ``approve`` or ``reject``; ``at`` UTC."""

    by: str
    decision: str
    comment: str | None
    at: datetime
    seq: int

    def to_dict(self) -> dict[str, Any]:
        """JSON form for journal events."""
        return {
            "by": self.by,
            "decision": self.decision,
            "comment": self.comment,
            "at": _iso(self.at),
            "journal_seq": self.seq,
        }


@dataclass(frozen=True, slots=True)
class Tally:
    """The count at a gate: valid approvals, the first valid rejection, votes set aside and why."""

    approvals: tuple[Vote, ...]
    rejection: Vote | None
    discarded: tuple[tuple[Vote, str], ...]
    required: int

    @property
    def reached(self) -> bool:
        """True when enough different allowed people approved and nobody rejected."""
        return self.rejection is None and len(self.approvals) >= self.required


def parse_approval(body: str, path: Path | None, line: int) -> ApprovalSpec:
    """Parse and validate an approval step's YAML body (jsonschema).

    Args:
        body: The body (already rendered by jinja).
        path: The runbook, for messages.
        line: 1-based line of the body's first line in ``path``.

    Raises:
        InputError: YAML syntax, not a mapping, unknown or missing key, wrong type
            or range; every problem names ``path`` and a line.
    """
    from runbook_engine.source.yamlbody import duplicate_keys, load_mapping

    root, data = load_mapping(
        body, path, line, what="approval body", hint="required: N, approvers: [...]", code=CODE
    )
    key_lines = {str(k.value): line + k.start_mark.line for k, _ in root.value}
    import jsonschema

    problems = list(duplicate_keys(root, path, line, CODE))
    for error in sorted(
        jsonschema.Draft202012Validator(SCHEMA).iter_errors(data), key=lambda e: list(e.path)
    ):
        key = str(error.path[0]) if error.path else None
        where = f"{key}: " if key else ""
        problems.append(
            Problem(
                f"approval body: {where}{error.message}", path, key_lines.get(key, line), code=CODE
            )
        )
    if problems:
        raise InputError(problems[0].format(), problems)
    return ApprovalSpec(
        int(data["required"]),
        tuple(str(a) for a in data["approvers"]),
        float(data["expires_hours"]) if "expires_hours" in data else None,
    )


def allowed_people(spec: ApprovalSpec, env: Environment | None) -> dict[str, str]:
    """Return the people who may approve: casefolded name -> name as written.

    An entry that is a group of the environment's ``approvers:`` stands for its members.
    """
    groups = env.approvers if env is not None else {}
    people: dict[str, str] = {}
    for entry in spec.approvers:
        for name in groups.get(entry, (entry,)):
            people.setdefault(person_key(name), name.strip())
    return people


def operators(records: list[dict[str, Any]]) -> set[str]:
    """Return (casefolded) everyone who operated the run: started, resumed, gave answers."""
    found: set[str] = set()
    for rec in records:
        if rec["event"] == "run-started":
            found.add(person_key(str(rec.get("operator") or "")))
        elif rec["event"] == "run-resumed":
            found.add(person_key(str(rec.get("by") or "")))
        answers = rec.get("answers") if rec["event"] in ("run-started", "run-resumed") else None
        if isinstance(answers, dict) and answers.get("operator"):
            found.add(person_key(str(answers["operator"])))
    found.discard("")
    return found


def votes(records: list[dict[str, Any]], step_id: str) -> list[Vote]:
    """Return the ``approval-recorded`` votes for ``step_id`` in journal order."""
    return [
        Vote(
            str(r["by"]),
            str(r["decision"]),
            r.get("comment"),
            _parse_time(r["time"]),
            int(r["seq"]),
        )
        for r in records
        if r["event"] == "approval-recorded" and r.get("step") == step_id
    ]


def tally(
    spec: ApprovalSpec,
    allowed: dict[str, str],
    cast: list[Vote],
    operator_keys: set[str],
    now: datetime,
) -> Tally:
    """Count ``cast`` votes under the rules of the module docstring."""
    approvals: list[Vote] = []
    discarded: list[tuple[Vote, str]] = []
    seen: set[str] = set()
    rejection = None
    for vote in cast:
        who = person_key(vote.by)
        if who in operator_keys:
            discarded.append((vote, "operates this run (separation of duties)"))
        elif who not in allowed:
            discarded.append((vote, "is not an approver of this step"))
        elif vote.decision == "reject":
            rejection = rejection or vote
        elif who in seen:
            discarded.append((vote, "approved already (one person counts once)"))
        elif spec.expires_hours is not None and now - vote.at > timedelta(hours=spec.expires_hours):
            discarded.append((vote, f"expired ({spec.expires_hours:g} h)"))
        else:
            seen.add(who)
            approvals.append(vote)
    return Tally(tuple(approvals), rejection, tuple(discarded), spec.required)


def is_changing(step: Step) -> bool:
    """True for a step of the normal flow, change phase, of a kind that changes state."""
    info = KINDS.get(step.kind)
    return step.changes_state and (info is None or info.changes)


def check_policy(tailored: TailoredRunbook, emergency: bool) -> None:
    """Refuse a runbook whose front matter requires approval but has none before its first change.

    Steps skipped in this environment (a false ``when``) count neither way.

    Raises:
        InputError: (exit 2) naming the first changing step and its line.
    """
    if tailored.runbook.meta.get("approval") != "required" or emergency:
        return
    for ts in tailored.steps:
        if ts.skip_reason:
            continue
        if ts.step.kind == KIND:
            return
        if is_changing(ts.step):
            raise InputError.single(
                f"the runbook requires approval ('approval: required') but step {ts.id!r} "
                "changes state before any approval step; add an ```approval``` step before it, "
                "or run with --emergency --note TEXT (recorded)",
                ts.step.span.path,
                ts.step.span.start_line,
                code="RB411",
            )


def check_bodies(tailored: TailoredRunbook, operator: str | None = None) -> None:
    """Parse every approval step of the flow, so a bad body fails before a run starts.

    A step whose approvers (without ``operator``, who cannot approve) are fewer
    than it requires could never pass, and is refused too.

    Raises:
        InputError: every problem of every approval body.
    """
    problems: list[Problem] = []
    for ts in tailored.steps:
        if ts.step.kind == KIND:
            try:
                spec = parse_approval(ts.body, ts.step.span.path, ts.step.body_line)
            except InputError as exc:
                problems.extend(exc.problems)
                continue
            people = allowed_people(spec, tailored.environment)
            people.pop(person_key(operator or ""), None)
            if len(people) < spec.required:
                problems.append(
                    Problem(
                        f"approval step {ts.id!r} needs {spec.required} approvers but names only "
                        f"{len(people)} people ({', '.join(sorted(people.values()))})",
                        ts.step.span.path,
                        ts.step.body_line,
                        code=CODE,
                    )
                )
    if problems:
        raise InputError(problems[0].format(), problems)


# -- runbook approve / reject -------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class VoteRecorded:
    """A vote :func:`record_vote` journaled, and where the step's count stands with it.

    Attributes:
        run_id, step: The run and its approval step.
        by: The approver's name as the step lists it.
        decision: ``approve`` or ``reject``.
        approvals: Valid approvals counted now (this one included).
        required: Approvals the step needs.
    """

    run_id: str
    step: str
    by: str
    decision: str
    approvals: int
    required: int

    def text(self, then: str | None = None) -> str:
        """One line for the terminal: the vote, the quorum state and what comes next.

        Args:
            then: What comes next when the gate is decided, instead of
                ``runbook resume RUN_ID`` (for a queued run: a worker resumes it).
        """
        if self.decision == "reject":
            return (
                f"Recorded rejection of {self.step} by {self.by}: the step is rejected, and "
                f"the run stops (outcome rejected) when it resumes: "
                f"{then or f'runbook resume {self.run_id}'}"
            )
        state = (
            "quorum reached"
            if self.approvals >= self.required
            else f"{self.required - self.approvals} more needed"
        )
        if then and self.approvals >= self.required:
            return (
                f"Recorded approval of {self.step} by {self.by} ({self.approvals} of "
                f"{self.required} approvals; {state}); {then}"
            )
        return (
            f"Recorded approval of {self.step} by {self.by} ({self.approvals} of "
            f"{self.required} approvals; {state}); continue with: runbook resume {self.run_id}"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON form for ``--json``."""
        return {
            "run_id": self.run_id,
            "step": self.step,
            "by": self.by,
            "decision": self.decision,
            "approvals": self.approvals,
            "required": self.required,
        }


def record_vote(
    store: Store,
    run_id: str,
    step_id: str,
    by: str,
    decision: str,
    comment: str | None,
    *,
    auth_method: str | None = None,
    attachments: tuple[Path, ...] = (),
) -> VoteRecorded:
    """Check and journal an approval or rejection for a waiting approval step.

    ``attachments`` are kept as evidence of the vote as a gate's are (copied under
    ``attachments/STEP/``, each journaled ``attachment-added`` with its SHA-256 before the
    vote, which lists them).

    ``auth_method`` says how ``by`` was authenticated (the web console: ``password``,
    ``oidc``, ``proxy-header``); the vote is then journaled with source ``console`` and
    ``authenticated: true``.  ``None`` (``runbook approve --as``) records a name only given.

    Returns:
        The vote and the count of valid approvals with it.

    Raises:
        InputError: empty name; the person operates the run; is not an approver of
            the step; voted already.
        StateError: unknown or finished run, no such approval step, step finished.
    """
    from runbook_engine.run.runlock import WAIT_SECONDS

    if not by.strip():
        raise InputError("--as needs a name")
    with store.lock_run(run_id, wait=WAIT_SECONDS):
        return _record_vote(store, run_id, step_id, by, decision, comment, auth_method, attachments)


def _record_vote(
    store: Store,
    run_id: str,
    step_id: str,
    by: str,
    decision: str,
    comment: str | None,
    auth_method: str | None = None,
    attachments: tuple[Path, ...] = (),
) -> VoteRecorded:
    """:func:`record_vote` under the run lock: names and comment redacted before writing."""
    from runbook_engine.evidence.journal import read_journal
    from runbook_engine.evidence.signing import open_run_journal
    from runbook_engine.run.free_text import run_redactor
    from runbook_engine.run.recovery import ensure_created
    from runbook_engine.run.snapshot import source_of_run
    from runbook_engine.tailor.loading import load

    record = store.get_run(run_id)
    redactor = run_redactor(record, store)
    name = redactor.redact(by.strip())
    comment = redactor.redact(comment) if comment is not None else None
    if record.status in ("succeeded", "unverified", "aborted", "failed"):
        raise StateError(f"run {run_id} is finished ({record.status}); approvals are closed")
    source = source_of_run(store, record)  # the run's copy where the files are not here
    with source.reading():
        tailored = load(source.runbook, source.env, record.overrides, need_env=True).tailored
    ts = next((s for s in tailored.steps if s.id == step_id), None)
    if ts is None or ts.step.kind != KIND:
        ids = ", ".join(s.id for s in tailored.steps if s.step.kind == KIND) or "none"
        raise StateError(f"run {run_id} has no approval step {step_id!r} (approval steps: {ids})")
    states = [s for s in store.steps(run_id) if s.step_id == step_id]
    if states and all(s.status in ("succeeded", "skipped", "failed") for s in states):
        raise StateError(
            f"approval step {step_id!r} of run {run_id} is decided already ({states[0].status})"
        )
    spec = parse_approval(ts.body, ts.step.span.path, ts.step.body_line)
    allowed = allowed_people(spec, tailored.environment)
    ensure_created(store, run_id)  # a kill between the run's row and its folder
    journal = open_run_journal(store.state_dir, store.run_dir(run_id), run_id, redactor)
    records = read_journal(journal.path)
    if person_key(name) in operators(records):
        raise InputError(
            f"{name} operates run {run_id} and cannot approve or reject it (separation of duties)"
        )
    if person_key(name) not in allowed:
        raise InputError(
            f"{name} is not an approver of step {step_id!r}; approvers: "
            f"{', '.join(sorted(allowed.values()))}"
        )
    standing = tally(spec, allowed, votes(records, step_id), set(), datetime.now(UTC))
    standing_votes = [*standing.approvals, *([standing.rejection] if standing.rejection else [])]
    if any(person_key(v.by) == person_key(name) for v in standing_votes):
        raise InputError(f"{name} has voted on step {step_id!r} already; one person counts once")
    name = allowed[person_key(name)]
    from runbook_engine.run.attachments import keep_attachment
    from runbook_engine.run.gates import authenticated_fields
    from runbook_engine.run.reconcile import settle_attachments

    run_dir = store.run_dir(run_id)
    settled = settle_attachments(run_dir) if attachments else []
    if settled:
        journal.append("store-reconciled", changes=settled)
    kept = [
        keep_attachment(journal, run_dir, step_id, path, name, redactor, auth_method)
        for path in attachments
    ]
    journal.append(
        "approval-recorded",
        step=step_id,
        by=name,
        decision=decision,
        comment=comment,
        source="console" if auth_method else "cli",
        attachments=kept or None,
        **authenticated_fields(auth_method),
    )
    approvals = len(standing.approvals) + (decision == "approve")
    return VoteRecorded(run_id, step_id, name, decision, approvals, spec.required)


def person_key(name: str) -> str:
    return " ".join(name.split()).casefold()


def _parse_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
