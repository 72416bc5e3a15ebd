"""A scripted Windows Server 2003 host that runs the seed runbooks' cmd.exe text, for the
end-to-end tests (tests/test_e2e_winrm.py).

:class:`Win2003` sits behind tests/wsman_server.py's :class:`WindowsHost`.  It keeps the
state the runbooks read back (registry and services through tests/fake_windows.py, an IIS
metabase, files, TCP listeners derived from that state) and runs the cmd.exe text it gets
with tests/e2e_cmd.py.  Programs answer as on Windows Server 2003: ``reg`` (query, add,
delete, export, import), ``sc``, ``find``, ``findstr /g:``, ``ver``, ``type``, ``mkdir``, ``netstat -an``,
``dsquery``, ``cscript adsutil.vbs GET|SET``, ``sysocmgr``, ``shutdown /r`` (the fake
restarts at once).  An unmodelled program succeeds silently, as most Windows tools do on
success, and is listed in :attr:`Win2003.unmodelled` so a test can insist on none.

Every program run is recorded in :attr:`Win2003.ran` with the step that sent it
(``RUNBOOK_STEP`` of the uploaded script; ``""`` for an inline command).
:meth:`Win2003.stall_at` blocks the host on a chosen command until the test releases it.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any

from e2e_cmd import CmdShell, Exit  # type: ignore[import-not-found]
from fake_windows import (  # type: ignore[import-not-found]
    FakeWindows,
    crt_split,
    preflight_reply,
    remove_carets,
)
from wsman_server import CommandCall, Reply  # type: ignore[import-not-found]

VER = "\r\nMicrosoft Windows [Version 5.2.3790]\r\n"
OC_KEY = "HKLM\\SOFTWARE\\MICROSOFT\\WINDOWS\\CURRENTVERSION\\SETUP\\OC MANAGER\\SUBCOMPONENTS"
RPCPROXY_KEY = "HKLM\\SOFTWARE\\MICROSOFT\\RPC\\RPCPROXY"
NTDS_KEY = "HKLM\\SYSTEM\\CURRENTCONTROLSET\\SERVICES\\NTDS\\PARAMETERS"
NSPI = "nspi interface protocol sequences"


@dataclass
class Stall:
    """Block the host when a command containing ``needle`` starts.

    Attributes:
        reached: Set when the command arrived (the test waits on it).
        release: The host waits for this before going on.
        kill: When released, end the whole script with exit code 1 before the command
            takes effect, as when its process tree is killed on the host.
    """

    needle: str
    kill: bool = True
    reached: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)


@dataclass
class Win2003(CmdShell):
    """The host.  ``handler`` is the :class:`WindowsHost` handler.

    Attributes:
        name, fqdn: NetBIOS and DNS names (``dsquery`` and the RPC proxy defaults use them).
        windows: Registry and service table (tests/fake_windows.py).
        metabase: IIS metabase ``W3SVC/1/Root/Rpc/AuthFlags`` -> number.
        files: Path (lower case) -> text; ``dirs``: folders (lower case).
        listen: TCP ports listening whatever the state; :meth:`listening` adds derived ones.
        exchange_dn: Distinguished name ``dsquery *`` finds (with serialNumber SP2).
        gc_dn: ``dsquery server -isgc`` lists this server.
        ran: ``(step, command line)`` of every program run, in order.
        unmodelled: Command lines of programs this fake does not know.
        restarts: Number of ``shutdown /r`` received.
        extra_listen: Ports opened by work done by hand (a test adds them).
        by_hand: Step id -> ``fn(host)``: work a person does on the host (at a gate) before
            that step, applied when the step's first command arrives.
        on_restart: Called after ``shutdown /r`` (the WinRM server forgets its shells).
        exports: ``reg export`` file (lower case) -> the values it saved.
    """

    name: str
    fqdn: str
    windows: FakeWindows = field(default_factory=FakeWindows)
    metabase: dict[str, int] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    dirs: set[str] = field(default_factory=lambda: {"c:\\", "c:\\windows", "c:\\temp"})
    listen: set[int] = field(default_factory=lambda: {135, 445})
    exchange_dn: str = ""
    gc_dn: str = ""
    ran: list[tuple[str, str]] = field(default_factory=list)
    unmodelled: list[str] = field(default_factory=list)
    restarts: int = 0
    extra_listen: set[int] = field(default_factory=set)
    stall: Stall | None = None
    by_hand: dict[str, Any] = field(default_factory=dict)
    on_restart: Any = None
    exports: dict[str, dict[tuple[str, str], Any]] = field(default_factory=dict)
    _booted: dict[tuple[str, str], Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._booted = dict(self.windows.registry)

    # -- state the tests look at -------------------------------------------------------
    def reg(self, key: str, value: str) -> Any:
        """Return the data of ``key``\\``value`` (``None`` when absent)."""
        found = self.windows.registry.get((key.upper(), value.lower()))
        return None if found is None else found[1]

    def commands(self, step: str | None = None) -> list[str]:
        """Command lines run, optionally only those sent by ``step``."""
        return [line for s, line in self.ran if step is None or s == step]

    def stall_at(self, needle: str, *, kill: bool = True) -> Stall:
        """Block on the next command line holding ``needle`` (see :class:`Stall`)."""
        self.stall = Stall(needle, kill)
        return self.stall

    def listening(self) -> list[int]:
        """TCP ports listening now: fixed ones, the directory service's NSPI port (6004 when
        the NSPI value held ncacn_http:6004 at the last start), IMAP4 over SSL (993) while
        IMAP4Svc runs, SMTP (25) while SMTPSVC runs, and ports opened by hand."""
        ports = set(self.listen) | self.extra_listen
        nspi = self._booted.get((NTDS_KEY, NSPI))
        if nspi and any(x.lower() == "ncacn_http:6004" for x in nspi[1]):
            ports.add(6004)
        for service, port in (("imap4svc", 993), ("smtpsvc", 25)):
            found = self.windows.services.get(service)
            if found is not None and found.state == "running":
                ports.add(port)
        return sorted(ports)

    # -- the WindowsHost handler --------------------------------------------------------
    def handler(self, kind: str, text: str, call: CommandCall) -> Reply:
        preflight = preflight_reply(text)
        if preflight is not None:
            return preflight
        output, code = self.run_script(text, call.files)
        return Reply(output, "", code)

    # -- programs ---------------------------------------------------------------------
    def program(self, command: str, env: dict[str, str], stdin: str) -> tuple[str, int]:
        """Record ``command`` and run it (see the module docstring for what is modelled)."""
        step = env.get("RUNBOOK_STEP", "")
        if step in self.by_hand:
            self.by_hand.pop(step)(self)
        self._maybe_stall(self.resolve(command))
        self.ran.append((step, self.resolve(command)))
        argv = crt_split(self.resolve(remove_carets(command)))
        programs = {
            "reg": self._reg,
            "sc": self._sc,
            "find": self._find,
            "findstr": self._findstr,
            "type": self._type,
            "mkdir": self._mkdir,
            "md": self._mkdir,
            "netstat": self._netstat,
            "dsquery": self._dsquery,
            "cscript": self._cscript,
            "ver": self._ver,
            "sysocmgr": self._sysocmgr,
            "shutdown": self._shutdown,
        }
        program = programs.get(argv[0].lower())
        if program is None:
            self.unmodelled.append(command)
            return "", 0
        reply: Reply = program(argv, stdin)
        return _text(reply.stdout) + _text(reply.stderr), reply.exit_code

    def _maybe_stall(self, command: str) -> None:
        stall = self.stall
        if stall is None or stall.needle not in command:
            return
        self.stall = None
        stall.reached.set()
        stall.release.wait(120)
        if stall.kill:
            self.ran.append(("", f"(killed before it ran) {command}"))
            raise Exit(1)

    def _ver(self, argv: list[str], stdin: str) -> Reply:
        return Reply(VER)

    def _mkdir(self, argv: list[str], stdin: str) -> Reply:
        path = argv[1].lower().rstrip("\\")
        if path in self.dirs:
            return Reply("", f"A subdirectory or file {argv[1]} already exists.\r\n", 1)
        self.dirs.add(path)
        return Reply()

    def _type(self, argv: list[str], stdin: str) -> Reply:
        found = self.files.get(argv[1].lower())
        if found is None:
            return Reply("", "The system cannot find the file specified.\r\n", 1)
        return Reply(found)

    def _find(self, argv: list[str], stdin: str) -> Reply:
        flags = {a.lower() for a in argv[1:] if a.startswith("/")}
        needle = next(a for a in argv[1:] if not a.startswith("/"))
        rows = [r for r in stdin.replace("\r\n", "\n").split("\n") if r]
        hit = [r for r in rows if (needle.lower() in r.lower() if "/i" in flags else needle in r)]
        if "/v" in flags:
            hit = [r for r in rows if r not in hit]
        return Reply("".join(r + "\r\n" for r in hit), "", 0 if hit else 1)

    def _findstr(self, argv: list[str], stdin: str) -> Reply:
        """``findstr [/v] [/i] [/b] [/l] /g:FILE [FILE]``: literal strings from a file, one a
        line, matched at the start of each line (``/b``) or anywhere."""
        flags = {a.lower() for a in argv[1:] if a.startswith("/") and ":" not in a}
        source = next(a[3:] for a in argv[1:] if a.lower().startswith("/g:"))
        paths = [a for a in argv[1:] if not a.startswith("/")]
        text = self.files.get(paths[0].lower(), "") if paths else stdin
        fold = (lambda s: s.lower()) if "/i" in flags else (lambda s: s)
        needles = [fold(n) for n in self.files.get(source.lower(), "").splitlines() if n.strip()]
        rows = [r for r in text.replace("\r\n", "\n").split("\n") if r]

        def hit(row: str) -> bool:
            row = fold(row)
            return any(row.startswith(n) if "/b" in flags else n in row for n in needles)

        found = [r for r in rows if hit(r) != ("/v" in flags)]
        return Reply("".join(r + "\r\n" for r in found), "", 0 if found else 1)

    def _netstat(self, argv: list[str], stdin: str) -> Reply:
        rows = [
            "\r\nActive Connections\r\n\r\n  Proto  Local Address          Foreign Address"
            "        State\r\n"
        ]
        rows += [
            f"  TCP    {'0.0.0.0:' + str(p):<23}0.0.0.0:0              LISTENING\r\n"
            for p in self.listening()
        ]
        return Reply("".join(rows))

    def _shutdown(self, argv: list[str], stdin: str) -> Reply:
        if "/r" not in [a.lower() for a in argv]:
            return Reply("", "shutdown: only /r is modelled\r\n", 1)
        self.restarts += 1
        self._booted = dict(self.windows.registry)  # restarted at once: state is read anew
        if self.on_restart is not None:
            self.on_restart()
        return Reply()

    def _dsquery(self, argv: list[str], stdin: str) -> Reply:
        lowered = [a.lower() for a in argv]
        if lowered[1] == "server" and "-isgc" in lowered:
            return Reply(f'"{self.gc_dn}"\r\n' if self.gc_dn else "")
        if lowered[1] == "*" and "-attr" in lowered:
            if argv[2].lower() != self.exchange_dn.lower():
                return Reply("", "dsquery failed:Directory object not found.\r\n", 1)
            return Reply("  serialNumber\r\n  Version 6.5 (Build 7638.2: Service Pack 2)\r\n")
        self.unmodelled.append(" ".join(argv))
        return Reply()

    def _cscript(self, argv: list[str], stdin: str) -> Reply:
        args = [a for a in argv[1:] if not a.startswith("//")]
        if not args[0].lower().endswith("adsutil.vbs"):
            self.unmodelled.append(" ".join(argv))
            return Reply()
        verb, path = args[1].upper(), args[2]
        vdir, _, prop = path.rpartition("/")
        if vdir.lower() not in {k.rpartition("/")[0].lower() for k in self.metabase}:
            return Reply(
                f"ErrorNumber: -2147024893 (0x80070003)\r\nError Trying To {verb} the "
                f"Object (GetObject Failed): {vdir}\r\n",
                "",
                1,
            )
        key = next((k for k in self.metabase if k.lower() == path.lower()), path)
        if verb == "SET":
            self.metabase[key] = int(args[3])
        return Reply(f"{prop:<32}: (INTEGER) {self.metabase.get(key, 0)}\r\n")

    def _sysocmgr(self, argv: list[str], stdin: str) -> Reply:
        answer = next(a[3:] for a in argv if a.lower().startswith("/u:"))
        text = self.files.get(answer.lower())
        if text is None:
            return Reply("", "", 1)  # sysocmgr shows a dialog and fails without its file
        on = re.search(r"netcis\s*=\s*on", text, re.I) is not None
        registry = self.windows.registry
        if on:
            registry[(OC_KEY, "netcis")] = ("REG_DWORD", 1)
            registry[(RPCPROXY_KEY, "enabled")] = ("REG_DWORD", 1)
            registry[(RPCPROXY_KEY, "validports")] = (
                "REG_SZ",
                f"{self.name}:100-5000;{self.fqdn}:100-5000",
            )
            for vdir in ("Rpc", "RpcWithCert"):
                self.metabase[f"W3SVC/1/Root/{vdir}/AuthFlags"] = 1
                self.metabase[f"W3SVC/1/Root/{vdir}/AccessSSLFlags"] = 0
        else:
            registry[(OC_KEY, "netcis")] = ("REG_DWORD", 0)
            for key in [k for k in registry if k[0] == RPCPROXY_KEY]:
                del registry[key]
            for key in [k for k in self.metabase if "/Rpc" in k]:
                del self.metabase[key]
        return Reply()

    def _sc(self, argv: list[str], stdin: str) -> Reply:
        return self.windows.sc(argv[1].lower(), argv[2], argv[3:])

    def _reg(self, argv: list[str], stdin: str) -> Reply:
        verb = argv[1].lower()
        registry = self.windows.registry
        if verb == "export":
            key = argv[2].upper()
            rows = {k: v for k, v in registry.items() if k[0] == key}
            self.files[argv[3].lower()] = "Windows Registry Editor Version 5.00\r\n" + repr(rows)
            self.exports[argv[3].lower()] = rows
            return Reply("The operation completed successfully.\r\n")
        if verb == "import":
            rows = self.exports.get(argv[2].lower())
            if rows is None:
                return Reply("", "ERROR: Error opening the file.\r\n", 1)
            registry.update(rows)
            return Reply("The operation completed successfully.\r\n")
        return self.windows.run(argv)


def _text(data: bytes | str) -> str:
    return data.decode("utf-8") if isinstance(data, bytes) else data
