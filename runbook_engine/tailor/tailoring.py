"""Tailor a runbook to an environment: jinja2 over prose, bodies and conditions.

One sandboxed jinja2 environment (:mod:`runbook_engine.tailor.sandbox`,
``StrictUndefined``) is built once: rendering never runs runbook-supplied code.  Prose is
rendered stretch by stretch (a ``{% if %}`` must close before the next step);
conditional steps use ``when=``.  Undefined names are found statically first,
so one call reports all of them, each with the runbook's own file and line.

Without an environment (``generic`` mode) parameters render as placeholders
``‹name›`` and conditions are shown, not evaluated.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import jinja2
from jinja2.exceptions import SecurityError

from runbook_engine.errors import Problem, TemplateProblem
from runbook_engine.source.kinds import KINDS
from runbook_engine.source.model import Environment, Host, Prose, Runbook, SourceSpan, Step
from runbook_engine.tailor.binding import (
    BindingError,
    Slots,
    bind_body,
    display_body,
    value_text,
)
from runbook_engine.tailor.checks import SLOTS as _SLOTS
from runbook_engine.tailor.checks import check_names, slot_outputs, template_line
from runbook_engine.tailor.generic import generic_text
from runbook_engine.tailor.literal import protect
from runbook_engine.tailor.prose import insert_as_text
from runbook_engine.tailor.quoting import SecretValue, language_of
from runbook_engine.tailor.sandbox import (
    SANDBOX_CODE,
    make_environment,
    parse_template,
)
from runbook_engine.tailor.values import Values
from runbook_engine.tailor.yaml_values import bind_yaml

_JINJA = make_environment()  # sandboxed: runbook text is data, never code
_OUTPUTS = "_rb_outputs"


@jinja2.pass_context
def _record_output(context: Any, value: Any) -> Any:
    """Jinja ``finalize``: note each string an expression outputs where the context asks."""
    found = context.get(_OUTPUTS)
    if found is not None and isinstance(value, str):
        found.append(value)
    return value


_JINJA.finalize = _record_output
LOCAL_HOST = Host(name="operator", address="localhost", transport="local")


@dataclass(frozen=True, slots=True)
class TailoredProse:
    """Prose after tailoring: Markdown text and where it came from."""

    text: str
    span: SourceSpan


@dataclass(frozen=True, slots=True)
class TailoredStep:
    """A step after tailoring.

    Attributes:
        step: The parsed step.
        number: 1-based position in the normal flow (0 for check/backout helpers).
        body: The body as shown to people: values quoted for typing by hand (secrets
            as references).  YAML bodies: the body as executors read it.
        hosts: Hosts it runs on (the role's hosts; the operator's machine when
            it has no target); empty in generic mode.
        skip_reason: Why it will not run (a false ``when``), else ``None``.
        condition: The ``when`` expression, for generic guides.
        run_body: The body as run: every value a reference to an environment
            variable (same as ``body`` for YAML and Markdown bodies).
        env: Variable name -> value text for the references of ``run_body``
            (never secrets: those are ``RUNBOOK_SECRET_*`` of the run).
        outputs: The text of every string a ``{{ ... }}`` of the body rendered, parameter
            or computed (``{% set %}``, ``~``, filters); never a secret.  Guides print the
            long ones once, in their values box.
    """

    step: Step
    number: int
    body: str
    hosts: tuple[Host, ...]
    skip_reason: str | None = None
    condition: str | None = None
    run_body: str = ""
    env: dict[str, str] = field(default_factory=dict)
    outputs: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        """The step's id."""
        return self.step.id


@dataclass(frozen=True, slots=True)
class TailoredRunbook:
    """A runbook filled in for one environment (or generic).

    Attributes:
        runbook: The parsed runbook.
        environment: The environment, ``None`` for the generic runbook.
        values: Resolved values (``None`` when generic).
        segments: Prose and steps in document order.
        helpers: Check and backout steps by id.
    """

    runbook: Runbook
    environment: Environment | None
    values: Values | None
    segments: tuple[TailoredProse | TailoredStep, ...]
    helpers: dict[str, TailoredStep] = field(default_factory=dict)
    #: Flow steps and their index by id, built on first use (segments never change).
    _index: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def steps(self) -> tuple[TailoredStep, ...]:
        """Steps of the normal flow, in order."""
        flow = self._index.get("")
        if flow is None:
            flow = tuple(s for s in self.segments if isinstance(s, TailoredStep) and s.number)
            self._index[""] = flow
        return flow

    @property
    def generic(self) -> bool:
        """True when no environment was given."""
        return self.environment is None

    def step(self, step_id: str) -> TailoredStep:
        """Return the flow or helper step ``step_id`` (KeyError if none); a dictionary
        lookup, not a scan of the flow."""
        by_id = self._index.get("by-id")
        if by_id is None:
            by_id = {}
            for s in self.steps:
                by_id.setdefault(s.id, s)
            self._index["by-id"] = by_id
        found = by_id.get(step_id)
        return found if found is not None else self.helpers[step_id]


