"""Evidence: keys, signed journals, tampering of every kind, the change record, bundles,
and a canary secret that must appear nowhere.

Runs use the real ``runbook`` command in subprocesses, real stores, real shell steps and,
for WinRM hosts, the real pywinrm client against the WS-Management server on
127.0.0.1 (tests/wsman_server.py).  Golden files: ``UPDATE_GOLDEN=1 pytest
tests/test_evidence.py`` regenerates tests/golden/evidence/ on purpose.

Signed runs, bundles, the change record of the seed run, the canary secret and the "done
when" run are made on both stores (the state folder and PostgreSQL: ``store_kind``, or
the module fixtures' ``KINDS``), their folders read from :func:`stores.run_folder`.  The
tampering tests edit a copy of a run folder on disk (a file check, whatever store the run
came from; the database's journal table refuses edits): the state folder only.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from fake_windows import preflight_reply  # type: ignore[import-not-found]
from stores import (  # type: ignore[import-not-found]
    KINDS,
    both_stores,
    cli_environ,
    database_bytes,
    on_pg,
    run_folder,
    sqlite_only,
)
from wsman_server import CommandCall, Reply, WindowsHost, wsman  # type: ignore[import-not-found]

from runbook_engine.errors import StateError
from runbook_engine.evidence.bundle import canonical_zip, verify_bundle
from runbook_engine.evidence.canonical import canonical_json, record_hash
from runbook_engine.evidence.journal import head_path, read_journal
from runbook_engine.evidence.keys import load_private_key
from runbook_engine.evidence.verify import verify_run

__all__ = ["wsman"]  # the fixture, imported for pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures" / "evidence"
GOLDEN = Path(__file__).parent / "golden" / "evidence"
#: A frozen copy of runbooks/exchange2003/rpc-over-https.md, its lab environment and answers
#: (as committed when these tests were written), so that editing the library's seed runbook
#: does not change this golden file or the scripted Windows host's replies.
SEED = FIXTURES / "seed"
OPERATOR = "Olga Operator"
pytestmark = pytest.mark.skipif(os.name != "posix", reason="sh steps, file modes")


class Book:
    """A working folder with the evidence fixtures; calls the CLI inside it."""

    def __init__(self, root: Path, extra_env: dict[str, str] | None = None) -> None:
        self.root = root
        self.state = root / "state"
        self.config = root / "config"  # $XDG_CONFIG_HOME: the default key folder lives here
        self.keys = self.config / "runbook-engine" / "keys"
        self.extra_env = {"XDG_CONFIG_HOME": str(self.config), **(extra_env or {})}
        self.outputs: list[str] = []  # every stdout and stderr, for the canary test

    def __call__(self, *args: Any, operator: str = OPERATOR) -> subprocess.CompletedProcess[str]:
        env = cli_environ()
        env.update(RUNBOOK_OPERATOR=operator, NO_COLOR="1", COLUMNS="200", **self.extra_env)
        proc = subprocess.run(
            [sys.executable, "-m", "runbook_engine", *map(str, args)],
            cwd=self.root,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            stdin=subprocess.DEVNULL,
        )
        self.outputs += [proc.stdout, proc.stderr]
        assert "Traceback" not in proc.stderr, proc.stderr
        return proc

    @property
    def store(self) -> str | None:
        """The PostgreSQL store the book's commands use (``None``: the state folder)."""
        return self.extra_env.get("RUNBOOK_STORE") or os.environ.get("RUNBOOK_STORE") or None

    def run_dir(self, run_id: str = "r1") -> Path:
        """The run's folder (on PostgreSQL: a copy rebuilt from the database)."""
        return run_folder(self.state, run_id, self.store)

    def run(self, book: str, *args: Any, run_id: str = "r1") -> subprocess.CompletedProcess[str]:
        return self("run", book, "--state-dir", self.state, "--run-id", run_id, "--no-input", *args)

    def resume(self, *args: Any, run_id: str = "r1") -> subprocess.CompletedProcess[str]:
        return self("resume", run_id, "--state-dir", self.state, "--no-input", *args)

    def st(self, *args: Any) -> subprocess.CompletedProcess[str]:
        """A command with ``--state-dir`` appended."""
        return self(*args, "--state-dir", self.state)


def copy_fixtures(root: Path) -> None:
    for item in FIXTURES.iterdir():
        if item.is_file():
            shutil.copy2(item, root / item.name)


