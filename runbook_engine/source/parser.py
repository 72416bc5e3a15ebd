"""Parse annotated Markdown into a :class:`~runbook_engine.source.model.Runbook`.

One CommonMark parser (markdown-it-py) walks the document; every fenced block
whose info string holds an ``{#id}`` becomes a :class:`Step`, everything else
stays prose.  Positions come from the tokens' ``map`` (0-based, end-exclusive
line ranges of the Markdown body), turned into 1-based file lines.  All
problems of a file are collected before :class:`RunbookSyntaxError` is raised.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from markdown_it import MarkdownIt
from markdown_it.token import Token

from runbook_engine.errors import Problem, RunbookSyntaxError
from runbook_engine.source.attrs import AttrSyntaxError, parse_info
from runbook_engine.source.console import CONSOLE_KINDS, TranscriptError, parse_transcript
from runbook_engine.source.frontmatter import split_front_matter
from runbook_engine.source.kinds import DATA_LANGS, KINDS
from runbook_engine.source.library import LIBRARY_ENV, library_root, outside_library
from runbook_engine.source.metadata import FRAGMENT_KEYS, read_meta
from runbook_engine.source.model import Parameter, Prose, Runbook, SourceSpan, Step
from runbook_engine.source.stepattrs import step_fields
from runbook_engine.source.yamlfile import not_utf8

_MD = MarkdownIt("commonmark")
_INCLUDE = re.compile(r"^<!--\s*include:(?P<path>.*?)-->\s*$")
_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
MAX_INCLUDE_DEPTH = 8
_CHECK_KINDS = frozenset(
    {"cmd", "powershell", "sh", "bash", "python", "probe", "console", "shell-session"}
)


def read_source(path: Path) -> tuple[str, str]:
    """Read a runbook file.

    Returns:
        ``(text, sha256_hex)``: the text with CRLF and CR normalised to LF, and
        the SHA-256 of the file's bytes.

    Raises:
        RunbookSyntaxError: the file cannot be read or is not UTF-8.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RunbookSyntaxError.single(f"cannot read runbook: {exc.strerror}", path, 0) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise RunbookSyntaxError.single(not_utf8(data, exc.start), path, line) from None
    return text.replace("\r\n", "\n").replace("\r", "\n"), hashlib.sha256(data).hexdigest()


#: Runbooks parsed by this process: (path as given, resolved path, SHA-256 of the file,
#: library folder setting) -> (runbook, (include as written, file it named, SHA-256) of each
#: include).  One command (``runbook run``: the CLI, preflight, the run) reads the same
#: file several times.
_Fragment = tuple[Path, Path, str]
_PARSED: dict[tuple[Path, Path, str, str | None], tuple[Runbook, tuple[_Fragment, ...]]] = {}
_PARSED_MAX = 64


def parse_file(path: Path) -> Runbook:
    """Parse the runbook at ``path``; the same bytes (and included files) parse once.

    The file is read and hashed on every call: a parse is reused only when the file's
    SHA-256, and the file every include names (symbolic links followed again) and its
    SHA-256, are those of that parse (the runbook is immutable, holds its ``content_hash``).

    Raises:
        RunbookSyntaxError: with every problem found in the file and its includes
            (a failed parse is not kept).
    """
    text, digest = read_source(path)
    key = (path, path.resolve(), digest, os.environ.get(LIBRARY_ENV))
    found = _PARSED.get(key)
    if found is not None and all(
        link.resolve() == named and _digest_of(named) == sha for link, named, sha in found[1]
    ):
        return found[0]
    fragments: list[_Fragment] = []
    runbook = _parse(text, path, digest, fragments)
    if len(_PARSED) >= _PARSED_MAX:
        _PARSED.clear()
    _PARSED[key] = (runbook, tuple(fragments))
    return runbook


