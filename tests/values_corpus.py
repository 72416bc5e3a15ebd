"""The corpus of places a value can stand and of hostile values (tests/test_values.py).

Each context is ``(template, expected)``: ``expected`` turns the value into what the
step must print.  ``MARK`` is the file a successful injection would create.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runbook_engine.source.parser import parse_text
from runbook_engine.tailor.loading import _NO_ENV
from runbook_engine.tailor.tailoring import TailoredStep, tailor
from runbook_engine.tailor.values import resolve_values

MARK = "MARK"
Expect = Callable[[str], str]


def line(value: str) -> str:
    return value + "\n"


def stripped(value: str) -> str:  # a command substitution drops trailing newlines
    return value.rstrip("\n") + "\n"


HOSTILE = [
    "$(touch MARK)",
    "`touch MARK`",
    "'",
    '"',
    "'; touch MARK; '",
    '"; touch MARK; "',
    "; touch MARK",
    "a\ntouch MARK",
    "a\n\ntouch MARK #",  # (a carriage return is refused before it gets here: RB224)
    "%PATH% %%",
    "!PATH! !",
    "^& ^| ^^",
    "“double” ‘single’ „low‟ ‚x‛",
    "__import__('os').system('touch MARK')",
    "\"+__import__('os').system('touch MARK')+\"",
    "'''+__import__('os').system('touch MARK')+'''",
    "{__import__('os').system('touch MARK')}",
    "back\\slash \\' \\\" end\\",
    "$HOME ${IFS} $((1+1)) $'\\x41'",
    "* ? [a] ~",
    "  two  spaces  ",
    "-n",
    ") } ]] )) EOF",
    "EOF\ntouch MARK\nEOF",
    "a[$(touch MARK)]",
    "x|touch MARK&touch MARK",
    "C:\\Temp\\old,C:\\Windows\\System32",
    "é ✓ 漢字 \U0001f600",
    "{{ v }} {% if 1 %}",
    "",
]

# POSIX sh contexts: run through sh, dash and bash.
SH: list[tuple[str, Expect]] = [
    ("printf '%s\\n' {{ v }}", line),
    ("printf '%s\\n' \"{{ v }}\"", line),
    ("printf '%s\\n' '{{ v }}'", line),
    ("printf '%s\\n' \"<{{ v }}>\"", lambda v: f"<{v}>\n"),
    ("printf '%s\\n' '<{{ v }}>'", lambda v: f"<{v}>\n"),
    ("# don't forget\nprintf '%s\\n' {{ v }}", line),
    ('# a 5" floppy\nprintf \'%s\\n\' "{{ v }}"', line),
    ("cat <<EOF\n{{ v }}\nEOF", line),
    ("cat <<-EOF\n\t<{{ v }}>\n\tEOF", lambda v: f"<{v}>\n"),
    ("printf '%s\\n' \"$(printf '%s' \"{{ v }}\")\"", stripped),
    ("printf '%s\\n' \"`printf '%s' {{ v }}`\"", stripped),
    ("sh -c 'printf \"%s\\n\" {{ v }}'", line),
    ('sh -c \'printf "%s\\n" "{{ v }}"\'', line),
    ("sh -c \"printf '%s\\n' {{ v }}\"", line),
    ("awk 'BEGIN { print \"<{{ v }}>\" }'", lambda v: f"<{v}>\n"),
    ("awk 'BEGIN { x = {{ v }}; print x }'", line),
    ("case {{ v }} in *) printf '%s\\n' {{ v }};; esac", line),
    ('case "{{ v }}" in *) printf \'%s\\n\' "{{ v }}";; esac', line),
    ("printf '%s\\n' \"${UNSET_X:-{{ v }}}\"", line),
    ("printf '%s\\n' ${UNSET_X:-{{ v }}}", line),
    ("for x in {{ v }}; do printf '%s\\n' \"$x\"; done", line),
    ("X={{ v }}; printf '%s\\n' \"$X\"", line),
    ('export X="{{ v }}"; sh -c \'printf "%s\\n" "$X"\'', line),
    ("if [ \"{{ v }}\" = {{ v }} ]; then printf '%s\\n' {{ v }}; fi", line),
    ("f() { printf '%s\\n' \"$1\"; }; f {{ v }}", line),
    ("printf '%s\\n' {{ v }} | cat", line),
    ("(printf '%s\\n' {{ v }})", line),
    ("true && printf '%s\\n' {{ v }} || false", line),
]

# bash only
BASH: list[tuple[str, Expect]] = [
    ("printf '%s\\n' $'<\\t{{ v }}>'", lambda v: f"<\t{v}>\n"),
    ("bash -c 'printf \"%s\\n\" {{ v }}'", line),
    ('bash -c "printf \'%s\\n\' \\"{{ v }}\\""', line),
    ("cat <<< {{ v }}", line),
    ('cat <<< "{{ v }}"', line),
    ("[[ {{ v }} == {{ v }} ]] && printf '%s\\n' {{ v }}", line),
    ("a=({{ v }}); printf '%s\\n' \"${a[0]}\"", line),
    ('printf \'%s\\n\' "$(cat <<< "$(printf \'%s\' "{{ v }}")")"', stripped),
]

# Python: every string literal form, code, comments
PYTHON: list[tuple[str, Expect]] = [
    ("print({{ v }})", line),
    ('print("{{ v }}")', line),
    ("print('{{ v }}')", line),
    ("print('''<{{ v }}>''')", lambda v: f"<{v}>\n"),
    ('print("""a\n{{ v }}\nb""")', lambda v: f"a\n{v}\nb\n"),
    ('print(f"<{{ v }}>")', lambda v: f"<{v}>\n"),
    ("print(f'{1+1}<{{ v }}>')", lambda v: f"2<{v}>\n"),
    ('print(r"<{{ v }}>")', lambda v: f"<{v}>\n"),
    ("print(rf'<{{ v }}>')", lambda v: f"<{v}>\n"),
    ('print(u"<{{ v }}>")', lambda v: f"<{v}>\n"),
    ("# don't {{ v }}\nprint({{ v }})", line),
    ('# a 5" floppy\nprint("{{ v }}")', line),
    ("x = {{ v }}\nprint(x)", line),
    ('print("%s" % {{ v }})', line),
    ("print(len({{ v }}) >= 0 and {{ v }})", line),
    ('print("<" "{{ v }}" ">")', lambda v: f"<{v}>\n"),
    ("print([{{ v }}][0])", line),
    ('import json\nprint(json.loads(json.dumps({"k": {{ v }}}))["k"])', line),
]

# Refused outright (an error naming the line), whatever the value.
REFUSED: list[tuple[str, str]] = [
    ("sh", "printf 'a\\n' | sed 's/a/{{ v }}/'"),
    ("sh", "printf 'a\\n' | sed \"s/a/{{ v }}/\""),
    ("sh", "printf 'a\\n' | sed -e 's/a/{{ v }}/'"),
    ("sh", "eval {{ v }}"),
    ("sh", 'eval "printf %s {{ v }}"'),
    ("sh", "sh <<EOF\nprintf '%s' {{ v }}\nEOF"),
    ("bash", "bash <<EOF\n{{ v }}\nEOF"),
    ("sh", "python3 - <<EOF\nprint('{{ v }}')\nEOF"),
    ("sh", "cat <<'EOF'\n{{ v }}\nEOF"),
    ("sh", "echo $(( {{ v }} + 1 ))"),
    ("bash", "(( {{ v }} > 1 )) && echo big"),
    ("bash", "[[ {{ v }} -eq 1 ]]"),
    ("bash", "bash <<< {{ v }}"),
    ("sh", "python3 -c 'print(\"{{ v }}\")'"),
    ("sh", "perl -e 'print \"{{ v }}\"'"),
    ("sh", "ssh host ls {{ v }}"),
    ("sh", "trap 'echo {{ v }}' EXIT"),
    ("python", "print(b'{{ v }}')"),
    ("python", "print(f'{ {{ v }} }')"),
    ("python", "x_{{ v }} = 1"),
    ("powershell", "Write-Output '{{ v }}'"),
    ("powershell", 'Invoke-Expression "Write-Output {{ v }}"'),
    ("powershell", 'powershell -Command "Write-Output {{ v }}"'),
    ("cmd", "call echo {{ v }}"),
    ("cmd", "cmd /c echo {{ v }}"),
    ("cmd", "for /f %%a in ('echo {{ v }}') do echo %%a"),
    ("cmd", "echo {{ v }} !"),
]

# cmd, run by tests/e2e_cmd.py's cmd.exe behind the WS-Management test server
CMD: list[tuple[str, Expect]] = [
    ("echo {{ v }}", lambda v: v + "\n"),
    ('echo "{{ v }}"', lambda v: f'"{v}"\n'),
    ("echo a & echo {{ v }}", lambda v: f"a\n{v}\n"),
    ("rem don't {{ v }}\necho {{ v }}", lambda v: v + "\n"),
    ('set "X={{ v }}"\necho !X!', lambda v: v + "\n"),
    ('if "{{ v }}"=="{{ v }}" (echo {{ v }}) else (echo no)', lambda v: v + "\n"),
    ("for %%a in (1) do echo {{ v }}", lambda v: v + "\n"),
    ('> "C:\\TEMP\\out.txt" echo {{ v }}\ntype C:\\TEMP\\out.txt', lambda v: v + "\n"),
    ("echo {{ v }} ^^! done", lambda v: v + " ! done\n"),
    ("find /c {{ v }} C:\\TEMP\\none.txt || echo {{ v }}", lambda v: v + "\n"),
]
CMD_HOSTILE = [
    "& echo pwned > C:\\TEMP\\MARK",
    "| echo pwned > C:\\TEMP\\MARK",
    '" & echo pwned > C:\\TEMP\\MARK & "',
    "%TEMP% %%TEMP%% %1",
    "!TEMP! ! !!",
    "^& ^^ ^",
    ") else (echo pwned > C:\\TEMP\\MARK",
    "< nul > C:\\TEMP\\MARK",
    "C:\\Temp\\old,C:\\Windows\\System32",
    "“x” ‘y’ é",
    "a\tb  c",
]


def tailored(
    kind: str, template: str, value: Any, tmp: Path, ptype: str = "string"
) -> TailoredStep:
    """Tailor a one-step runbook of ``kind`` with parameter ``v`` = ``value``."""
    decl = f"{{type: {ptype}, multiline: true}}" if ptype == "string" else f"{{type: {ptype}}}"
    text = f"---\nparameters:\n  v: {decl}\n---\n```{kind} {{#s}}\n{template}\n```\n"
    runbook = parse_text(text, tmp / "corpus.md")
    values = resolve_values(runbook, None, {"v": str(value)})
    return tailor(runbook, _NO_ENV(None), values).steps[0]  # type: ignore[arg-type]


def run_local(argv: list[str], step: TailoredStep, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    """Run the step's body as a script with its variables, as the local transport does."""
    script = cwd / "step.script"
    script.write_bytes(step.run_body.encode("utf-8"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNBOOK_")}
    env.update(step.env)
    return subprocess.run([*argv, str(script)], cwd=cwd, env=env, capture_output=True, timeout=30)


PYTHON_ARGV = [sys.executable, "-I", "-S"]
