"""The programs a ``sh`` or ``bash`` body calls, for the SSH preflight.

A program is the first word of a simple command: at the start of a line, after ``;``,
``&``, ``&&``, ``|``, ``||``, ``(`` (also ``$(``), ``{``, ``!`` or a keyword that starts a
command list (``then``, ``do``, ``else``, ...).  The body is read with :mod:`shlex`
(POSIX mode, shell punctuation), so a quoted string is one word and never a command.
Left out, so that a preflight never asks for a program the body does not run: shell
built-ins and keywords, functions the body defines, variable assignments, words that are
not plain names (paths, ``$VAR``, ``${VAR}``, leftovers of a template), the words of a ``case``
block and the lines of a here-document.  A command inside double quotes
(``"$(cat FILE)"``) is not seen: the list errs on the side of fewer programs.
"""

from __future__ import annotations

import re
import shlex

#: Built-ins and keywords of POSIX sh and bash: never looked up on ``PATH``.
SHELL_WORDS = frozenset(
    """
    . : [ [[ ]] alias bg bind break builtin caller cd command compgen complete compopt
    continue coproc declare dirs disown echo enable eval exec exit export false fc fg
    getopts hash help history jobs kill let local logout mapfile popd printf pushd pwd read
    readarray readonly return select set shift shopt source suspend test times trap true
    type typeset ulimit umask unalias unset wait
    if then else elif fi case esac for while until do done in function time { } !
    """.split()  # noqa: SIM905 (a word list reads better as words)
)
#: Words after which the next word is again a command.
_STARTS = frozenset({";", "&", "&&", "|", "||", "(", "$(", "{", "!", "\n", ";;", "|&",
                     "then", "do", "else", "elif", "if", "while", "until", "time"})  # fmt: skip
_REDIRECT = re.compile(r"^\d*[<>]+[&|]?$")
_PROGRAM = re.compile(r"^[A-Za-z_][A-Za-z0-9_.+-]*$")
_HEREDOC = re.compile(r"<<-?\s*(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\1")
_FUNCTION = re.compile(r"(?m)^\s*(?:function\s+)?([A-Za-z_][\w.-]*)\s*\(\s*\)")


def shell_programs(body: str) -> list[str]:
    """The programs ``body`` calls (see the module docstring), sorted; ``[]`` when the body
    cannot be read as shell words (an unclosed quote)."""
    text = _without_heredocs(re.sub(r"\\\n", " ", body))
    text = re.sub(r"\$\{[^}]*\}", "$V", text)  # ${NAME}, ${NAME:-x}: a value, not a brace
    text = "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("#"))
    lex = shlex.shlex(text.replace("$(", " $( "), posix=True, punctuation_chars=";&|()<>")
    lex.whitespace = " \t\r"
    lex.commenters = ""
    lex.wordchars += "$"
    try:
        tokens = list(lex)
    except ValueError:
        return []
    functions = set(_FUNCTION.findall(text))
    found: set[str] = set()
    at_command, skip_next, in_case = True, False, 0
    for i, token in enumerate(tokens):
        nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
        if skip_next:
            skip_next = False
            continue
        if token == "case":
            in_case += 1
        elif token == "esac":
            in_case = max(0, in_case - 1)
        if _REDIRECT.match(token):
            skip_next = True
            continue
        if token in _STARTS or token == "\n":
            at_command = True
            continue
        if at_command and "=" in token and _PROGRAM.match(token.split("=", 1)[0]):
            continue  # an assignment before the command
        plain = _PROGRAM.match(token) and token not in SHELL_WORDS and token not in functions
        if at_command and plain and not in_case and nxt != "(":
            found.add(token)
        at_command = False
    return sorted(found)


def _without_heredocs(text: str) -> str:
    """``text`` with the lines of every here-document left out (their delimiters kept)."""
    out: list[str] = []
    until: str | None = None
    for line in text.splitlines():
        if until is not None:
            if line.strip("\t") == until or line.strip() == until:
                until = None
                out.append("")
            continue
        out.append(line)
        match = _HEREDOC.search(line)
        if match:
            until = match.group(2)
    return "\n".join(out)
