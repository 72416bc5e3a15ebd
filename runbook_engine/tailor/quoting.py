"""Quote parameter values for the language of the body they are put into.

Every ``{{ expression }}`` in a command body (``sh``, ``bash``, ``cmd``,
``powershell``, ``python``) and in a YAML body (``probe``, ``registry``,
``service``, ``approval``) is passed through :func:`quote_value` for that
language and for the quoting context it stands in (outside quotes, inside
single or double quotes), found by scanning the body's literal text before it.
A value therefore reaches a shell only quoted for that shell (DESIGN.md, "How
we build": security):

* outside quotes, a value of only safe characters (letters, digits, ``_@+=:,./-``)
  is written as it is, anything else is quoted (POSIX single quotes; cmd double
  quotes; PowerShell single quotes; a Python literal; a JSON string in YAML);
* inside quotes, the characters special there are escaped (POSIX ``\\ " $ ```;
  PowerShell backtick; Python and YAML escapes; cmd ``%`` as ``%%`` — cmd
  bodies run as batch files), and a value that cannot be made safe there (a
  ``"`` or a line break for cmd) is an error, never passed on;
* secret values never enter command text: they are written as a reference to
  an environment variable ``RUNBOOK_SECRET_<NAME>`` that the runner sets for
  the command (``"$RUNBOOK_SECRET_PW"``, ``"%RUNBOOK_SECRET_PW%"``,
  ``$env:RUNBOOK_SECRET_PW``, ``os.environ[...]``);
* booleans become ``true``/``false`` (``$true``/``$false``, ``True``/``False``),
  ``None`` an empty string (``None``, ``null``), lists space-separated quoted
  items (a PowerShell array, a Python list, a YAML flow list).

``{{ value | raw }}`` writes a value unquoted, for the rare body that composes
quoting itself; it is the author's promise that the value is safe there.

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

from jinja2 import nodes

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


class Raw(str):
    """A value marked by the ``raw`` filter: written without quoting."""


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
def quote_outputs(ast: nodes.Template, lang: str) -> nodes.Template:
    """Wrap every expression output of ``ast`` in the ``rbquote`` filter with its context.

    The context of an expression is the quoting state after the literal text
    before it, in document order.  Changes and returns ``ast``.
    """
    state = _State(lang)
    for output in ast.find_all(nodes.Output):
        new: list[nodes.Node] = []
        for child in output.nodes:
            if isinstance(child, nodes.TemplateData):
                state.feed(child.data)
                new.append(child)
                continue
            args = [nodes.Const(lang), nodes.Const(state.context)]
            new.append(nodes.Filter(child, "rbquote", args, [], None, None, lineno=child.lineno))
        output.nodes = new
    return ast


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
    if isinstance(value, Raw):
        return str(value)
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
