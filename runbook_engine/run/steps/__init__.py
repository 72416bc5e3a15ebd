"""Step executors, one per kind family, looked up by kind name.

The kind registry (:data:`runbook_engine.source.kinds.KINDS`) names each kind's executor
as ``"module:Class"``; :func:`executor_for` imports it on first use and keeps one
instance.  Modules: :mod:`.base` (the interface and :class:`~.base.StepContext`),
:mod:`.command` (shell kinds on a transport), :mod:`.manual` (a gate for a person),
:mod:`.probe`, :mod:`.declarative` (``registry``, ``service``), :mod:`.approval`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from runbook_engine.errors import InputError
from runbook_engine.source.kinds import KINDS

if TYPE_CHECKING:
    from runbook_engine.run.steps.base import StepExecutor

_LOADED: dict[str, StepExecutor] = {}


def executor_for(kind: str) -> StepExecutor:
    """The executor of step kind ``kind``.

    Raises:
        InputError: no kind of that name, or it names no executor.
    """
    info = KINDS.get(kind)
    if info is None or not info.executor:
        raise InputError(f"step kind {kind!r} has no executor; known kinds: {', '.join(KINDS)}")
    found = _LOADED.get(info.executor)
    if found is None:
        module, _, name = info.executor.partition(":")
        found = _LOADED[info.executor] = getattr(importlib.import_module(module), name)()
    return found


def executors() -> list[StepExecutor]:
    """Every registered executor, each once (for run-wide checks and guards)."""
    seen: dict[int, StepExecutor] = {}
    for kind, info in KINDS.items():
        if info.executor:
            found = executor_for(kind)
            seen.setdefault(id(found), found)
    return list(seen.values())
