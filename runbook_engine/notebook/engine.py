"""A papermill engine that keeps the executed notebook current at a bounded cost.

papermill's :class:`~papermill.engines.NotebookExecutionManager` saves the whole
notebook through ``nbformat.writes`` (deep copy, schema validation, JSON) when
each cell starts and when it completes, Markdown cells included: a runbook of
N steps (two cells each) costs about 4N writes of a notebook that grows with
N, so the saving grows with N².  This engine (registered in papermill's engine
registry as :data:`ENGINE_NAME`) saves while cells run only when a code cell
starts or ends and the last save is at least :data:`SAVE_INTERVAL` seconds old,
as plain JSON written atomically (temporary file, then rename); the final save,
and papermill's save when a cell raised, still go through ``nbformat``, so the
kept notebook is exactly papermill's.  While it runs, the file is at most
about :data:`SAVE_INTERVAL` seconds behind (the checkpoint store, not the
notebook, is the run's state).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from papermill.engines import NBClientEngine, NotebookExecutionManager, papermill_engines

#: Name to pass to ``papermill.execute_notebook(engine_name=...)``.
ENGINE_NAME = "runbook-engine"
#: Shortest time between two saves while cells run (seconds).
SAVE_INTERVAL = 0.5


class _Manager(NotebookExecutionManager):
    """Saves code cells' transitions (at most every :data:`SAVE_INTERVAL` s) as plain JSON."""

    _final = False
    _skip = False

    def cell_start(self, cell: Any, cell_index: int | None = None, **kwargs: Any) -> None:
        self._skip = cell.get("cell_type") != "code"
        try:
            super().cell_start(cell, cell_index, **kwargs)
        finally:
            self._skip = False

    def cell_complete(self, cell: Any, cell_index: int | None = None, **kwargs: Any) -> None:
        self._skip = cell.get("cell_type") != "code"
        try:
            super().cell_complete(cell, cell_index, **kwargs)
        finally:
            self._skip = False

    def notebook_start(self, **kwargs: Any) -> None:
        self._final = True  # the first save is complete: the reserved file is never left empty
        try:
            super().notebook_start(**kwargs)
        finally:
            self._final = False

    def notebook_complete(self, **kwargs: Any) -> None:
        self._final = True
        super().notebook_complete(**kwargs)

    def save(self, **kwargs: Any) -> None:
        if self._final or not self.output_path:
            super().save(**kwargs)
            return
        last = getattr(self, "last_save_time", None)
        if self._skip or (last is not None and (self.now() - last).total_seconds() < SAVE_INTERVAL):
            return
        path = Path(self.output_path)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(
            json.dumps(self.nb, sort_keys=True, indent=1, ensure_ascii=False) + "\n",
            encoding="utf-8",
        )
        os.replace(tmp, path)
        self.last_save_time = self.now()


class RunbookEngine(NBClientEngine):
    """papermill's nbclient engine with :class:`_Manager` for saving."""

    @classmethod
    def execute_notebook(
        cls,
        nb: Any,
        kernel_name: str,
        output_path: str | None = None,
        progress_bar: bool = True,
        log_output: bool = False,
        autosave_cell_every: int = 30,
        **kwargs: Any,
    ) -> Any:
        """As :meth:`papermill.engines.Engine.execute_notebook`, with the cheaper saves."""
        nb_man = _Manager(
            nb,
            output_path=output_path,
            progress_bar=progress_bar,
            log_output=log_output,
            autosave_cell_every=autosave_cell_every,
        )
        nb_man.notebook_start()
        try:
            cls.execute_managed_notebook(nb_man, kernel_name, log_output=log_output, **kwargs)
        finally:
            nb_man.cleanup_pbar()
            nb_man.notebook_complete()
        return nb_man.nb


papermill_engines.register(ENGINE_NAME, RunbookEngine)
