"""Build the Jupyter notebook of a tailored runbook (``runbook render --to ipynb``).

The notebook is nbformat v4 (minor 5, with cell ids) and papermill-ready
(DESIGN.md §7): ``kernelspec`` and ``language_info`` metadata; one code cell
tagged ``parameters`` that holds only ``name = literal`` lines (papermill
injects its own cell after it); the next cell derives everything else by
calling :func:`runbook_engine.notebook.api.attach`; then the runbook in
document order: each stretch of prose is a Markdown cell, each step a Markdown
cell that shows it (title, host, the exact command or instructions) followed
by a code cell ``rb.step("id")``.

Output is deterministic: no timestamps, cell ids derived from step ids, JSON
with sorted keys (``nbformat.writes``), so two renders of the same input are
byte-identical.  Sources: nbformat format description ("The notebook file
format", cell ids from nbformat 4.5, JEP 62); papermill "Parameterize".
"""

from __future__ import annotations

import ast
import hashlib
import keyword
import os
import re
from pathlib import Path
from typing import Any

from runbook_engine import __version__
from runbook_engine.errors import InputError
from runbook_engine.outputs.mdtext import continuation
from runbook_engine.source.library import library_root
from runbook_engine.source.model import Environment, Host
from runbook_engine.tailor.tailoring import TailoredProse, TailoredRunbook, TailoredStep

#: Names the parameters cell sets besides the runbook's own parameters, in order.
ENGINE_PARAMETERS: tuple[str, ...] = (
    "run_id",
    "state_dir",
    "env_file",
    "runbook_file",
    "change_id",
    "operator",
    "answers_file",
    "confirmations",
)
#: Names the derive cell binds; a runbook parameter may not use them either.
_BOUND = frozenset({"rb", "runbook_engine"})
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
LANGUAGE_INFO = {
    "codemirror_mode": {"name": "ipython", "version": 3},
    "file_extension": ".py",
    "mimetype": "text/x-python",
    "name": "python",
    "nbconvert_exporter": "python",
    "pygments_lexer": "ipython3",
}
_LEXER = {
    "cmd": "bat",
    "sh": "sh",
    "bash": "bash",
    "python": "python",
    "powershell": "powershell",
    "probe": "yaml",
}
#: Path of the placeholder environment of a runbook run without one (``loading._NO_ENV``).
_NO_ENV_PATH = "<no environment>"
_CELL_ID_BAD = re.compile(r"[^A-Za-z0-9_-]")


def render_ipynb(tailored: TailoredRunbook, *, change_id: str | None = None) -> bytes:
    """Render ``tailored`` as the bytes of an ``.ipynb`` file (the ``ipynb`` renderer).

    Raises:
        InputError: a runbook parameter's name clashes with a notebook name, or
            a value has no Python literal.
    """
    return notebook_bytes(build_notebook(tailored, change_id=change_id))


def notebook_bytes(nb: Any) -> bytes:
    """Serialise a notebook: nbformat's JSON (sorted keys, indent 1) plus a final newline."""
    import nbformat

    text = nbformat.writes(nb, version=4)
    return (text if text.endswith("\n") else text + "\n").encode("utf-8")


def build_notebook(tailored: TailoredRunbook, *, change_id: str | None = None) -> Any:
    """Return the notebook (an ``nbformat.NotebookNode``) of ``tailored``, validated.

    Args:
        tailored: The runbook filled in for one environment (or generic).
        change_id: Default of the ``change_id`` parameter.

    Raises:
        InputError: as :func:`render_ipynb`.
    """
    import nbformat
    from nbformat import v4

    values = parameter_values(tailored)
    cells = [
        v4.new_markdown_cell(_title(tailored, change_id), id="title"),
        v4.new_markdown_cell(_parameters_doc(tailored), id="parameters-doc"),
        v4.new_code_cell(
            _parameters_source(tailored, values, change_id),
            id="parameters",
            metadata={"tags": ["parameters"]},
        ),
        v4.new_code_cell(
            _attach_source(values), id="attach", metadata={"tags": ["runbook-attach"]}
        ),
    ]
    cells.extend(_body_cells(tailored))
    cells.append(v4.new_markdown_cell(_FINISH_DOC, id="finish-doc"))
    cells.append(
        v4.new_code_cell("rb.finish()", id="finish", metadata={"tags": ["runbook-finish"]})
    )
    nb = v4.new_notebook(
        cells=cells,
        metadata={
            "kernelspec": dict(KERNELSPEC),
            "language_info": dict(LANGUAGE_INFO),
            "runbook_engine": _metadata(tailored, change_id),
        },
    )
    nbformat.validate(nb)
    return nb


