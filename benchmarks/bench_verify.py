"""Benchmark of ``runbook evidence verify`` (issue 12, part 4).  Prints figures; asserts nothing.

Writes two finished runs of ``--records`` journal records each (one unsigned, one
signed and sealed, every record signed as runs are) and times, in this process:

- a plain JSON-lines read of the unsigned run's journal (``json.loads`` per line):
  the floor;
- the chain check alone of the same journal
  (:func:`~runbook_engine.evidence.journal.verify_journal`):
  one read, every line's canonical form, hash and link;
- :func:`~runbook_engine.evidence.verify.verify_run` of an unsigned run of the same
  length: against the chain check about 1x with one read of the journal (it was
  about 2x when verify read the journal twice);
- ``verify_run`` of a signed run of the same length whose steps saved their output,
  as ``runbook evidence verify`` checks a real run (plus one Ed25519 check per
  record and one SHA-256 per output file).

Ratios are against the figures measured in the same run.

Run: ``python benchmarks/bench_verify.py`` (``--records N``, ``--repeat R``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from runbook_engine.evidence import JOURNAL_NAME
from runbook_engine.evidence.journal import verify_journal
from runbook_engine.evidence.signatures import Signer
from runbook_engine.evidence.signing import SignedJournal
from runbook_engine.evidence.verify import verify_run


def make_run(run_dir: Path, records: int, signed: bool) -> None:
    """Write a finished run of about ``records`` journal records.

    Signed: every record signed, each step's output saved and named by its digest
    (what a real run leaves).  Unsigned: the journal alone, nothing else to check.
    """
    run_id = "bench-" + ("signed" if signed else "unsigned")
    signer = Signer(Ed25519PrivateKey.generate(), run_dir, run_id) if signed else None
    journal = SignedJournal(run_dir / JOURNAL_NAME, None, signer, run_id)
    started = {"signing": signer.describe()} if signer else {}
    journal.append("run-started", run_id=run_id, runbook="bench.md", **started)
    (run_dir / "output").mkdir(parents=True, exist_ok=True)
    for n in range(1, records - 1):
        fields: dict[str, object] = {}
        if signed:
            name = f"output/s{n:05d}.step-s{n:05d}@local.1.txt"
            data = f"output of step {n}\n".encode() * 20
            (run_dir / name).write_bytes(data)
            fields = {"output_file": name, "output_sha256": hashlib.sha256(data).hexdigest()}
        journal.append(
            "step-finished",
            step=f"s{n:05d}",
            id=f"s{n:05d}",
            host="local",
            status="succeeded",
            exit_code=0,
            **fields,
        )
    journal.append("run-finished", status="succeeded")


def best(action: Callable[[], object], repeat: int) -> float:
    """Shortest wall time of ``action`` over ``repeat`` calls."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def plain_read(path: Path) -> list[object]:
    """The floor: every line of a JSON-lines file parsed, nothing checked."""
    with open(path, "rb") as handle:
        return [json.loads(line) for line in handle]


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-verify-") as tmp:
        signed_dir, unsigned_dir = Path(tmp) / "signed", Path(tmp) / "unsigned"
        make_run(signed_dir, args.records, signed=True)
        make_run(unsigned_dir, args.records, signed=False)
        journal = unsigned_dir / JOURNAL_NAME
        verdict = verify_run(signed_dir).verdict  # verified-unpinned
        figures = {
            "plain JSON-lines read": best(lambda: plain_read(journal), args.repeat),
            "chain check (one read)": best(lambda: verify_journal(journal), args.repeat),
            "verify, unsigned run": best(lambda: verify_run(unsigned_dir), args.repeat),
            "verify, signed + outputs": best(lambda: verify_run(signed_dir), args.repeat),
        }
        size = (signed_dir / JOURNAL_NAME).stat().st_size
    print(
        f"runbook evidence verify of a {args.records}-record journal "
        f"({size / 1024:.0f} KiB, {verdict}; best of {args.repeat}):"
    )
    floor = figures["plain JSON-lines read"]
    chain = figures["chain check (one read)"]
    for name, seconds in figures.items():
        print(f"  {name:<24}: {seconds * 1000:8.1f} ms  ({seconds / floor:5.2f}x plain read)")
    print(
        f"  ratio verify unsigned / chain check: {figures['verify, unsigned run'] / chain:5.2f}x "
        "(1x: the journal is read once)"
    )


if __name__ == "__main__":
    main()
