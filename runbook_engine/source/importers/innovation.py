"""Innovation Engine (Azure's executable docs): bash blocks run in one shell session.

``export NAME="value"`` lines with a literal value declare variables (overridable with
``ie --var``): they become parameters with the value as example, and each block that uses
``$NAME`` gets ``export NAME={{ NAME }}`` (our steps run in separate processes).
``<!-- expected_similarity=0.8 -->`` before a block marks that block as the expected
output of the step above; it becomes a ``manual`` verification step right after that
step, showing the expected output and the threshold (a regular expression instead of a
number is shown as one).
"""

from __future__ import annotations

import re
from pathlib import Path

from runbook_engine.source.importers.fences import LANGS, Decision, Fence, Walker, protect
from runbook_engine.source.importers.markdown import report_rest, start_draft
from runbook_engine.source.importers.model import DraftStep, ImportResult, Param
from runbook_engine.source.importers.values import type_of

_SIMILARITY = re.compile(r"expected_similarity\s*=\s*(\"[^\"]*\"|'[^']*'|\S+?)\s*(?:-->|$)")
_EXPORT = re.compile(
    r"^\s*export\s+([A-Za-z_][A-Za-z0-9_]*)=(\"[^\"$`]*\"|'[^']*'|[^\s$`;&|]*)\s*$"
)


class _Blocks:
    def __call__(self, fence: Fence, walker: Walker) -> Decision:
        match = _SIMILARITY.search(fence.comment_before or "")
        if match and walker.last_step is not None:
            self._verification(fence, walker, match.group(1).strip("\"'"))
            return Decision(None, drop=True)
        if fence.lang not in LANGS:
            return Decision(None)
        kept = [
            ln
            for ln in fence.body.splitlines(keepends=True)
            if not ((m := _EXPORT.match(ln)) and m.group(1) in walker.draft.params)
        ]
        return Decision(LANGS[fence.lang], body="".join(kept))

    def _verification(self, fence: Fence, walker: Walker, threshold: str) -> None:
        step = walker.last_step
        assert step is not None
        try:
            how = f"similar to at least {float(threshold):g} (1 is identical)"
        except ValueError:
            how = f"matching the regular expression `{threshold}`"
        body = (
            f"Compare the output of step `{step.id}` with the expected output below: it "
            f"should be {how} (Innovation Engine's `expected_similarity`).\n\n"
            f"```text\n{protect(fence.body.rstrip())}\n```\n"
        )
        where = walker.line(fence.start)
        check = DraftStep(
            "manual",
            walker.ids(f"{step.id}-output"),
            body,
            where,
            f"Check the output of {step.id}",
            "",
            ("verify",),
        )
        walker.draft.parts.append(check)
        walker.result.note(
            where,
            f"expected_similarity={threshold} result block",
            f"manual verification #{check.id} of #{step.id}",
        )


def convert(text: str, path: Path) -> ImportResult:
    """Import an Innovation Engine document (see the module docstring)."""
    result = ImportResult("innovation-engine", [])
    draft, body, line0, meta = start_draft(text, path, result)
    report_rest(meta, result)
    walker = Walker(body, draft, result, line0, _Blocks())
    for fence in walker.fences():
        if fence.lang not in LANGS:
            continue
        for offset, line in enumerate(fence.body.splitlines(), start=1):
            match = _EXPORT.match(line)
            if match and match.group(1) not in draft.params:
                name, value = match.group(1), match.group(2).strip("\"'")
                where = walker.line(fence.start) + offset
                draft.params[name] = Param(
                    name, type_of(value), value, where, "exported by the document"
                )
                result.note(where, f"export {name}", f"parameter {name} ({type_of(value)})")
    walker.run()
    result.drafts.append(draft)
    return result


def detect(text: str, path: Path) -> bool:
    """An ``expected_similarity`` comment."""
    return bool(re.search(r"<!--\s*expected_similarity\s*=", text))
