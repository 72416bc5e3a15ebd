"""Values travel out of band: every ``{{ expression }}`` in a command body becomes a
reference to an environment variable, and the value goes into the step's environment.

Tailoring renders a body with each expression replaced by a placeholder token
(:class:`Slots`), then :func:`bind_body` writes, for the body's language, a
variable reference in place of each placeholder and returns the variables' values:

* ``sh``/``bash``: ``"${V}"`` outside quotes, ``${V}`` in double quotes, ``'"${V}"'``
  in single quotes, ``'"${V}"$'`` in ``$'...'``; the code argument of ``sh -c``/``bash -c``
  gets a reference the nested shell expands itself; an awk program gets
  ``ENVIRON["V"]``; here-documents only when read by ``cat``/``tee`` (unquoted
  delimiter); arithmetic only for whole numbers; other programs' code (``sed``
  scripts, ``perl -e``, ``eval``, ``ssh``...) is refused.
* ``python``: ``__import__("os").environ["V"]`` (JSON-decoded for non-text values);
  inside string literals an adjacent f-string (:mod:`python_place`).
* ``powershell``: ``$($env:V)`` outside quotes and in ``"..."``/``@"..."@``; typed
  forms for booleans and numbers; single quotes and ``Invoke-Expression`` refused.
* ``cmd``: ``!V!`` with ``setlocal EnableDelayedExpansion`` (expanded after cmd.exe
  has parsed the line, so no character of the value is special); ``call``,
  ``for /f ('...')`` and nested ``cmd /c`` re-parse and are refused.

The choice of reference depends on a scan of the body (for correctness); the value
itself never enters the body, whatever the scan concludes.  Inline values
(``{{ v | inline }}``) are the exception, allowed only for restricted types.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from runbook_engine.tailor.python_place import PlacementError, place_python
from runbook_engine.tailor.quoting import QuotingError, SecretValue, _State, quote_value
from runbook_engine.tailor.sh_refs import sh_reference
from runbook_engine.tailor.shell_scan import scan_shell
from runbook_engine.tailor.slots import BindingError, Env, Slot, Slots, value_text
from runbook_engine.tailor.win_refs import cmd_body, powershell_body

__all__ = ["BindingError", "Bound", "Slots", "bind_body", "display_body", "value_text"]

#: Parameter types whose values may be written into a body as they are (``| inline``).
INLINE_TYPES = frozenset(
    {"hostname", "fqdn", "domain", "netbios-name", "ipv4", "ip", "port", "int", "bool", "choice"}
)
_INLINE_SAFE = re.compile(r"[A-Za-z0-9_.:-]*")


@dataclass
class Bound:
    """A body with references, and the variables they read."""

    body: str
    env: dict[str, str]


def bind_body(lang: str, text: str, slots: Slots, *, types: dict[str, str]) -> Bound:
    """Replace the placeholders of a rendered ``lang`` body by references.

    Args:
        lang: ``sh`` (also bash), ``cmd``, ``powershell`` or ``python``.
        text: The rendered body with placeholders.
        slots: The values behind the placeholders.
        types: Parameter name -> type, to check ``| inline``.

    Raises:
        BindingError: a place where no reference is safe and correct, or an inline
            value of a type that is not allowed inline.
    """
    env = Env(slots)
    pattern = slots.pattern
    text = pattern.sub(
        lambda m: (
            _inline(slots.items[int(m.group(1))], types)
            if slots.items[int(m.group(1))].inline
            else m.group(0)
        ),
        text,
    )

    def fixed(index: int) -> str | None:
        value = slots.items[index].value
        return value.env_var if isinstance(value, SecretValue) else None

    try:
        if lang == "python":
            body = place_python(
                text,
                pattern,
                lambda i: _python_code(env, i, fixed(i)),
                lambda i: fixed(i) or env.var(i, _python_text(slots.items[i].value)),
            )
            return Bound(body, env.env)
        if lang == "sh":
            spots = scan_shell(text, pattern)
            return Bound(pattern.sub(lambda m: sh_reference(env, m, spots, fixed), text), env.env)
        if lang == "powershell":
            return Bound(powershell_body(text, pattern, env, fixed), env.env)
        if lang == "cmd":
            return Bound(cmd_body(text, pattern, env, fixed), env.env)
    except PlacementError as exc:
        raise BindingError(str(exc), slots.items[exc.index].line) from None
    raise ValueError(f"no value binding for {lang!r}")


def _inline(slot: Slot, types: dict[str, str]) -> str:
    kind = types.get(slot.name or "")
    if kind not in INLINE_TYPES:
        raise BindingError(
            f"'| inline' writes a value into the body as it is, which is allowed only for "
            f"parameters of type {', '.join(sorted(INLINE_TYPES))}; "
            f"{slot.name or 'this expression'!r} is {kind or 'not a parameter'}: "
            "remove '| inline' (the value is then passed safely as a variable)",
            slot.line,
        )
    text = value_text(slot.value)
    if not _INLINE_SAFE.fullmatch(text):
        raise BindingError(f"inline value {text!r} holds characters not allowed", slot.line)
    return text


# -- python -------------------------------------------------------------------------------
def _python_text(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    if value is None:
        return "None"
    return value_text(value)


def _python_code(env: Env, index: int, fixed: str | None) -> str:
    slot = env.slots.items[index]
    if fixed is not None:
        return f'__import__("os").environ["{fixed}"]'
    value = slot.value
    if isinstance(value, str):
        return f'__import__("os").environ["{env.var(index, value)}"]'
    var = env.var(index, json.dumps(value, ensure_ascii=False))
    return f'__import__("json").loads(__import__("os").environ["{var}"])'


VALUES_NOTE = "values shown quoted for typing by hand; a run passes them as environment variables"
#: A cmd value typed outside quotes is shown bare when no character of it is special at a
#: prompt (``(``/``)`` only matter inside a block, ``!`` only with delayed expansion).
_CMD_BARE = re.compile(r'[^&|<>^%"\r\n]*')


# -- display ------------------------------------------------------------------------------
def display_body(lang: str, text: str, slots: Slots) -> str:
    """The body a person would type: each value quoted for where it stands (``quote_value``;
    a value that cannot be typed safely there is shown as ``‹value›``)."""
    pattern = slots.pattern
    state = _State(lang)
    out: list[str] = []
    pos = 0
    for match in pattern.finditer(text):
        literal = text[pos : match.start()]
        state.feed(literal)
        out.append(literal)
        slot = slots.items[int(match.group(1))]
        try:
            shown = value_text(slot.value)
            if slot.inline or (
                lang == "cmd" and state.context == "none" and _CMD_BARE.fullmatch(shown)
            ):
                out.append(shown)
            else:
                out.append(quote_value(slot.value, lang, state.context))
        except QuotingError:
            out.append("‹" + value_text(slot.value) + "›")
        pos = match.end()
    out.append(text[pos:])
    return "".join(out)