def approved_run(book: Book, run_id: str = "r1") -> Path:
    """Run approved.md to its end: approval by two, an attested manual step with an attachment."""
    assert (
        book.run(
            "approved.md",
            "--env",
            "env.yml",
            "--change",
            "CHG-42",
            "--note",
            "settings",
            run_id=run_id,
        ).returncode
        == 3
    )
    for name in ("Alice Approver", "Dana Lead"):
        assert book.st("approve", run_id, "cab", "--as", name).returncode == 0
    assert book.resume(run_id=run_id).returncode == 3
    (book.root / "settings.reg").write_text("Windows Registry Editor Version 5.00\n")
    assert (
        book.st(
            "confirm",
            run_id,
            "export-settings",
            "--as",
            OPERATOR,
            "--note",
            "exported",
            "--attach",
            "settings.reg",
        ).returncode
        == 0
    )
    done = book.resume(run_id=run_id)
    assert done.returncode == 0, done.stdout + done.stderr
    return book.run_dir(run_id)


def _signed_book(root: Path, store: str | None = None) -> Book:
    copy_fixtures(root)
    book = Book(root, {"RUNBOOK_STORE": store} if store else None)
    assert book.st("keys", "init").returncode == 0
    approved_run(book, "r1")
    (root / "steps.log").unlink()
    approved_run(book, "r2")
    return book


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> Book:
    """One state directory with a key and two finished signed runs, r1 and r2."""
    return _signed_book(tmp_path_factory.mktemp("signed"))


