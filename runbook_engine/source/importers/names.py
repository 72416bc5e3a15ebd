"""Ids and names derived from text, deterministically.

A step id starts with a letter and holds letters, digits, ``-`` and ``_``
(FORMAT.md §3); a parameter name is a Python-style identifier (FORMAT.md §1).
"""

from __future__ import annotations

import re
import unicodedata

STOP_WORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "to",
        "on",
        "up",
        "and",
        "or",
        "of",
        "your",
        "you",
        "in",
        "it",
        "its",
        "this",
        "that",
        "is",
        "be",
        "will",
        "with",
        "for",
        "from",
        "into",
        "by",
        "at",
        "as",
        "then",
        "there",
        "these",
        "those",
        "if",
        "so",
        "all",
        "any",
        "some",
        "can",
        "should",
        "must",
        "may",
        "want",
        "need",
        "we",
        "i",
        "my",
        "me",
        "our",
        "go",
        "get",
        "just",
        "also",
        "please",
        "now",
        "next",
    ]
)
_WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> list[str]:
    """Lower-case ASCII words of ``text`` (accents folded)."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return _WORD.findall(folded.lower())


def slug(text: str, *, limit: int = 5, fallback: str = "step") -> str:
    """An id from the significant words of ``text`` (at most ``limit``), or ``fallback``."""
    found = [w for w in words(text) if w not in STOP_WORDS] or words(text)
    text_id = "-".join(found[:limit])
    if not text_id or not text_id[0].isalpha():
        text_id = f"{fallback}-{text_id}" if text_id else fallback
    return text_id[:60].rstrip("-")


def identifier(text: str, *, fallback: str = "value") -> str:
    """A parameter name from ``text``: lower-case words joined by ``_``."""
    name = "_".join(words(text))
    if not name or not name[0].isalpha():
        name = f"{fallback}_{name}" if name else fallback
    return name[:50].rstrip("_")


class Unique:
    """Hands out names not given before: ``x``, ``x-2``, ``x-3`` ..."""

    def __init__(self, sep: str = "-") -> None:
        self.sep = sep
        self.taken: set[str] = set()

    def __call__(self, base: str) -> str:
        """Return ``base`` or the first free ``base{sep}N`` and reserve it."""
        name, n = base, 1
        while name.lower() in self.taken:
            n += 1
            name = f"{base}{self.sep}{n}"
        self.taken.add(name.lower())
        return name


def title_of(text: str, limit: int = 70) -> str:
    """The first sentence of ``text``, cut at a word before ``limit`` characters."""
    flat = " ".join(text.split())
    first = re.split(r"(?<=[.!?])\s", flat, maxsplit=1)[0].rstrip(".")
    if len(first) <= limit:
        return first
    cut = first[:limit].rsplit(" ", 1)[0]
    return cut + "…"