def _digest_of(path: Path) -> str | None:
    """SHA-256 of an included file's bytes, or ``None`` when it cannot be read."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def parse_text(text: str, path: Path) -> Runbook:
    """Parse runbook ``text`` as if it were the file ``path`` (includes resolve from there).

    Raises:
        RunbookSyntaxError: with every problem found.
    """
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    return _parse(text, path, digest)


@dataclass
class _Document:
    path: Path
    root: Path
    problems: list[Problem] = field(default_factory=list)
    segments: list[Prose | Step] = field(default_factory=list)
    parameters: dict[str, Parameter] = field(default_factory=dict)
    roles: dict[str, str] = field(default_factory=dict)
    hashes: list[str] = field(default_factory=list)
    fragments: list[tuple[Path, Path, str]] = field(default_factory=list)
    heading: str | None = None

    def problem(
        self, message: str, path: Path, line: int, code: str, source: str | None = None
    ) -> None:
        self.problems.append(Problem(message, path, line, code=code, source_line=source))


def _parse(
    text: str, path: Path, digest: str, fragments: list[_Fragment] | None = None
) -> Runbook:
    """Parse ``text``; ``fragments`` (when given) receives each included file and its hash."""
    doc = _Document(path, library_root(path))
    meta, body_line = split_front_matter(text, path)
    info = read_meta(meta or {}, text, body_line, path, doc.problems)
    doc.parameters.update(info.parameters)
    doc.roles.update(info.roles)
    _walk(doc, text, path, body_line, depth=0, stack=(path.resolve(),))
    steps = _resolve(doc)
    if doc.problems:
        raise RunbookSyntaxError(doc.problems[0].format(), doc.problems)
    if fragments is not None:
        fragments.extend(doc.fragments)
    if doc.hashes:
        digest = hashlib.sha256((digest + "".join(doc.hashes)).encode()).hexdigest()
    segments = tuple(steps.get(id(s), s) for s in doc.segments)
    return Runbook(
        path=path,
        id=info.id or path.stem,
        title=info.title or doc.heading or path.stem,
        version=info.version,
        summary=info.summary,
        tags=info.tags,
        roles=doc.roles,
        parameters=doc.parameters,
        references=info.references,
        meta=info.extra,
        segments=segments,
        content_hash=digest,
        body_start_line=body_line,
        foreign=info.foreign,
        foreign_lines=info.foreign_lines,
        templated=bool(meta) and ("parameters" in meta or "roles" in meta),
    )


def _walk(doc: _Document, text: str, path: Path, body_line: int, depth: int, stack: tuple) -> None:
    lines = text.split("\n")[body_line - 1 :]
    body = "\n".join(lines)
    offset = body_line  # token line i (0-based) is file line i + offset
    cursor = 0  # next body line not yet emitted as prose
    tokens = _MD.parse(body)
    for index, token in enumerate(tokens):
        if token.type == "heading_open" and doc.heading is None and depth == 0:
            doc.heading = _plain(tokens[index + 1])
        if token.type == "html_block" and token.level == 0 and token.map:
            match = _INCLUDE.match(token.content.strip())
            if match:
                _emit_prose(doc, lines, cursor, token.map[0], path, offset)
                target = match.group("path").strip()
                if not target:
                    doc.problem(
                        "include directive without a path: write <!-- include: _shared/file.md -->",
                        path,
                        token.map[0] + offset,
                        "RB121",
                        token.content.strip(),
                    )
                else:
                    _include(doc, path, target, token.map[0] + offset, depth, stack)
                cursor = token.map[1]
            continue
        if token.type != "fence" or not token.map:
            continue
        step = _make_step(doc, token, lines, path, offset)
        if step is None:
            continue
        _emit_prose(doc, lines, cursor, token.map[0], path, offset)
        doc.segments.append(step)
        cursor = token.map[1]
    _emit_prose(doc, lines, cursor, len(lines), path, offset)


def _plain(inline: Token) -> str:
    """A heading's text without its markup: ``Install **(PREMIUM)**`` -> ``Install (PREMIUM)``."""
    return "".join(
        c.content if c.type in ("text", "code_inline") else " " if c.type == "softbreak" else ""
        for c in inline.children or []
    ).strip()


def _emit_prose(
    doc: _Document, lines: list[str], start: int, end: int, path: Path, offset: int
) -> None:
    if end <= start:
        return
    chunk = lines[start:end]
    if end == len(lines) and chunk and chunk[-1] == "":
        chunk = chunk[:-1]
    if not chunk:
        return
    span = SourceSpan(path, start + offset, start + offset + len(chunk) - 1)
    doc.segments.append(Prose("\n".join(chunk) + "\n", span))


