"""How each result is known, and the run outcome that follows from it.

Every step result in a change record carries one class (DESIGN.md §8, "claims match
what happened"):

``observed``
    The tool ran it and saw the result (a command's exit code, a probe's answer, a
    check that found the change in place).
``attested``
    A person decided it while the run waited: at the terminal, with ``runbook
    confirm``, from inside the notebook, or by approving.
``pre-answered``
    Decided before the run reached it: in an answers file (whose SHA-256 the journal
    keeps), or with ``runbook confirm --in-advance`` (the journal keeps its time).
``notebook-parameter``
    Decided before the run reached it, as a parameter of the notebook's execution.
``skipped``
    Not done: ``when=`` excluded it, a person skipped it, or an emergency bypassed it.

A run that ended without errors is plain ``succeeded`` only when every verification step
that applies was *observed* and passed.  When a person vouched for some of them the
outcome is ``succeeded-attested``, and when some were answered ahead of time
(answers file or notebook parameter) it is ``succeeded-pre-answered`` — the weakest
class present decides.
"""

from __future__ import annotations

from typing import Any

OBSERVED = "observed"
ATTESTED = "attested"
PRE_ANSWERED = "pre-answered"
NOTEBOOK_PARAMETER = "notebook-parameter"
SKIPPED = "skipped"
#: Every class, strongest first (the order of counts in summaries).
CLASSES = (OBSERVED, ATTESTED, PRE_ANSWERED, NOTEBOOK_PARAMETER, SKIPPED)

#: The class of a gate decision by its journaled ``source``.
_BY_SOURCE = {
    "terminal": ATTESTED,
    "cli": ATTESTED,
    "console": ATTESTED,
    "console-in-advance": PRE_ANSWERED,
    "notebook": ATTESTED,
    "answers-file": PRE_ANSWERED,
    "cli-in-advance": PRE_ANSWERED,
    "notebook-parameter": NOTEBOOK_PARAMETER,
}


def known_by_source(source: str | None) -> str:
    """The class of a gate decision given from ``source`` (unknown sources: attested)."""
    return _BY_SOURCE.get(source or "", ATTESTED)


def counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    """How many step results (one per step and host) are known each way; classes with
    none are left out, and results not reached yet count nowhere."""
    found = {c: 0 for c in CLASSES}
    for row in rows:
        if row.get("known") in found:
            found[row["known"]] += 1
    return {c: n for c, n in found.items() if n}


#: What an unsuccessful or unfinished outcome means, in plain words.
_ENDED = {
    "failed": "a step failed and the run stopped there",
    "aborted": "a person stopped the run",
    "rejected": "an approval was refused and the run stopped there",
    "running": "the run has not finished",
    "paused": "the run waits for a person at a gate or an approval",
    "interrupted": "the run was interrupted and has not been resumed",
}


def outcome(
    status: str | None, verify_rows: list[dict[str, Any]], excluded: int = 0
) -> tuple[str | None, str]:
    """The outcome word of a finished run and a note that says why.

    Args:
        status: The runner's status (``succeeded``, ``unverified``, ``failed``,
            ``aborted``, ``rejected``, ``checked``).
        verify_rows: The rows of verification steps that apply.
        excluded: How many step results the run's selection (``--only``, ``--limit``...)
            left out.

    Returns:
        ``(word, note)``; ``word`` is ``status`` except that a ``succeeded`` run becomes
        ``succeeded-attested`` or ``succeeded-pre-answered`` when not every verification
        was observed, and ``unverified`` when one did not pass; a run without errors
        that left steps out is ``partial`` whatever its verification.
    """
    if status == "checked":
        return "checked", "check mode: only steps that read ran; nothing was changed"
    if excluded and status in ("succeeded", "unverified"):
        left = [r for r in verify_rows if r["status"] == "excluded"]
        note = (
            f"no errors in the selected steps; {excluded} step result(s) left out by the selection"
        )
        if left:
            note += f", {len(left)} of them verification"
        return "partial", note
    passed = all(r["status"] in ("succeeded", "already-done") for r in verify_rows)
    if status == "unverified" or (status == "succeeded" and not passed):
        return "unverified", "no errors, but not every verification step passed"
    if status != "succeeded":
        return status, _ENDED.get(str(status), f"the run ended {status}")
    if not verify_rows:
        return "succeeded", "no errors; no verification step applied to this run"
    how = counts(verify_rows)
    total, seen = len(verify_rows), how.get(OBSERVED, 0)
    detail = ", ".join(f"{n} {c}" for c, n in how.items())
    passed_words = (
        "the 1 verification step passed" if total == 1 else f"all {total} verification steps passed"
    )
    if seen == total:
        each = "observed by the tool" if total == 1 else "each observed by the tool"
        return "succeeded", f"{passed_words}, {each}"
    observed = ("not" if total == 1 else "none") if not seen else f"only {seen}"
    note = f"{passed_words}, but {observed} observed by the tool ({detail})"
    if how.get(PRE_ANSWERED) or how.get(NOTEBOOK_PARAMETER):
        return "succeeded-pre-answered", note
    return "succeeded-attested", note
