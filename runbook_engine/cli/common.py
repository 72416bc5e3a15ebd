"""Shared pieces of the ``runbook`` commands, and the one place that maps errors to exit statuses.

Holds the path types, the options several commands share (``--env``, ``--set``,
``--state-dir``, ``--json``), helpers to read them, to render a guide and to write
output, and :func:`invoke`, which runs the command group for ``runbook_engine.cli.main``.

Exit statuses (DESIGN.md §6): 0 done, 1 a step or run failed, 2 bad input,
3 paused at a gate, 74 the disk refused a write (full, I/O error), 75 resume refused
because an interrupted step's process still runs, 130 interrupted (Ctrl-C), 143
terminated (SIGTERM), 129 hung up (SIGHUP).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from runbook_engine.errors import InputError, RunbookError

# A file argument that may not exist yet (output, answers), and one that must exist.
FILE_PATH = click.Path(path_type=Path, dir_okay=False)
EXISTING_FILE = click.Path(path_type=Path, exists=True, dir_okay=False)


def state_dir_or_default(value: Path | None) -> Path:
    """``--state-dir`` when given, else the default state directory."""
    from runbook_engine.run.store import default_state_dir

    return value or default_state_dir()


def parse_sets(values: tuple[str, ...]) -> dict[str, str]:
    """Parameter values from ``--set NAME=VALUE`` options; a malformed one is bad input."""
    out = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise InputError(f"--set {item!r}: write --set name=value")
        out[name.strip()] = value
    return out


env_option = click.option("--env", "env_path", type=EXISTING_FILE, help="Environment file (YAML).")
set_option = click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="NAME=VALUE",
    help="Give a parameter value (repeatable); wins over the environment.",
)
#: ``--state-dir`` alone: for commands that never use a team's store (keys, notebooks).
state_dir_option = click.option(
    "--state-dir",
    type=click.Path(path_type=Path, file_okay=False),
    envvar="RUNBOOK_STATE_DIR",
    help="State directory [env RUNBOOK_STATE_DIR; default ~/.local/state/runbook-engine].",
)
#: Where the ``--store`` value is kept for :func:`open_store` (``click.Context.meta``).
_STORE_KEY = "runbook_engine.store"


def _keep_store(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value:
        ctx.meta[_STORE_KEY] = value


_store_option = click.option(
    "--store",
    metavar="URL",
    envvar="RUNBOOK_STORE",
    expose_value=False,
    callback=_keep_store,
    help="A team's store: postgresql://user@host/dbname [env RUNBOOK_STORE; default: the "
    "state directory].",
)


def state_option(func: Any) -> Any:
    """``--state-dir DIR`` and ``--store URL`` (the store; :func:`open_store` reads it)."""
    return state_dir_option(_store_option(func))


def open_store(state_dir: Path | None, *, create: bool = True, run_id: str | None = None) -> Any:
    """The store the command names: ``--store``/``RUNBOOK_STORE`` (a PostgreSQL URL), else
    the state directory (``--state-dir`` or the default).  It is closed when the command
    ends (a PostgreSQL store's connection pool too, also when the CLI runs in-process).

    Raises:
        InputError: a store URL that is not ``postgresql://…``.
        StateError: the store cannot be opened.
    """
    from runbook_engine.run.store_api import open_store as open_any

    state = state_dir_or_default(state_dir)
    store = open_any(state, current_store_url(), create=create, run_id=run_id)
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.call_on_close(store.close)
    return store


def current_store_url() -> str | None:
    """``--store`` of the running command, else ``RUNBOOK_STORE``; ``None``: the state directory."""
    from runbook_engine.run.store_api import store_url

    ctx = click.get_current_context(silent=True)
    return store_url(ctx.meta.get(_STORE_KEY) if ctx is not None else None)


json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


def warn_old_name(old: str, new: str) -> None:
    """Say on standard error that ``old`` is an old spelling of ``new`` (it still works)."""
    click.echo(f"runbook: {old} is an old name; write {new} (the old name still works)", err=True)


class AliasedOption(click.Option):
    """An option that also answers to old names, hidden from ``--help``; using one
    warns on standard error (:func:`warn_old_name`) and works as the new name.

    Give the old names as ``old_names=("--reason",)``.  Both names at once: the values
    of a ``multiple`` option are joined, otherwise it is bad input (exit 2).
    """

    def __init__(self, *args: Any, old_names: tuple[str, ...] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.old_names = old_names

    @property
    def _old_dest(self) -> str:
        return f"{self.name}.old"  # never a parameter name

    def add_to_parser(self, parser: Any, ctx: click.Context) -> None:
        super().add_to_parser(parser, ctx)
        if not self.old_names:
            return
        action = "append" if self.multiple else "store"  # options that take a value
        parser.add_option(
            obj=self, opts=list(self.old_names), dest=self._old_dest, action=action, nargs=1
        )

    def consume_value(self, ctx: click.Context, opts: Any) -> Any:
        old = opts.get(self._old_dest) if self.old_names else None
        if old is None:
            return super().consume_value(ctx, opts)
        warn_old_name("/".join(self.old_names), "/".join(self.opts))
        new = opts.get(self.name)
        if new is not None and not self.multiple:
            raise click.UsageError(f"give {self.opts[-1]} once (an old name of it was given too)")
        merged = dict(opts)
        merged[self.name] = [*(new or []), *old] if self.multiple else old
        return super().consume_value(ctx, merged)


def note_option(help_text: str, old_names: tuple[str, ...] = ()) -> Any:
    """``--note TEXT``: the one free-text option (notes, reasons, comments); ``old_names``
    (``--reason``, ``--comment``) still work, hidden, with a warning."""
    return click.option("--note", cls=AliasedOption, old_names=old_names, help=help_text)


def output_option(help_text: str, *, folder: bool = False, **kwargs: Any) -> Any:
    """``-o/--output PATH``: what the command writes (a file; a folder when ``folder``)."""
    kind = click.Path(path_type=Path, file_okay=False) if folder else FILE_PATH
    return click.option("-o", "--output", type=kind, cls=AliasedOption, help=help_text, **kwargs)


def apply_options(options: list[Any]) -> Any:
    """Decorator applying a list of click options in order, as if written one per line."""

    def decorate(func: Any) -> Any:
        for option in reversed(options):
            func = option(func)
        return func

    return decorate


def render_guide(tailored: Any, fmt: str, change_id: str | None) -> bytes:
    """The tailored guide in format ``fmt``; an unknown format is bad input."""
    from runbook_engine.outputs import RENDERERS

    renderer = RENDERERS.get(fmt)
    if renderer is None:
        raise InputError(f"--to {fmt}: unknown format; formats: {', '.join(sorted(RENDERERS))}")
    return renderer.render(tailored, change_id=change_id)


def guide_format(path: Path) -> str:
    """The guide format a file name asks for, by its suffix (``.md``, ``.html``/``.htm``,
    ``.pdf``, ``.ipynb``).

    Raises:
        InputError: a suffix no renderer writes (nothing is written).
    """
    from runbook_engine.outputs import RENDERERS

    suffix = ".html" if path.suffix.lower() == ".htm" else path.suffix.lower()
    for name, renderer in RENDERERS.items():
        if renderer.suffix == suffix:
            return name
    known = ", ".join(sorted(r.suffix for r in RENDERERS.values()))
    raise InputError(f"--guide {path}: name the file with one of {known} to choose its format")


def write_output(data: bytes, output: Path | None) -> None:
    """Write ``data`` to ``output`` atomically, or to standard output without one.

    Raises:
        InputError: binary ``data`` (a PDF) without ``output`` while standard output is a
            terminal (nothing is written).
    """
    if output is None and data.startswith(b"%PDF") and sys.stdout.isatty():
        raise InputError("a PDF is binary and standard output is a terminal: give -o FILE.pdf")
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    from runbook_engine.evidence.safeio import write_atomic

    try:  # an exclusive temporary file: a planted symbolic link is never followed
        write_atomic(output, data)
    except OSError as exc:
        raise InputError(f"cannot write {output}: {exc.strerror or exc}") from None


def invoke(group: click.Group, argv: list[str] | None) -> NoReturn:
    """Run ``group``; map errors to exit statuses and print them without a traceback."""
    try:
        group.main(args=argv, prog_name="runbook", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2 if exc.exit_code in (1, 2) else exc.exit_code)
    except RunbookError as exc:
        click.echo(exc.format(), err=True)
        sys.exit(exc.exit_status)
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM/SIGHUP during a run
        click.echo("Interrupted.", err=True)
        sys.exit(128 + getattr(exc, "signum", 2))
    except BrokenPipeError:
        sys.exit(1)
    except OSError as exc:  # a write the layers did not name (a full disk)
        from runbook_engine.errors import storage_error

        error = storage_error(getattr(exc, "filename", None) or "a file", exc)
        click.echo(error.format(), err=True)
        sys.exit(error.exit_status)
    sys.exit(0)
