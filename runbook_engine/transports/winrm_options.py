"""Options of the WinRM transport (the ``winrm:`` mapping of a host in an environment file).

Option names follow Ansible's ``ansible_winrm_*`` variables (``transport``,
``server_cert_validation``, ``ca_trust_path``, ``message_encryption``,
``read_timeout_sec``, ``operation_timeout_sec``) so an Ansible user recognises them;
``credential`` names a secret of the environment file (ENV-SPEC.md).  Defaults:
scheme https (http when port is 5985), port 5986/5985, path ``/wsman``, transport
ntlm, validation on, message_encryption auto, read 30 s, operation 20 s.

Safe by default: ``transport: basic`` over ``http`` (the password crosses the network in
base64) is refused unless the host says ``allow_basic_over_http: true``;
:func:`weakenings` names what a host's options weaken (certificate validation turned
off, basic over http allowed), which a run warns about and journals
(``transport-weakened``).

No third-party imports: the environment loader imports this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runbook_engine.errors import Problem
from runbook_engine.source.model import Host

#: Option names as Ansible's ``ansible_winrm_*`` variables name them, plus ``credential``.
OPTION_NAMES: frozenset[str] = frozenset(
    {
        "scheme",
        "port",
        "path",
        "transport",
        "server_cert_validation",
        "ca_trust_path",
        "message_encryption",
        "read_timeout_sec",
        "operation_timeout_sec",
        "username",
        "cert_pem",
        "cert_key_pem",
        "credential",
        "allow_basic_over_http",
    }
)
AUTH_METHODS: tuple[str, ...] = ("basic", "ntlm", "kerberos", "certificate", "credssp")
_CHOICES: dict[str, tuple[str, ...]] = {
    "scheme": ("http", "https"),
    "transport": AUTH_METHODS,
    "server_cert_validation": ("validate", "ignore"),
    "message_encryption": ("auto", "always", "never"),
}
_STRINGS = ("path", "ca_trust_path", "username", "cert_pem", "cert_key_pem", "credential")
DEFAULT_READ_TIMEOUT_SEC = 30
DEFAULT_OPERATION_TIMEOUT_SEC = 20


def validate_winrm_options(options: Any, path: Any, line: int) -> list[Problem]:
    """Check a host's ``winrm:`` mapping from an environment file.

    Args:
        options: The mapping as loaded from YAML.
        path: The environment file (``Path`` or ``None``), for the problems.
        line: 1-based line of the mapping (or of the host).

    Returns:
        Every problem found (empty when the options are usable), each naming the key.
    """
    problems: list[Problem] = []

    def bad(message: str) -> None:
        problems.append(Problem(f"winrm: {message}", path, line, code="RB214"))

    if not isinstance(options, dict):
        bad("expected a mapping of options")
        return problems
    for key in options:
        if key not in OPTION_NAMES:
            bad(f"unknown option {key!r}; known options: {', '.join(sorted(OPTION_NAMES))}")
    for key, allowed in _CHOICES.items():
        if key in options and options[key] not in allowed:
            bad(f"{key}: {options[key]!r} is not one of {', '.join(allowed)}")
    for key in _STRINGS:
        if key in options and (not isinstance(options[key], str) or not options[key]):
            bad(f"{key}: expected a non-empty string")
    path_value = options.get("path", "/")
    if isinstance(path_value, str) and not path_value.startswith("/"):
        bad(f"path: {path_value!r} must start with '/' (usually /wsman)")
    port = options.get("port", 5985)
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        bad(f"port: {port!r} is not a TCP port (1-65535)")
    timeouts = {}
    for key, default in (
        ("read_timeout_sec", DEFAULT_READ_TIMEOUT_SEC),
        ("operation_timeout_sec", DEFAULT_OPERATION_TIMEOUT_SEC),
    ):
        value = options.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            bad(f"{key}: {value!r} must be a whole number of seconds, 1 or more")
        else:
            timeouts[key] = value
    if len(timeouts) == 2 and timeouts["read_timeout_sec"] <= timeouts["operation_timeout_sec"]:
        bad(
            f"read_timeout_sec ({timeouts['read_timeout_sec']}) must exceed "
            f"operation_timeout_sec ({timeouts['operation_timeout_sec']}): the server may "
            "hold each poll for operation_timeout_sec before answering"
        )
    allow = options.get("allow_basic_over_http", False)
    if not isinstance(allow, bool):
        bad(f"allow_basic_over_http: {allow!r} must be true or false")
    problems.extend(_auth_problems(options, path, line))
    return problems


def _auth_problems(options: dict[str, Any], path: Any, line: int) -> list[Problem]:
    auth = options.get("transport", "ntlm")
    out: list[str] = []
    if auth == "certificate":
        if not (options.get("cert_pem") and options.get("cert_key_pem")):
            out.append("transport certificate needs both cert_pem and cert_key_pem")
        if _scheme(options) != "https":
            out.append("transport certificate needs scheme https")
    elif auth in ("basic", "ntlm", "credssp") and not options.get("username"):
        out.append(f"transport {auth} needs a username")
    if (
        auth == "basic"
        and _scheme(options) == "http"
        and options.get("allow_basic_over_http") is not True
    ):
        out.append(
            "transport basic over scheme http sends the password in clear text (base64) "
            "and is refused: use scheme https (port 5986), or ntlm/kerberos, or, for a lab "
            "only, set allow_basic_over_http: true (the run warns and journals it)"
        )
    if options.get("message_encryption") == "always" and auth in ("basic", "certificate"):
        out.append(
            f"message_encryption always is impossible with transport {auth}; "
            "use scheme https instead (TLS encrypts the messages)"
        )
    return [Problem(f"winrm: {m}", path, line, code="RB214") for m in out]


def weakenings(options: Any) -> list[str]:
    """What a host's ``winrm:`` options weaken, one sentence each (empty when nothing):
    ``server_cert_validation: ignore`` over https, and basic authentication over http
    allowed with ``allow_basic_over_http``.  A run warns of each at its start and
    journals it (``transport-weakened``), so the change record shows it."""
    if not isinstance(options, dict):
        return []
    out = []
    scheme = _scheme(options)
    if scheme == "https" and options.get("server_cert_validation") == "ignore":
        out.append(
            "server_cert_validation: ignore: the host's TLS certificate is not checked, so "
            "anyone between here and the host can read the session and its credentials"
        )
    if scheme == "http" and options.get("transport") == "basic":
        out.append(
            "allow_basic_over_http: the password crosses the network in clear text (basic "
            "authentication over http)"
        )
    return out


def _scheme(options: dict[str, Any]) -> str:
    return str(options.get("scheme") or ("http" if options.get("port") == 5985 else "https"))


def endpoint_of(host: Host) -> str:
    """Return the WS-Management URL of ``host`` (``https://addr:5986/wsman`` by default)."""
    scheme = _scheme(host.options)
    port = host.options.get("port", 5985 if scheme == "http" else 5986)
    address = f"[{host.address}]" if ":" in host.address else host.address
    return f"{scheme}://{address}:{port}{host.options.get('path', '/wsman')}"


def file_problems(host: Host) -> list[Problem]:
    """Return a problem for each of ``ca_trust_path``, ``cert_pem``, ``cert_key_pem``
    that names a file that does not exist."""
    out = []
    for key in ("ca_trust_path", "cert_pem", "cert_key_pem"):
        value = host.options.get(key)
        if isinstance(value, str) and value and not Path(value).exists():
            out.append(
                Problem(
                    f"winrm: host {host.name}: {key} {value!r} does not exist",
                    None,
                    host.line,
                    code="RB214",
                )
            )
    return out
