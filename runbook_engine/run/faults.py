"""Fault injection for tests: kill the process at a named point of a run.

Test-only.  When the environment variable ``RUNBOOK_FAULT`` names a point, the
process sends itself ``SIGKILL`` when it reaches it, so tests can check that a
run killed there can be resumed and its evidence still verifies.  Nothing in
normal use sets it; unset, a call costs one dictionary lookup.

The points, in the order a run meets them:

``after-create``
    The run's row is in the store, its folder (with a signed ``run-started``)
    not yet in place.
``after-step-started``
    A command step's ``step-started`` is journaled (``fsync``'d; its signature written,
    not ``fsync``'d), its ``running``
    checkpoint not yet committed (the command not yet started).
``after-process-started``
    A command step's process is started and its ``process-started`` written (not
    ``fsync``'d: a power loss may take it), its ``running`` checkpoint with the process
    not yet committed.
``after-step-finished``
    A command step's ``step-finished`` is written (neither ``fsync``'d nor signed: the
    next synced record acknowledges it), its final checkpoint not yet committed.
``before-acknowledge``
    The journal is durable and signed through a command step's end (with a later step's
    ``step-started``, the next command's idle call or a settle), the step's final
    checkpoint not yet committed nor its result shown.
``after-take-gate``
    The runner took a decision stored by ``runbook confirm``, before it journals
    ``gate-passed`` (or the skip or abort).
``after-attach-copy``
    ``confirm --attach`` copied a file into the run folder, before it journals it.
``after-attach-record``
    ``confirm --attach`` journaled the file, before it is renamed into place.
``after-final-status``
    The store holds the run's final status, before ``run-finished`` is journaled.
``after-run-finished``
    ``run-finished`` is written, before its signature and the seal.
"""

from __future__ import annotations

import os
import signal

#: The environment variable naming the point to die at (tests only).
FAULT_ENV = "RUNBOOK_FAULT"


def crash_point(name: str) -> None:
    """Die by ``SIGKILL`` here when ``$RUNBOOK_FAULT`` is ``name`` (tests only)."""
    if os.environ.get(FAULT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
