"""The details and the appendix of a change record, from the step rows and the journal.

``details`` lists, for each step and host where there is something to say, and only
there, what the step table cannot hold: the excerpt of a command's output, the note
given with a decision, the reason of a skip or an abort, an error, attachments,
retries and backouts.  Each entry is ``{"number", "step", "host", "items": [...]}``;
an item has a ``kind`` (``output``, ``note``, ``reason``, ``error``, ``attachment``,
``retry``, ``backout``, ``interrupted``) and the fields of that kind.

``appendix`` holds what is long: every command the run ran or showed to a person,
once each, referenced from the step table by ``command_ref`` (``C1``, ``C2``...)
and identified by its SHA-256; the run's parameters; and the hosts of the
environment.  A command of more than :data:`FULL_LINES` lines or :data:`FULL_CHARS`
characters is printed by its first lines and its digest only (``print_in_full``
false); its whole text stays in the JSON and the journal.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

#: The longest command the printed appendix shows whole.
FULL_LINES = 60
FULL_CHARS = 6000
#: Lines of a long command the printed appendix shows before its digest.
HEAD_LINES = 12
#: The most of an output excerpt a record shows (its end: where errors are).
EXCERPT_LINES = 12
EXCERPT_CHARS = 1200


def commands(rows: list[dict[str, Any]], records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every command of the run once, in order of first use; sets each row's
    ``command_ref`` and ``command_sha256``.

    Returns:
        ``[{"ref", "sha256", "shown_to_person", "used_by", "lines", "print_in_full", "text"}]``;
        ``used_by`` names ``step@host`` (with `` (backout)`` or `` (check)``).
    """
    found: dict[str, dict[str, Any]] = {}

    def add(body: Any, user: str, shown: bool) -> dict[str, Any]:
        text = body if isinstance(body, str) else json.dumps(body, sort_keys=True)
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        entry = found.get(digest)
        if entry is None:
            lines = len(text.splitlines())
            entry = found[digest] = {
                "ref": f"C{len(found) + 1}",
                "sha256": digest,
                "shown_to_person": shown,
                "used_by": [],
                "lines": lines,
                "print_in_full": lines <= FULL_LINES and len(text) <= FULL_CHARS,
                "text": text,
            }
        if user not in entry["used_by"]:
            entry["used_by"].append(user)
        return entry

    for row in rows:
        body, shown = (row["command"], False) if row["command"] else (row["command_shown"], True)
        if body:
            entry = add(body, f"{row['id']}@{row['host']}", shown)
            row["command_ref"], row["command_sha256"] = entry["ref"], entry["sha256"]
    for r in records:
        purpose = r["event"].removesuffix("-started")
        if purpose in ("check", "backout") and r.get("command"):
            add(r["command"], f"{r.get('step')}@{r.get('host')} ({purpose})", False)
    return list(found.values())


def details(
    rows: list[dict[str, Any]], records: list[dict[str, Any]], refs: dict[str, str]
) -> list[dict[str, Any]]:
    """The details of the rows that have any (see the module docstring).

    Args:
        rows: The step rows (:func:`runbook_engine.evidence.rows.step_rows`).
        records: The journal's records, in order.
        refs: Command SHA-256 to appendix reference, for backout commands.
    """
    items: dict[tuple[str, str], list[dict[str, Any]]] = {(r["id"], r["host"]): [] for r in rows}
    first_host = {}
    for row in rows:
        first_host.setdefault(row["id"], row["host"])
    for row in rows:
        found = items[(row["id"], row["host"])]
        if row["note"]:
            found.append(
                {"kind": "note", "text": row["note"], "by": row["by"], "source": row["source"]}
            )
        if row["detail"]:
            kind = "error" if row["status"] in ("failed", "error") else "reason"
            found.append({"kind": kind, "text": row["detail"]})
        if row["output_excerpt"] and row["output_excerpt"].strip():
            found.append(_output(row))
    for r in records:
        key = (r.get("step"), r.get("host") or first_host.get(r.get("step")))
        if key not in items:
            continue
        event = r["event"]
        if event == "attachment-added":
            items[key].append(
                {"kind": "attachment", "at": r["time"]}
                | {k: r.get(k) for k in ("path", "sha256", "size_bytes", "by")}
            )
        elif event == "step-retry":
            items[key].append(
                {
                    "kind": "retry",
                    "attempt": r.get("attempt"),
                    "delay_seconds": r.get("delay_seconds"),
                    "text": f"attempt {r.get('attempt')} failed; "
                    f"retried after {r.get('delay_seconds')} s",
                }
            )
        elif event.startswith("backout-"):
            items[key].append(_backout(r, refs))
        elif event == "step-previous":
            items[key].append({"kind": "found before", "text": previous_text(r.get("previous"))})
        elif event == "step-interrupted":
            items[key].append({"kind": "interrupted", "text": "interrupted; resumed later"})
    out = []
    for row in rows:
        found = items[(row["id"], row["host"])]
        if found:
            out.append(
                {"number": row["number"], "step": row["id"], "host": row["host"], "items": found}
            )
    return out


