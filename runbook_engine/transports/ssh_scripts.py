"""The fixed remote scripts of the SSH transport, and the data sent on standard input.

A step reaches a host as a fixed command line that holds only code and names (the
step's marker, its interpreter, the become user), never a value:

    exec /bin/sh -c STAGE rbe-step MARKER INTERPRETER            (no become)
    exec /bin/sh -c BECOME rbe-become MARKER USER PFLAG STAGE INTERPRETER

Everything else comes on standard input (:func:`payload`): with become and a password,
the password on a first line (read by ``BECOME`` with ``read -r``, exported for the
``SUDO_ASKPASS`` helper only; sudo's ``env_reset`` keeps it from the step); then a header
``RBE1 CWDLEN NAME:LEN ...``, the working directory, each value (read with
``dd bs=1 count=LEN``: exactly that many bytes, so a value may hold any byte but NUL), and
the body to the end of input.  ``STAGE`` writes the body to ``$TMPDIR/rbe-MARKER.XXXXXX/step``
(mode 0600), exports the values and ``RBE_STEP=MARKER``, prints the start line
:data:`STARTED` on standard error, and runs the body with ``setsid -w INTERPRETER FILE``
(util-linux), then prints :data:`ENDED` once it has ended: the step leads its own
session, so a deadline kills it and all it started (``kill -SID``), and a resume finds it
by the marker in its command line (the script's path) with ``ps -e -o pid= -o sid= -o args=``.

Sources: POSIX ``read`` reads a pipe one byte at a time and ``dd`` copies exactly
``count`` blocks of ``bs`` bytes (XCU, read and dd); sudo runs ``SUDO_ASKPASS`` when
given ``-A`` and resets the command's environment (sudo(8), sudoers(5) env_reset).
"""

from __future__ import annotations

import re
import shlex

#: Written by the remote script on standard error just before the step's body starts.
STARTED = b"\x1erbe-started\n"
#: Written by the remote script on standard error once the step has ended: without it,
#: an exit of 255 is the connection's (or the script's) end, not the step's.
ENDED = b"\x1erbe-ended\n"
#: Interpreter per step kind on a Linux host.
INTERPRETERS: dict[str, str] = {"sh": "sh", "bash": "bash", "python": "python3"}
#: The process listing used to find (and kill) a marked step.
LISTING = "ps -e -o pid= -o sid= -o args="
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

STAGE = r"""m=$1 i=$2 d=
umask 077
die() { echo "runbook: $2" >&2; [ -n "$d" ] && rm -rf "$d"; exit "$1"; }
d=$(mktemp -d "${TMPDIR:-/tmp}/rbe-$m.XXXXXX") || die 125 "cannot create a temporary folder"
IFS=' ' read -r tag cl items
[ "$tag" = RBE1 ] || die 125 "no step was sent"
c=$(dd bs=1 count="$cl" 2>/dev/null; echo x); c=${c%x}
for it in $items; do
  v=$(dd bs=1 count="${it#*:}" 2>/dev/null; echo x)
  export "${it%%:*}=${v%x}"
done
unset v
cat > "$d/step" || die 125 "cannot write the step's script"
command -v "$i" >/dev/null 2>&1 || die 127 "command not found: $i"
command -v setsid >/dev/null 2>&1 || die 127 "command not found: setsid"
[ -z "$c" ] || cd "$c" 2>/dev/null || die 125 "working directory does not exist: $c"
RBE_STEP=$m; export RBE_STEP
printf '\036rbe-started\n' >&2
setsid -w "$i" "$d/step" </dev/null
s=$?
rm -rf "$d"
printf '\036rbe-ended\n' >&2
exit $s
"""

