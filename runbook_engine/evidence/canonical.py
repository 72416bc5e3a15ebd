"""A journal record's canonical form and its hash (the journal's chain, its signatures and
the team store's copy of it all rest on these; see :mod:`runbook_engine.evidence.journal`).

Canonical JSON is ``json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)``
encoded as UTF-8; a record's ``hash`` is the SHA-256 (hex) of the canonical JSON of the
record without ``hash``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

#: ``prev`` of the first record.
GENESIS_HASH = "0" * 64


def canonical_json(obj: Any) -> str:
    """Return the canonical JSON text of ``obj`` (sorted keys, no spaces, UTF-8 kept).

    Raises:
        TypeError: ``obj`` holds something JSON cannot represent.
        ValueError: ``obj`` holds NaN or an infinity.
    """
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def record_hash(record: dict[str, Any]) -> str:
    """Return the SHA-256 hex digest of the canonical JSON of ``record`` without ``hash``."""
    body = {k: v for k, v in record.items() if k != "hash"}
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()
