"""Gates: how a person passes a manual step, a command on a manual host, or an
interrupted step.

A decision comes from one of three sources, recorded with it in the journal:
the terminal (an interactive prompt), an answers file (its path and SHA-256),
or ``runbook confirm`` (a decision stored for a paused run).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runbook_engine.errors import InputError, Problem
from runbook_engine.source.yamlfile import line_of, load_yaml

#: The decision words, the same in answers files, ``runbook confirm`` (``--skip``,
#: ``--abort``, ``--rerun``; confirm without a flag) and ``notebook run --decide``.
DECISIONS = ("confirm", "skip", "abort", "rerun")
#: Old words still read, with a warning: ``done`` was ``confirm`` in answers files.
OLD_DECISIONS = {"done": "confirm"}


def decision_word(word: object, where: str) -> tuple[object, str | None]:
    """``word`` as a decision word, and a warning when it is an old one (``done``).

    Args:
        word: The decision as given.
        where: Where it was given, for the warning (``file:line``, ``--decide STEP``).

    Returns:
        ``(word, warning)``: an old word replaced by its new one; ``warning`` is ``None``
        unless the word was old.  An unknown word comes back unchanged (callers refuse it).
    """
    if isinstance(word, str) and word in OLD_DECISIONS:
        new = OLD_DECISIONS[word]
        return new, f"{where}: decision {word!r} is an old word; write {new!r} (read as {new!r})"
    return word, None


#: How a signed-in person was authenticated (``auth_method`` of journal records).
AUTH_METHODS = ("password", "oidc", "proxy-header")


def authenticated_fields(method: str | None) -> dict[str, Any]:
    """Journal fields for a decision by a signed-in person: ``authenticated`` and
    ``auth_method``; none for a name that was only given (``--as``, answers files)."""
    return {"authenticated": True, "auth_method": method} if method else {}


def stored_source(source: str) -> dict[str, str | None]:
    """Split a stored gate decision's source: ``console:password`` is ``source`` console,
    ``auth_method`` password (the store keeps the two in one column)."""
    where, _, method = source.partition(":")
    return {"source": where, "auth_method": method or None}


ENTRY_KEYS = frozenset({"decision", "note", "reason", "backout"})


@dataclass(frozen=True, slots=True)
class Decision:
    """A person's decision at a gate.

    Attributes:
        decision: ``confirm`` (done as instructed), ``skip`` (with ``reason``),
            ``abort``, ``rerun`` (an interrupted step).  The runner journals a confirmed
            interrupted step as ``done`` (its records keep that word).
        by: Who decided.
        note: Free text from that person.
        reason: Why it was skipped.
        source: ``terminal``, ``answers-file``, ``cli`` or ``console``.
        answers_path: The answers file, when it came from one.
        answers_hash: SHA-256 of that file.
        backout: For a failed step: ``run`` or ``skip`` its backout (``None``: not said).
        decided_at: When the person decided (UTC ISO-8601), when that was before the run
            took the decision (``runbook confirm``).
    """

    decision: str
    by: str
    note: str | None = None
    reason: str | None = None
    source: str = "terminal"
    answers_path: str | None = None
    answers_hash: str | None = None
    backout: str | None = None
    decided_at: str | None = None
    auth_method: str | None = None

    def journal_fields(self) -> dict[str, Any]:
        """Fields for the journal event, without empty values."""
        fields = {
            "decision": self.decision,
            "by": self.by,
            "source": self.source,
            "note": self.note,
            "reason": self.reason,
            "answers_path": self.answers_path,
            "answers_sha256": self.answers_hash,
            "decided_at": self.decided_at,
            **authenticated_fields(self.auth_method),
        }
        return {k: v for k, v in fields.items() if v is not None}

    def renamed(self, word: str) -> Decision:
        """The same person's decision under another word (``done`` and ``confirm`` mean
        the same at a gate); its reason and backout wish are not carried over."""
        return Decision(
            word,
            self.by,
            self.note,
            source=self.source,
            answers_path=self.answers_path,
            answers_hash=self.answers_hash,
            decided_at=self.decided_at,
            auth_method=self.auth_method,
        )


@dataclass(frozen=True, slots=True)
class Answers:
    """A loaded answers file: decisions by step id, given by ``operator``; ``warnings``
    name old words it uses (``done``), for the command to show."""

    path: Path
    sha256: str
    operator: str
    entries: dict[str, dict[str, Any]]
    lines: dict[str, int]
    warnings: tuple[str, ...] = ()

    def decision(self, step_id: str) -> Decision | None:
        """Return the decision for ``step_id``, or ``None`` when the file says nothing of it."""
        entry = self.entries.get(step_id)
        if entry is None:
            return None
        return Decision(
            decision=entry["decision"],
            by=self.operator,
            note=entry.get("note"),
            reason=entry.get("reason"),
            source="answers-file",
            answers_path=str(self.path),
            answers_hash=self.sha256,
            backout=entry.get("backout"),
        )


def load_answers(path: Path, step_ids: set[str] | None = None) -> Answers:
    """Load and check an answers file.

    Format::

        operator: Jane Operator        # who gives these answers (required)
        answers:
          step-id: confirm             # or {decision: confirm, note: "..."}
          other: {decision: skip, note: "not needed here"}   # ``reason:``: old name

    Decisions: :data:`DECISIONS`; ``done`` is read as ``confirm`` with a warning.

    Args:
        path: The file.
        step_ids: Ids of the runbook's steps; answers naming other ids are errors.

    Raises:
        InputError: the file is missing or malformed, a decision is unknown, a
            skip has no reason, or a step id is not in the runbook (all listed).
    """
    data, lines = load_yaml(path)
    problems: list[Problem] = []

    def add(message: str, *key: Any) -> None:
        problems.append(Problem(message, path, line_of(lines, *key), code="RB240"))

    if not isinstance(data, dict):
        raise InputError.single(
            "an answers file is a mapping with 'operator' and 'answers'", path, 1
        )
    for key in data:
        if key not in ("operator", "answers"):
            add(f"unknown key {key!r}; an answers file has 'operator' and 'answers'", key)
    operator = data.get("operator")
    if isinstance(operator, str) and any(ord(c) < 32 or ord(c) == 127 for c in operator):
        problems.append(
            Problem(
                "'operator' holds control characters",
                path,
                line_of(lines, "operator") or 1,
                code="RB240",
            )
        )
        operator = ""
    elif not isinstance(operator, str) or not operator.strip():
        problems.append(
            Problem(
                "'operator' is required: the person giving these answers",
                path,
                line_of(lines, "operator") or 1,
                code="RB240",
            )
        )
        operator = ""
    raw = data.get("answers") or {}
    if not isinstance(raw, dict):
        add("'answers' must map step ids to decisions", "answers")
        raw = {}
    entries: dict[str, dict[str, Any]] = {}
    warnings: list[str] = []
    for step_id, value in raw.items():
        entry = {"decision": value} if isinstance(value, str) else value
        key = ("answers", step_id)
        if not isinstance(entry, dict):
            add(f"{step_id}: give a decision ({', '.join(DECISIONS)})", *key)
            continue
        entry = dict(entry)
        entry["decision"], warning = decision_word(
            entry.get("decision"), f"{path}:{line_of(lines, *key) or 1}: {step_id}"
        )
        if warning:
            warnings.append(warning)
        unknown = set(entry) - ENTRY_KEYS
        if unknown:
            add(f"{step_id}: unknown key(s) {', '.join(sorted(unknown))}", *key)
        if entry.get("decision") not in DECISIONS:
            add(
                f"{step_id}: decision {entry.get('decision')!r} is not one of "
                f"{', '.join(DECISIONS)}",
                *key,
            )
        if "reason" in entry:
            warnings.append(
                f"{path}:{line_of(lines, *key) or 1}: {step_id}: 'reason' is an old name; "
                "write 'note'"
            )
        if entry.get("decision") == "skip" and not entry.get("reason"):
            # As `runbook confirm --skip --note`: the one free text of a skip is its reason.
            entry["reason"] = entry.pop("note", None)
        if entry.get("decision") == "skip" and not entry.get("reason"):
            add(
                f"{step_id}: a skip needs a note saying why: "
                '{decision: skip, note: "why it is skipped"}',
                *key,
            )
        if entry.get("backout") not in (None, "run", "skip"):
            add(f"{step_id}: backout must be 'run' or 'skip'", *key)
        if step_ids is not None and str(step_id) not in step_ids:
            add(f"answers name step {step_id!r}, which is not in the runbook", *key)
        entries[str(step_id)] = {k: (str(v) if v is not None else None) for k, v in entry.items()}
    if problems:
        raise InputError(problems[0].format(), problems)
    return Answers(
        path.resolve(),
        hashlib.sha256(path.read_bytes()).hexdigest(),
        operator.strip(),
        entries,
        {str(k): line_of(lines, "answers", k) for k in raw},
        tuple(warnings),
    )


def prompt_gate(
    console: Any,
    title: str,
    question: str,
    by: str,
    *,
    choices: tuple[str, ...] = ("confirm", "skip", "abort"),
) -> Decision:
    """Ask a person at the terminal; return their decision (source ``terminal``).

    ``console`` is a :class:`rich.console.Console`.  A skip asks for a reason.
    """
    from rich.prompt import Prompt

    console.print(f"[bold]{title}[/bold]")
    try:  # no default: a stray Enter must not confirm a change
        answer = Prompt.ask(question, choices=list(choices), console=console)
        reason = None
        if answer == "skip":
            while not reason:
                reason = Prompt.ask("Reason for skipping (required)", console=console).strip()
        note = Prompt.ask("Note (optional)", default="", console=console).strip() or None
    except EOFError:  # input closed: the same as Ctrl-C, the run stays resumable
        raise KeyboardInterrupt from None
    return Decision(answer, by, note=note, reason=reason, source="terminal")


@dataclass(frozen=True)
class RecordedAnswers:
    """The answers file a run was started (or last resumed) with, as its journal names it.

    ``usable`` is true when the file still exists with the SHA-256 recorded; ``message``
    says what a resume without ``--answers`` does with it (for standard error).
    """

    path: Path
    usable: bool
    message: str


def recorded_answers(records: list[dict[str, Any]]) -> RecordedAnswers | None:
    """The answers file the journal's last ``run-started``/``run-resumed`` record names.

    Args:
        records: The run's journal records (source of the path and SHA-256).

    Returns:
        ``None`` when the run was never given an answers file.
    """
    named = [
        r["answers"]
        for r in records
        if r.get("event") in ("run-started", "run-resumed") and isinstance(r.get("answers"), dict)
    ]
    if not named or not named[-1].get("path"):
        return None
    path, sha = Path(str(named[-1]["path"])), str(named[-1].get("sha256"))
    try:
        now = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return RecordedAnswers(
            path, False, f"the run's answers file {path} is gone; not used (give --answers FILE)"
        )
    if now != sha:
        return RecordedAnswers(
            path,
            False,
            f"the run's answers file {path} changed since it was given (sha256 {sha[:12]}, "
            f"now {now[:12]}); not used (give --answers {path} to use it as it is now)",
        )
    return RecordedAnswers(
        path, True, f"using the run's answers file {path} again (unchanged, sha256 {sha[:12]})"
    )