def parameter_values(tailored: TailoredRunbook) -> dict[str, Any]:
    """Return the runbook's non-secret parameters and their values, in declaration order.

    Values come from the tailoring (environment, ``--set``, defaults); without
    an environment, the default or ``None``.

    Raises:
        InputError: a name clashes with a notebook name or is a Python keyword,
            or a value has no Python literal that reads back equal.
    """
    runbook = tailored.runbook
    known = tailored.values.params if tailored.values is not None else {}
    out: dict[str, Any] = {}
    for name, param in runbook.parameters.items():
        if param.secret:
            continue
        if name in ENGINE_PARAMETERS or name in _BOUND or keyword.iskeyword(name):
            raise InputError.single(
                f"parameter {name!r} cannot be a notebook parameter: the name is taken by the "
                f"notebook ({', '.join(ENGINE_PARAMETERS + tuple(sorted(_BOUND)))}) or by Python; "
                "rename it",
                runbook.path,
                param.line,
                code="RB260",
            )
        value = known.get(name, param.default) if tailored.values is not None else param.default
        literal = repr(value)
        try:
            same = ast.literal_eval(literal) == value
        except (ValueError, SyntaxError):
            same = False
        if not same:
            raise InputError.single(
                f"parameter {name!r}: value {literal} has no Python literal",
                runbook.path,
                param.line,
                code="RB261",
            )
        out[name] = value
    return out


def cell_id(step_id: str, suffix: str = "") -> str:
    """Return the notebook cell id of a step (``step-<id>``, plus ``suffix``).

    Cell ids allow ``[A-Za-z0-9_-]`` and at most 64 characters (nbformat 4.5);
    an id with other characters, or a long one, gets a short SHA-256 tag so
    different step ids never share a cell id.
    """
    clean = _CELL_ID_BAD.sub("-", step_id)
    if clean != step_id or len(clean) > 48:
        clean = f"{clean[:40]}-{hashlib.sha256(step_id.encode('utf-8')).hexdigest()[:8]}"
    return f"step-{clean}{suffix}"


# -- cells -----------------------------------------------------------------------
def environment_of(tailored: TailoredRunbook) -> Environment | None:
    """The environment file's environment, ``None`` for none (also for the runner's placeholder)."""
    env = tailored.environment
    if env is None or str(env.path) == _NO_ENV_PATH:
        return None
    return env


def _title(tailored: TailoredRunbook, change_id: str | None) -> str:
    rb = tailored.runbook
    env = environment_of(tailored)
    rows = [
        (
            "Runbook",
            f"`{rb.id}`"
            + (f" version {rb.version}" if rb.version else "")
            + f", SHA-256 `{rb.content_hash[:16]}…`",
        ),
        (
            "Environment",
            f"{env.name}: {env.description}".strip().rstrip(":")
            if env
            else "none (generic; give `env_file` to run against an environment)",
        ),
    ]
    if change_id:
        rows.append(("Change", change_id))
    lines = [f"# {rb.title}", ""]
    if rb.summary:
        lines += [rb.summary.strip(), ""]
    lines += ["| | |", "|---|---|"]
    lines += [f"| {k} | {_cell(v)} |" for k, v in rows]
    lines += ["", _HOW_TO]
    if rb.references:
        lines += ["", "**References**", ""] + [f"- {r}" for r in rb.references]
    return "\n".join(lines)


_HOW_TO = (
    "Run the cells in order. Each step cell calls runbook-engine's runner, which executes the "
    "step on its host through the same transports and checkpoint store as `runbook run`: "
    "`runbook status RUN_ID` shows the same state, a step that already finished is never run "
    "again, and a run started here can be finished with `runbook resume RUN_ID` (or the other "
    "way round, with `run_id` set below). A manual step is a gate: its cell stops until someone "
    "confirms with `runbook confirm RUN_ID STEP --as NAME` (or `confirmations` below); then run "
    "the cell again or resume from the command line."
)
_FINISH_DOC = (
    "## Finish\n\nCompletes the run (any step not yet run runs now) and shows every step's state. "
    "The run's journal is the evidence: check it with `runbook evidence verify RUN_FOLDER`."
)


