"""A run's signed journal (:class:`SignedJournal`), the key that signs a run, and opening a
run's journal for appending.

Every record of a signed run is signed right after it is written (the journal
of a run is a :class:`SignedJournal`): no record counts as evidence until a
signature covers it.  A finished run ends with a signed *seal*, a ``run-sealed``
record naming the run and its own sequence number (the run's last), so a journal
cut at an earlier signed line, with its signature file cut to match, shows as
not sealed.  The signatures, one line each in ``journal.sig.jsonl``, are written by
:class:`~runbook_engine.evidence.signatures.Signer` (their form is described there).

The run's public key is named in the journal's ``run-started`` record (key id and
PEM) and copied to ``signing.pub`` in the run folder.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from runbook_engine.errors import StateError
from runbook_engine.evidence import JOURNAL_NAME
from runbook_engine.evidence.journal import Journal, JournalAnchor
from runbook_engine.evidence.keys import default_key_dir, find_signing_key, load_private_key
from runbook_engine.evidence.redact import Redactor
from runbook_engine.evidence.shield import shielded
from runbook_engine.evidence.signatures import Signer
from runbook_engine.run.faults import crash_point

try:  # POSIX only
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

#: The event that seals a finished run.
SEAL_EVENT = "run-sealed"
#: Journal events after which older versions signed the head.
SIGNED_EVENTS = frozenset(
    {
        "run-started",
        "gate-passed",
        "run-aborted",
        "approval-passed",
        "approval-rejected",
        "approval-bypassed",
        "run-paused",
        "run-resumed",
        "run-interrupted",
        "run-finished",
    }
)


def is_signing_point(record: dict[str, Any]) -> bool:
    """True for a journal record the runner signs right after writing it (gates and run ends)."""
    event = record.get("event")
    return event in SIGNED_EVENTS or (event == "step-skipped" and "gate" in record)


class SignedJournal(Journal):
    """A run's journal: every append is signed (when the run is signed) and a finished
    run is sealed.

    After ``run-finished`` a ``run-sealed`` record follows, naming the run and its own
    ``seq`` (``last_seq``); a record added to a sealed journal later (an executed
    notebook) is followed by a new seal.

    Args:
        path: The journal file.
        redactor: As :class:`~runbook_engine.evidence.journal.Journal`.
        signer: Signs every record; ``None`` for an unsigned run (or a writer without
            the run's key: its records stay unsigned until the run's next signed record).
        run_id: The run, named in the seal.
        anchor: As :class:`~runbook_engine.evidence.journal.Journal` (the runner keeps
            it in the checkpoint store).
    """

    def __init__(
        self,
        path: Path,
        redactor: Redactor | None = None,
        signer: Signer | None = None,
        run_id: str | None = None,
        anchor: JournalAnchor | None = None,
    ) -> None:
        super().__init__(path, redactor, anchor)
        self.signer = signer
        self.run_id = run_id if run_id is not None else (signer.run_id if signer else None)
        last = _last_event(self.path) if self.head[0] else None
        self._sealed = last == SEAL_EVENT
        self.unsigned: dict[str, Any] | None = None
        #: Called, then forgotten, once the journal and a signature covering it are on the
        #: disk up to a record written without ``fsync`` (:meth:`when_durable`).
        self._waiting: list[Callable[[], None]] = []

    def append(self, event: str, **fields: Any) -> dict[str, Any]:
        """Append and sign one event (see ``Journal.append``); seal the journal after the
        run's end or after an addition to a sealed journal."""
        return self.append_record(event, fields)

    def append_record(
        self,
        event: str,
        fields: dict[str, Any],
        *,
        sync: bool = True,
        sync_signature: bool | None = None,
        sign: bool = True,
        acknowledge: bool = True,
    ) -> dict[str, Any]:
        """:meth:`append`, the ``fsync`` of the record (``sync``, see ``Journal.append_record``)
        and of its signature line (``sync_signature``, default ``sync``) optional, and the
        signature itself (``sign``: false leaves the record to a later signature, which covers
        it through the chain).  A signature line is only written for a record ``fsync``'d, so
        one on the disk always names a record on the disk.  An unsynced signature is made
        durable by the next synced one; a power loss before leaves the record unsigned, and
        the run's next signed record (its resume) covers it.  ``acknowledge`` (with
        ``sync``): when actions wait (:meth:`when_durable`), the signature is ``fsync``'d
        and they are called; false leaves them to a later synced append or
        :meth:`make_durable`.  Raises as :meth:`append`.
        """
        sync_signature = sync if sync_signature is None else (sync and sync_signature)
        if self._waiting and sync and acknowledge:  # the record and its signature ack them
            sync_signature = sign = True
        record = self._append_signed(event, fields, sync, sync_signature, sign and sync)
        if self.signer is not None and (event == "run-finished" or self._sealed):
            self._append_signed(SEAL_EVENT, {"run_id": self.run_id, "last_seq": self.head[0] + 1})
            self._sealed = True
        if sync and acknowledge:
            self._acknowledge()
        return record

    def when_durable(self, action: Callable[[], None]) -> None:
        """Call ``action`` once the journal, as written now, is on the disk and signed there.

        For what acknowledges a record written without ``fsync`` (a step's end: its
        checkpoint, its line on the terminal): the next synced append (its signature
        ``fsync``'d, covering the earlier records through the chain) or :meth:`make_durable`
        calls the actions waiting, in the order given.  A kill before leaves them undone
        (the journal, in the page cache, says what they would have said); a power loss
        may take the unsynced records, which nobody was told of.
        """
        self._waiting.append(action)

    @property
    def owing(self) -> bool:
        """True while actions wait for the journal to be durable (:meth:`when_durable`)."""
        return bool(self._waiting)

    def make_durable(self) -> None:
        """``fsync`` the records written without it, sign the last one (signature
        ``fsync``'d), then call the actions waiting for that (:meth:`when_durable`).

        Raises:
            StorageError: (exit 74) the journal or its signatures cannot be synced.
        """
        tail = self.unsigned
        if tail is not None or self._waiting:
            self.sync()
        if tail is not None and self.signer is not None:
            self.signer.sign(tail)  # fsync'd: the earlier lines with it
            self.unsigned = None
        elif self.signer is not None:
            self.signer.flush()  # lines signed since the last fsync'd one
        self._acknowledge()

    def _acknowledge(self) -> None:
        while self._waiting:
            waiting, self._waiting = self._waiting, []
            for action in waiting:
                action()

    @property
    def sealed(self) -> bool:
        """True when the journal's last record is the seal."""
        return self._sealed

    def unsigned_tail(self) -> int:
        """Records after the last signature (0 for an unsigned journal)."""
        if self.signer is None:
            return 0
        return max(0, self.head[0] - self.signer.last_seq)

    def seal(self) -> dict[str, Any]:
        """Append the signed seal now (a finished run whose seal a kill prevented)."""
        record = self._append_signed(
            SEAL_EVENT, {"run_id": self.run_id, "last_seq": self.head[0] + 1}
        )
        self._sealed = True
        return record

    def _append_signed(
        self,
        event: str,
        fields: dict[str, Any],
        sync: bool = True,
        sync_signature: bool = True,
        sign: bool = True,
    ) -> dict[str, Any]:
        with shielded():  # a stop signal waits until the record is signed
            record = super().append_record(event, fields, sync=sync)
            if event == "run-finished":
                crash_point("after-run-finished")
            if self.signer is not None and sign:
                self.signer.sign(record, sync=sync_signature)
            #: The last record written unsigned, until a signature covers it.
            self.unsigned = record if self.signer is not None and not sign else None
        return record


