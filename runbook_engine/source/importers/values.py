"""Values written into an article: host names, domains, IP addresses, e-mail addresses, ports.

Found with regular expressions and checked with the parameter types of
:mod:`runbook_engine.source.types` (RFC 1123 names, KB 909264 NetBIOS names, RFC 5321
addresses).  A :class:`Catalog` names each distinct value once for the whole import (the
same value is the same parameter in every runbook, so one example environment serves them
all) and replaces the value by ``{{ name }}`` where it stands.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from runbook_engine.source.importers.names import Unique, identifier
from runbook_engine.source.types import TYPES, ValueProblem

TLDS = frozenset(
    [
        "com",
        "net",
        "org",
        "edu",
        "gov",
        "mil",
        "int",
        "info",
        "biz",
        "io",
        "co",
        "uk",
        "de",
        "fr",
        "nl",
        "be",
        "ch",
        "at",
        "au",
        "ca",
        "us",
        "eu",
        "es",
        "it",
        "se",
        "no",
        "dk",
        "fi",
        "pl",
        "cz",
        "ru",
        "jp",
        "cn",
        "in",
        "br",
        "nz",
        "ie",
        "local",
        "lan",
        "corp",
        "internal",
        "intra",
        "intranet",
        "home",
        "test",
        "example",
        "localdomain",
        "arpa",
    ]
)
WELL_KNOWN_PORTS = {
    21: "ftp",
    22: "ssh",
    25: "smtp",
    53: "dns",
    80: "http",
    110: "pop3",
    135: "rpc_endpoint",
    143: "imap",
    389: "ldap",
    443: "https",
    465: "smtps",
    587: "submission",
    593: "rpc_http",
    636: "ldaps",
    993: "imaps",
    995: "pop3s",
    3268: "global_catalog",
    3389: "rdp",
}
_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)")
_FQDN = re.compile(
    r"(?<![\w.@-])(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+([A-Za-z]{2,24})(?![\w-]|\.\w)"
)
_PORTS = re.compile(
    r"\b(?:TCP |UDP |SSL )?ports?\s+(?:of\s+)?"
    r"(\d{1,5}(?:(?:\s*,\s*|\s+and\s+|\s+or\s+)\d{1,5})*)\b(?!-\d)",
    re.I,
)


def type_of(value: str) -> str:
    """The narrowest parameter type ``value`` fits: email, ipv4, fqdn, or string."""
    for name in ("email", "ipv4", "fqdn"):
        try:
            TYPES[name](value)
        except ValueProblem:
            continue
        if name != "fqdn" or value.rsplit(".", 1)[-1].lower() in TLDS:
            return name
    return "string"


@dataclass(slots=True)
class Found:
    """One distinct value: its parameter name, type, the text first seen and its line."""

    name: str
    type: str
    value: str
    line: int


class Catalog:
    """The values of one import, named once, and their substitution into text."""

    def __init__(self) -> None:
        self.found: dict[tuple[str, str], Found] = {}
        self._names = Unique("_")
        self._netbios: dict[str, str] = {}

    def scan(self, text: str, line: int) -> None:
        """Find the values of ``text`` (a block starting at source ``line``)."""
        masked = _EMAIL.sub(
            lambda m: self._add("email", m.group(0), line, "_email") or " " * len(m.group(0)), text
        )
        for match in _IPV4.finditer(masked):
            try:
                ipaddress.IPv4Address(match.group(0))
            except ValueError:
                continue
            self._add("ipv4", match.group(0), line, "")
        for match in _FQDN.finditer(masked):
            if match.group(1).lower() in TLDS and not match.group(0)[0].isdigit():
                self._add("fqdn", match.group(0), line, "")
        for match in _PORTS.finditer(text):
            for number in re.findall(r"\d+", match.group(1)):
                if 1 <= int(number) <= 65535:
                    self._add("port", number, line, "")

    def finish(self, texts: list[tuple[str, int]], data: str = "") -> None:
        """Name the values; a short name that is the first label of a found FQDN and is
        written alone (with a digit, or in capitals and also in the ``data`` lines, such as
        ``PDC:6004;``) becomes a ``netbios-name``; an FQDN that ends another found name
        becomes a ``domain``."""
        fqdns = [f.value for f in self.found.values() if f.type == "fqdn"]
        for f in list(self.found.values()):
            if f.type == "fqdn" and any(o.lower().endswith("." + f.value.lower()) for o in fqdns):
                f.type = "domain"
        labels = {v.split(".")[0].lower() for v in fqdns}
        for text, line in texts:
            for word in re.findall(
                r"(?<![\w.@\\-])([A-Za-z][A-Za-z0-9-]{0,14})(?![\w-]|\.\w)", text
            ):
                in_data = re.search(rf"(?<![\w.]){re.escape(word)}(?![\w-]|\.\w)", data)
                if (
                    word.lower() in labels
                    and (any(c.isdigit() for c in word) or (word.isupper() and in_data))
                    and word.lower() not in self._netbios
                ):
                    self._netbios[word.lower()] = word
                    self._add("netbios-name", word, line, "")
        for f in sorted(self.found.values(), key=lambda f: (f.line, f.value.lower())):
            f.name = self._names(self._base(f))

    def _add(self, kind: str, value: str, line: int, _: str) -> None:
        key = (kind, value.lower())
        if key not in self.found:
            self.found[key] = Found("", kind, value, line)

    @staticmethod
    def _base(f: Found) -> str:
        if f.type == "port":
            return (
                WELL_KNOWN_PORTS[int(f.value)] + "_port"
                if int(f.value) in WELL_KNOWN_PORTS
                else "port_" + f.value
            )
        if f.type == "email":
            return identifier(f.value.split("@")[0]) + "_email"
        if f.type == "ipv4":
            return "ip_address"
        first = identifier(f.value.split(".")[0], fallback="host")
        return first + {"fqdn": "_fqdn", "domain": "_domain", "netbios-name": "_netbios"}[f.type]

    def substitute(self, text: str) -> tuple[str, set[str]]:
        """``text`` with every found value replaced by ``{{ name }}``, and the names used."""
        used: set[str] = set()

        def put(kind: str, value: str) -> str | None:
            f = self.found.get((kind, value.lower()))
            if f is None:
                return None
            used.add(f.name)
            return "{{ " + f.name + " }}"

        def repl(kind: str):
            def inner(m: re.Match[str]) -> str:
                got = put(kind, m.group(0))
                if got is None and kind == "fqdn":
                    got = put("domain", m.group(0))
                return got or m.group(0)

            return inner

        text = _EMAIL.sub(repl("email"), text)
        text = _IPV4.sub(repl("ipv4"), text)
        text = _FQDN.sub(repl("fqdn"), text)
        words = "|".join(re.escape(w) for w in sorted(self._netbios, key=len, reverse=True))
        if words:
            pattern = re.compile(rf"(?<![\w.@\\{{-])({words})(?![\w-]|\.\w)", re.I)
            text = pattern.sub(lambda m: put("netbios-name", m.group(1)) or m.group(0), text)

        def ports(m: re.Match[str]) -> str:
            return re.sub(r"\d+", lambda d: put("port", d.group(0)) or d.group(0), m.group(0))

        return _PORTS.sub(ports, text), used
