"""RB305: a literal that looks like a password or a key in a step body.

Secrets belong in secret parameters (``{{ admin_password }}``, FORMAT.md §1),
whose values come from the environment, a prompt or a keyring and are redacted
from every output.  Template references are masked before matching, so
``/p:{{ admin_password }}`` is fine.  Patterns: assignments to a name ending in
password/secret/token/key (``password=...``, ``$Password = '...'``, YAML
``password: ...``), options (``-Password 'x'``, ``--token x``, ``/p:x``,
``/pass:x``), ``ConvertTo-SecureString 'x'``, user:password@ in URLs, PEM
private keys, AWS access key ids (AKIA/ASIA + 16), GitHub and Slack tokens.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from runbook_engine.lint.rules.context import TEMPLATE_MARK, Finding, LintContext, body_lines

_SECRET_NAME = r"(?:pass(?:word|wd|phrase)|secret|token|api[_-]?key|access[_-]?key|private[_-]?key)"
_VALUE = r"""(?:(?P<q>['"])(?P<quoted>[^'"\n]*)(?P=q)|(?P<value>[^\s'";&|,)]*))"""
_PATTERNS: tuple[tuple[re.Pattern[str], bool], ...] = (
    # (pattern, the match is a secret by itself; otherwise its value is judged)
    (re.compile(rf"(?i)(?<![\w-])[\w-]*{_SECRET_NAME}\s*(?::|=)\s*{_VALUE}"), False),
    (re.compile(rf"(?i)(?<![\w-])--?[\w-]*{_SECRET_NAME}\s+{_VALUE}"), False),
    (re.compile(rf"(?i)(?<![\w/])/(?:p|pass|passwd|password|pwd)[:=]{_VALUE}"), False),
    (re.compile(rf"(?i)ConvertTo-SecureString\s+(?:-String\s+)?{_VALUE}"), False),
    (re.compile(r"(?i)\b[a-z][a-z0-9+.-]*://[^/\s:@]+:(?P<value>[^@\s/]+)@"), False),
    (re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"), True),
    (re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])"), True),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b"), True),
    (re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b"), True),
)
_NOT_SECRETS = frozenset(
    {"yes", "no", "true", "false", "none", "null", "prompt", "required", "optional", "off", "on"}
)


def is_literal_secret(value: str, quoted: bool) -> bool:
    """Judge whether ``value`` (after ``password=`` and the like) is a literal secret.

    References are not: templates (masked), shell and cmd variables (``$X``,
    ``%X%``), placeholders (``<password>``, ``‹x›``), prompts (``*``), code
    expressions (``os.environ[...]``, ``getpass()``) and, unquoted, words of
    letters, ``-``, ``_`` and ``.`` only (``password: required``, ``Read-Host``).
    """
    if not value or TEMPLATE_MARK in value or value.lower() in _NOT_SECRETS:
        return False
    if value[0] in "$%<‹[({*?@!" or value.startswith("\\"):
        return False
    if quoted:
        return True
    if len(value) < 4 or "(" in value or "[" in value:
        return False
    return any(c.isdigit() or not (c.isalnum() or c in "-_.") for c in value)


def _secret_column(match: re.Match[str], certain: bool) -> int | None:
    """Return the 0-based column of the secret in ``match``, ``None`` when it is no secret."""
    if certain:
        return match.start()
    groups = match.groupdict()
    if groups.get("q"):
        return match.start("quoted") if is_literal_secret(groups["quoted"], True) else None
    value = groups.get("value") or ""
    return match.start("value") if is_literal_secret(value, False) else None


def secret_literal(ctx: LintContext) -> Iterator[Finding]:
    """RB305: yield each secret-looking literal in a step body, at its column."""
    for step in ctx.runbook.steps:
        for offset, line in enumerate(body_lines(step)):
            seen: set[int] = set()
            for pattern, certain in _PATTERNS:
                for match in pattern.finditer(line):
                    col = _secret_column(match, certain)
                    if col is None:
                        continue
                    if col in seen:
                        continue
                    seen.add(col)
                    yield ctx.body_finding(
                        step,
                        offset,
                        col,
                        "RB305",
                        f"step {step.id!r}: this looks like a password or key written into the "
                        "body; declare a parameter with 'secret: true' and write {{ name }}",
                    )