def _last_event(path: Path) -> str | None:
    """The ``event`` of the journal's last line (read from the end), or ``None``."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 65536))
            tail = handle.read().rstrip(b"\n").rsplit(b"\n", 1)[-1]
        value = json.loads(tail).get("event")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def signer_for_run(
    state_dir: Path,
    run_dir: Path,
    run_id: str,
    started: dict[str, Any] | None,
    *,
    optional: bool = False,
) -> Signer | None:
    """Return the signer for a run, or ``None`` for an unsigned run.

    Args:
        state_dir: The state directory (a key left inside it is refused).
        run_dir: The run folder.
        run_id: The run.
        started: The journal's ``run-started`` record for an existing run, ``None``
            for a new run (which is signed when a key is found).
        optional: For writers other than the runner (``confirm``, ``approve``, an
            executed notebook): without the run's key, return ``None`` (their records
            are covered by the run's next signature) instead of raising.

    Raises:
        StateError: an existing signed run's key is not available, or a different
            key is configured (a run is signed by one key from start to end).
    """
    if started is not None and not started.get("signing"):
        return None
    try:
        path = find_signing_key(state_dir)
    except StateError:
        if optional:
            return None
        raise
    if path is None:
        if started is None or optional:
            return None
        raise StateError(
            f"run {run_id} is signed with key {started['signing']['key_id'][:16]}, "
            f"which is not available: set RUNBOOK_SIGNING_KEY or restore "
            f"{default_key_dir() / 'signing.key'}"
        )
    try:
        signer = Signer(load_private_key(path), run_dir, run_id)
    except StateError:
        if optional:
            return None
        raise
    if started is not None and signer.key_id != started["signing"].get("key_id"):
        if optional:
            return None
        raise StateError(
            f"run {run_id} is signed with key {started['signing']['key_id'][:16]}, "
            f"but {path} is key {signer.key_id[:16]}; use the run's own key"
        )
    return signer


def first_record(journal_path: Path) -> dict[str, Any] | None:
    """Return the journal's first record (``run-started``) without checking the chain, or ``None``.

    Raises:
        StateError: the first line is not JSON.
    """
    try:
        with open(journal_path, "rb") as handle:
            line = handle.readline()
    except FileNotFoundError:
        return None
    if not line.strip():
        return None
    try:
        data = json.loads(line)
    except ValueError:
        raise StateError(f"journal {journal_path}: line 1 is not JSON") from None
    return data if isinstance(data, dict) else None


def open_run_journal(
    state_dir: Path,
    run_dir: Path,
    run_id: str,
    redactor: Redactor | None = None,
    *,
    optional_key: bool = True,
) -> SignedJournal:
    """Open run ``run_id``'s journal for appending, signed with the run's key when present.

    The journal is read under a shared ``flock`` so a line another process is
    appending is never read half-written.

    Raises:
        EvidenceError: the journal is damaged.
        StateError: the run's key is required (``optional_key`` false) and missing.
    """
    path = run_dir / JOURNAL_NAME
    with shared_lock(path):
        started = first_record(path)
        signer = signer_for_run(state_dir, run_dir, run_id, started, optional=optional_key)
        return SignedJournal(path, redactor, signer, run_id)


@contextmanager
def shared_lock(path: Path) -> Iterator[None]:
    """Hold a shared ``flock`` on an existing file (writers hold it exclusively); POSIX only."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        yield
        return
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)
