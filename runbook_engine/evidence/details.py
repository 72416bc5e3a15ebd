"""The details and the appendix of a change record, from the step rows and the journal.

``details`` lists, for each step and host where there is something to say, and only
there, what the step table cannot hold: the excerpt of a command's output, the note
given with a decision, the reason of a skip or an abort, an error, attachments,
retries and backouts.  Each entry is ``{"number", "step", "host", "items": [...]}``;
an item has a ``kind`` (``output``, ``note``, ``reason``, ``error``, ``attachment``,
``retry``, ``backout``, ``interrupted``) and the fields of that kind.

``appendix`` holds what is long: every command the run ran or showed to a person,
once each, referenced from the step table by ``command_ref`` (``A1``, ``A2``...: the items
of appendix A) and identified by its SHA-256; the run's parameters; and the hosts of the
environment.  A command of more than :data:`FULL_LINES` lines or :data:`FULL_CHARS`
characters is printed by its first lines and its digest only (``print_in_full``
false); its whole text stays in the JSON and the journal.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

#: The longest command the printed appendix shows whole.
FULL_LINES = 60
FULL_CHARS = 6000
#: Lines of a long command the printed appendix shows before its digest.
HEAD_LINES = 12
#: The most of an output excerpt a record shows (its end: where errors are).
EXCERPT_LINES = 12
EXCERPT_CHARS = 1200


#: How a command refers to a value of the run form (``RUNBOOK_VALUE_EXCHANGE_FQDN``).
_VALUE_VAR = re.compile(r"RUNBOOK_VALUE_([A-Z0-9_]+)")


def commands(
    rows: list[dict[str, Any]],
    records: list[dict[str, Any]],
    parameters: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Every command and manual step's instructions of the run once, in order of first
    use; sets each row's ``command_ref`` and ``command_sha256``.

    Args:
        rows: The step rows.
        records: The journal's records, in order.
        parameters: The run's parameters (``run-started``), to say which values a
            command reads are in the parameter table.

    Returns:
        ``[{"ref", "sha256", "kind", "shown_to_person", "used_by", "lines", "print_in_full",
        "text", "values"}]``; ``shown_to_person`` is true only when no use of the text
        was run by the tool (a backout offered and then run by the tool is not);
        ``kind`` is ``command`` or ``instructions`` (a manual step's
        text as the person was shown it, tailored); ``used_by`` names ``step@host`` (with
        `` (backout)`` or `` (check)``); ``values`` lists the run-form values the text
        reads from ``RUNBOOK_VALUE_*`` variables: ``{"name", "variable", "in_parameters"}``
        and, for a value that is not a parameter, its ``value`` as the command got it.
    """
    found: dict[str, dict[str, Any]] = {}
    names = {str(k).upper(): str(k) for k in (parameters or {})}

    def add(
        body: Any, user: str, shown: bool, kind: str = "command", env: Any = None
    ) -> dict[str, Any]:
        text = body if isinstance(body, str) else json.dumps(body, sort_keys=True)
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        entry = found.get(digest)
        if entry is None:
            lines = len(text.splitlines())
            entry = found[digest] = {
                "ref": f"A{len(found) + 1}",
                "sha256": digest,
                "kind": kind,
                "shown_to_person": shown,
                "used_by": [],
                "lines": lines,
                "print_in_full": lines <= FULL_LINES and len(text) <= FULL_CHARS,
                "text": text,
                "values": _values(text, names, env),
            }
        if not shown:
            # run by the tool in one use at least: a backout printed when it was offered
            # and then run by the tool was not done by a person
            entry["shown_to_person"] = False
        if user not in entry["used_by"]:
            entry["used_by"].append(user)
        return entry

    for row in rows:
        if row["command"]:
            body, shown, kind = row["command"], False, "command"
        elif row["command_shown"]:
            body, shown, kind = row["command_shown"], True, "command"
        else:
            body, shown, kind = row.get("instructions_shown"), True, "instructions"
        if body:
            entry = add(body, f"{row['id']}@{row['host']}", shown, kind, row.get("values"))
            row["command_ref"], row["command_sha256"] = entry["ref"], entry["sha256"]
    for r in records:
        purpose = r["event"].removesuffix("-started")
        if purpose in ("check", "backout") and r.get("command"):
            add(r["command"], f"{r.get('step')}@{r.get('host')} ({purpose})", False)
        elif r["event"] == "backout-offered" and r.get("command"):
            # printed for the operator when offered; the same text when it then ran
            add(r["command"], f"{r.get('step')}@{r.get('host')} (backout)", True)
    return list(found.values())