def _parameters_doc(tailored: TailoredRunbook) -> str:
    lines = [
        "## Parameters",
        "",
        "The next cell holds the notebook's parameters (papermill: pass them as a dict). "
        "`run_id = None` starts a new run; an existing run id continues that run. "
        '`confirmations` maps a step id to `"confirm"`, `"confirm:note"` or '
        '`"skip:reason"`; the journal records them as given by notebook parameter. '
        "The runbook's own parameters override the environment's values, as `--set` does.",
    ]
    params = [p for p in tailored.runbook.parameters.values() if not p.secret]
    if params:
        lines += ["", "| Parameter | Type | Description |", "|---|---|---|"]
        lines += [f"| `{p.name}` | {p.type} | {_cell(p.description)} |" for p in params]
    secrets = [p.name for p in tailored.runbook.parameters.values() if p.secret]
    if secrets:
        names = ", ".join(f"`{s}`" for s in secrets)
        lines += [
            "",
            f"Secrets ({names}) are not parameters: they come from where the "
            "environment file names (environment variable, keyring).",
        ]
    return "\n".join(lines)


def _parameters_source(
    tailored: TailoredRunbook, values: dict[str, Any], change_id: str | None
) -> str:
    env = environment_of(tailored)
    engine: dict[str, Any] = {
        "run_id": None,
        "state_dir": None,
        "env_file": library_path(tailored, env.path) if env is not None else None,
        "runbook_file": library_path(tailored, tailored.runbook.path),
        "change_id": change_id,
        "operator": None,
        "answers_file": None,
        "confirmations": {},
    }
    lines = [f"{name} = {engine[name]!r}" for name in ENGINE_PARAMETERS]
    lines += [f"{name} = {value!r}" for name, value in values.items()]
    return "\n".join(lines)


def _attach_source(values: dict[str, Any]) -> str:
    params = "".join(f"        {name!r}: {name},\n" for name in values)
    return (
        "import runbook_engine.notebook.api\n\n"
        "rb = runbook_engine.notebook.api.attach(\n"
        "    run_id=run_id, state_dir=state_dir, env_file=env_file, runbook_file=runbook_file,\n"
        "    change_id=change_id, operator=operator, answers_file=answers_file,\n"
        "    confirmations=confirmations,\n"
        "    parameters={\n" + params + "    },\n"
        ")"
    )


def outdent(text: str, width: int) -> str:
    """Remove a list item's content indent (``width`` spaces) from the lines that continue
    the item after a step, up to the first line standing outside it: in a cell of its own
    such a paragraph is a paragraph, not indented code."""
    if not width:
        return text
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if line.strip() and not line.startswith(" " * width):
            break
        lines[i] = line[width:] if line.strip() else ""
    return "\n".join(lines)


def _body_cells(tailored: TailoredRunbook) -> list[Any]:
    from nbformat import v4

    cells: list[Any] = []
    seen: dict[str, int] = {}
    previous = "start"
    indent = 0  # content indent of the list item the last step stood in
    for seg in tailored.segments:
        if isinstance(seg, TailoredProse):
            if not seg.text.strip():
                continue
            base = f"prose-{previous}" if previous == "start" else f"prose-after-{previous}"
            seen[base] = seen.get(base, 0) + 1
            name = base if seen[base] == 1 else f"{base}-{seen[base]}"
            text = outdent(seg.text, indent).strip("\n")
            cells.append(v4.new_markdown_cell(text, id=name[:64]))
            continue
        cont = continuation(seg.step.prefix)
        indent = len(cont) if cont.strip() == "" else 0
        previous = cell_id(seg.id)[len("step-") :]
        meta = {"runbook_engine": {"step": seg.id}}
        if not seg.number:
            cells.append(
                v4.new_markdown_cell(
                    _helper_doc(tailored, seg), id=cell_id(seg.id, "-doc"), metadata=meta
                )
            )
            continue
        cells.append(
            v4.new_markdown_cell(
                _step_doc(tailored, seg), id=cell_id(seg.id, "-doc"), metadata=meta
            )
        )
        cells.append(
            v4.new_code_cell(
                f"rb.step({seg.id!r})",
                id=cell_id(seg.id),
                metadata={**meta, "tags": ["runbook-step"]},
            )
        )
    return cells


