"""Variable references for sh and bash bodies, chosen from :mod:`shell_scan`'s view of
where each placeholder stands (see :mod:`binding` for the rules)."""

from __future__ import annotations

import re
from typing import Any

from runbook_engine.tailor.shell_scan import ShellSpot, scan_shell
from runbook_engine.tailor.slots import Env, Slot, refuse, value_text

_SHELLS = frozenset({"sh", "bash", "dash", "ksh", "zsh", "mksh", "ash", "busybox"})
_AWKS = frozenset({"awk", "gawk", "mawk", "nawk"})
_CODE_FLAG = {
    "perl": ("-e", "-E"),
    "ruby": ("-e",),
    "node": ("-e", "-p", "--eval"),
    "php": ("-r",),
    "python": ("-c",),
    "python3": ("-c",),
    "pwsh": ("-c", "-Command", "-command"),
}
_ANY_ARG = frozenset({"eval", "trap", "ssh", "su", "sudo -s", "source", ".", "exec"})
_DATA_READERS = frozenset({"cat", "tee"})


# -- sh -----------------------------------------------------------------------------------
def sh_reference(env: Env, match: re.Match[str], spots: dict[int, ShellSpot], fixed: Any) -> str:
    """The reference for the placeholder ``match`` (a secret's variable from ``fixed``)."""
    index = int(match.group(1))
    slot = env.slots.items[index]
    spot = spots.get(match.start(), ShellSpot("none", (), ""))
    var = fixed(index) or env.var(index, value_text(slot.value))
    return _sh_ref(var, spot, slot)


def _sh_ref(var: str, spot: ShellSpot, slot: Slot) -> str:
    words = [w.rsplit("/", 1)[-1] for w in spot.words]
    ctx = spot.context
    if ctx == "comment":
        return "${" + var + "}"
    if ctx == "arith":
        if isinstance(slot.value, int) and not isinstance(slot.value, bool):
            return "${" + var + "}"
        raise refuse(
            "a value in shell arithmetic is evaluated as an expression (bash runs $(...) "
            "found in it); only whole-number (int, port) values may stand there",
            slot,
        )
    if ctx.startswith("heredoc") or spot.herestring:
        reader = [w.rsplit("/", 1)[-1] for w in spot.heredoc_words]
        program = reader[0] if reader else ""
        if spot.herestring and program not in _SHELLS | set(_CODE_FLAG) | _AWKS:
            return '"${' + var + '}"'
        if ctx == "heredoc" and program in _DATA_READERS | {""}:
            return "${" + var + "}"
        why = (
            "nothing expands in a here-document with a quoted delimiter"
            if ctx == "heredoc-quoted"
            else f"the here-document is read by {program!r}, which would run the value as code"
        )
        raise refuse(
            f"a value cannot go into this here-document: {why}; read the variable in the "
            f"program instead, or write the text with cat <<EOF > file",
            slot,
        )
    nested = _nested(words, spot, slot)
    if nested is not None:
        inner_ref = nested(var)
        return _encode(inner_ref, ctx)
    return {
        "none": '"${' + var + '}"',
        "double": "${" + var + "}",
        "single": "'\"${" + var + "}\"'",
        "ansi": "'\"${" + var + "}\"$'",
    }[ctx]


def _nested(words: list[str], spot: ShellSpot, slot: Slot) -> Any:
    """When the placeholder's word is code for another program: a function giving the
    reference in that program's language, or a refusal."""
    if not words:
        return None
    for pos, word in enumerate(words):
        if word in _SHELLS:
            flags = words[pos + 1 :]
            if flags and re.fullmatch(r"-[a-z]*c[a-z]*", flags[-1]):
                inner = scan_shell(spot.cooked + "\x00", re.compile("\x00"))
                inner_spot = inner.get(len(spot.cooked), ShellSpot("none", (), ""))
                return lambda var: _sh_ref(var, inner_spot, slot)
        if word in _AWKS:
            rest = words[pos + 1 :]
            if not any(w.startswith("-f") for w in rest) and _program_next(rest):
                in_string = _awk_in_string(spot.cooked)
                return lambda var: f'" ENVIRON["{var}"] "' if in_string else f'ENVIRON["{var}"]'
        if word == "sed" and (
            (words and words[-1] in ("-e", "--expression"))
            or (_program_next(words[pos + 1 :]) and "-e" not in words and "-f" not in words)
        ):
            raise refuse(
                "a value cannot go into a sed program (sed can run commands with 'e' and "
                "write files with 'w'); use awk with ENVIRON[...] or pass it as a file",
                slot,
            )
        if word in _CODE_FLAG and words[-1] in _CODE_FLAG[word]:
            raise refuse(
                f"a value cannot go into {word}'s inline code; read the environment "
                "variable in the code instead",
                slot,
            )
        if word in _ANY_ARG or (word == "su" and "-c" in words):
            raise refuse(
                f"{word} runs its arguments as code, so a value cannot be one of them", slot
            )
    return None


def _program_next(rest: list[str]) -> bool:
    """True when no non-option word has been given yet (the next one is the program)."""
    skip = False
    for word in rest:
        if skip:
            skip = False
        elif word in ("-v", "-F", "-e", "--expression"):
            skip = True
        elif not word.startswith("-"):
            return False
    return True


def _awk_in_string(program: str) -> bool:
    inside, i = False, 0
    while i < len(program):
        if program[i] == "\\" and inside:
            i += 2
            continue
        if program[i] == '"':
            inside = not inside
        i += 1
    return inside


def _encode(inner: str, ctx: str) -> str:
    """Write the text ``inner`` so that the outer shell passes it on unchanged."""
    if ctx == "single":
        return inner  # references hold no single quote
    if ctx == "double":
        return re.sub(r'([\\"$`])', r"\\\1", inner)
    if ctx == "ansi":
        return re.sub(r"([\\'])", r"\\\1", inner)
    return "'" + inner.replace("'", "'\\''") + "'"
