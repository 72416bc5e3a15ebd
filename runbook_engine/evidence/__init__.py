"""Change-management evidence (DESIGN.md §5): keys, journal signatures, verification,
the change record rendered from the journal, and the offline evidence bundle.

Files of a run (``STATE/runs/RUN_ID/``)::

    journal.jsonl          hash-chained events (runbook_engine.evidence.journal)
    journal.jsonl.head     the chain's anchor
    journal.sig.jsonl      Ed25519 signatures of chain heads (signatures.py)
    signing.pub            the public key that signed them (PEM)
    attachments/           files attached to gates, SHA-256 in the journal
    output/                redacted command output, SHA-256 in the journal
    notebooks/             executed notebooks, SHA-256 in the journal
"""

from __future__ import annotations

#: File names inside a run folder and a bundle.
JOURNAL_NAME = "journal.jsonl"
SIGNATURES_NAME = "journal.sig.jsonl"
PUBLIC_KEY_NAME = "signing.pub"
ATTACHMENTS_DIR = "attachments"
NOTEBOOKS_DIR = "notebooks"
