"""The ``contacts:`` section of an environment file: change owner, approvers, escalation.

Shape (runbooks/FORMAT.md §6)::

    contacts:
      change_owner: {name: Dana Lead, phone: "+44 20 7946 0100", email: dana@example.org}
      approvers:
        - {name: Change Board, email: cab@example.org}
      escalation:
        - {name: Exchange on call, phone: "+44 20 7946 0199"}

Every entry needs a ``name``; ``phone`` and ``email`` are optional and checked for
shape only.  Values are data: the guide prints them as text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from runbook_engine.source.model import Contact, Contacts
from runbook_engine.source.yamlfile import line_of

CONTACT_KEYS = frozenset({"name", "phone", "email"})
GROUPS = ("change_owner", "approvers", "escalation")
_PHONE = re.compile(r"\+?[0-9][0-9 ()./-]{2,30}(?: ?(?:x|ext\.?) ?[0-9]{1,6})?")
_EMAIL = re.compile(r"[^@\s<>\"',;]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")

Add = Callable[..., None]


def load_contacts(raw: Any, lines: dict, add: Add) -> Contacts:
    """Check and return the ``contacts:`` mapping of an environment file.

    Args:
        raw: The parsed YAML value (``None`` when the key is absent).
        lines: Line numbers of the file's keys (:func:`~runbook_engine.source.yamlfile.load_yaml`).
        add: Reports a problem: ``add(message, *key_path, code=...)``.

    Returns:
        The contacts; groups with problems are left out (each problem is reported).
    """
    if raw is None:
        return Contacts()
    if not isinstance(raw, dict):
        add("'contacts' must be a mapping with change_owner, approvers, escalation", "contacts")
        return Contacts()
    for key in raw:
        if key not in GROUPS:
            add(
                f"contacts: unknown key {key!r}; allowed: {', '.join(GROUPS)}",
                "contacts",
                key,
                code="RB216",
            )
    owner_raw = raw.get("change_owner")
    owner = (
        _contact(owner_raw, ("contacts", "change_owner"), lines, add)
        if owner_raw is not None
        else None
    )
    return Contacts(
        change_owner=owner,
        approvers=_people(raw.get("approvers"), "approvers", lines, add),
        escalation=_people(raw.get("escalation"), "escalation", lines, add),
    )


def _people(raw: Any, group: str, lines: dict, add: Add) -> tuple[Contact, ...]:
    if raw is None:
        return ()
    if isinstance(raw, dict):
        raw = [raw]
    if not isinstance(raw, list):
        add(f"contacts: {group!r} must be a list of people", "contacts", group, code="RB216")
        return ()
    found = [_contact(item, ("contacts", group, i), lines, add) for i, item in enumerate(raw)]
    return tuple(c for c in found if c is not None)


def _contact(raw: Any, key: tuple, lines: dict, add: Add) -> Contact | None:
    where = "contacts: " + ".".join(str(k) if isinstance(k, str) else f"[{k + 1}]" for k in key[1:])
    if not isinstance(raw, dict):
        add(f"{where}: expected a mapping with name, phone, email", *key, code="RB216")
        return None
    ok = True
    for k in raw:
        if k not in CONTACT_KEYS:
            add(f"{where}: unknown key {k!r}; allowed: email, name, phone", *key, k, code="RB216")
            ok = False
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip() or "\n" in name:
        add(f"{where}: 'name' is required (one line of text)", *key, code="RB216")
        ok = False
    phone, email = raw.get("phone", ""), raw.get("email", "")
    if phone is None or not isinstance(phone, str) or (phone and not _PHONE.fullmatch(phone)):
        add(
            f"{where}: phone {phone!r} is not a telephone number; quote it and use digits, "
            'spaces, + ( ) . / - (e.g. "+44 20 7946 0100")',
            *key,
            "phone",
            code="RB216",
        )
        ok = False
    if email is None or not isinstance(email, str) or (email and not _EMAIL.fullmatch(email)):
        add(
            f"{where}: email {email!r} is not an address like name@example.org",
            *key,
            "email",
            code="RB216",
        )
        ok = False
    if not ok:
        return None
    return Contact(str(name).strip(), phone.strip(), email.strip(), line_of(lines, *key))
