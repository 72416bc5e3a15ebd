"""Long values (80 characters or more) printed once, in the guide's "Values to copy" box.

A long value wrapped by a table or a code box breaks at arbitrary places, and the
same value printed five times is five chances to type it wrong.  The guide prints
each one once, numbered (``V1``), cut into fixed-width lines with their offsets,
with its length and the first characters of its SHA-256 (of the UTF-8 bytes) so a
typed value can be checked; every step that uses it shows ``‹V1›`` in its place.

Long values are the environment's parameter values and facts, the data of
``registry`` steps, and any string a ``{{ ... }}`` of a step body rendered: a value the
runbook computes (``{% set entries = a ~ ";" ~ b %}`` then ``{{ entries }}``) is caught
like a parameter's.  Text written literally in the body, or pieced together from several
``{{ }}`` around it, is not one value and stays where it is: a runbook that builds a long
value names it with ``{% set %}`` (runbooks/FORMAT.md, "Long values").  Values are data:
the box shows them in a code fence, never through Markdown or HTML markup.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from runbook_engine.errors import InputError
from runbook_engine.outputs.mdtext import fence_for
from runbook_engine.tailor.tailoring import TailoredRunbook, TailoredStep

#: A value this long or longer is printed once, in the box.
LONG_VALUE = 80
#: Characters per line in the box.
LINE_CHARS = 48
HASH_CHARS = 12


@dataclass(frozen=True, slots=True)
class LongValue:
    """One value of the box.

    Attributes:
        number: 1-based number (``V1``).
        text: The value exactly as it is to be typed.
    """

    number: int
    text: str

    @property
    def label(self) -> str:
        """``V1``."""
        return f"V{self.number}"

    @property
    def ref(self) -> str:
        """What a step shows instead of the value: ``‹V1›``."""
        return f"‹V{self.number}›"

    @property
    def sha256(self) -> str:
        """The first :data:`HASH_CHARS` hex digits of the SHA-256 of the UTF-8 bytes."""
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()[:HASH_CHARS]

    def lines(self) -> list[str]:
        """The value cut every :data:`LINE_CHARS` characters, each line with its offset."""
        width = len(str(len(self.text)))
        return [
            f"{i + 1:>{width}} │ {self.text[i : i + LINE_CHARS]}"
            for i in range(0, len(self.text), LINE_CHARS)
        ]

    def fence(self) -> str:
        """The box's code fence: the value's lines, literal text."""
        body = "\n".join(self.lines()) + "\n"
        fence = fence_for(body)
        return f"{fence}text\n{body}{fence}"


@dataclass(frozen=True, slots=True)
class ValueRefs:
    """The long values of one guide and the substitution that refers to them."""

    values: tuple[LongValue, ...] = ()

    def sub(self, text: str) -> str:
        """``text`` with every long value replaced by its reference (longest first)."""
        for value in sorted(self.values, key=lambda v: -len(v.text)):
            if value.text in text:
                text = text.replace(value.text, value.ref)
        return text

    def used(self, text: str) -> list[LongValue]:
        """The values whose reference appears in ``text`` (already substituted)."""
        return [v for v in self.values if v.ref in text]


def collect(tailored: TailoredRunbook) -> ValueRefs:
    """Find the long values of ``tailored``: parameter values, facts, registry data, and
    strings that expressions of steps that run here rendered (:attr:`TailoredStep.outputs`).

    A generic guide (no values) has none.
    """
    if tailored.values is None:
        return ValueRefs()
    found: list[str] = []

    def add(value: object) -> None:
        if isinstance(value, list | tuple):
            for item in value:
                add(item)
        elif isinstance(value, str) and len(value) >= LONG_VALUE and value not in found:
            found.append(value)

    secret = {n for n, p in tailored.runbook.parameters.items() if p.secret}
    for name, value in tailored.values.params.items():
        if name not in secret:
            add(value)
    for value in tailored.values.facts.values():
        add(value)
    for ts in tailored.steps:
        if ts.step.kind == "registry" and ts.skip_reason is None:
            add(_registry_data(ts))
    for seg in tailored.segments:
        if isinstance(seg, TailoredStep) and seg.skip_reason is None:
            add(list(seg.outputs))
    return ValueRefs(tuple(LongValue(i, text) for i, text in enumerate(found, start=1)))


def _registry_data(ts: object) -> object:
    from runbook_engine.declarative import parse_declarative
    from runbook_engine.declarative.spec import RegistrySpec

    step = ts.step  # type: ignore[attr-defined]
    try:
        spec = parse_declarative(step.kind, ts.body, step.span.path, step.body_line)  # type: ignore[attr-defined]
    except InputError:
        return None
    if isinstance(spec, RegistrySpec) and spec.want is not None:
        return spec.want.data
    return None