def context_for(
    runbook: Runbook, env: Environment | None, values: Values | None, *, secrets: bool = False
) -> dict[str, Any]:
    """Return the template context: parameters, facts, ``environment`` and ``roles``."""
    ctx: dict[str, Any] = {}
    if values is not None:
        ctx.update(values.facts)
        ctx.update(values.params)
        for name, param in runbook.parameters.items():
            if param.secret:
                ctx[name] = SecretValue(name, values.secrets.get(name) if secrets else None)
    ctx["environment"] = {"name": env.name, "description": env.description} if env else {}
    ctx["roles"] = {
        role: [{"name": h.name, "address": h.address, "transport": h.transport} for h in hosts]
        for role, hosts in (env.roles.items() if env else ())
    }
    return ctx


def tailor(
    runbook: Runbook, env: Environment | None, values: Values | None, *, secrets: bool = False
) -> TailoredRunbook:
    """Fill ``runbook`` in for ``env``.

    Args:
        runbook: The parsed runbook.
        env: The environment; ``None`` gives the generic runbook.
        values: Values from :func:`~runbook_engine.tailor.values.resolve_values`
            (``None`` when generic).
        secrets: Put real secret values into bodies (only for execution).

    Raises:
        TemplateProblem: every undefined name, template syntax error or failing
            condition, each with the runbook file and line; a role with no host
            in the environment.
    """
    problems: list[Problem] = []
    ctx = context_for(runbook, env, values, secrets=secrets)
    known = set(ctx) | set(runbook.parameters) | set(_JINJA.globals)
    segments: list[TailoredProse | TailoredStep] = []
    helpers: dict[str, TailoredStep] = {}
    number = 0
    for seg in runbook.segments:
        if isinstance(seg, Prose):
            text = _render_prose(seg.text, seg.span, ctx, known, env, problems)
            segments.append(TailoredProse(text if text is not None else seg.text, seg.span))
            continue
        tailored = _tailor_step(seg, ctx, known, env, runbook, problems)
        if seg.role == "step":
            number += 1
            tailored = _with_number(tailored, number)
            segments.append(tailored)
        else:
            helpers[seg.id] = tailored
            segments.append(tailored)
    if problems:
        raise TemplateProblem(problems[0].format(), problems)
    return TailoredRunbook(runbook, env, values, tuple(segments), helpers)


def _with_number(step: TailoredStep, number: int) -> TailoredStep:
    return replace(step, number=number)


def _tailor_step(
    step: Step,
    ctx: dict[str, Any],
    known: set[str],
    env: Environment | None,
    runbook: Runbook,
    problems: list[Problem],
) -> TailoredStep:
    path, line = step.span.path, step.span.start_line
    body = run_body = step.body
    values: dict[str, str] = {}
    outputs: list[str] = []
    if step.template and (KINDS[step.kind].template if step.kind in KINDS else True):
        rendered = _render_body(step, {**ctx, _OUTPUTS: outputs}, known, env, runbook, problems)
        if rendered is not None:
            body, run_body, values = rendered
    skip = None
    if step.when:
        if env is None:
            check_names("{{ " + step.when + " }}", path, line, known, problems)  # generic
        else:
            value = _render(
                "{{ (" + step.when + ") | string }}",
                path,
                line,
                ctx,
                known,
                env,
                problems,
                expression=True,
            )
            if value is not None and value.strip() in ("False", "", "None", "0", "[]"):
                skip = f"condition {step.when} is false in environment {env.name}"
    if step.kind == "probe" and env is not None and not skip:
        from runbook_engine.errors import InputError
        from runbook_engine.probes import parse_probe

        try:
            parse_probe(body, path, step.body_line)
        except InputError as exc:
            problems.extend(exc.problems)
    if step.kind in ("registry", "service") and env is not None and not skip:
        from runbook_engine.declarative.parse import parse_declarative
        from runbook_engine.errors import InputError

        try:
            parse_declarative(step.kind, body, path, step.body_line)
        except InputError as exc:
            problems.extend(exc.problems)
    hosts: tuple[Host, ...] = ()
    if env is not None:
        if step.target is None or step.kind == "probe":
            hosts = (LOCAL_HOST,)
        elif env.roles.get(step.target):
            hosts = env.roles[step.target]
        elif skip:  # not applicable here: the role need not exist in this environment
            hosts = (Host(name=f"({step.target})", address="-", transport="manual"),)
        else:
            problems.append(
                Problem(
                    f"step {step.id!r} targets role {step.target!r}, which has no host in "
                    "environment "
                    f"{env.name!r} ({env.path}); add it under 'roles'",
                    path,
                    line,
                    code="RB230",
                )
            )
    return TailoredStep(step, 0, body, hosts, skip, step.when, run_body, values, tuple(outputs))


