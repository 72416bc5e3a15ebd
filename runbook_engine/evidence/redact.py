"""Secret redaction: replace secret values with ``[REDACTED:name]`` before anything is written.

DESIGN.md §5: secrets are redacted before an event is written or hashed.  A
:class:`Redactor` knows the resolved secret values of one run (name -> value)
and is applied to every journal event, output excerpt and log line.

Two rules, because a short value cannot be searched for in free text without
destroying it (a PIN ``42`` would turn every ``42`` into a marker):

* In free text (:meth:`Redactor.redact`), every occurrence of every secret value
  of :data:`MIN_FREE_TEXT_LENGTH` characters or more is replaced, longest value
  first, in a single pass (a marker is never redacted again).
* In structured data (:meth:`Redactor.redact_obj`), a dict value whose key is a
  secret name, or a string exactly equal to a secret value, is replaced whatever
  its length.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

#: Shortest secret value (characters) searched for inside free text.
MIN_FREE_TEXT_LENGTH = 4


def marker(name: str) -> str:
    """Return the text that stands for secret ``name``: ``[REDACTED:name]``."""
    return f"[REDACTED:{name}]"


def encoded_variants(value: str) -> set[str]:
    """Common transformations of a secret that commands print: case changes, Base64
    (standard and URL-safe, as in an HTTP Basic header, RFC 7617), URL encoding and hex.

    Free text can hold a secret transformed in any other way; that cannot be found,
    which is why commands receive secrets in environment variables, never as text.
    """
    import base64
    import binascii
    from urllib.parse import quote

    raw = value.encode("utf-8")
    variants = {value.upper(), value.lower(), quote(value, safe=""), binascii.hexlify(raw).decode()}
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        encoded = encode(raw).decode()
        variants.update({encoded, encoded.rstrip("=")})
    variants.discard(value)
    return {v for v in variants if v}


class Redactor:
    """Replaces secret values by markers in text and in JSON-like objects.

    The secret values are never shown by ``repr`` or ``str``; only the names are.

    Args:
        secrets: Secret name -> secret value.  Empty values are ignored.  When two
            names share a value, the name that sorts first is used in the marker.

    Raises:
        TypeError: a name or value is not a string.
    """

    __slots__ = ("_by_value", "_names", "_pattern", "_searched")

    def __init__(self, secrets: Mapping[str, str]) -> None:
        by_value: dict[str, str] = {}
        for name in sorted(secrets):
            value = secrets[name]
            if not isinstance(name, str) or not isinstance(value, str):
                raise TypeError(f"secret {name!r}: name and value must be strings")
            if value and value not in by_value:
                by_value[value] = name
        self._names: frozenset[str] = frozenset(secrets)
        self._by_value = by_value
        searched = dict(by_value)
        for value, name in by_value.items():
            for variant in encoded_variants(value):
                searched.setdefault(variant, name)
        self._searched = searched
        long_values = sorted(
            (v for v in searched if len(v) >= MIN_FREE_TEXT_LENGTH),
            key=lambda v: (-len(v), v),
        )
        self._pattern: re.Pattern[str] | None = (
            re.compile("|".join(re.escape(v) for v in long_values)) if long_values else None
        )

    @classmethod
    def empty(cls) -> Redactor:
        """Return a redactor that knows no secrets (it returns its input unchanged)."""
        return cls({})

    @property
    def names(self) -> frozenset[str]:
        """The secret names this redactor knows."""
        return self._names

    def __bool__(self) -> bool:
        return bool(self._by_value)

    def __repr__(self) -> str:
        return f"Redactor(names={sorted(self._names)!r})"

    def redact(self, text: str) -> str:
        """Replace every secret value of 4+ characters in ``text`` by its marker.

        Args:
            text: Free text (command output, a message, a command line).

        Returns:
            The text with each occurrence replaced by ``[REDACTED:name]``; longer
            values win over shorter values they contain.
        """
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(lambda m: marker(self._searched[m.group(0)]), text)

    def redact_obj(self, obj: Any) -> Any:
        """Return a redacted copy of a JSON-like object (dicts, lists, tuples, strings).

        Dict values under a key that is a secret name are replaced by the marker
        whatever their type or length; strings exactly equal to a secret value are
        replaced even when shorter than 4 characters; other strings go through
        :meth:`redact`; dict keys go through :meth:`redact`.  Numbers, booleans,
        ``None`` and other objects are returned as they are.

        Args:
            obj: The object to walk; it is not modified.

        Returns:
            A new object of the same shape (tuples stay tuples).
        """
        if isinstance(obj, str):
            name = self._by_value.get(obj)
            return marker(name) if name is not None else self.redact(obj)
        if isinstance(obj, Mapping):
            out: dict[Any, Any] = {}
            for key, value in obj.items():
                new_key = self.redact(key) if isinstance(key, str) else key
                if isinstance(key, str) and key in self._names:
                    out[new_key] = marker(key)
                else:
                    out[new_key] = self.redact_obj(value)
            return out
        if isinstance(obj, list):
            return [self.redact_obj(item) for item in obj]
        if isinstance(obj, tuple):
            return tuple(self.redact_obj(item) for item in obj)
        return obj
