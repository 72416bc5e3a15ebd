"""Preflight (``runbook preflight RUNBOOK --env ENV``, and the start of ``runbook run``):
before step 1, is every host reachable, does every secret resolve, do the probes' targets
resolve?

It reads the tailored runbook (nothing runs that a step holds) and checks:

* **secrets**: every secret parameter and every WinRM credential resolves from its source
  (:mod:`runbook_engine.evidence.secrets`); a failure names the source, never a value;
* **hosts**: per host of the steps that will run, its transport's own preflight
  (:meth:`runbook_engine.transports.TransportInfo.check`: ``local`` interpreters and
  programs, ``winrm`` connection, authentication, cmd.exe and programs, ``ssh`` host key,
  login, ``sh``, ``setsid``, become, interpreters and programs; ``manual`` hosts are listed
  "by hand");
* **probes**: the host each probe connects to (``connect``, ``host`` or the URL's host)
  resolves in DNS from this machine (``dns`` probes are left to their own step).

The programs a host needs are found in the steps: ``reg.exe`` for ``registry`` steps,
``sc.exe`` for ``service`` steps, and in ``cmd`` and ``powershell`` bodies the Windows
tools of :data:`WINDOWS_TOOLS` used as commands and every ``*.vbs`` path; on ``ssh`` hosts,
the programs ``sh`` and ``bash`` bodies call (:func:`~runbook_engine.transports.shell_words.
shell_programs`).
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from runbook_engine.errors import InputError
from runbook_engine.evidence.secrets import run_secrets
from runbook_engine.transports import TRANSPORTS
from runbook_engine.transports.preflight import HostCheck, Needs
from runbook_engine.transports.shell_words import shell_programs

if TYPE_CHECKING:
    from pathlib import Path

    from runbook_engine.source.model import Host
    from runbook_engine.tailor.loading import Loaded
    from runbook_engine.tailor.tailoring import TailoredStep

#: Windows programs looked for when a cmd or powershell body calls them.
WINDOWS_TOOLS = (
    "reg", "sc", "dsquery", "dsget", "dsmod", "dsadd", "dsrm", "netsh", "cscript", "wscript",
    "iisreset", "setspn", "ntdsutil", "repadmin", "dcdiag", "nltest", "certutil", "sysocmgr",
)  # fmt: skip
_TOOL = re.compile(r"(?im)(?:^|[\s(&|@])(" + "|".join(WINDOWS_TOOLS) + r")(?:\.exe)?(?=[\s)&|]|$)")
#: A script path (``%SystemDrive%\Inetpub\AdminScripts\adsutil.vbs``); values are left out.
_SCRIPT = re.compile(r'(?i)"?([^\s"!$]*\.vbs)\b')
_DECLARATIVE_TOOLS = {"registry": "reg.exe", "service": "sc.exe"}


@dataclass
class PreflightReport:
    """What a preflight found.

    Attributes:
        checks: One line per check, hosts in environment order, then secrets and probes.
        secrets: The secret values that resolved (for redacting what is written about the
            checks; never shown, never in :meth:`to_dict`).
    """

    checks: list[HostCheck] = field(default_factory=list)
    secrets: dict[str, str] = field(default_factory=dict, repr=False)
    #: The runbook loaded with its secrets resolved (``None`` when they did not resolve):
    #: a run that starts after the preflight uses it instead of resolving them again.
    loaded: Loaded | None = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        """True when no check failed (a host reached by hand is not a failure)."""
        return all(c.ok is not False for c in self.checks)

    @property
    def failures(self) -> list[HostCheck]:
        """The checks that failed."""
        return [c for c in self.checks if c.ok is False]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``ok``, ``failed`` (count) and ``checks``."""
        return {
            "ok": self.ok,
            "failed": len(self.failures),
            "checks": [c.to_dict() for c in self.checks],
        }

    def summary(self) -> dict[str, Any]:
        """What a run journals of the preflight that let it start (``run-started``)."""
        by_hand = sorted({c.host for c in self.checks if c.ok is None})
        return {"ok": self.ok, "checks": len(self.checks), "by_hand": by_hand}

    def journal_failures(self) -> list[dict[str, str]]:
        """The failed checks as the ``failures`` field of a ``preflight`` event: per
        failure its ``host``, ``transport``, ``check``, ``detail`` and ``fix``."""
        return [
            {"host": c.host, "transport": c.transport, "check": c.check, "detail": c.detail,
             "fix": c.fix}
            for c in self.failures
        ]  # fmt: skip

    def failure_text(self) -> str:
        """The failed checks on one line, ``; ``-separated: ``HOST (TRANSPORT) CHECK:
        DETAIL (FIX)``, without host and transport for run-wide checks (secrets, probes)."""
        return "; ".join(
            (f"{c.host} ({c.transport}) " if c.transport != "-" else "")
            + f"{c.check}: {c.detail}"
            + (f" ({c.fix})" if c.fix else "")
            for c in self.failures
        )

    def error(self) -> InputError:
        """The error that refuses a run (exit 2): one line per failure, host and fix."""
        lines = [
            f"preflight: {c.host} ({c.transport}) {c.check}: {c.detail}"
            + (f"; {c.fix}" if c.fix else "")
            for c in self.failures
        ]
        lines.append("nothing was started; fix the above, or run with --no-preflight")
        return InputError("\n".join(lines))