def _step_doc(tailored: TailoredRunbook, ts: TailoredStep) -> str:
    step = ts.step
    lines = [f"### Step {ts.number}: {step.display_title()} `#{step.id}`", ""]
    lines.append(f"- **Runs on:** {_where(ts)}")
    facts = _facts(ts)
    if facts:
        lines.append(f"- **Options:** {facts}")
    if ts.condition:
        lines.append(f"- **Condition:** `when={ts.condition}`")
    if ts.skip_reason:
        lines.append(f"- **Skipped in this environment:** {ts.skip_reason}")
    lines.append("")
    manual_host = bool(ts.hosts) and all(h.transport == "manual" for h in ts.hosts)
    if step.is_manual:
        lines += ["**Do by hand** (a gate: the cell below stops until someone confirms):", ""]
        lines += [f"> {line}".rstrip() for line in ts.body.rstrip("\n").split("\n")]
    else:
        if manual_host:
            lines += [
                "**Run by hand** on the host above (a gate: the cell below stops until "
                "someone confirms that it was run):",
                "",
            ]
        lines.append(_fenced(ts.body, _LEXER.get(step.kind, step.kind)))
    return "\n".join(lines)


def _helper_doc(tailored: TailoredRunbook, ts: TailoredStep) -> str:
    role = ts.step.role
    users = [
        s.id
        for s in tailored.steps
        if (s.step.check if role == "check" else s.step.backout) == ts.id
    ]
    what = "Check" if role == "check" else "Backout"
    used = ", ".join(f"`#{u}`" for u in users) or "no step"
    when = (
        "runs before them; if it succeeds they are already done"
        if role == "check"
        else "offered when they fail"
    )
    lines = [
        f"#### {what}: {ts.step.display_title()} `#{ts.id}`",
        "",
        f"Helper step for {used} ({when}); it has no cell of its own.",
        "",
        _fenced(ts.body, _LEXER.get(ts.step.kind, ts.step.kind)),
    ]
    return "\n".join(lines)


def _where(ts: TailoredStep) -> str:
    if not ts.hosts:
        return f"role `{ts.step.target}`" if ts.step.target else "the operator's machine"
    return ", ".join(_host(h) for h in ts.hosts)


def _host(host: Host) -> str:
    if host.transport == "local":
        return "the operator's machine" if host.name == "operator" else f"{host.name} (local)"
    how = "by hand" if host.transport == "manual" else f"over {host.transport}"
    return f"{host.name} (`{host.address}`, {how})"


def _facts(ts: TailoredStep) -> str:
    step = ts.step
    parts = [f"kind `{step.kind}`"]
    if step.phase != "change":
        parts.append(step.phase)
    if step.timeout is not None:
        parts.append(f"timeout {step.timeout:g} s")
    if step.retries:
        parts.append(f"{step.retries} retries, {step.retry_delay:g} s apart")
    if step.on_failure != "stop":
        parts.append(f"on failure {step.on_failure}")
    if step.check:
        parts.append(f"check `#{step.check}`")
    if step.backout:
        parts.append(f"backout `#{step.backout}`")
    return ", ".join(parts)


def _fenced(body: str, lang: str) -> str:
    longest = max((len(m) for m in re.findall(r"`+", body)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{lang}\n{body.rstrip(chr(10))}\n{fence}"


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def library_path(tailored: TailoredRunbook, path: Path) -> str:
    """``path`` relative to the runbook's library (``RUNBOOK_LIBRARY``, else the runbook's
    folder), with ``/``: a rendered notebook never holds the build machine's absolute
    paths; ``runbook notebook run NOTEBOOK.ipynb`` finds the files again from them."""
    root = library_root(Path(tailored.runbook.path))
    return Path(os.path.relpath(Path(path).resolve(), root)).as_posix()


def _metadata(tailored: TailoredRunbook, change_id: str | None) -> dict[str, Any]:
    rb = tailored.runbook
    env = environment_of(tailored)
    return {
        "format": 1,
        "generator": f"runbook-engine {__version__}",
        "runbook": {
            "id": rb.id,
            "title": rb.title,
            "version": rb.version,
            "sha256": rb.content_hash,
            "path": library_path(tailored, rb.path),
        },
        "environment": None
        if env is None
        else {
            "name": env.name,
            "sha256": env.content_hash,
            "path": library_path(tailored, env.path),
        },
        "change_id": change_id,
        "steps": [ts.id for ts in tailored.steps],
    }
