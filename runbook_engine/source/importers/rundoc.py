"""rundoc 0.4.5: fenced blocks run by the interpreter their first tag names.

Info strings are hash-separated tags (``bash#setup#v2``): the first is the interpreter,
the rest select blocks (the first of them names the step).  ``env``/``environ``/
``environment`` blocks declare variables (``name=default``, one a line) handed to every
block; ``secret``/``secrets`` blocks declare credentials (expected empty).  Variables
become parameters (secrets ``secret: true``); a block using ``$name`` gets it through
``export name={{ name }}``.  Blocks of interpreters no step kind runs are reported.
"""

from __future__ import annotations

import re
from pathlib import Path

from runbook_engine.source.importers.fences import LANGS, Decision, Fence, Walker
from runbook_engine.source.importers.markdown import report_rest, start_draft
from runbook_engine.source.importers.model import Draft, ImportResult, Param
from runbook_engine.source.importers.values import type_of

ENV_TAGS = ("env", "environ", "environment")
SECRET_TAGS = ("secret", "secrets")
_VAR = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$")


def tags(fence: Fence) -> list[str]:
    """rundoc's tags of a fence: the interpreter first."""
    return (
        [t for t in re.split(r"#", fence.info.strip().split()[0]) if t]
        if fence.info.strip()
        else []
    )


def _declare(fence: Fence, walker: Walker, secret: bool) -> None:
    draft, result = walker.draft, walker.result
    for offset, line in enumerate(fence.body.splitlines(), start=1):
        match = _VAR.match(line)
        where = walker.line(fence.start) + offset
        if not match:
            if line.strip():
                result.note(
                    where, f"line {line.strip()!r} of an env block", "not name=value", mapped=False
                )
            continue
        name, value = match.group(1), match.group(2).strip().strip("'\"")
        if name in draft.params:
            continue
        kind = "string" if secret or not value else type_of(value)
        draft.params[name] = Param(
            name,
            kind,
            value,
            where,
            "from a rundoc " + ("secret" if secret else "env") + " block",
            secret,
        )
        result.note(
            where,
            f"{'secret' if secret else 'env'} variable {name}",
            f"{'secret ' if secret else ''}parameter {name} ({kind})",
        )


class _Blocks:
    def __call__(self, fence: Fence, walker: Walker) -> Decision:
        found = tags(fence)
        if not found:
            return Decision(None)
        if found[0] in ENV_TAGS + SECRET_TAGS:
            return Decision(None, drop=True)
        where = walker.line(fence.start)
        if found[0] not in LANGS:
            return Decision(None, why=f"rundoc would run it with {found[0]!r}: no step kind does")
        if len(found) > 2:
            walker.result.note(
                where,
                f"rundoc tags {'#'.join(found[2:])}",
                "not kept (selection tags)",
                mapped=False,
            )
        return Decision(LANGS[found[0]], id_hint=found[1] if len(found) > 1 else "")


def convert(text: str, path: Path) -> ImportResult:
    """Import a rundoc document (see the module docstring)."""
    result = ImportResult("rundoc", [])
    draft, body, line0, meta = start_draft(text, path, result)
    report_rest(meta, result)
    walker = Walker(body, draft, result, line0, _Blocks())
    for fence in walker.fences():  # variables first: a block may use one declared below it
        found = tags(fence)
        if found and found[0] in ENV_TAGS + SECRET_TAGS:
            _declare(fence, walker, found[0] in SECRET_TAGS)
    walker.run()
    result.drafts.append(draft)
    return result


def detect(text: str, path: Path) -> bool:
    """A fence tagged ``lang#tag``, or an ``env``/``secret`` block."""
    names = "|".join(ENV_TAGS + SECRET_TAGS)
    return bool(
        re.search(rf"^\s*(`{{3,}}|~{{3,}})([\w.+-]+#[\w#.:-]+|({names})(#\S*)?)\s*$", text, re.M)
    )


__all__ = ["Draft", "convert", "detect"]