def tools_in(ts: TailoredStep, transport: str = "local") -> list[str]:
    """The programs and script paths step ``ts`` calls on a host of ``transport`` (see
    the module docstring)."""
    kind = ts.step.kind
    if kind in _DECLARATIVE_TOOLS:
        return [_DECLARATIVE_TOOLS[kind]]
    if kind in ("sh", "bash") and transport == "ssh":
        return shell_programs(ts.run_body or ts.body)
    if kind not in ("cmd", "powershell"):
        return []
    body = ts.run_body or ts.body
    found = {m.group(1).lower() + ".exe" for m in _TOOL.finditer(body)}
    found |= {m.group(1) for m in _SCRIPT.finditer(body)}
    return sorted(found)


def host_needs(
    loaded: Loaded, excluded: dict[tuple[str, str], str] | None = None
) -> list[tuple[Host, Needs]]:
    """Every host a run of ``loaded`` reaches and what its steps need there.

    Steps a ``when=`` or the selection (``excluded``) leaves out are not counted; probes
    run from this machine and need nothing of their host; check and backout helpers
    count on the hosts of the step that names them.
    """
    tailored = loaded.tailored
    hosts: dict[tuple[str, str, str], Host] = {}
    kinds: dict[tuple[str, str, str], set[str]] = {}
    tools: dict[tuple[str, str, str], dict[str, str]] = {}
    for ts in tailored.steps:
        if ts.skip_reason:
            continue
        helpers = [tailored.helpers[h] for h in (ts.step.check, ts.step.backout) if h]
        for host in ts.hosts:
            if excluded and (ts.id, host.name) in excluded:
                continue
            key = (host.transport, host.name, host.address)
            hosts.setdefault(key, host)
            for one in [ts, *helpers]:
                if one.step.kind in ("probe", "manual", "approval"):
                    continue
                kinds.setdefault(key, set()).add(one.step.kind)
                for tool in tools_in(one, host.transport):
                    tools.setdefault(key, {}).setdefault(tool, ts.id)
    return [
        (host, Needs(frozenset(kinds.get(key, set())), tools.get(key, {})))
        for key, host in hosts.items()
    ]


def probe_targets(loaded: Loaded) -> dict[str, str]:
    """Host names the run's probes connect to -> the first probe step naming it."""
    out: dict[str, str] = {}
    for ts in loaded.tailored.steps:
        if ts.step.kind != "probe" or ts.skip_reason:
            continue
        # Imported here: a run without probes needs no http/ssl/smtp/imap clients (~20 ms).
        from runbook_engine.probes import parse_probe
        from runbook_engine.probes.spec import DnsProbe

        spec = parse_probe(ts.body, ts.step.span.path, ts.step.body_line)
        if isinstance(spec, DnsProbe):
            continue
        name = getattr(spec, "connect", None) or getattr(spec, "host", None)
        if name is None and getattr(spec, "url", None):
            name = urlsplit(spec.url).hostname  # type: ignore[attr-defined]
        if name:
            out.setdefault(str(name), ts.id)
    return out


def preflight(
    runbook_path: Path,
    env_path: Path | None,
    overrides: dict[str, str],
    excluded: dict[tuple[str, str], str] | None = None,
    loaded: Loaded | None = None,
) -> PreflightReport:
    """Check that a run of the runbook in the environment can start (module docstring).

    Args:
        runbook_path, env_path, overrides: As ``runbook run`` takes them.
        excluded: Step results the run's selection leaves out (not checked).
        loaded: The runbook as loaded already without secrets (``runbook run``), or
            ``None`` to load it here.

    Returns:
        The report; :attr:`PreflightReport.ok` says whether the run may start.

    Raises:
        InputError: the runbook, environment or values are bad (as ``runbook run``).
    """
    from runbook_engine.tailor.loading import load

    if loaded is None:
        loaded = load(runbook_path, env_path, overrides, need_env=True)
    report = PreflightReport()
    secrets, secret_checks, report.loaded = _secrets(runbook_path, env_path, overrides)
    report.secrets = secrets
    for host, needs in host_needs(loaded, excluded):
        info = TRANSPORTS.get(host.transport)
        if info is None:
            report.checks.append(
                HostCheck(host.name, host.transport, "connect", False, "unknown transport")
            )
            continue
        report.checks.extend(info.check(host, secrets, needs))
    report.checks.extend(secret_checks)
    for name, step in probe_targets(loaded).items():
        report.checks.append(_resolves(name, step))
    return report


def _secrets(
    runbook_path: Path, env_path: Path | None, overrides: dict[str, str]
) -> tuple[dict[str, str], list[HostCheck], Loaded | None]:
    """The run's secrets as far as they resolve, and a check line for each failure (or
    one line saying they all resolved), and the runbook loaded with them (``None``
    when they did not resolve)."""
    from runbook_engine.tailor.loading import load

    try:
        loaded = load(runbook_path, env_path, overrides, with_secrets=True, need_env=True)
        found = run_secrets(loaded)
    except InputError as exc:
        problems = exc.problems or []
        lines = [
            HostCheck("-", "-", "secrets", False, p.format(), _SECRET_FIX) for p in problems
        ] or [HostCheck("-", "-", "secrets", False, exc.message, _SECRET_FIX)]
        return {}, lines, None
    names = ", ".join(sorted(found)) or "none needed"
    return found, [HostCheck("-", "-", "secrets", True, f"resolved: {names}")], loaded


def _resolves(name: str, step: str) -> HostCheck:
    try:
        addresses = sorted({str(a[4][0]) for a in socket.getaddrinfo(name, None)})
    except (OSError, UnicodeError) as exc:
        return HostCheck(
            "-",
            "-",
            f"probe target {name}",
            False,
            f"does not resolve ({exc})",
            f"fix the name step {step} connects to, or give the probe 'connect:' an address",
        )
    return HostCheck("-", "-", f"probe target {name}", True, ", ".join(addresses[:4]))


_SECRET_FIX = "set the variable, keyring entry or prompt the environment file names for it"
