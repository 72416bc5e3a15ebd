"""Typed parameter values: validation and coercion.

Each type turns a value from YAML (or the command line) into its Python form
or says why it cannot.  Sources: host names follow RFC 1123 §2.1 and RFC 952
(labels of letters, digits and hyphens, 1-63 characters, not starting or
ending with a hyphen, 253 characters in all); NetBIOS names follow Microsoft's
"Naming conventions in Active Directory" (KB 909264: at most 15 characters, none
of ``\\ / : * ? " < > |``); e-mail addresses are checked with the simple
``local@domain`` shape of RFC 5321 §4.1.2 (dot-atom local part).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any

_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_NETBIOS_BAD = set('\\/:*?"<>|., ')
_LOCAL_PART = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")


class ValueProblem(ValueError):
    """A value does not fit its type; the message says why and what is expected."""


class ControlCharacter(ValueProblem):
    """A value holds a control character (refused for every type)."""


_CONTROL_NAMES = {0: "NUL", 0x0A: "a newline", 0x0D: "a carriage return", 0x1B: "ESC", 0x7F: "DEL"}


def is_refused_char(char: str, *, multiline: bool = False) -> bool:
    """Whether ``char`` may not stand in a parameter value.

    Refused: C0 controls (U+0000-U+001F) except TAB, DEL, C1 controls (U+0080-U+009F),
    the Unicode line and paragraph separators and the bidirectional overrides and
    isolates (U+202A-U+202E, U+2066-U+2069), which make text show other than it runs.
    A newline (U+000A) only when ``multiline``.
    """
    code = ord(char)
    if char == "\t" or (char == "\n" and multiline):
        return False
    return (
        code < 0x20
        or 0x7F <= code <= 0x9F
        or code in (0x2028, 0x2029)
        or 0x202A <= code <= 0x202E
        or 0x2066 <= code <= 0x2069
    )


def check_characters(value: Any, *, multiline: bool = False) -> None:
    """Refuse control characters in ``value`` (text, or the text items of a list).

    Raises:
        ValueProblem: naming the first refused character and where it stands.
    """
    texts = value if isinstance(value, list) else [value]
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            continue
        for pos, char in enumerate(text):
            if is_refused_char(char, multiline=multiline):
                code = ord(char)
                name = f"U+{code:04X}" + (
                    f" ({_CONTROL_NAMES[code]})" if code in _CONTROL_NAMES else ""
                )
                where = f"item {index + 1}, " if isinstance(value, list) else ""
                allowed = (
                    ""
                    if multiline
                    else " (a newline only in a string parameter declared 'multiline: true')"
                )
                raise ControlCharacter(
                    f"holds the control character {name} at {where}character {pos + 1}: "
                    f"control characters are refused in every value{allowed}"
                )


def _hostname(value: Any) -> str:
    text = _text(value, "a host name")
    if len(text) > 253:
        raise ValueProblem(f"{text!r} is longer than 253 characters (RFC 1123)")
    labels = text.rstrip(".").split(".")
    for label in labels:
        if not _LABEL.match(label):
            raise ValueProblem(
                f"{text!r} is not a valid host name: label {label!r} must be 1-63 letters, "
                "digits or hyphens, not starting or ending with a hyphen (RFC 1123)"
            )
    return text


def _fqdn(value: Any) -> str:
    text = _hostname(value)
    if len(text.rstrip(".").split(".")) < 2:
        raise ValueProblem(
            f"{text!r} is not fully qualified: expected host.domain, e.g. mail.example.com"
        )
    if text.rstrip(".").split(".")[-1].isdigit():
        raise ValueProblem(f"{text!r} looks like an IP address, not a DNS name")
    return text


def _domain(value: Any) -> str:
    return _fqdn(value)


def _netbios(value: Any) -> str:
    text = _text(value, "a NetBIOS name")
    if not 1 <= len(text) <= 15:
        raise ValueProblem(f"{text!r} is not a NetBIOS name: 1 to 15 characters (KB 909264)")
    bad = sorted(set(text) & _NETBIOS_BAD)
    if bad:
        raise ValueProblem(f"{text!r} is not a NetBIOS name: it holds {''.join(bad)!r} (KB 909264)")
    return text


def _ipv4(value: Any) -> str:
    try:
        return str(ipaddress.IPv4Address(_text(value, "an IPv4 address")))
    except ipaddress.AddressValueError:
        raise ValueProblem(
            f"{value!r} is not an IPv4 address (dotted quad, e.g. 192.0.2.10)"
        ) from None


def _ip(value: Any) -> str:
    try:
        return str(ipaddress.ip_address(_text(value, "an IP address")))
    except ValueError:
        raise ValueProblem(f"{value!r} is not an IPv4 or IPv6 address") from None


def _port(value: Any) -> int:
    number = _int(value)
    if not 1 <= number <= 65535:
        raise ValueProblem(f"{number} is not a TCP/UDP port: expected 1 to 65535")
    return number


def _int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueProblem(f"{value!r} is not an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()):
        return int(value)
    raise ValueProblem(f"{value!r} is not an integer")


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "yes", "on", "1"}:
        return True
    if isinstance(value, str) and value.strip().lower() in {"false", "no", "off", "0"}:
        return False
    raise ValueProblem(f"{value!r} is not a boolean: expected true or false")


def _path(value: Any) -> str:
    text = _text(value, "a path")
    if "\0" in text or not text:
        raise ValueProblem(f"{value!r} is not a usable path")
    return text


def _string(value: Any) -> str:
    if isinstance(value, (dict, list)):
        raise ValueProblem(f"expected text, got a {type(value).__name__}")
    return value if isinstance(value, str) else str(value)


def _email(value: Any) -> str:
    text = _text(value, "an e-mail address")
    local, sep, domain = text.rpartition("@")
    if not sep or not _LOCAL_PART.match(local) or len(local) > 64:
        raise ValueProblem(f"{text!r} is not an e-mail address (local-part@domain, RFC 5321)")
    try:
        _fqdn(domain)
    except ValueProblem:
        raise ValueProblem(f"{text!r} is not an e-mail address: bad domain {domain!r}") from None
    return text


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise ValueProblem(f"{value!r} is not {what}: expected text")
    text = value.strip()
    if not text or text != value:
        raise ValueProblem(f"{value!r} is not {what}")
    return text


#: Type name -> validator.  ``choice`` and ``list`` are handled by :func:`coerce`.
TYPES: dict[str, Callable[[Any], Any]] = {
    "string": _string,
    "hostname": _hostname,
    "fqdn": _fqdn,
    "netbios-name": _netbios,
    "domain": _domain,
    "ipv4": _ipv4,
    "ip": _ip,
    "port": _port,
    "path": _path,
    "bool": _bool,
    "int": _int,
    "email": _email,
    "choice": _string,
    "list": _string,
}


def coerce(
    type_name: str,
    value: Any,
    *,
    choices: tuple[Any, ...] = (),
    items: str = "string",
    multiline: bool = False,
) -> Any:
    """Validate ``value`` as ``type_name`` and return its Python form.

    Args:
        type_name: A key of :data:`TYPES`.
        value: The value as read from YAML or a flag.
        choices: Allowed values, for ``choice``.
        items: Item type, for ``list``.
        multiline: Allow newlines (``string`` parameters declared ``multiline: true``);
            other control characters are refused for every type
            (:func:`check_characters`).

    Returns:
        ``str`` for name and address types, ``int`` for ``int``/``port``,
        ``bool`` for ``bool``, ``list`` for ``list``.

    Raises:
        ValueProblem: the value does not fit; the message says what is expected.
    """
    check_characters(value, multiline=multiline and type_name == "string")
    if type_name == "choice":
        if value not in choices:
            allowed = ", ".join(repr(c) for c in choices)
            raise ValueProblem(f"{value!r} is not one of the choices: {allowed}")
        return value
    if type_name == "list":
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, list):
            raise ValueProblem(f"expected a list, got {type(value).__name__}")
        out = []
        for index, item in enumerate(value):
            try:
                out.append(TYPES[items](item))
            except ValueProblem as exc:
                raise ValueProblem(f"item {index + 1}: {exc}") from None
        return out
    return TYPES[type_name](value)
