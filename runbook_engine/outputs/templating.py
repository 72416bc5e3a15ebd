"""Find the ``templates/`` folder and build the one jinja2 environment for it.

Search path: the ``RUNBOOK_TEMPLATES`` environment variable if set, else the
repository's ``templates/`` folder, else the copy installed inside the package.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import jinja2

from runbook_engine.errors import InputError
from runbook_engine.outputs.mdtext import prefix_lines
from runbook_engine.resources import templates_dir


def template_dir() -> Path:
    """Return the folder templates are loaded from (see :mod:`runbook_engine.resources`).

    Raises:
        InputError: no templates folder (the message says how to point
            ``RUNBOOK_TEMPLATES`` at one).
    """
    return templates_dir()


def environment() -> jinja2.Environment:
    """Return the jinja2 environment for the current template folder (built once per folder).

    HTML templates (``*.html.j2``) autoescape; Markdown templates do not.  Filter
    ``prefix_lines(first, rest)`` puts a container prefix on every line of a block.
    """
    return _environment(str(template_dir()))


@lru_cache(maxsize=4)
def _environment(folder: str) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(folder),
        undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html.j2",), default_for_string=False
        ),
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["prefix_lines"] = prefix_lines
    return env


def get_template(name: str) -> jinja2.Template:
    """Load template ``name`` from :func:`template_dir`.

    Raises:
        InputError: the template is missing or has a syntax error.
    """
    env = environment()
    try:
        return env.get_template(name)
    except jinja2.TemplateNotFound:
        raise InputError.single(
            f"template {name!r} not found in {template_dir()}", code="RB251"
        ) from None
    except jinja2.TemplateSyntaxError as exc:
        raise InputError.single(
            f"template syntax error: {exc.message}",
            Path(exc.filename or name),
            exc.lineno,
            code="RB252",
        ) from None


def read_asset(name: str) -> str:
    """Return the text of asset ``name`` (e.g. ``guide.css``) from the template folder.

    Raises:
        InputError: the file is missing.
    """
    path = template_dir() / name
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError.single(f"cannot read {path}: {exc.strerror}", path, code="RB251") from None
