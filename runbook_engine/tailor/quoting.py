"""Quote parameter values for a person to type: display only, never the run path.

Guides, plans and the gates of ``manual`` hosts show a command body with each value
written as a person would type it (:func:`quote_value`), for the language of the body and
the quoting context the value stands in (outside quotes, inside single or double quotes),
found by scanning the body's literal text before it (:class:`_State`).  A run never uses
this: values reach commands as environment variables (:mod:`runbook_engine.tailor.binding`).

* outside quotes, a value of only safe characters (letters, digits, ``_@+=:,./-``)
  is written as it is, anything else is quoted (POSIX single quotes; cmd double
  quotes; PowerShell single quotes; a Python literal; a JSON string in YAML);
* inside quotes, the characters special there are escaped (POSIX ``\\ " $ ```;
  PowerShell backtick; Python and YAML escapes; cmd ``%`` as ``%%``), and a value
  that cannot be typed safely there (a ``"`` or a line break for cmd) raises
  :class:`QuotingError` (the display then marks it ``‹value›``);
* secret values are written as a reference to ``RUNBOOK_SECRET_<NAME>``;
* booleans become ``true``/``false`` (``$true``/``$false``, ``True``/``False``),
  ``None`` an empty string (``None``, ``null``), lists space-separated quoted items
  (a PowerShell array, a Python list, a YAML flow list).

Sources: POSIX Shell Command Language §2.2 (quoting); Microsoft, "Command
shell overview" and cmd /? (``%`` in batch files, ``"`` cannot be escaped
inside quotes); about_Quoting_Rules (PowerShell); Python Language Reference
§2.4.1 (string literals); YAML 1.2 §7.3 (flow scalars).
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from typing import Any

COMMAND_LANGS = frozenset({"sh", "bash", "cmd", "powershell", "python"})
YAML_LANGS = frozenset({"probe", "registry", "service", "approval"})
_SAFE = {
    "sh": re.compile(r"[A-Za-z0-9_@+=:,./-]+"),
    "cmd": re.compile(r"[A-Za-z0-9_@+=:,./\\-]+"),
    "powershell": re.compile(r"[A-Za-z0-9_+=:,./\\-]+"),
    "yaml": re.compile(r"[A-Za-z0-9_+=,./\\-][A-Za-z0-9_@+=:,./\\ -]*"),
}


class QuotingError(ValueError):
    """A value cannot be written safely where the template puts it."""


@dataclass(frozen=True, slots=True)
class SecretValue:
    """A secret in a template context: its name, and its value only when revealed.

    ``str()`` gives ``[secret:name]`` (for prose and guides).
    """

    name: str
    value: str | None = None

    @property
    def env_var(self) -> str:
        """The environment variable the runner sets for commands: ``RUNBOOK_SECRET_<NAME>``."""
        return "RUNBOOK_SECRET_" + re.sub(r"[^A-Za-z0-9_]", "_", self.name).upper()

    def __str__(self) -> str:
        return f"[secret:{self.name}]"


def language_of(kind: str) -> str | None:
    """Return the quoting language of a step kind (``sh`` for bash), or ``None`` for Markdown."""
    if kind in ("sh", "bash"):
        return "sh"
    if kind in COMMAND_LANGS:
        return kind
    if kind in YAML_LANGS:
        return "yaml"
    return None


# -- finding contexts ---------------------------------------------------------------------
class _State:
    """Quoting state of a body scanned left to right (``none``, ``single``, ``double``)."""

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self.context = "none"

    def feed(self, text: str) -> None:
        lang, ctx = self.lang, self.context
        escape = {"sh": "\\", "cmd": "^", "powershell": "`", "python": "\\", "yaml": "\\"}[lang]
        i = 0
        while i < len(text):
            c = text[i]
            if (c == "\n" and lang in ("cmd", "yaml")) or (
                c == "\n" and lang == "python" and ctx != "none"
            ):
                ctx = "none"
            elif ctx == "none":
                if c == escape and lang in ("sh", "cmd", "powershell"):
                    i += 1
                elif c == "'" and lang != "cmd":
                    ctx = "single"
                elif c == '"':
                    ctx = "double"
            elif ctx == "single":
                if c == "\\" and lang == "python":
                    i += 1
                elif c == "'":
                    ctx = "none"
            elif ctx == "double":
                if c == escape and lang in ("sh", "powershell", "python", "yaml"):
                    i += 1
                elif c == '"':
                    ctx = "none"
            i += 1
        self.context = ctx


# -- quoting ------------------------------------------------------------------------------
def quote_value(value: Any, lang: str, context: str) -> str:
    """Return ``value`` written safely for ``lang`` in ``context``.

    Raises:
        QuotingError: the value cannot be written safely there.
    """
    if isinstance(value, SecretValue):
        return _secret(value, lang, context)
    if isinstance(value, bool):
        text = {"powershell": "$true" if value else "$false", "python": repr(value)}.get(
            lang, "true" if value else "false"
        )
        return text if context == "none" or lang != "powershell" else str(value)
    if value is None:
        return {"python": "None", "yaml": "null"}.get(lang, "") if context == "none" else ""
    if isinstance(value, (list, tuple)):
        return _list(list(value), lang, context)
    if isinstance(value, (int, float)) and context == "none":
        return repr(value) if lang == "python" else str(value)
    return _text(str(value), lang, context)


def _list(items: list[Any], lang: str, context: str) -> str:
    if lang == "python" and context == "none":
        return repr(items)
    if lang == "yaml" and context == "none":
        return json.dumps([i if isinstance(i, (int, float, bool)) else str(i) for i in items])
    if lang == "powershell" and context == "none":
        return "@(" + ", ".join(quote_value(i, lang, "single_wrap") for i in items) + ")"
    return " ".join(quote_value(i, lang, context) for i in items)


def _text(text: str, lang: str, context: str) -> str:
    if lang == "sh":
        if context == "none":
            return text if _SAFE["sh"].fullmatch(text) else shlex.quote(text)
        if context == "single":
            return text.replace("'", "'\\''")
        return re.sub(r'([\\"$`])', r"\\\1", text)
    if lang == "cmd":
        if "\n" in text or "\r" in text or (context == "double" and '"' in text):
            raise QuotingError(
                f"{text!r} cannot be passed to cmd.exe safely "
                "(a line break, or a double quote inside quotes)"
            )
        if context == "none" and _SAFE["cmd"].fullmatch(text):
            return text
        if '"' in text:
            raise QuotingError(f"{text!r} holds a double quote, which cmd.exe cannot take safely")
        escaped = text.replace("%", "%%")
        return escaped if context == "double" else f'"{escaped}"'
    if lang == "powershell":
        if context in ("none", "single_wrap"):
            if context == "none" and _SAFE["powershell"].fullmatch(text):
                return text
            return "'" + _ps_single(text) + "'"
        if context == "single":
            return _ps_single(text)
        return re.sub(r'([`$"])', r"`\1", text)
    if lang == "python":
        if context == "none":
            return repr(text)
        literal = json.dumps(text, ensure_ascii=False)[1:-1]
        return literal.replace("'", "\\'") if context == "single" else literal
    # yaml
    if context == "none":
        return (
            text if _SAFE["yaml"].fullmatch(text) and not text.endswith(" ") else json.dumps(text)
        )
    if context == "single":
        if "\n" in text:
            raise QuotingError(
                f"{text!r}: a line break cannot stand in a single-quoted YAML string"
            )
        return text.replace("'", "''")
    return json.dumps(text, ensure_ascii=False)[1:-1]


def _ps_single(text: str) -> str:
    return re.sub(r"(['\u2018\u2019\u201a\u201b])", r"\1\1", text)


def _secret(secret: SecretValue, lang: str, context: str) -> str:
    var = secret.env_var
    if lang == "yaml":
        if secret.value is None:
            return str(secret)
        return _text(secret.value, lang, context)
    if lang == "sh":
        return {"none": f'"${{{var}}}"', "double": f"${{{var}}}", "single": f"'\"${{{var}}}\"'"}[
            context
        ]
    if lang == "cmd":
        return f"%{var}%" if context == "double" else f'"%{var}%"'
    if lang == "powershell":
        return {
            "none": f"$env:{var}",
            "single_wrap": f"$env:{var}",
            "double": f"$($env:{var})",
            "single": f"' + $env:{var} + '",
        }[context]
    ref = f'__import__("os").environ["{var}"]'
    if context == "none":
        return ref
    quote = '"' if context == "double" else "'"
    return f"{quote} + {ref} + {quote}"


def secret_environment(secrets: dict[str, str]) -> dict[str, str]:
    """Return the environment variables that carry ``secrets`` (name -> value) to commands."""
    return {SecretValue(name).env_var: value for name, value in secrets.items()}
