"""Placeholders for values during a render, and the environment variables that carry them.

Shared by :mod:`binding` and the per-language reference writers (:mod:`sh_refs`,
:mod:`win_refs`).
"""

from __future__ import annotations

import re
import secrets as _random
from dataclasses import dataclass, field
from typing import Any

import jinja2

_VALUE_PREFIX = "RUNBOOK_VALUE_"


@dataclass
class Slot:
    """One expression output: its value, parameter name (if a plain name), line."""

    value: Any
    name: str | None
    inline: bool
    line: int


@dataclass
class Slots:
    """Collects expression values during one render and hands out placeholder tokens."""

    nonce: str = field(default_factory=lambda: _random.token_hex(4))
    items: list[Slot] = field(default_factory=list)

    @property
    def pattern(self) -> re.Pattern[str]:
        """The placeholder pattern; group 1 is the slot number."""
        return re.compile(f"RBV{self.nonce}X(\\d+)Z")

    def put(self, value: Any, name: str | None, inline: bool, line: int) -> str:
        """Record ``value`` and return its placeholder token.

        Raises:
            jinja2.exceptions.UndefinedError: ``value`` is undefined, or one the sandbox
                refused (``SecurityError``): raised here, while the template renders, so
                the error carries the template's line.
        """
        if isinstance(value, jinja2.Undefined):
            value._fail_with_undefined_error()
        self.items.append(Slot(value, name, inline, line))
        return f"RBV{self.nonce}X{len(self.items) - 1}Z"


class Inline(str):
    """A value marked with ``| inline``: written into the body as it is."""


class BindingError(ValueError):
    """A value cannot be referred to at a place; ``line`` is 1-based in the template."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


@dataclass
class Bound:
    """A body with references, and the variables they read."""

    body: str
    env: dict[str, str]


def value_text(value: Any) -> str:
    """The text of a value in the environment: ``true``/``false``, numbers as written,
    ``None`` empty, lists as their items' texts separated by one space."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return " ".join(value_text(v) for v in value)
    return str(value)


class Env:
    """Allocates variable names (``RUNBOOK_VALUE_<NAME>`` or numbered) for slot values."""

    def __init__(self, slots: Slots) -> None:
        self.slots = slots
        self.env: dict[str, str] = {}
        self.count = 0

    def var(self, index: int, text: str) -> str:
        slot = self.slots.items[index]
        if slot.name:
            name = _VALUE_PREFIX + re.sub(r"[^A-Za-z0-9_]", "_", slot.name).upper()
            if self.env.get(name, text) == text:
                self.env[name] = text
                return name
        for known, held in self.env.items():
            if held == text and known[len(_VALUE_PREFIX) :].isdigit():
                return known
        self.count += 1
        name = f"{_VALUE_PREFIX}{self.count}"
        self.env[name] = text
        return name


def refuse(message: str, slot: Slot) -> BindingError:
    """A :class:`BindingError` at ``slot``'s line."""
    return BindingError(message, slot.line)