def _render_body(
    step: Step,
    ctx: dict[str, Any],
    known: set[str],
    env: Environment | None,
    runbook: Runbook,
    problems: list[Problem],
) -> tuple[str, str, dict[str, str]] | None:
    """Render a step body: (shown body, body as run, variables of the run body)."""
    lang = language_of(step.kind)
    strict = runbook.templated
    if step.is_manual:  # instructions are Markdown: values in them are text
        text = _render_prose(
            step.body,
            replace(step.span, start_line=step.body_line),
            ctx,
            known,
            env,
            problems,
            strict=strict,
        )
        return None if text is None else (text, text, {})
    kept = protect(step.body, known, strict=strict)
    if lang is None or env is None or "{" not in kept.text:
        text = _render(kept.text, step.span.path, step.body_line, ctx, known, env, problems)
        text = None if text is None else kept.restore(text)
        return None if text is None else (text, text, {})
    slots = Slots()
    text = _render(
        kept.text,
        step.span.path,
        step.body_line,
        {**ctx, _SLOTS: slots, _OUTPUTS: None},
        known,
        env,
        problems,
        slots=True,
    )
    if text is None:
        return None
    text = kept.restore(text)
    ctx[_OUTPUTS].extend(value_text(s.value) for s in slots.items if isinstance(s.value, str))
    try:
        if lang == "yaml":
            bound = bind_yaml(text, slots)
            return bound, bound, {}
        types = {name: p.type for name, p in runbook.parameters.items()}
        run = bind_body(lang, text, slots, types=types)
        return display_body(lang, text, slots), run.body, run.env
    except BindingError as exc:
        problems.append(
            Problem(
                f"value cannot be passed here: {exc}",
                step.span.path,
                step.body_line + exc.line - 1,
                code="RB133",
            )
        )
    return None


def _render_prose(
    source: str,
    span: SourceSpan,
    ctx: dict[str, Any],
    known: set[str],
    env: Environment | None,
    problems: list[Problem],
    *,
    strict: bool = False,
) -> str | None:
    """Render Markdown (prose, a manual step's instructions) whose values are inserted as
    text, escaped for where they stand (:func:`.prose.insert_as_text`).  Braces that are
    not ours stay as written (:func:`.literal.protect`)."""
    path, line = span.path, span.start_line
    kept = protect(source, known, strict=strict, blocks=True)
    if env is None or "{" not in kept.text:
        text = _render(kept.text, path, line, ctx, known, env, problems)
        return None if text is None else kept.restore(text)
    slots = Slots()
    text = _render(kept.text, path, line, {**ctx, _SLOTS: slots}, known, env, problems, slots=True)
    return None if text is None else insert_as_text(kept.restore(text), slots)


def _render(
    source: str,
    path: Path,
    line: int,
    ctx: dict[str, Any],
    known: set[str],
    env: Environment | None,
    problems: list[Problem],
    *,
    expression: bool = False,
    slots: bool = False,
) -> str | None:
    """Render one template; with ``slots`` every expression output becomes a placeholder
    from the context's ``_rb_slots``."""
    if "{" not in source:
        return source
    ast = check_names(source, path, line, known, problems)
    if ast is None:
        return None
    if env is None and not expression:
        return generic_text(source, _JINJA)
    try:
        if slots:
            return _JINJA.from_string(slot_outputs(copy.deepcopy(ast))).render(ctx)
        return _compiled(source).render(ctx)
    except SecurityError as exc:
        problems.append(
            Problem(
                f"template refused by the sandbox: {str(exc).rstrip('.')}; runbook templates "
                "may read only values, their items and public attributes",
                path,
                line + template_line(exc) - 1,
                code=SANDBOX_CODE,
            )
        )
    except jinja2.TemplateError as exc:
        problems.append(
            Problem(
                f"template error: {exc.message or exc}",
                path,
                line + template_line(exc) - 1,
                code="RB131",
            )
        )
    except Exception as exc:
        problems.append(
            Problem(
                f"template expression failed: {type(exc).__name__}: {exc}",
                path,
                line + template_line(exc) - 1,
                code="RB131",
            )
        )
    return None


@functools.lru_cache(maxsize=1024)
def _compiled(source: str) -> jinja2.Template:
    """``source`` compiled once per process (from a copy: compiling changes the tree)."""
    return _JINJA.from_string(copy.deepcopy(parse_template(source)))
