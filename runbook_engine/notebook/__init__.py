"""Runbooks as Jupyter notebooks (issue 4).

- :mod:`~runbook_engine.outputs.notebook`: the nbformat v4 notebook of a tailored
  runbook (``runbook render --to ipynb``).
- :mod:`~runbook_engine.notebook.api`: what the notebook's cells call; every
  step goes through the same runner, transports and checkpoint store as
  ``runbook run``.
- :mod:`~runbook_engine.notebook.execute`: ``runbook notebook run`` (papermill).

Importing this package imports neither nbformat nor papermill (DESIGN.md §6).
"""

from __future__ import annotations
