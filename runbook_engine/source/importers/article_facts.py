"""Registry values, services and commands described in an article's prose.

* A registry key written on a line of its own (``HKEY_LOCAL_MACHINE\\...`` or ``HKLM\\...``)
  followed by ``Type``, ``Name:`` and ``Value:``/``Data:`` lines is a value; so is a key
  followed by prose naming ``the X key``/``the X value`` and a block of data lines (joined
  into one string when they end with ``;``, as one enters them).
* "set [the] “Display Name” service to Automatic|Manual|Disabled [and start|stop it]" is a
  service; display names of common Windows services are mapped to their key names
  (:data:`SERVICE_NAMES`, from Microsoft's service documentation); others keep the
  display name and are reported.
* "command line (ie. telnet host 143)", or a code block, is a command.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from runbook_engine.source.importers.article_text import Block

KEY = re.compile(
    r"^(HKEY_(?:LOCAL_MACHINE|CURRENT_USER|CLASSES_ROOT|USERS|CURRENT_CONFIG)|HKLM|HKCU|HKCR|HKU|HKCC)(\\[^\n]+?)\\?\s*$"
)
_TYPE = re.compile(r"^\s*Type:?\s+(REG_[A-Z_]+)\s*$", re.I)
_NAME = re.compile(r"^\s*(?:Value )?Name:\s*(.+?)\s*$", re.I)
_DATA = re.compile(r"^\s*(?:Value|Data|Value data):\s*(.*?)\s*$", re.I)
_NAMED = re.compile(r"\b(?:the\s+)?([A-Z][A-Za-z0-9]+)\s+(?:key|value|entry)\b")
_SERVICE = re.compile(
    r"set\s+(?:the\s+)?[“\"'‘]?(?P<display>[^“”\"″'’\n]+?)[”\"″'’]?\s+service\s+to\s+"
    r"(?P<start>automatic|manual|disabled)(?P<rest>[^.\n]*)",
    re.I,
)
_COMMAND = re.compile(
    r"command(?:\s+line|\s+prompt)?\s*\(\s*(?:ie|i\.e|e\.g)\.?,?\s*(?P<cmd>(?:telnet|ping|nslookup|"
    r"tracert|ipconfig|netstat|reg|sc|net|netsh|iisreset|setspn|dcdiag|repadmin|nltest|rpcping|"
    r"curl|dig)\b[^)\n]*)\)",
    re.I,
)
SERVICE_NAMES = {
    "microsoft exchange imap4": "IMAP4Svc",
    "microsoft exchange pop3": "POP3Svc",
    "microsoft exchange smtp": "SMTPSVC",
    "simple mail transfer protocol (smtp)": "SMTPSVC",
    "smtp": "SMTPSVC",
    "world wide web publishing": "W3SVC",
    "iis admin": "IISADMIN",
    "microsoft exchange information store": "MSExchangeIS",
    "microsoft exchange system attendant": "MSExchangeSA",
    "microsoft exchange routing engine": "RESvc",
    "microsoft exchange mta stacks": "MSExchangeMTA",
    "dns server": "DNS",
    "dhcp server": "DHCPServer",
    "remote registry": "RemoteRegistry",
    "print spooler": "Spooler",
    "windows update": "wuauserv",
}
_START = {"automatic": "auto", "manual": "demand", "disabled": "disabled"}


@dataclass(slots=True)
class RegistryValue:
    """A registry value the article sets; ``used`` are the indexes of blocks it consumed."""

    key: str
    name: str
    type: str
    data: str | int | list[str]
    line: int
    used: list[int] = field(default_factory=list)
    assumed: list[str] = field(default_factory=list)


def short_key(text: str) -> str:
    """``HKEY_LOCAL_MACHINE\\x`` as ``HKLM\\x`` (the key as the registry step takes it)."""
    long = {
        "HKEY_LOCAL_MACHINE": "HKLM",
        "HKEY_CURRENT_USER": "HKCU",
        "HKEY_CLASSES_ROOT": "HKCR",
        "HKEY_USERS": "HKU",
        "HKEY_CURRENT_CONFIG": "HKCC",
    }
    root, _, rest = text.strip().partition("\\")
    return long.get(root.upper(), root.upper()) + "\\" + rest.rstrip("\\")


def registry_values(blocks: list[Block]) -> list[RegistryValue]:
    """The registry values described in ``blocks`` (see the module docstring)."""
    found: list[RegistryValue] = []
    for i, block in enumerate(blocks):
        lines = block.text.splitlines()
        if block.kind not in ("para", "data") or not lines or not KEY.match(lines[0].strip()):
            continue
        key = short_key(lines[0])
        kind = name = data = None
        for line in lines[1:]:
            kind = kind or (m.group(1).upper() if (m := _TYPE.match(line)) else None)
            name = name or (m.group(1) if (m := _NAME.match(line)) else None)
            data = data if data is not None else (m.group(1) if (m := _DATA.match(line)) else None)
        if name and data is not None:
            value = RegistryValue(key, name, kind or "REG_SZ", data, block.line, [i])
            if not kind:
                value.assumed.append("type not stated: REG_SZ")
            found.append(_typed(value))
            continue
        named = _named_value(blocks, i)
        if named:
            name, kind, data, used = named
            found.append(
                _typed(
                    RegistryValue(
                        key, name, kind, data, block.line, [i, used], ["type not stated: REG_SZ"]
                    )
                )
            )
    return found


def _named_value(blocks: list[Block], i: int) -> tuple[str, str, str, int] | None:
    for j in range(i + 1, min(i + 4, len(blocks))):
        prose = blocks[j]
        match = _NAMED.search(prose.text) if prose.kind == "para" else None
        if not match or match.group(1).lower() in ("registry", "the", "this"):
            continue
        for k in range(j + 1, min(j + 3, len(blocks))):
            if blocks[k].kind == "data":
                lines = [ln.strip() for ln in blocks[k].text.splitlines() if ln.strip()]
                joined = (
                    "".join(lines) if all(ln.endswith(";") for ln in lines) else "\n".join(lines)
                )
                return match.group(1), "REG_SZ", joined, k
    return None


def _typed(value: RegistryValue) -> RegistryValue:
    if value.type in ("REG_DWORD", "REG_QWORD") and isinstance(value.data, str):
        try:
            value.data = int(value.data.split()[0], 0)  # type: ignore[assignment]
        except (ValueError, IndexError):
            value.assumed.append(f"data {value.data!r} is no number")
    if value.type == "REG_MULTI_SZ" and isinstance(value.data, str):
        value.data = [d for d in re.split(r"\n|\\0", value.data) if d] or [""]
    return value


@dataclass(frozen=True, slots=True)
class Service:
    """A service the article sets: key name, display name, start mode, state (or "")."""

    name: str
    display: str
    start: str
    state: str
    known: bool


def services(text: str) -> list[Service]:
    """The services ``text`` sets (see the module docstring)."""
    out = []
    for match in _SERVICE.finditer(text):
        display = match.group("display").strip()
        rest = match.group("rest").lower()
        state = "running" if re.search(r"\bstart", rest) else "stopped" if "stop" in rest else ""
        name = SERVICE_NAMES.get(display.lower())
        out.append(
            Service(
                name or display,
                display,
                _START[match.group("start").lower()],
                state,
                name is not None,
            )
        )
    return out


def commands(text: str) -> list[str]:
    """Commands ``text`` tells the reader to run at a command line."""
    return [m.group("cmd").strip() for m in _COMMAND.finditer(text)]
