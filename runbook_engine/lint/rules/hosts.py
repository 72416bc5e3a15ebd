"""Host rules: names and addresses belong in parameters; ValidPorts entries need a port.

- RB306: a host name, domain or IPv4 address written into a step body instead of
  a parameter (``{{ exchange_fqdn }}``), so the runbook only works in one place.
- RB307: a ``;``-separated ``host:port`` list (the RPC proxy's ``ValidPorts``
  value, KB 833401) with an entry that has no port - the seed article's
  ``Exchange1.internaldomain.local;`` bug: the RPC proxy ignores such an entry.

Templates are masked before matching (their values are parameters).  Not host
names: loopback and wildcard addresses (127.0.0.1, 0.0.0.0), netmasks,
``x.0.0.0`` version numbers, path components (``C:\\...\\x.dll``,
``HKLM\\SYSTEM\\...``, ``/rpc/rpcproxy.dll``), file names whose suffix is a
file extension (``adsutil.vbs``, ``sysoc.inf``), method calls (``m.group(1)``),
words whose last label is not a top-level domain (``os.path``, ``re.match``) and
public reference sites (:data:`PUBLIC_DOMAINS`, e.g. ``support.microsoft.com``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from runbook_engine.lint.rules.context import TEMPLATE_MARK, Finding, LintContext, body_lines
from runbook_engine.source.model import Step

#: Generic and private-use top-level names (RFC 2606, RFC 6762 ``local``, common
#: internal suffixes); ccTLDs are any other two letters, see :data:`_NOT_CC`.
_TLDS = frozenset(
    {
        "com",
        "net",
        "org",
        "edu",
        "gov",
        "mil",
        "int",
        "info",
        "biz",
        "pro",
        "mobi",
        "aero",
        "asia",
        "coop",
        "jobs",
        "museum",
        "tel",
        "travel",
        "cloud",
        "online",
        "site",
        "tech",
        "store",
        "shop",
        "blog",
        "xyz",
        "top",
        "club",
        "email",
        "global",
        "systems",
        "services",
        "solutions",
        "company",
        "network",
        "digital",
        "live",
        "news",
        "world",
        "website",
        "space",
        "today",
        "agency",
        "local",
        "lan",
        "internal",
        "corp",
        "home",
        "intranet",
        "intra",
        "localdomain",
        "lab",
        "example",
        "test",
        "invalid",
        "localhost",
        "arpa",
        "priv",
        "private",
    }
)
#: Two-letter suffixes that are file extensions or code words more often than ccTLDs.
_NOT_CC = frozenset(
    {
        "py",
        "sh",
        "md",
        "pl",
        "rs",
        "cs",
        "ps",
        "ts",
        "js",
        "db",
        "gz",
        "xz",
        "bz",
        "so",
        "id",
        "in",
        "is",
        "to",
        "do",
        "me",
        "my",
        "no",
        "on",
        "as",
        "at",
        "by",
        "if",
        "or",
        "up",
        "go",
        "ok",
        "cc",
        "hh",
        "el",
        "rb",
        "mo",
        "po",
        "ui",
    }
)
#: File extensions: a dotted word ending in one of these is a file name.
_EXTENSIONS = frozenset(
    {
        "dll",
        "exe",
        "vbs",
        "vbe",
        "js",
        "jse",
        "wsf",
        "wsh",
        "inf",
        "ini",
        "txt",
        "log",
        "reg",
        "cmd",
        "bat",
        "ps1",
        "psm1",
        "psd1",
        "py",
        "sh",
        "msi",
        "msp",
        "sys",
        "cab",
        "zip",
        "gz",
        "tar",
        "tgz",
        "xml",
        "json",
        "yaml",
        "yml",
        "cfg",
        "conf",
        "csv",
        "htm",
        "html",
        "asp",
        "aspx",
        "css",
        "md",
        "pem",
        "crt",
        "cer",
        "der",
        "pfx",
        "p12",
        "key",
        "csr",
        "ldf",
        "mdb",
        "edb",
        "stm",
        "chk",
        "ocx",
        "cpl",
        "msc",
        "mof",
        "adm",
        "admx",
        "oab",
        "bak",
        "tmp",
        "old",
        "doc",
        "docx",
        "xls",
        "xlsx",
        "pdf",
        "png",
        "jpg",
        "gif",
        "ico",
        "rtf",
        "dat",
        "bin",
        "img",
        "iso",
        "vhd",
    }
)
#: Public reference sites a body may name (download and documentation links), with subdomains.
PUBLIC_DOMAINS = frozenset(
    {
        "microsoft.com",
        "windows.com",
        "windowsupdate.com",
        "office.com",
        "github.com",
        "python.org",
        "pypi.org",
        "debian.org",
    }
)
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_NAME = re.compile(
    rf"(?<![\w.\-])(?:\*\.|(?<={TEMPLATE_MARK})\.)?{_LABEL}(?:\.{_LABEL})+\.?(?![\w\-]|\.[\w\-])"
)
_IPV4 = re.compile(r"(?<![\w.])(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?![\w]|\.\d)")
_ALLOWED_IPS = frozenset({"127.0.0.1", "0.0.0.0"})
_HOST_LIST = re.compile(r"[^\s\"'=]*;[^\s\"']*")
_REFERENCE = re.compile(r"^\{\{-?\s*(\w+)\s*-?\}\}$")
_HOST_TYPES = frozenset({"hostname", "fqdn", "domain", "netbios-name", "ipv4", "ip"})
_ENTRY = re.compile(rf"^[A-Za-z0-9.*{TEMPLATE_MARK}-]+(?P<port>:\d+(?:-\d+)?)?$")


def looks_like_host(token: str, before: str) -> bool:
    """Judge a dotted token found in a body.

    Args:
        token: The token (labels separated by dots, maybe ``*.`` in front).
        before: Up to two characters that precede it on its line.
    """
    name = token.rstrip(".").lstrip("*.")
    labels = name.split(".")
    last = labels[-1].lower()
    if len(labels) < 2 or not last.isalpha() or last in _EXTENSIONS:
        return False
    if ".".join(labels[-2:]).lower() in PUBLIC_DOMAINS:
        return False
    if before[-1:] in ("\\", "/") and before[-2:-1] != before[-1:]:
        return False  # a path component: C:\dir\x.y, /rpc/x.y (but //host and \\host are hosts)
    if len(last) == 2:
        return last not in _NOT_CC
    return last in _TLDS


def _ipv4(match: re.Match[str], line: str) -> bool:
    octets = [int(g) for g in match.groups()]
    if any(o > 255 for o in octets) or match.group(0) in _ALLOWED_IPS or octets[0] == 255:
        return False
    if octets[1:] == [0, 0, 0]:
        return False  # 6.0.0.0: an assembly version more often than an address
    return not re.search(r"(?i)version\s*[=:]?\s*[\"']?$", line[: match.start()])


def hard_coded_host(ctx: LintContext) -> Iterator[Finding]:
    """RB306: yield each host name, domain or IPv4 literal in a step body, at its column."""
    for step in ctx.runbook.steps:
        for offset, line in enumerate(body_lines(step)):
            if "." not in line:
                continue
            for match in _IPV4.finditer(line):
                if _ipv4(match, line):
                    yield _host_finding(ctx, step, offset, match.start(), match.group(0), "address")
            for match in _NAME.finditer(line):
                token = match.group(0)
                if line[match.end() : match.end() + 1] == "(" or token.replace(".", "").isdigit():
                    continue
                if looks_like_host(token, line[max(0, match.start() - 2) : match.start()]):
                    col = match.start() + (1 if token.startswith(".") else 0)
                    yield _host_finding(ctx, step, offset, col, token.strip("."), "name")


def _host_finding(
    ctx: LintContext, step: Step, offset: int, col: int, text: str, what: str
) -> Finding:
    return ctx.body_finding(
        step,
        offset,
        col,
        "RB306",
        f"step {step.id!r}: host {what} {text!r} is written into the body; declare a parameter "
        "(type fqdn, hostname, domain or ipv4) and write {{ name }}, so the runbook works in "
        "every environment",
    )


def validports_missing_port(ctx: LintContext) -> Iterator[Finding]:
    """RB307: yield each entry without a port in a ``host:port;host:port`` list, at its column."""
    for step in ctx.runbook.steps:
        raw = step.body.split("\n")
        registry = step.kind == "registry" and "validports" in step.body.lower()
        for offset, line in enumerate(body_lines(step)):
            if ";" not in line:
                continue
            named = registry or "validports" in line.lower()
            for match in _HOST_LIST.finditer(line):
                yield from _list_entries(ctx, step, offset, match, raw[offset], named)


def _host_param(ctx: LintContext, text: str) -> bool:
    """True when ``text`` is ``{{ name }}`` and parameter ``name`` holds one host (by its type)."""
    match = _REFERENCE.match(text)
    param = ctx.runbook.parameters.get(match.group(1)) if match else None
    return param is not None and param.type in _HOST_TYPES


def _list_entries(
    ctx: LintContext, step: Step, offset: int, match: re.Match[str], raw: str, named: bool
) -> Iterator[Finding]:
    """Yield the port-less entries of one ``a;b;c`` token.

    The token counts as a host list when every entry is host-like and at least
    one has a port - or holds a dot, when the line (or a ``registry`` step)
    names ValidPorts.
    """
    entries: list[tuple[int, str, re.Match[str]]] = []
    col = match.start()
    for entry in match.group(0).split(";"):
        parsed = _ENTRY.match(entry)
        if entry and parsed is None:
            return  # not a host list (code, a path list, a sentence)
        if parsed is not None:
            entries.append((col, entry, parsed))
        col += len(entry) + 1
    if not any(parsed.group("port") or (named and "." in entry) for _, entry, parsed in entries):
        return
    for col, entry, parsed in entries:
        text = raw[col : col + len(entry)]
        if parsed.group("port") or (set(entry) == {TEMPLATE_MARK} and not _host_param(ctx, text)):
            continue
        yield ctx.body_finding(
            step,
            offset,
            col,
            "RB307",
            f"step {step.id!r}: entry {text!r} of this "
            "host:port list has no port; every ValidPorts entry must be host:port or "
            "host:first-last, an entry without a port is ignored (KB 833401)",
        )
