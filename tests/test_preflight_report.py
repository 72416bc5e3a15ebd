"""What a worker journals and says of a failed preflight (:class:`PreflightReport`)."""

from __future__ import annotations

from runbook_engine.run.preflight import PreflightReport
from runbook_engine.transports.preflight import HostCheck


def _report() -> PreflightReport:
    return PreflightReport(
        [
            HostCheck("web1", "ssh", "connect", True, "reached"),
            HostCheck("web1", "ssh", "tool curl", False, "not found", "install curl"),
            HostCheck("-", "-", "secret token", False, "RBE_TOKEN is not set"),
        ]
    )


def test_failure_text_names_host_and_transport_only_for_host_checks() -> None:
    assert _report().failure_text() == (
        "web1 (ssh) tool curl: not found (install curl); secret token: RBE_TOKEN is not set"
    )


def test_journal_failures_hold_each_failed_check() -> None:
    assert _report().journal_failures() == [
        {"host": "web1", "transport": "ssh", "check": "tool curl", "detail": "not found",
         "fix": "install curl"},
        {"host": "-", "transport": "-", "check": "secret token",
         "detail": "RBE_TOKEN is not set", "fix": ""},
    ]  # fmt: skip
    assert PreflightReport([HostCheck("a", "local", "connect", True, "ok")]).failure_text() == ""
