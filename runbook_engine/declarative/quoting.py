"""Quote one argument for a program started by cmd.exe (reg.exe, sc.exe).

Two parsers read a command line in turn, and both are honoured:

1. cmd.exe expands ``%NAME%`` first (phase 1), then treats ``^ & | < > ( )``
   outside double quotes as special, ``^`` escaping the next character (phase 2).
   On a command line (``cmd /c``, a prompt, a one-line WinRM command) an
   undefined ``%NAME%`` is left as written, so ``^%`` keeps a percent sign
   literal; in a batch file an undefined variable becomes empty and ``%%`` is a
   literal percent sign instead (``cmd /?``, ``set /?``; Windows Server 2003).
2. The program splits its command line by the Microsoft C runtime rules
   (``CommandLineToArgvW``): ``"..."`` groups, ``\\"`` is a literal quote, and
   backslashes are literal unless they precede a quote, where they are doubled.

Pieces of one argument that cmd must see outside quotes (a ``%`` sign) are
written between quoted pieces, which the C runtime joins into one argument.
An argument holding a double quote is written with every quote as ``^"``, so
cmd never enters quote mode and every special character is escaped with ``^``.
"""

from __future__ import annotations

import re

_NEEDS_QUOTES = re.compile(r'[\s"&|<>^()]')
_CMD_SPECIAL = re.compile(r"([\^&|<>()])")


def argument(text: str, *, batch: bool = False, quote: bool = True) -> str:
    """Return ``text`` as one argument on a cmd.exe line (or in a batch file with ``batch``).

    Args:
        text: The argument as the program must receive it.
        batch: The line goes into a ``.cmd`` file (``%`` written ``%%``) rather
            than onto a command line (``%`` written ``^%``).
        quote: Always wrap in double quotes; otherwise only when needed.

    Returns:
        The text to put on the line.  ``argument('C:\\dir\\')`` is ``"C:\\dir\\\\"``;
        ``argument('%SystemRoot%\\x')`` is ``^%SystemRoot^%\\x`` (``%%...%%`` in a batch):
        a text holding ``%`` is quoted only piece by piece, where a piece needs it.
    """
    percent = "%%" if batch else "^%"
    if '"' in text:
        return _caret_form(text, percent)
    if "%" not in text:
        return _crt_quote(text) if quote or not text or _NEEDS_QUOTES.search(text) else text
    out = []
    for index, piece in enumerate(text.split("%")):
        if index:
            out.append(percent)
        if piece:
            out.append(_crt_quote(piece) if _NEEDS_QUOTES.search(piece) else piece)
    return "".join(out)


def _crt_quote(text: str) -> str:
    """Wrap ``text`` in double quotes by the C runtime rules (no quote inside)."""
    trailing = len(text) - len(text.rstrip("\\"))
    return '"' + text + "\\" * trailing + '"'


def _caret_form(text: str, percent: str) -> str:
    """The argument with cmd never in quote mode: quotes as ``^"``, specials ``^``-escaped."""
    crt = ['"']
    slashes = 0
    for char in text:
        if char == "\\":
            slashes += 1
            continue
        if char == '"':
            crt.append("\\" * (2 * slashes + 1) + '"')
        else:
            crt.append("\\" * slashes + char)
        slashes = 0
    crt.append("\\" * (2 * slashes) + '"')
    escaped = _CMD_SPECIAL.sub(r"^\1", "".join(crt))
    return escaped.replace('"', '^"').replace("%", percent)
