"""Content review of the Exchange 2003 runbooks (issue 13 part 4): each fix, checked in the
rendered guides of the article's lab and of the single server.

Rendering only (nothing runs here). The ValidPorts merge itself runs end to end against the
repository's cmd.exe model in tests/test_e2e_winrm.py
(test_validports_merge_keeps_other_servers_entries).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LIB = ROOT / "runbooks" / "exchange2003"
ENVS = ("lab", "single-server")
REM = "@rem Save these lines as a .cmd file and run it"


def render(runbook: str, env: str) -> str:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "runbook_engine",
            "render",
            str(LIB / runbook),
            "--env",
            str(LIB / "environments" / f"{env}.yaml"),
            "--to",
            "md",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def step_index(guide: str, step_id: str) -> int:
    index = guide.find(f'<a id="{step_id}"></a>')
    assert index >= 0, f"step {step_id} not in the guide"
    return index


def code_blocks(guide: str) -> list[str]:
    return re.findall(r"^```cmd\n(.*?)^```$", guide, re.M | re.S)


@pytest.mark.parametrize(
    "runbook", ["recipient-policy-report-only.md", "recipient-policy-cleanup.md"]
)
def test_guard_gate_precedes_start_mailbox_management_process(runbook: str) -> None:
    guide = render(runbook, "lab")
    run = step_index(guide, "mm-run")
    assert step_index(guide, "mm-run-policies-list") < step_index(guide, "mm-run-guard") < run
    assert "Start Mailbox Management Process" in guide[run:]
    assert "runs *every* Mailbox" in guide


@pytest.mark.parametrize("env", ENVS)
def test_mailbox_manager_edit_button_and_size_limit_cleared(env: str) -> None:
    guide = render("recipient-policy-report-only.md", env)
    create = guide[step_index(guide, "mm-policy-create") :]
    create = create[: create.index("<a id=", 10)]
    assert "click **Edit...**" in create and "Modify...** and set" not in create
    assert "**Message size (KB)** **cleared**" in create  # default mm_size_limit_kb: 0
    assert "exceeds **both**" in guide


def test_mailbox_manager_size_limit_is_a_parameter(tmp_path: Path) -> None:
    env = (
        (LIB / "environments" / "lab.yaml")
        .read_text()
        .replace("  mm_notify_users: true", "  mm_notify_users: true\n  mm_size_limit_kb: 2048")
    )
    (tmp_path / "lab.yaml").write_text(env)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "runbook_engine",
            "render",
            str(LIB / "recipient-policy-cleanup.md"),
            "--env",
            str(tmp_path / "lab.yaml"),
            "--to",
            "md",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    assert "older than 30 days and larger than 2048 KB" in done.stdout
    assert "**Message size (KB)** checked, `2048`" in done.stdout


@pytest.mark.parametrize("runbook", ["mail-contact-forwarding.md", "mail-contact-smtp-address.md"])
def test_contact_check_reads_the_dn_not_an_unescaped_filter(runbook: str) -> None:
    guide = render(runbook, "lab")
    check = guide[step_index(guide, "contact-exists") :]
    check = check[: check.index("<a id=", 10)]
    if "```cmd" in check:  # shown where the create step shows its check
        assert "-name" not in check
    assert not any("dsquery contact" in block for block in code_blocks(guide))
    assert (
        'dsquery * "CN=Jane Roe (external),OU=External Contacts,DC=internaldomain,DC=local"'
        " -scope base -attr objectClass" in guide
    )
    assert "RFC 4515" in guide


@pytest.mark.parametrize("env", ENVS)
@pytest.mark.parametrize("runbook", sorted(p.name for p in LIB.glob("*.md")))
def test_batch_bodies_say_save_as_cmd(runbook: str, env: str) -> None:
    for block in code_blocks(render(runbook, env)):
        if "%%" in block or re.search(r"(?i)exit /b", block):
            assert block.startswith(REM), block[:200]


@pytest.mark.parametrize("env", ENVS)
def test_validports_entries_as_documented(env: str) -> None:
    guide = render("rpc-over-https.md", env)
    single = env == "single-server"
    ex, fq = (
        ("SRV1", "srv1.corp.example.local")
        if single
        else ("EXCHANGE1", "exchange1.internaldomain.local")
    )
    entries = [f"{ex}:6001-6002", f"{fq}:6001-6002", f"{ex}:6004", f"{fq}:6004"]
    if not single:
        entries += ["PDC:6004", "pdc.internaldomain.local:6004"]
    merge = guide[step_index(guide, "validports-set") :]
    merge = merge[: merge.index("<a id=", 10)]
    # The entries are one long value (a {% set %} of the runbook): printed once, in the
    # values box, cut into lines; the merge and its verification refer to it.
    assert 'set "MERGED=!KEEP!‹V1›"' in merge
    assert guide.count('"!MINE!"==";‹V1›"') == 1  # in the step or in appendix A
    box = guide[guide.index("### Values to copy") : guide.index("<a id=", guide.index("```text"))]
    wanted = ";".join(entries)
    assert f"**V1** — {len(wanted)} characters" in box
    cut = [line.split(" │ ", 1)[1] for line in box.splitlines() if " │ " in line]
    assert "".join(cut) == wanted
    assert ":593" not in merge and "mail." not in merge
    assert "[MS-RPCH] 2.1" in guide and "Proxy Server That Is a Front-End Server" in guide
    assert "echo WARNING: ValidPorts holds %%k for a server not in this environment" in merge


@pytest.mark.parametrize("env", ENVS)
def test_no_netcis_answer_file(env: str) -> None:
    guide = render("rpc-over-https.md", env)
    assert not any("netcis = " in block for block in code_blocks(guide))  # no answer file
    assert "sysocmgr /i" not in guide
    install = guide[step_index(guide, "rpcproxy-install") :]
    assert "Networking Services" in install[:2000] and "RPC over HTTP Proxy" in install[:2000]
    assert '/v netcis | find "0x1"' in guide  # the registry check stays


@pytest.mark.parametrize(
    ("env", "gate", "restart"),
    [
        ("lab", "gc-restart-go", "gc-restart"),
        ("single-server", "server-restart-go", "server-restart"),
    ],
)
def test_restart_steps_follow_a_go_no_go_gate(env: str, gate: str, restart: str) -> None:
    guide = render("rpc-over-https.md", env)
    assert step_index(guide, gate) < step_index(guide, restart)
    between = guide[step_index(guide, gate) : step_index(guide, restart)]
    assert "Go/no-go" in between and "Do **not** skip this gate" in between
    assert between.count('<a id="') == 1  # nothing else runs between the gate and the restart


def test_nspi_value_is_merged_never_overwritten() -> None:
    # Paper review: the NSPI value is merged as ValidPorts is: the value found is saved for
    # the backout, each protocol sequence already there is kept with a warning, and
    # ncacn_http:6004 is written after them (tests/test_e2e_winrm.py runs it).
    guide = render("rpc-over-https.md", "lab")
    step = guide[step_index(guide, "nspi-set") :]
    step = step[: step.index("<a id=", 10)]
    assert "echo NSPI=!NS!" in step and "the entry is kept" in step
    assert '/d "!KEEP!ncacn_http:6004"' in step and "exit /b 1" not in step


@pytest.mark.parametrize("env", ENVS)
@pytest.mark.parametrize("runbook", sorted(p.name for p in LIB.glob("*.md")))
def test_bodies_reading_bang_variables_set_delayed_expansion(runbook: str, env: str) -> None:
    # Paper review: a .cmd file saved from the guide runs without the tool's own
    # `setlocal EnableDelayedExpansion`; `!NS!` then stays literal text.
    for block in code_blocks(render(runbook, env)):
        if re.search(r"![A-Za-z_]\w*!", block):
            assert "setlocal EnableDelayedExpansion" in block, block[:200]


def test_by_hand_verifications_say_ok_or_failed() -> None:
    # An `exit /b` in a saved .cmd file shows nothing: the person must see the verdict.
    guide = render("rpc-over-https.md", "lab")  # the lab's hosts are reached by hand
    block = guide[step_index(guide, "verify-validports") :]
    block = block[: block.index("<a id=", 10)]
    assert "echo OK: ValidPorts holds exactly" in block and "echo FAILED:" in block


def test_contact_address_with_ldap_filter_syntax_is_refused(tmp_path: Path) -> None:
    # RFC 4515: '*', '(', ')', '\' and NUL mean something in the uniqueness check's filter.
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "runbook_engine",
            "run",
            str(LIB / "mail-contact-smtp-address.md"),
            "--env",
            str(LIB / "environments" / "lab.yaml"),
            "--set",
            "contact_external_address=jane*x@example.com",
            "--only",
            "contact-values-check",
            "--state-dir",
            str(tmp_path / "state"),
            "--no-input",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "would be read as LDAP filter syntax" in done.stdout
    assert "'*'" in done.stdout