def _include(doc: _Document, path: Path, target: str, line: int, depth: int, stack: tuple) -> None:
    source = f"<!-- include: {target} -->"
    outside = outside_library(doc.root, path, target)
    if outside:
        doc.problem(
            f"include {target!r} {outside}; includes stay in the runbook library {doc.root} "
            f"(the runbook's folder, or {LIBRARY_ENV} when set and holding the runbook)",
            path,
            line,
            "RB123",
            source,
        )
        return
    fragment = (path.parent / target).resolve()
    if depth >= MAX_INCLUDE_DEPTH or fragment in stack:
        chain = " -> ".join(p.name for p in (*stack, fragment))
        doc.problem(f"include cycle or nesting too deep: {chain}", path, line, "RB120", source)
        return
    if not fragment.is_file():
        doc.problem(
            f"included file {target!r} not found (looked for {fragment})",
            path,
            line,
            "RB121",
            source,
        )
        return
    try:
        text, digest = read_source(fragment)
        meta, body_line = split_front_matter(text, fragment)
    except RunbookSyntaxError as exc:
        doc.problems.extend(exc.problems)
        return
    doc.hashes.append(digest)
    doc.fragments.append((path.parent / target, fragment, digest))
    info = read_meta(meta or {}, text, body_line, fragment, doc.problems, allowed=FRAGMENT_KEYS)
    for name, param in info.parameters.items():
        known = doc.parameters.get(name)
        if known is not None and replace(known, line=0) != replace(param, line=0):
            doc.problem(
                f"parameter {name!r} is declared differently here and in the runbook "
                f"(line {known.line}); declare it once",
                fragment,
                param.line,
                "RB122",
            )
        doc.parameters.setdefault(name, param)
    for role, description in info.roles.items():
        if role in doc.roles and doc.roles[role] != description:
            doc.problem(
                f"role {role!r} is described differently here and in the runbook "
                f"({doc.roles[role]!r}); declare it once",
                fragment,
                0,
                "RB122",
            )
        doc.roles.setdefault(role, description)
    _walk(doc, text, fragment, body_line, depth + 1, (*stack, fragment))


def _make_step(
    doc: _Document, token: Token, lines: list[str], path: Path, offset: int
) -> Step | None:
    assert token.map is not None
    first, end = token.map
    line = first + offset
    source = lines[first]
    try:
        info = parse_info(token.info)
    except AttrSyntaxError as exc:
        if "{" not in token.info:
            return None
        doc.problem(
            f"bad attribute list: {exc.message} (column {exc.col + 1} of the info string)",
            path,
            line,
            "RB110",
            source,
        )
        return None
    if info.id is None:
        if info.attrs:
            doc.problem(
                "attributes without an id: add {#step-id ...} to make this block a step, "
                "or remove the attributes",
                path,
                line,
                "RB111",
                source,
            )
        return None
    if not _closed(token):
        doc.problem(
            f"step {info.id!r}: the fence opened here is never closed; add a closing "
            f"{token.markup} line",
            path,
            line,
            "RB112",
            source,
        )
        return None
    step_id = info.id
    fields = step_fields(
        info, lambda m: doc.problem(f"step {step_id!r}: {m}", path, line, "RB116", source)
    )
    if info.lang is None:
        doc.problem(
            f"step {info.id!r} has no kind; write one before the attributes, e.g. "
            f"```sh {{#{info.id}}} (a pasted terminal session: ```console {{#{info.id}}}); "
            f"kinds: {', '.join(sorted(KINDS))}",
            path,
            line,
            "RB113",
            source,
        )
        return None
    if info.lang in DATA_LANGS:
        doc.problem(
            f"step {info.id!r}: a {info.lang!r} block is data, not something to run; a step "
            f"is one of: {', '.join(sorted(KINDS))} (to show the {info.lang} as an example, "
            "leave out the {#id}; to check it, use a probe or a command that reads it)",
            path,
            line,
            "RB114",
            source,
        )
        return None
    if info.lang not in KINDS:
        known = ", ".join(sorted(KINDS))
        doc.problem(
            f"step {info.id!r}: unknown step kind {info.lang!r}; known kinds: {known} "
            "(to show code without running it, leave out the {#id})",
            path,
            line,
            "RB114",
            source,
        )
        return None
    if not _ID.match(info.id):
        doc.problem(
            f"step id {info.id!r} must start with a letter and hold only letters, digits, "
            "'-' and '_'",
            path,
            line,
            "RB115",
            source,
        )
    body = token.content
    if body and not body.endswith("\n"):
        body += "\n"
    if info.lang in CONSOLE_KINDS:
        try:
            parse_transcript(body)
        except TranscriptError as exc:
            doc.problem(f"step {info.id!r}: {exc}", path, line + 1 + exc.line, "RB124", source)
    fence_col = len(source) - len(source.lstrip(" >\t0123456789.)-*+"))
    return Step(
        id=info.id,
        kind=info.lang,
        body=body,
        attrs=dict(info.attrs),
        classes=info.classes,
        span=SourceSpan(path, line, end - 1 + offset),
        body_line=line + 1,
        prefix=source[:fence_col],
        **fields,
    )


