"""Every test runs apart from the machine's own runbook-engine set-up.

A signing key in ``~/.config/runbook-engine/keys`` (made by ``runbook keys init``), a
state folder in ``~/.local/state``, or a team's store, queue, token or notification
settings in the environment would change what runs sign, where they are kept and how
they end.  Each test gets its own configuration and state homes (tests that need a key
make one there) and none of those variables.
"""

from __future__ import annotations

from pathlib import Path

import pytest

_CLEARED = (
    "RUNBOOK_SIGNING_KEY",
    "RUNBOOK_STATE_DIR",
    "RUNBOOK_STORE",
    "RUNBOOK_QUEUE",
    "RUNBOOK_TOKEN",
    "RUNBOOK_SERVER",
    "RUNBOOK_NOTIFY_CONFIG",
    "RUNBOOK_PUBLIC_URL",
    "RUNBOOK_LAUNCH_TICKET",
    "RUNBOOK_OPERATOR",
    "RUNBOOK_LIBRARY",
)


@pytest.fixture(autouse=True)
def _apart_from_the_machine(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    home: Path = tmp_path_factory.mktemp("xdg")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / "state"))
    for name in _CLEARED:
        monkeypatch.delenv(name, raising=False)