BECOME = r"""m=$1 u=$2 p=$3 s=$4 i=$5
if [ "$p" = 1 ]; then
  IFS= read -r RBE_BECOME_PASS || exit 125
  export RBE_BECOME_PASS
  a=$(mktemp "${TMPDIR:-/tmp}/rbe-ask.XXXXXX") || exit 125
  printf '#!/bin/sh\nprintf "%%s\\n" "$RBE_BECOME_PASS"\n' > "$a"
  chmod 700 "$a"
  SUDO_ASKPASS=$a; export SUDO_ASKPASS
  sudo -A -p '' -u "$u" -- /bin/sh -c "$s" rbe-step "$m" "$i"
  r=$?
  rm -f "$a"
  exit $r
fi
exec sudo -n -u "$u" -- /bin/sh -c "$s" rbe-step "$m" "$i"
"""


def command_line(marker: str, interpreter: str, become_user: str | None, password: bool) -> str:
    """The remote command line for a step (code and names only; see the module doc)."""
    if become_user is None:
        args = ["/bin/sh", "-c", STAGE, "rbe-step", marker, interpreter]
    else:
        flag = "1" if password else "0"
        args = ["/bin/sh", "-c", BECOME, "rbe-become", marker, become_user, flag, STAGE]
        args.append(interpreter)
    return "exec " + shlex.join(args)


def payload(body: str, env: dict[str, str], cwd: str | None, become_password: str | None) -> bytes:
    """The bytes sent on the remote command's standard input (see the module doc).

    Raises:
        ValueError: a variable name is not a shell name, a value holds a NUL byte, or
            the become password holds a line break (the message names the variable).
    """
    head = b""
    if become_password is not None:
        if "\n" in become_password or "\r" in become_password:
            raise ValueError("the become password holds a line break")
        head = become_password.encode("utf-8") + b"\n"
    items, data = [], bytearray()
    for name, value in env.items():
        if not _NAME.match(name):
            raise ValueError(f"variable {name!r} is not a shell variable name")
        raw = str(value).encode("utf-8")
        if b"\0" in raw:
            raise ValueError(f"variable {name} holds a NUL byte, which no environment can")
        items.append(f"{name}:{len(raw)}")
        data += raw
    where = (cwd or "").encode("utf-8")
    header = f"RBE1 {len(where)} {' '.join(items)}\n".encode("ascii")
    return head + header + where + bytes(data) + body.encode("utf-8")


def kill_body(sids: list[int], marker: str, grace: float) -> str:
    """A sh body that ends the sessions ``sids`` (TERM, up to ``grace`` seconds, KILL)
    and removes the marked step's temporary folder."""
    groups = " ".join(f"-{s}" for s in sids)
    tries = max(1, int(grace * 10))
    return (
        f"kill -TERM {groups} 2>/dev/null\n"
        "alive() { for s in " + " ".join(map(str, sids)) + "; do "
        'kill -0 "-$s" 2>/dev/null && return 0; done; return 1; }\n'
        f"n=0; while [ $n -lt {tries} ] && alive; do sleep 0.1; n=$((n+1)); done\n"
        f"kill -KILL {groups} 2>/dev/null\n"
        f'rm -rf "${{TMPDIR:-/tmp}}"/rbe-{marker}.*\n'
        "exit 0\n"
    )


def parse_listing(listing: str, marker: str) -> tuple[list[int], list[int]]:
    """From :data:`LISTING` output, the sessions whose processes carry ``marker`` in their
    command line (the step's script path ``rbe-MARKER.``) and every pid in them.

    Returns:
        ``(sids, pids)``, both sorted.
    """
    rows = []
    for line in listing.splitlines():
        parts = line.split(None, 2)
        if len(parts) >= 2 and parts[0].isdigit() and parts[1].isdigit():
            rows.append((int(parts[0]), int(parts[1]), parts[2] if len(parts) > 2 else ""))
    needle = f"rbe-{marker}."
    sids = sorted({sid for _, sid, args in rows if needle in args and sid > 1})
    pids = sorted(pid for pid, sid, _ in rows if sid in sids)
    return sids, pids