def _closed(token: Token) -> bool:
    """Whether a fence token ended at a closing fence (not at the end of its container).

    markdown-it counts the closing fence in ``map`` but not in ``content``; a fence
    left open holds every line of its range as content.
    """
    assert token.map is not None
    first, end = token.map
    return len(token.content.splitlines()) == end - first - 2


def _resolve(doc: _Document) -> dict[int, Step]:
    """Check ids, references and targets; return replacement steps keyed by ``id()``."""
    seen: dict[str, Step] = {}
    for step in (s for s in doc.segments if isinstance(s, Step)):
        if step.id in seen:
            other = seen[step.id]
            doc.problem(
                f"duplicate step id {step.id!r}: also used at {other.span.path.name}:"
                f"{other.span.start_line}; ids must be unique",
                step.span.path,
                step.span.start_line,
                "RB117",
            )
        else:
            seen[step.id] = step
    roles: dict[str, str] = {}
    for step in seen.values():
        for attr in ("check", "backout"):
            ref = getattr(step, attr)
            if ref is None:
                continue
            if ref not in seen:
                doc.problem(
                    f"step {step.id!r}: {attr}={ref!r} names no step in this runbook",
                    step.span.path,
                    step.span.start_line,
                    "RB118",
                )
            elif ref == step.id:
                doc.problem(
                    f"step {step.id!r}: a step cannot be its own {attr}",
                    step.span.path,
                    step.span.start_line,
                    "RB118",
                )
            else:
                roles.setdefault(ref, attr)
    for step in seen.values():
        if step.check in seen and seen[step.check].kind not in _CHECK_KINDS:
            doc.problem(
                f"step {step.id!r}: check={step.check!r} is a {seen[step.check].kind!r} "
                "step; a check must be a command or a probe that can run unattended",
                step.span.path,
                step.span.start_line,
                "RB118",
            )
        if roles.get(step.id) == "check" and (step.check or step.backout):
            doc.problem(
                f"step {step.id!r} is a check (read-only) and cannot have check= or "
                "backout= itself",
                step.span.path,
                step.span.start_line,
                "RB118",
            )
        if step.target is not None and step.target not in doc.roles:
            declared = ", ".join(sorted(doc.roles)) or "none"
            doc.problem(
                f"step {step.id!r}: target={step.target!r} is not a role of this runbook "
                f"(declared roles: {declared}); add it under 'roles' in the front matter",
                step.span.path,
                step.span.start_line,
                "RB119",
            )
    return {id(s): replace(s, role=roles[s.id]) for s in seen.values() if s.id in roles}


def included_files(path: Path) -> list[Path]:
    """The files the runbook at ``path`` includes, directly or not (resolved, each once,
    in the order they are included).

    Raises:
        RunbookSyntaxError: as :func:`parse_file`.
    """
    text, digest = read_source(path)
    fragments: list[_Fragment] = []
    _parse(text, path, digest, fragments)
    return list(dict.fromkeys(named for _, named, _ in fragments))
