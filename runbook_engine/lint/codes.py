"""The error codes ``runbook lint`` (and every command reading a runbook) reports, with one
line each, for ``runbook lint --rules``.  Errors cannot be disabled; the warning rules
(RB3xx) are in :mod:`runbook_engine.lint.rules`.  Source of facts: the ``code=`` of each
:class:`~runbook_engine.errors.Problem` raised by ``source/``, ``tailor/``, ``run/gates.py``
and ``outputs/``.
"""

from __future__ import annotations

#: code -> (name, summary), in code order.
ERROR_CODES: dict[str, tuple[str, str]] = {
    "RB000": ("unreadable-file", "a runbook that cannot be read or is not UTF-8 text"),
    "RB102": ("front-matter-unclosed", "front matter opened with --- and never closed"),
    "RB103": ("front-matter-yaml", "front matter that is not valid YAML"),
    "RB104": ("front-matter-key", "an unknown, repeated or mistyped front matter key"),
    "RB105": ("parameter-declaration", "a parameter declared with a bad type, default or key"),
    "RB110": ("attribute-syntax", "a malformed attribute list {#id key=value}"),
    "RB111": ("attributes-without-id", "attributes on a block without an {#id}"),
    "RB112": ("fence-unclosed", "a step's code fence that is never closed"),
    "RB113": ("step-without-kind", "a step with no kind (language) before its attributes"),
    "RB114": ("unknown-kind", "a step of an unknown kind"),
    "RB115": ("bad-step-id", "a step id that is not a letter followed by letters, digits, - or _"),
    "RB116": ("bad-attribute", "an unknown attribute or class, or a bad attribute value"),
    "RB117": ("duplicate-step-id", "two steps with the same id"),
    "RB118": ("unknown-step-reference", "check= or backout= naming no step"),
    "RB119": ("unknown-role", "target= naming a role the front matter does not declare"),
    "RB120": ("include-cycle", "an include cycle, nesting too deep, or a missing fragment"),
    "RB121": ("include-without-path", "an include directive without a path"),
    "RB122": ("fragment-conflict", "a fragment declaring a name differently from the runbook"),
    "RB123": ("include-outside-library", "an include that leaves the runbook library"),
    "RB124": ("console-transcript", "a console step without a prompt line, or mixing $ and PS>"),
    "RB130": ("template-syntax", "a template syntax error (an {% if %} must close in its stretch)"),
    "RB131": ("template-error", "a template that fails while it renders"),
    "RB132": ("undefined-name", "a template name that is neither a parameter nor a fact"),
    "RB133": ("value-cannot-go-here", "a value where even a reference would become code"),
    "RB134": ("sandbox", "a template reaching for Python internals"),
    "RB201": (
        "unreadable-input",
        "an environment or answers file missing, unreadable or not UTF-8",
    ),
    "RB202": ("invalid-yaml", "an environment or answers file that is not valid YAML"),
    "RB210": ("environment-key", "an unknown key or wrong type in an environment file"),
    "RB211": ("role-without-host", "a role with no host in the environment"),
    "RB212": ("unknown-transport", "a host with an unknown transport"),
    "RB213": ("bad-address", "a host without a valid address"),
    "RB214": ("transport-options", "bad transport options (winrm:), e.g. basic over http"),
    "RB215": ("secret-in-environment", "a secret written into an environment file"),
    "RB220": ("unknown-parameter", "--set naming a parameter the runbook does not declare"),
    "RB221": ("missing-value", "a required parameter without a value"),
    "RB222": ("bad-value", "a value that is not of its parameter's type"),
    "RB223": ("missing-secret", "a secret whose source (environment variable...) is not set"),
    "RB224": ("control-character", "a value holding a control character"),
    "RB230": ("role-not-in-environment", "a step's role with no host in the environment"),
    "RB231": ("environment-needed", "a step on a role, with no environment given"),
    "RB240": ("answers-file", "an answers file with a bad decision or an unknown step"),
    "RB250": ("unknown-format", "an unknown output format (--to)"),
    "RB251": ("templates-missing", "RUNBOOK_TEMPLATES naming a missing folder"),
    "RB252": ("site-assets-missing", "the site assets missing from the installation"),
    "RB253": ("source-date-epoch", "SOURCE_DATE_EPOCH that is not a whole number"),
    "RB254": ("pdf-unavailable", "PDF output without WeasyPrint (the pdf extra)"),
    "RB260": ("site-source", "runbook site build given no folder of runbooks"),
    "RB261": ("site-output", "a site output folder holding files no build wrote"),
}