def previous_text(previous: Any) -> str:
    """What a registry or service step found before it changed anything, as the journal's
    ``step-previous`` event recorded it (``REG_SZ "a;b"``, ``absent``, ``start auto,
    running``): the value its generated backout puts back."""
    if not isinstance(previous, dict):
        return "not recorded"
    if previous.get("present") is False:
        return "absent (the backout deletes the value)"
    if "type" in previous:
        data = previous.get("data")
        if isinstance(data, list):
            shown = " | ".join(str(d) for d in data) if data else "(empty list)"
        elif isinstance(data, int):
            shown = f"0x{data:x} ({data})"
        else:
            shown = f'"{data}"'
        return f"{previous['type']} {shown} (the backout puts it back)"
    if "start" in previous or "state" in previous:
        return (
            f"start {previous.get('start', '?')}, {previous.get('state', '?')} "
            "(the backout puts them back)"
        )
    return "not recorded"


def _output(row: dict[str, Any]) -> dict[str, Any]:
    text = row["output_excerpt"].rstrip("\n")
    lines = text.splitlines()
    cut = len(lines) > EXCERPT_LINES or len(text) > EXCERPT_CHARS
    if cut:
        text = "\n".join(lines[-EXCERPT_LINES:])[-EXCERPT_CHARS:]
    return {
        "kind": "output",
        "excerpt": text,
        "excerpt_cut": cut,
        "exit_code": row["exit_code"],
        "file": row["output_file"],
        "sha256": row["output_sha256"],
    }


def _backout(r: dict[str, Any], refs: dict[str, str]) -> dict[str, Any]:
    event = r["event"]
    backout = r.get("backout") or r.get("id")
    item: dict[str, Any] = {"kind": "backout", "backout": backout, "event": event}
    if event == "backout-offered":
        item["text"] = f"backout {backout} offered; decision: {r.get('decision')}"
    elif event == "backout-started":
        digest = hashlib.sha256(str(r.get("command") or "").encode("utf-8")).hexdigest()
        item["text"] = f"backout {backout} started"
        item["command_ref"] = refs.get(digest)
    elif event == "backout-finished":
        item["text"] = f"backout {backout} {r.get('status')}, exit code {r.get('exit_code')}"
        item["exit_code"] = r.get("exit_code")
        item["output_sha256"] = r.get("output_sha256")
    elif event == "backout-by-hand":
        item["text"] = f"backout {backout} to be done by hand"
    else:
        item["text"] = event
    return item


def appendix(
    cmds: list[dict[str, Any]], started: dict[str, Any], environment: dict[str, Any] | None
) -> dict[str, Any]:
    """The record's appendix: ``commands``, ``parameters`` (name → value as run) and
    ``hosts`` (``[{"role", "name", "address", "transport"}]``)."""
    hosts = []
    for role, members in sorted(((environment or {}).get("hosts") or {}).items()):
        for h in members:
            hosts.append({"role": role} | {k: h.get(k) for k in ("name", "address", "transport")})
    return {"commands": cmds, "parameters": started.get("parameters") or {}, "hosts": hosts}