def _values(text: str, names: dict[str, str], env: Any) -> list[dict[str, Any]]:
    """The run-form values ``text`` reads from ``RUNBOOK_VALUE_*`` variables, once each."""
    out: list[dict[str, Any]] = []
    for var in dict.fromkeys(_VALUE_VAR.findall(text)):
        entry: dict[str, Any] = {
            "name": names.get(var, var.lower()),
            "variable": f"RUNBOOK_VALUE_{var}",
            "in_parameters": var in names,
        }
        if var not in names:  # None: the journal does not say (a check's or backout's code)
            entry["value"] = env.get(f"RUNBOOK_VALUE_{var}") if isinstance(env, dict) else None
        out.append(entry)
    return out


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
        item["text"] = (
            f"backout {backout} offered: {offer_words(r.get('decision'), r.get('source'))}"
        )
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


def offer_words(decision: Any, source: Any = None) -> str:
    """A ``backout-offered`` decision in plain words (``not-answered``: nobody decided)."""
    by = _DECIDED.get(str(source or ""))
    by = f" {by}" if by else ""
    if decision == "run":
        return f"agreed{by}, to run"
    if decision == "skip":
        return f"declined{by}; it did not run"
    return "nobody decided (no answer in the answers file, no one at a terminal); it did not run"


#: A backout's ``status`` (:func:`backouts`) in a few words, for page 1.
BACKOUT_SHORT = {
    "ran": "ran",
    "not finished": "started, no end recorded",
    "by hand": "to be done by hand, not recorded as done",
    "declined": "did not run: declined",
    "not decided": "did not run: nobody decided",
    "not offered": "did not run: not offered",
}


def appendix(
    cmds: list[dict[str, Any]], started: dict[str, Any], environment: dict[str, Any] | None
) -> dict[str, Any]:
    """The record's appendix: ``commands``, ``parameters`` (name → value as run) and
    ``hosts`` (``[{"role", "name", "address", "transport", "steps"}]``; ``steps`` are the
    numbers of the run's steps aimed at the role, empty for a role of the environment
    the runbook does not use)."""
    by_role: dict[str, list[Any]] = {}
    for spec in started.get("steps") or []:
        if spec.get("target"):
            by_role.setdefault(str(spec["target"]), []).append(spec.get("number"))
    hosts = []
    for role, members in sorted(((environment or {}).get("hosts") or {}).items()):
        for h in members:
            hosts.append(
                {"role": role}
                | {k: h.get(k) for k in ("name", "address", "transport")}
                | {"steps": [n for n in by_role.get(role, []) if n is not None]}
            )
    return {"commands": cmds, "parameters": started.get("parameters") or {}, "hosts": hosts}


#: Step kinds whose backout the tool generates from what the step found.
GENERATED_BACKOUT_KINDS = frozenset({"registry", "service"})
#: What a backout decision's ``source`` is called in a record.
_DECIDED = {"answers-file": "in the answers file", "terminal": "at the terminal"}