@pytest.fixture(scope="module", params=KINDS)
def signed_on(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Book:
    """:func:`signed` on each store (on PostgreSQL: a database of the module's)."""
    if request.param == "sqlite":
        return request.getfixturevalue("signed")  # type: ignore[no-any-return]
    url = request.getfixturevalue("pg_databases")()
    return _signed_book(tmp_path_factory.mktemp("signed-pg"), url)


@pytest.fixture
def run_copy(signed: Book, tmp_path: Path) -> Path:
    """A private copy of run r1's folder to tamper with."""
    target = tmp_path / "r1"
    shutil.copytree(signed.run_dir("r1"), target)
    return target


# -- keys ----------------------------------------------------------------------------------------
def test_keys_init_writes_a_private_key_0600_and_exports_the_public_key(tmp_path: Path) -> None:
    book = Book(tmp_path)
    made = book.st("keys", "init")
    assert made.returncode == 0, made.stderr
    private, public = book.keys / "signing.key", book.keys / "signing.pub"
    assert private.stat().st_mode & 0o777 == 0o600
    assert book.keys.stat().st_mode & 0o777 == 0o700
    assert public.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    assert b"PRIVATE" not in public.read_bytes()
    again = book.st("keys", "init")
    assert again.returncode == 2 and "exists already" in again.stderr
    other = book("keys", "init", "-o", tmp_path / "elsewhere")
    assert other.returncode == 0 and (tmp_path / "elsewhere/signing.key").is_file()
    private.chmod(0o644)
    with pytest.raises(StateError, match="chmod 600"):
        load_private_key(private)


def test_signed_run_names_its_key_and_signs_every_gate_and_the_end(signed_on: Book) -> None:
    signed = signed_on
    run_dir = signed.run_dir("r1")
    records = read_journal(run_dir / "journal.jsonl")
    sigs = [json.loads(line) for line in (run_dir / "journal.sig.jsonl").read_text().splitlines()]
    assert records[0]["signing"]["algorithm"] == "Ed25519"
    signed_events = {s["event"] for s in sigs}
    assert {
        "run-started",
        "approval-passed",
        "gate-passed",
        "run-paused",
        "run-resumed",
        "run-finished",
    } <= signed_events
    assert [s["sig_seq"] for s in sigs] == list(range(1, len(sigs) + 1))
    assert all(records[s["seq"] - 1]["hash"] == s["head"] for s in sigs)
    # every record is signed (not only gates) but process-started and a command step's
    # step-finished, which a later signature covers through the chain (one journal fsync
    # per step, one signature fsync per batch of acknowledged steps; issue 12), and the
    # run ends with its signed seal
    signed_seqs = {s["seq"] for s in sigs}
    unsigned = {r["event"] for r in records if r["seq"] not in signed_seqs}
    # (the team store acknowledges each step's end before the next command starts, its
    # run lock checked: there a step-finished is signed at once)
    expected = {"process-started"} if signed_on.store else {"process-started", "step-finished"}
    assert unsigned == expected, unsigned
    assert all(r["seq"] in signed_seqs for r in records if r["event"] == "step-started")
    assert sigs[-1]["seq"] == len(records) and sigs[-1]["event"] == "run-sealed"
    seal = records[-1]
    assert seal["run_id"] == "r1" and seal["last_seq"] == seal["seq"] == len(records)
    assert records[-2]["event"] == "run-finished"
    ok = signed("evidence", "verify", run_dir, "--public-key", signed.keys / "signing.pub")
    assert ok.returncode == 0, ok.stdout
    assert f"{len(sigs)} signatures" in ok.stdout


# -- tampering -----------------------------------------------------------------------------------
def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def edit_byte(run: Path) -> None:
    lines = _lines(run / "journal.jsonl")
    lines[4] = lines[4][:20] + bytes([lines[4][20] ^ 0x01]) + lines[4][21:]
    (run / "journal.jsonl").write_bytes(b"".join(lines))


def rewrite_chain(run: Path) -> None:
    """A careful forger: edits line 5 and recomputes every hash after it and the head file."""
    records = read_journal(run / "journal.jsonl")
    records[4]["forged"] = True
    prev = records[3]["hash"]
    for rec in records[4:]:
        rec["prev"] = prev
        rec["hash"] = record_hash(rec)
        prev = rec["hash"]
    (run / "journal.jsonl").write_bytes(
        b"".join((canonical_json(r) + "\n").encode() for r in records)
    )
    head_path(run / "journal.jsonl").write_text(
        canonical_json({"hash": prev, "seq": len(records)}) + "\n"
    )


def delete_line(run: Path) -> None:
    lines = _lines(run / "journal.jsonl")
    del lines[4]
    (run / "journal.jsonl").write_bytes(b"".join(lines))


def reorder_lines(run: Path) -> None:
    lines = _lines(run / "journal.jsonl")
    lines[4], lines[5] = lines[5], lines[4]
    (run / "journal.jsonl").write_bytes(b"".join(lines))


def truncate_journal(run: Path) -> None:
    lines = _lines(run / "journal.jsonl")
    (run / "journal.jsonl").write_bytes(b"".join(lines[:-3]))


def truncate_journal_and_head(run: Path) -> None:
    records = read_journal(run / "journal.jsonl")[:-3]
    (run / "journal.jsonl").write_bytes(
        b"".join((canonical_json(r) + "\n").encode() for r in records)
    )
    head_path(run / "journal.jsonl").write_text(
        canonical_json({"hash": records[-1]["hash"], "seq": len(records)}) + "\n"
    )


def signature_from_other_run(run: Path, other: Path) -> None:
    mine, theirs = _lines(run / "journal.sig.jsonl"), _lines(other / "journal.sig.jsonl")
    mine[2] = theirs[2]
    (run / "journal.sig.jsonl").write_bytes(b"".join(mine))


def edit_signature(run: Path) -> None:
    lines = _lines(run / "journal.sig.jsonl")
    rec = json.loads(lines[2])
    rec["seq"] += 0
    rec["event"] = "gate-passed" if rec["event"] != "gate-passed" else "run-paused"
    lines[2] = (canonical_json(rec) + "\n").encode()
    (run / "journal.sig.jsonl").write_bytes(b"".join(lines))


def delete_signature(run: Path) -> None:
    lines = _lines(run / "journal.sig.jsonl")
    del lines[2]
    (run / "journal.sig.jsonl").write_bytes(b"".join(lines))


def reorder_signatures(run: Path) -> None:
    lines = _lines(run / "journal.sig.jsonl")
    lines[2], lines[3] = lines[3], lines[2]
    (run / "journal.sig.jsonl").write_bytes(b"".join(lines))


def cut_signatures(run: Path) -> None:
    lines = _lines(run / "journal.sig.jsonl")
    (run / "journal.sig.jsonl").write_bytes(b"".join(lines[:-1]))


def edit_attachment(run: Path) -> None:
    path = run / "attachments/export-settings/settings.reg"
    path.write_bytes(path.read_bytes().replace(b"5.00", b"5.01"))


def add_attachment(run: Path) -> None:
    (run / "attachments/export-settings/extra.png").write_bytes(b"\x89PNG")


def edit_output(run: Path) -> None:
    path = next((run / "output").glob("pre.*"))
    path.write_bytes(path.read_bytes() + b"x")


def first_unvouched(run: Path, line: int) -> int:
    """The first line after the last signature before ``line``: a rewrite is located there."""
    sigs = [json.loads(x) for x in _lines(run / "journal.sig.jsonl")]
    return max(s["seq"] for s in sigs if s["seq"] < line) + 1


def last_line(run: Path) -> int:
    return len(_lines(run / "journal.jsonl"))


# (name, tamper, file named in the report, line reported (callable on the pristine run) or None)
TAMPERING: list[tuple[str, Callable[..., None], str, Callable[[Path], int | None]]] = [
    ("edited-byte", edit_byte, "journal.jsonl", lambda run: 5),
    ("rewritten-chain", rewrite_chain, "journal.jsonl", lambda run: first_unvouched(run, 5)),
    ("deleted-line", delete_line, "journal.jsonl", lambda run: 5),
    ("reordered-lines", reorder_lines, "journal.jsonl", lambda run: 5),
    ("truncated", truncate_journal, "journal.jsonl", lambda run: last_line(run) - 2),
    (
        "truncated-with-head",
        truncate_journal_and_head,
        "journal.jsonl",
        lambda run: last_line(run) - 2,
    ),
    ("signature-from-other-run", signature_from_other_run, "journal.sig.jsonl", lambda run: 3),
    ("edited-signature", edit_signature, "journal.sig.jsonl", lambda run: 3),
    ("deleted-signature", delete_signature, "journal.sig.jsonl", lambda run: 3),
    ("reordered-signatures", reorder_signatures, "journal.sig.jsonl", lambda run: 3),
    ("cut-signatures", cut_signatures, "journal.jsonl", lambda run: last_line(run)),
    (
        "edited-attachment",
        edit_attachment,
        "attachments/export-settings/settings.reg",
        lambda run: None,
    ),
    ("added-attachment", add_attachment, "attachments/export-settings/extra.png", lambda run: None),
    ("edited-output", edit_output, "output/pre.step-pre@operator.1.txt", lambda run: None),
]


@sqlite_only  # edits files of a run folder's copy (a file check whatever store it came from)
@pytest.mark.parametrize(
    ("tamper", "file", "line"), [t[1:] for t in TAMPERING], ids=[t[0] for t in TAMPERING]
)
def test_tampering_is_detected_with_the_first_bad_line(
    signed: Book,
    run_copy: Path,
    tamper: Callable[..., None],
    file: str,
    line: Callable[[Path], int | None],
) -> None:
    expected_line = line(run_copy)
    pub = (signed.keys / "signing.pub").read_bytes()  # an auditor pins the key
    assert verify_run(run_copy, public_key=pub).verdict == "verified"
    if tamper is signature_from_other_run:
        tamper(run_copy, signed.run_dir("r2"))
    else:
        tamper(run_copy)
    check = verify_run(run_copy, public_key=pub)
    assert not check.ok and check.verdict == "failed"
    first = check.problems[0]
    assert (first.file, first.line) == (file, expected_line), str(first)
    proc = signed("evidence", "verify", run_copy, "--public-key", signed.keys / "signing.pub")
    assert proc.returncode == 1
    where = f"{file} line {expected_line}" if expected_line else file
    assert where in proc.stdout, proc.stdout


def test_verify_hands_back_the_records_it_checked(run_copy: Path) -> None:
    """One read per verify (issue 12): the check carries the records the change record uses."""
    check = verify_run(run_copy)
    assert check.records == read_journal(run_copy / "journal.jsonl")
    assert len(check.records) == check.events > 0
    delete_line(run_copy)
    damaged = verify_run(run_copy)
    assert damaged.verdict == "failed"
    good = damaged.problems[0].line
    assert good is not None
    assert damaged.records == check.records[: good - 1]  # the good lines before the bad one


def test_a_key_other_than_the_runs_is_refused(signed: Book, run_copy: Path, tmp_path: Path) -> None:
    assert signed("keys", "init", "-o", tmp_path / "k").returncode == 0
    pinned = signed("evidence", "verify", run_copy, "--public-key", tmp_path / "k/signing.pub")
    assert pinned.returncode == 1 and "journal.jsonl line 1" in pinned.stdout
    shutil.copy(tmp_path / "k/signing.pub", run_copy / "signing.pub")
    swapped = signed("evidence", "verify", run_copy)
    assert swapped.returncode == 1 and "signing.pub" in swapped.stdout


@both_stores
def test_unsigned_run_verifies_but_is_refused_when_a_signature_is_required(tmp_path: Path) -> None:
    copy_fixtures(tmp_path)
    book = Book(tmp_path)
    assert book.run("expiring.md", "--emergency", "--note", "test").returncode == 0
    plain = book("evidence", "verify", book.run_dir())
    assert plain.returncode == 0 and "NOT SIGNED" in plain.stdout
    # --require-signature needs a key the verifier trusts (changed on purpose: it used to
    # accept any key, including one a forger put in the journal)
    strict = book("evidence", "verify", book.run_dir(), "--require-signature")
    assert strict.returncode == 2 and "a key you trust" in strict.stderr
    assert book("keys", "init").returncode == 0  # the verifier's own trusted key
    strict = book("evidence", "verify", book.run_dir(), "--require-signature")
    assert strict.returncode == 1 and "not signed" in strict.stdout


# -- bundle --------------------------------------------------------------------------------------
def test_bundle_verifies_on_a_copy_elsewhere_and_any_edit_is_caught(
    signed_on: Book, tmp_path: Path
) -> None:
    signed = signed_on
    out = tmp_path / "made" / "CHG-42.zip"
    made = signed.st("evidence", "bundle", "r1", "-o", out)
    assert made.returncode == 0, made.stderr
    names = zipfile.ZipFile(out).namelist()
    for member in (
        "journal.jsonl",
        "journal.jsonl.head",
        "journal.sig.jsonl",
        "signing.pub",
        "attachments/export-settings/settings.reg",
        "change-record.html",
        "change-record.json",
        "MANIFEST.sha256",
    ):
        assert member in names
    elsewhere = tmp_path / "auditor"
    elsewhere.mkdir()
    shutil.copy(out, elsewhere / "bundle.zip")
    ok = subprocess.run(
        [sys.executable, "-m", "runbook_engine", "evidence", "verify", "bundle.zip"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("RUNBOOK")},
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert_every_edit_caught(elsewhere / "bundle.zip", tmp_path / "edits")


def assert_every_edit_caught(bundle: Path, work: Path) -> None:
    """Flip one byte of every member (the zip rebuilt around it), and one byte of the zip
    itself at a spread of offsets covering headers, data and the central directory."""
    work.mkdir()
    data = bundle.read_bytes()
    members = {
        n: zipfile.ZipFile(io.BytesIO(data)).read(n)
        for n in zipfile.ZipFile(io.BytesIO(data)).namelist()
    }
    target = work / "edited.zip"
    for name, content in members.items():
        for offset in sorted({0, len(content) // 2, max(len(content) - 2, 0)}):
            if not content:
                continue
            edited = bytearray(content)
            edited[offset] ^= 0x01
            target.write_bytes(canonical_zip({**members, name: bytes(edited)}))
            check = verify_bundle(target)
            assert not check.ok, f"{name}@{offset} not caught"
    offsets = sorted(
        set(range(0, len(data), max(len(data) // 150, 1)))
        | set(range(max(len(data) - 200, 0), len(data)))
    )
    for offset in offsets:
        edited = bytearray(data)
        edited[offset] ^= 0x20
        target.write_bytes(bytes(edited))
        assert not verify_bundle(target).ok, f"zip byte {offset} not caught"


def test_bundle_member_edit_names_the_member(signed_on: Book, tmp_path: Path) -> None:
    signed = signed_on
    out = tmp_path / "b.zip"
    assert signed.st("evidence", "bundle", "r1", "-o", out).returncode == 0
    members = {n: zipfile.ZipFile(out).read(n) for n in zipfile.ZipFile(out).namelist()}
    record = json.loads(members["change-record.json"])
    record["summary"]["outcome"]["note"] = "all fine, trust me"
    members["change-record.json"] = json.dumps(record).encode()
    out.write_bytes(canonical_zip(members))
    check = verify_bundle(out)
    assert check.problems[0].file == "change-record.json"


# -- canary secret -------------------------------------------------------------------------------
CANARY = "CanaryTok-7f3a9e51"
CANARY_PASSWORD = "WinRM-Canary-pw-5c1d"
SHORT_PIN = "Q7z"


def canary_env(tmp_path: Path, port: int) -> Path:
    env = {
        "name": "canary-lab",
        "description": "One WinRM host on 127.0.0.1",
        "roles": {
            "win": [
                {
                    "name": "WIN1",
                    "address": "127.0.0.1",
                    "transport": "winrm",
                    "winrm": {
                        "scheme": "http",
                        "port": port,
                        "transport": "basic",
                        "allow_basic_over_http": True,
                        "username": "admin",
                        "credential": "win_admin",
                        "read_timeout_sec": 4,
                        "operation_timeout_sec": 1,
                    },
                }
            ]
        },
        "secrets": {
            "admin_token": {"env": "CANARY_TOKEN"},
            "win_admin": {"env": "CANARY_WINRM_PASSWORD"},
        },
    }
    path = tmp_path / "canary-env.yml"
    path.write_text(yaml.safe_dump(env, sort_keys=False))
    return path


def echo_step(kind: str, text: str, call: CommandCall) -> Reply:
    """A Windows host that prints what it ran (secrets included) and exits as the body says."""
    codes = re.findall(r"\bexit (\d+)", text)
    return Reply(f"{kind}: {text.strip()}\r\n", "", int(codes[-1]) if codes else 0)


@both_stores
def test_canary_secret_appears_in_no_file_no_output_and_no_terminal(
    tmp_path: Path, wsman: Any
) -> None:
    uploaded: list[bytes] = []

    def step(kind: str, text: str, call: CommandCall) -> Reply:
        uploaded.extend(data for name, data in call.files.items() if name.endswith(".env"))
        return echo_step(kind, text, call)

    windows = WindowsHost(step)
    server = wsman(windows, password=CANARY_PASSWORD)
    copy_fixtures(tmp_path)
    env = canary_env(tmp_path, server.port)
    book = Book(
        tmp_path,
        {
            "CANARY_TOKEN": CANARY,
            "CANARY_WINRM_PASSWORD": CANARY_PASSWORD,
            "RUNBOOK_SECRET_PIN": SHORT_PIN,
        },
    )
    assert book.st("keys", "init").returncode == 0
    first = book.run("canary.md", "--env", env, "--stream", "--change", "CHG-C")
    assert first.returncode == 3, first.stdout + first.stderr
    assert any(CANARY.encode() in data for data in uploaded)  # the secret reached the host
    assert not any(CANARY in text for _, text in windows.scripts)  # as data, never as code
    again = book.resume("--answers", "answers-canary.yml")
    assert again.returncode == 1, again.stdout + again.stderr  # remote-fail fails, backout runs
    exports = tmp_path / "exports"
    for fmt in ("json", "md", "html"):
        assert (
            book.st("evidence", "export", "r1", "--to", fmt, "-o", exports / f"record.{fmt}").stderr
            == ""
        )
    assert book.st("evidence", "export", "r1", "--to", "md").returncode == 0  # to the terminal
    style = (exports / "record.html").read_text().split("<style>", 1)[1].split("</style>", 1)[0]
    assert "&#34;" not in style and '"' in style  # CSS is not HTML-escaped (a new user found it)
    assert book.st("evidence", "bundle", "r1", "-o", exports / "bundle.zip").returncode == 0
    assert book("evidence", "verify", exports / "bundle.zip").returncode == 0
    with zipfile.ZipFile(exports / "bundle.zip") as archive:
        archive.extractall(exports / "unzipped")
    events = read_journal(book.run_dir() / "journal.jsonl")
    assert any(e["event"] == "backout-finished" for e in events)
    assert any("[REDACTED:admin_token]" in (e.get("output_excerpt") or "") for e in events)

    secrets = (CANARY, CANARY_PASSWORD)
    for path in [*book.state.rglob("*"), *exports.rglob("*")]:
        if path.is_file():
            data = path.read_bytes()
            for secret in secrets:
                assert secret.encode() not in data, f"{secret} in {path}"
                assert secret.encode("utf-16-le") not in data, f"{secret} (UTF-16) in {path}"
    if on_pg():  # nor in any table of the database (journal, files, runs, gates, ...)
        stored = database_bytes(os.environ["RUNBOOK_STORE"])
        assert any(table == "blobs" for table, _ in stored)  # the files are in there
        for table, data in stored:
            for secret in secrets:
                assert secret.encode() not in data, f"{secret} in table {table}"
                assert secret.encode("utf-16-le") not in data, f"{secret} (UTF-16) in {table}"
    for text in book.outputs:
        for secret in secrets:
            assert secret not in text
    for event in events:  # a short secret is still redacted in structured fields
        assert SHORT_PIN not in _strings(event)


def _strings(obj: Any) -> list[str]:
    if isinstance(obj, dict):
        return [s for v in obj.values() for s in _strings(v)]
    if isinstance(obj, list):
        return [s for v in obj for s in _strings(v)]
    return [obj] if isinstance(obj, str) else []


# -- change record of a seed runbook -------------------------------------------------------------
VARIABLE_KEYS = frozenset(
    {
        "at",
        "first_at",
        "time",
        "started_at",
        "finished_at",
        "duration_seconds",
        "head",
        "key_id",
        "version",
        "python",
        "workstation",
    }
)


def normalise(obj: Any, tmp: str) -> Any:
    """Times, durations, paths and tool versions made stable for the golden file."""
    if isinstance(obj, dict):
        out = {}
        for key, value in obj.items():
            if value is not None and key in VARIABLE_KEYS:
                out[key] = f"<{key}>"
            else:
                out[key] = normalise(value, tmp)
        return out
    if isinstance(obj, list):
        return [normalise(v, tmp) for v in obj]
    if isinstance(obj, str):
        return obj.replace(tmp, "<tmp>").replace(str(ROOT), "<repo>")
    return obj


@pytest.fixture(scope="module", params=KINDS)
def seed_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Book:
    """rpc-over-https in the article's lab: every command by hand, answered by its answers
    file; on each store (the change record must not depend on it)."""
    pg = request.param == "postgresql"
    store = request.getfixturevalue("pg_databases")() if pg else None
    book = Book(tmp_path_factory.mktemp("seed"), {"RUNBOOK_STORE": store} if store else None)
    proc = book(
        "run",
        SEED / "rpc-over-https.md",
        "--env",
        SEED / "lab.yaml",
        "--answers",
        SEED / "rpc-over-https-lab.yaml",
        "--state-dir",
        book.state,
        "--run-id",
        "r1",
        "--no-input",
        "--change",
        "CHG-1042",
        "--note",
        "Outlook Anywhere for remote staff",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return book


def test_change_record_of_a_seed_run_matches_golden_json(seed_run: Book) -> None:
    proc = seed_run.st("evidence", "export", "r1", "--to", "json")
    assert proc.returncode == 0, proc.stderr
    record = normalise(json.loads(proc.stdout), str(seed_run.root))
    # Every verification of the lab run is a confirmation pre-written in the answers file
    # (the lab's probes are skipped by when=): the outcome says so instead of "succeeded".
    summary = record["summary"]
    assert summary["outcome"]["status"] == "succeeded-pre-answered"
    assert not summary["outcome"]["succeeded"]
    assert summary["verification"]["all_passed"] and summary["verification"]["count"] > 5
    assert summary["verification"]["known"] == {"pre-answered": summary["verification"]["count"]}
    assert "none observed by the tool" in summary["outcome"]["note"]
    text = json.dumps(record, indent=2, ensure_ascii=False) + "\n"  # the record's own order
    golden = GOLDEN / "rpc-over-https.lab.record.json"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text)
    assert golden.is_file(), f"no golden file {golden}; UPDATE_GOLDEN=1 pytest {__file__}"
    assert text == golden.read_text(), "record differs from the golden file (UPDATE_GOLDEN=1)"


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="pdftotext (poppler-utils)")
def test_change_record_pdf_holds_the_step_table_and_is_reproducible(
    seed_run: Book, tmp_path: Path
) -> None:
    pytest.importorskip("weasyprint")
    first, second = tmp_path / "a.pdf", tmp_path / "b.pdf"
    for out in (first, second):
        proc = seed_run.st("evidence", "export", "r1", "--to", "pdf", "-o", out)
        assert proc.returncode == 0, proc.stderr
    assert first.read_bytes() == second.read_bytes()
    text = subprocess.run(
        ["pdftotext", "-layout", str(first), "-"], capture_output=True, text=True, check=True
    ).stdout
    for expected in (
        "Change record CHG-1042",
        "Steps",
        "Who (how)",
        "Exit",
        "Output",
        "Review and sign-off",
        "nspi-set",
        "gc-restart",
        "verify-nspi",
        "succeeded",
        "PDC",
        "EXCHANGE1",
    ):
        assert expected in text, expected


# -- done when: a seed runbook with approval, attestation, failure, backout and resume -----------
CHECK_PREFIXES = (
    'reg query "HKLM\\SYSTEM\\CurrentControlSet\\Services\\NTDS',
    "netstat ",
    'reg query "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Setup\\OC',
    'set "VP="',
)


def exchange_host(kind: str, text: str, call: CommandCall) -> Reply:
    """Checks find nothing done; setting ValidPorts is refused; everything else works."""
    preflight = preflight_reply(text)
    if preflight is not None:
        return preflight
    lines = [
        line
        for line in text.replace("\r\n", "\n").split("\n")
        if line != "@echo off"
        and not re.match(r'for /f "usebackq delims=" |cd /d |@setlocal ', line)
    ]
    if lines[0].startswith(CHECK_PREFIXES):
        return Reply("", "", 1)
    if "/v ValidPorts /t REG_SZ" in text:
        return Reply("", "ERROR: Access is denied.\r\n", 1)
    return Reply(f"The operation completed successfully. ({lines[0][:40]})\r\n", "", 0)


def seed_with_approval(tmp_path: Path, port: int) -> tuple[Path, Path]:
    text = (SEED / "rpc-over-https.md").read_text()
    text = text.replace('version: "1.0"\n', 'version: "1.0"\napproval: required\n', 1)
    gate = (
        '```approval {#change-board title="Change board approves the change"}\n'
        "required: 2\napprovers: [cab]\nexpires_hours: 48\n```\n\n"
    )
    text = text.replace("```cmd {#nspi-set ", gate + "```cmd {#nspi-set ", 1)
    runbook = tmp_path / "rpc-over-https.md"
    runbook.write_text(text)
    env = yaml.safe_load((SEED / "lab.yaml").read_text())
    host_options = {
        "scheme": "http",
        "port": port,
        "transport": "basic",
        "allow_basic_over_http": True,
        "username": "admin",
        "credential": "exchange_admin",
        "read_timeout_sec": 4,
        "operation_timeout_sec": 1,
    }
    for hosts in env["roles"].values():
        for host in hosts:
            host.update(address="127.0.0.1", transport="winrm", winrm=host_options)
    env["approvers"] = {"cab": ["Carol Cab", "Dave Cab"]}
    env["secrets"] = {"exchange_admin": {"env": "LAB_WINRM_PASSWORD"}}
    env_path = tmp_path / "lab-winrm.yaml"
    env_path.write_text(yaml.safe_dump(env, sort_keys=False))
    return runbook, env_path


@both_stores
def test_done_when_seed_run_with_approval_attestation_failure_backout_and_resume(
    tmp_path: Path, wsman: Any
) -> None:
    server = wsman(WindowsHost(exchange_host), password="Lab-pw-91")
    runbook, env = seed_with_approval(tmp_path, server.port)
    (tmp_path / "answers.yml").write_text(
        "operator: Olga Operator\nanswers:\n  validports-set: {decision: confirm, backout: run}\n"
    )
    (tmp_path / "certificate.cer").write_bytes(b"0\x82\x03\x1e0\x82\x02\x06\xa0\x03fake-der")
    book = Book(tmp_path, {"LAB_WINRM_PASSWORD": "Lab-pw-91"})
    assert book.st("keys", "init").returncode == 0
    first = book.run(runbook, "--env", env, "--change", "CHG-1042", "--note", "remote staff")
    assert first.returncode == 3 and "certificate-check" in first.stderr, first.stdout
    assert (
        book.st(
            "confirm",
            "r1",
            "certificate-check",
            "--as",
            OPERATOR,
            "--note",
            "Issued to mail.externaldomain.com",
            "--attach",
            "certificate.cer",
        ).returncode
        == 0
    )
    second = book.resume()
    assert second.returncode == 3 and "runbook approve" in second.stderr, second.stdout
    for name in ("Carol Cab", "Dave Cab"):
        assert book.st("approve", "r1", "change-board", "--as", name).returncode == 0
    third = book.resume("--answers", "answers.yml")
    assert third.returncode == 1, third.stdout + third.stderr
    record = json.loads(book.st("evidence", "export", "r1", "--to", "json").stdout)
    summary = record["summary"]
    assert summary["outcome"]["status"] == "failed"
    assert summary["outcome"]["counts"]["failed"] == 1
    kinds = {d["kind"] for d in summary["deviations"]}
    assert {"failure", "backout"} <= kinds
    assert summary["approvals"][0]["status"] == "approved"
    details = {(d["step"], d["host"]): d["items"] for d in record["details"]}
    (attachment,) = [
        i for i in details[("certificate-check", "EXCHANGE1")] if i["kind"] == "attachment"
    ]
    assert attachment["path"] == "attachments/certificate-check/certificate.cer"
    failed = next(s for s in record["steps"] if s["id"] == "validports-set")
    assert (failed["status"], failed["exit_code"], failed["host"]) == ("failed", 1, "EXCHANGE1")
    assert {i["kind"] for i in details[("validports-set", "EXCHANGE1")]} >= {"backout"}
    bundle = tmp_path / "CHG-1042.zip"
    assert book.st("evidence", "bundle", "r1", "-o", bundle).returncode == 0
    auditor = tmp_path / "auditor"
    auditor.mkdir()
    shutil.copy(bundle, auditor / "evidence.zip")
    shutil.rmtree(book.state)  # the bundle alone must do
    assert verify_bundle(auditor / "evidence.zip").ok
    assert_every_edit_caught(auditor / "evidence.zip", tmp_path / "edits")


def test_any_damaged_byte_of_a_zip_is_reported_never_raised(tmp_path: Path) -> None:
    # CI found an edit inside compressed data that made zipfile raise EOFError: every byte of
    # a small bundle-shaped zip is flipped in turn, and verify must answer, not raise.
    members = {
        "MANIFEST.sha256": b"x  journal.jsonl\n",
        "journal.jsonl": b'{"event":"run-started","seq":1}\n' * 40,
    }
    data = canonical_zip(members)
    target = tmp_path / "edited.zip"
    for offset in range(len(data)):
        edited = bytearray(data)
        edited[offset] ^= 0x20
        target.write_bytes(bytes(edited))
        assert not verify_bundle(target).ok, offset
