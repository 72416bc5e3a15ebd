"""Authoring rules of ``runbook lint`` (warnings RB301-RB311, RB320-RB323), one module per family.

Each rule is a function ``(LintContext) -> Iterable[Finding]`` registered in
:data:`RULES` under its stable code.  Codes never change meaning; a retired
rule's code is not reused.  Errors (RB1xx parser, RB13x tailoring, RB4xx probe
bodies) come from the parser and tailoring and cannot be disabled.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from runbook_engine.lint.rules.adopt import (
    foreign_front_matter,
    pasted_output,
    prompt_in_command,
    template_kept_literal,
)
from runbook_engine.lint.rules.context import Finding, LintContext
from runbook_engine.lint.rules.flow import (
    change_without_backout,
    change_without_verify,
    manual_without_target,
)
from runbook_engine.lint.rules.hosts import hard_coded_host, validports_missing_port
from runbook_engine.lint.rules.params import unused_parameter
from runbook_engine.lint.rules.secrets import secret_literal
from runbook_engine.lint.rules.settings import Settings, read_settings
from runbook_engine.lint.rules.values import cmd_value_variables, value_to_evaluator


@dataclass(frozen=True, slots=True)
class Rule:
    """A lint rule.

    Attributes:
        code: Stable code (``RB301``).
        name: Short kebab-case name.
        summary: One line for documentation.
        check: The function that finds it.
    """

    code: str
    name: str
    summary: str
    check: Callable[[LintContext], Iterable[Finding]]


RULES: dict[str, Rule] = {
    rule.code: rule
    for rule in (
        Rule(
            "RB301",
            "change-without-verify",
            "a changing step with no verification step (.verify) after it",
            change_without_verify,
        ),
        Rule(
            "RB302",
            "change-without-backout",
            "a changing step with no backout=",
            change_without_backout,
        ),
        Rule(
            "RB303", "manual-without-target", "a manual step with no target=", manual_without_target
        ),
        Rule("RB304", "unused-parameter", "a parameter declared but never used", unused_parameter),
        Rule(
            "RB305",
            "secret-literal",
            "a literal that looks like a password or key in a body",
            secret_literal,
        ),
        Rule(
            "RB306",
            "hard-coded-host",
            "a host name, domain or IP address written into a body instead of a parameter",
            hard_coded_host,
        ),
        Rule(
            "RB307",
            "host-list-without-port",
            "an entry without a port in a host:port;host:port list (ValidPorts)",
            validports_missing_port,
        ),
        Rule(
            "RB310",
            "cmd-value-reparsed",
            "a cmd variable set from a value, read with %NAME% or in a command parsed again",
            cmd_value_variables,
        ),
        Rule(
            "RB311",
            "value-to-evaluator",
            "a variable set from a value handed to eval, Invoke-Expression or exec()",
            value_to_evaluator,
        ),
        Rule(
            "RB320",
            "foreign-front-matter",
            "a front-matter key that is not a runbook key (kept as the guide's metadata)",
            foreign_front_matter,
        ),
        Rule(
            "RB321",
            "template-kept-literal",
            "braces in prose that read undeclared names and are kept as written",
            template_kept_literal,
        ),
        Rule(
            "RB322",
            "prompt-in-command",
            "a command step line that starts with a prompt ($ , PS>)",
            prompt_in_command,
        ),
        Rule(
            "RB323",
            "pasted-output",
            "lines after a prompt line in a command step that look like pasted output",
            pasted_output,
        ),
    )
}

__all__ = ["RULES", "Finding", "LintContext", "Rule", "Settings", "read_settings"]