def backouts(
    rows: list[dict[str, Any]],
    records: list[dict[str, Any]],
    flow: list[dict[str, Any]],
    refs: dict[str, str],
) -> list[dict[str, Any]]:
    """What became of the backout of every step that has one and did something.

    One entry per step and host whose step has a backout (``backout=`` or one the tool
    generates for registry and service steps) and that succeeded or failed; steps that
    never ran changed nothing and have none.  ``status`` is one word:

    ``ran``
        The tool ran it (``result``: ``succeeded`` or ``failed``, ``exit_code``;
        ``restored`` for a generated one: the value found before was read back).
    ``by hand``
        Agreed, on a host reached by hand: the journal holds no proof it was done.
    ``declined``
        Offered when the step failed; a person said not to run it (``decided``).
    ``not decided``
        Offered when the step failed; nobody answered (no answer in the answers file
        and no terminal), so it did not run.
    ``not offered``
        The step did not fail: the tool offers only a failed step's backout; undoing
        it is the guide's backout plan.

    Each entry: ``number``, ``step``, ``host``, ``step_status``, ``backout`` (its step
    id or ``generated``), ``status``, ``decided``, ``result``, ``exit_code``,
    ``restored``, ``command_ref`` and ``text`` (the same in words).
    """
    spec = {s.get("id"): s for s in flow}
    out: list[dict[str, Any]] = []
    for row in rows:
        s = spec.get(row["id"]) or {}
        own = s.get("backout") or (
            "generated" if s.get("kind") in GENERATED_BACKOUT_KINDS else None
        )
        if not own or row["status"] not in ("succeeded", "failed", "error"):
            continue
        entry: dict[str, Any] = {
            "number": row["number"],
            "step": row["id"],
            "host": row["host"],
            "step_status": row["status"],
            "backout": own,
            "status": "not offered",
            "decided": None,
            "result": None,
            "exit_code": None,
            "restored": None,
            "command_ref": None,
        }
        for r in records:
            if r.get("step") != row["id"] or r.get("host") != row["host"]:
                continue
            event = r["event"]
            if event == "backout-offered":
                entry["backout"] = r.get("backout") or own
                decision = r.get("decision")
                entry["status"] = {"run": "ran", "skip": "declined"}.get(decision, "not decided")
                entry["decided"] = _DECIDED.get(r.get("source") or "")
                digest = hashlib.sha256(str(r.get("command") or "").encode()).hexdigest()
                entry["command_ref"] = refs.get(digest)
                if decision == "run":
                    entry["status"] = "not finished"  # until backout-finished says more
            elif event == "backout-by-hand":
                entry["status"] = "by hand"
            elif event == "backout-finished":
                entry.update(status="ran", result=r.get("status"), exit_code=r.get("exit_code"))
            elif event == "backout-verified":
                entry["restored"] = bool(r.get("restored"))
        entry["text"] = _backout_text(entry)
        out.append(entry)
    return out


def _backout_text(e: dict[str, Any]) -> str:
    which = "the generated backout" if e["backout"] == "generated" else f"backout {e['backout']}"
    where = f" (appendix {e['command_ref']})" if e["command_ref"] else ""
    status = e["status"]
    if status == "ran":
        text = f"{which} ran: {e['result'] or 'finished'}, exit code {e['exit_code']}"
        if e["restored"] is True:
            text += "; the value found before the change was read back in place"
        elif e["restored"] is False:
            text += "; the value found before the change was NOT read back in place"
        return text + where
    if status == "not finished":
        return f"{which} was started but the journal has no end for it{where}"
    if status == "by hand":
        return (
            f"{which} was agreed, to be done by hand{where}; the journal holds no "
            "confirmation that it was done"
        )
    if status == "declined":
        by = f" {e['decided']}" if e["decided"] else ""
        return f"{which} did not run: offered when the step failed, declined{by}{where}"
    if status == "not decided":
        return (
            f"{which} did NOT run: offered when the step failed, but nobody decided (no "
            f"answer in the answers file and no one at a terminal){where}"
        )
    return (
        f"{which} did not run: the step {e['step_status']}; the tool offers only a failed "
        "step's backout (undoing it is the guide's backout plan)"
    )
