"""Contacts in environment files (``contacts:``): change owner, approvers, escalation."""

from __future__ import annotations

from pathlib import Path

import pytest

from runbook_engine.errors import EnvironmentFileError
from runbook_engine.tailor.environment import load_environment

LAB = Path(__file__).resolve().parents[1] / "runbooks" / "exchange2003" / "environments" / "lab.yaml"


def test_lab_contacts_are_loaded() -> None:
    contacts = load_environment(LAB).contacts
    assert contacts.change_owner is not None and contacts.change_owner.name == "Dana Lead"
    assert contacts.change_owner.phone == "+44 20 7946 0100"
    assert contacts.escalation[0].name == "Exchange on-call"
    assert len(contacts.approvers) == 2


@pytest.mark.parametrize(
    ("entry", "needle", "line"),
    [
        ("  change_owner: {phone: '+1 555 0100'}", "'name' is required", 3),
        ("  change_owner: {name: Dana, phone: 'call me'}", "is not a telephone number", 3),
        ("  escalation:\n    - {name: Ops, email: not-an-address}", "is not an address", 4),
        ("  escalation:\n    - {name: Ops, pager: 123}", "unknown key 'pager'", 4),
        ("  owner: {name: Dana}", "unknown key 'owner'", 3),
    ],
)
def test_bad_contacts_name_file_and_line(tmp_path: Path, entry: str, needle: str, line: int) -> None:
    env = tmp_path / "env.yaml"
    env.write_text(f"name: t\ncontacts:\n{entry}\n")
    with pytest.raises(EnvironmentFileError) as info:
        load_environment(env)
    problem = next(p for p in info.value.problems if needle in p.message)
    assert problem.line == line and problem.code == "RB216"
    assert f"{env}:{line}" in problem.format()
