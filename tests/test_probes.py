"""Probes against real servers on 127.0.0.1 (tests/probe_servers.py), and bad probe bodies."""

from __future__ import annotations

import dataclasses
import json
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from probe_servers import (
    LOOPBACK,
    HttpsServer,
    ImapServer,
    Pki,
    RelayHandler,
    closed_port,
    make_pki,
    server_context,
    silent_port,
    smtp_server,
)

from runbook_engine.errors import InputError
from runbook_engine.probes import (
    HttpProbe,
    ProbeResult,
    SmtpProbe,
    TcpProbe,
    describe_probe,
    parse_probe,
    run_probe,
)

RB = Path("runbooks/demo.md")


def probe(body: str) -> ProbeResult:
    """Parse ``body`` (as if it began on line 1) and run it."""
    return run_probe(parse_probe(body, RB, 1))


# --- fixtures: one set of servers per module ------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def https(pki: Pki) -> Iterator[HttpsServer]:
    with HttpsServer(server_context(pki.good, max_version=ssl.TLSVersion.TLSv1_2)) as server:
        yield server


@pytest.fixture(scope="module")
def https_expired(pki: Pki) -> Iterator[HttpsServer]:
    with HttpsServer(server_context(pki.expired)) as server:
        yield server


@pytest.fixture(scope="module")
def https_short(pki: Pki) -> Iterator[HttpsServer]:
    with HttpsServer(server_context(pki.short)) as server:
        yield server


@pytest.fixture(scope="module")
def http_plain() -> Iterator[HttpsServer]:
    with HttpsServer(None) as server:
        yield server


# --- tcp ------------------------------------------------------------------------------------


def test_tcp_open_port(https: HttpsServer) -> None:
    result = probe(f"kind: tcp\nhost: {LOOPBACK}\nport: {https.port}\n")
    assert result.ok, result.message
    assert result.observed["state"] == "open"
    assert result.target == f"{LOOPBACK}:{https.port}"


def test_tcp_closed_port_expected_closed() -> None:
    result = probe(f"kind: tcp\nhost: {LOOPBACK}\nport: {closed_port()}\nexpect: closed\n")
    assert result.ok, result.message
    assert result.observed["state"] == "closed"


def test_tcp_closed_port_expected_open_fails_with_reason() -> None:
    port = closed_port()
    result = probe(f"kind: tcp\nhost: {LOOPBACK}\nport: {port}\n")
    assert not result.ok
    assert "closed (connection refused)" in result.message
    assert f"{LOOPBACK}:{port}" in result.message


def test_tcp_open_port_expected_closed_fails(https: HttpsServer) -> None:
    result = probe(f"kind: tcp\nhost: {LOOPBACK}\nport: {https.port}\nexpect: closed\n")
    assert not result.ok
    assert "is open" in result.message


# --- tls ------------------------------------------------------------------------------------


def test_tls_valid_chain_reports_protocol_cipher_and_expiry(https: HttpsServer, pki: Pki) -> None:
    body = (
        f"kind: tls\nhost: {LOOPBACK}\nport: {https.port}\nserver_name: mail.example.test\n"
        f"ca_file: {pki.ca_file}\nmin_days_valid: 30\nmin_version: TLSv1.2\n"
    )
    result = probe(body)
    assert result.ok, result.message
    seen = result.observed
    assert seen["verified"] is True
    assert seen["protocol"] == "TLSv1.2"
    assert seen["cipher"]
    assert seen["days_left"] > 300
    assert "mail.example.test" in seen["names"]
    json.dumps(result.to_dict())  # what the journal stores must serialise


def test_tls_untrusted_without_ca_file(https: HttpsServer) -> None:
    result = probe(f"kind: tls\nhost: {LOOPBACK}\nport: {https.port}\n")
    assert not result.ok
    assert result.observed["verified"] is False
    assert "certificate not valid" in result.message
    assert "days_left" in result.observed  # the certificate is still reported


def test_tls_wrong_name(https: HttpsServer, pki: Pki) -> None:
    body = (
        f"kind: tls\nhost: {LOOPBACK}\nport: {https.port}\nserver_name: owa.other.test\n"
        f"ca_file: {pki.ca_file}\n"
    )
    result = probe(body)
    assert not result.ok
    assert "owa.other.test" in result.message
    assert "mismatch" in result.observed["verify_error"].lower()


def test_tls_expired_certificate(https_expired: HttpsServer, pki: Pki) -> None:
    body = f"kind: tls\nhost: {LOOPBACK}\nport: {https_expired.port}\nca_file: {pki.ca_file}\n"
    result = probe(body)
    assert not result.ok
    assert "expired" in result.message
    assert result.observed["days_left"] < 0
    assert result.observed["not_after"].startswith("2020-06-01")


def test_tls_expiring_soon(https_short: HttpsServer, pki: Pki) -> None:
    base = f"kind: tls\nhost: localhost\nport: {https_short.port}\nca_file: {pki.ca_file}\n"
    soon = probe(base + "min_days_valid: 30\n")
    assert not soon.ok
    assert "expires in 4 days (< 30)" in soon.message
    assert probe(base + "min_days_valid: 3\n").ok


def test_tls_min_version_above_server(https: HttpsServer, pki: Pki) -> None:
    body = (
        f"kind: tls\nhost: {LOOPBACK}\nport: {https.port}\nca_file: {pki.ca_file}\n"
        "min_version: TLSv1.3\n"
    )
    result = probe(body)
    assert not result.ok
    assert "TLS handshake failed" in result.message


def test_tls_missing_ca_file_is_input_error(https: HttpsServer, tmp_path: Path) -> None:
    spec = parse_probe(
        f"kind: tls\nhost: {LOOPBACK}\nport: {https.port}\nca_file: {tmp_path}/none.pem\n", RB, 7
    )
    with pytest.raises(InputError) as info:
        run_probe(spec)
    assert info.value.problems[0].line == 7
    assert "none.pem" in info.value.format()


# --- http -----------------------------------------------------------------------------------


def rpcproxy_body(url: str, ca_file: Path, extra: str = "") -> str:
    return (
        f"kind: http\nurl: {url}\nexpect_status: 401\n"
        'expect_headers: {WWW-Authenticate: "Basic|NTLM|Negotiate"}\n'
        f"ca_file: {ca_file}\ntimeout: 10\n{extra}"
    )


def test_http_rpcproxy_answers_401(https: HttpsServer, pki: Pki) -> None:
    result = probe(rpcproxy_body(https.url("/rpc/rpcproxy.dll"), pki.ca_file))
    assert result.ok, result.message
    assert result.observed["status"] == 401
    assert "NTLM" in result.observed["headers"]["www-authenticate"]
    assert result.observed["protocol"] == "TLSv1.2"
    method, path, headers = https.requests[-1]
    assert (method, path) == ("GET", "/rpc/rpcproxy.dll")
    assert "Authorization" not in headers


def test_http_head_and_status_list(https: HttpsServer, pki: Pki) -> None:
    body = (
        f"kind: http\nurl: {https.url('/rpc/rpcproxy.dll')}\nmethod: HEAD\n"
        f"expect_status: [401, 403]\nca_file: {pki.ca_file}\n"
    )
    result = probe(body)
    assert result.ok, result.message
    assert https.requests[-1][0] == "HEAD"


def test_http_unmet_expectations_are_listed(https: HttpsServer, pki: Pki) -> None:
    body = (
        f"kind: http\nurl: {https.url('/')}\nexpect_status: 401\n"
        f"expect_headers: {{WWW-Authenticate: NTLM, Server: IIS}}\n"
        f"expect_body: 'Outlook Web Access'\nca_file: {pki.ca_file}\n"
    )
    result = probe(body)
    assert not result.ok
    assert "-> 200 OK" in result.message
    assert "expected status 401" in result.message
    assert "no WWW-Authenticate header" in result.message
    assert "body does not match" in result.message
    assert result.observed["body_excerpt"].startswith("<html>")


def test_http_body_match(https: HttpsServer, pki: Pki) -> None:
    body = f"kind: http\nurl: {https.url('/')}\nexpect_body: 'IIS test page'\n"
    body += f"ca_file: {pki.ca_file}\n"
    assert probe(body).ok


def test_http_expired_certificate_fails_then_passes_unverified(
    https_expired: HttpsServer, pki: Pki
) -> None:
    url = https_expired.url("/rpc/rpcproxy.dll")
    result = probe(rpcproxy_body(url, pki.ca_file))
    assert not result.ok
    assert "certificate not trusted" in result.message
    assert "expired" in result.message
    assert "status" not in result.observed
    unverified = probe(rpcproxy_body(url, pki.ca_file, "verify: false\n"))
    assert unverified.ok, unverified.message


def test_http_plain(http_plain: HttpsServer) -> None:
    result = probe(f"kind: http\nurl: {http_plain.url('/missing')}\nexpect_status: 404\n")
    assert result.ok, result.message
    assert "protocol" not in result.observed


def test_http_connection_refused() -> None:
    result = probe(f"kind: http\nurl: http://{LOOPBACK}:{closed_port()}/\n")
    assert not result.ok
    assert "connection refused" in result.message
    assert "ConnectionRefusedError" in result.observed["error"]


def test_http_silent_server_times_out() -> None:
    with silent_port() as port:
        result = probe(f"kind: http\nurl: http://{LOOPBACK}:{port}/\ntimeout: 0.5\n")
    assert not result.ok
    assert "no answer within 0.5 s" in result.message


# --- imap -----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["implicit", "starttls", "none"])
def test_imap_banner(mode: str, pki: Pki) -> None:
    ctx = server_context(pki.good) if mode != "none" else None
    with ImapServer(mode, ctx) as server:
        body = (
            f"kind: imap\nhost: {LOOPBACK}\nport: {server.port}\ntls: {mode}\n"
            f"expect_banner: 'Microsoft Exchange IMAP4rev1'\nca_file: {pki.ca_file}\n"
        )
        result = probe(body)
    assert result.ok, result.message
    assert "IMAP4rev1 server ready" in result.observed["banner"]
    assert ("STARTTLS" in server.commands) == (mode == "starttls")
    assert server.commands[-1] == "LOGOUT"
    if mode == "none":
        assert "protocol" not in result.observed
    else:
        assert result.observed["protocol"].startswith("TLSv1")


def test_imap_banner_mismatch(pki: Pki) -> None:
    with ImapServer("implicit", server_context(pki.good), banner="Dovecot ready.") as server:
        body = (
            f"kind: imap\nhost: {LOOPBACK}\nport: {server.port}\n"
            f"expect_banner: Exchange\nca_file: {pki.ca_file}\n"
        )
        result = probe(body)
    assert not result.ok
    assert "does not match /Exchange/" in result.message
    assert result.observed["banner"] == "* OK Dovecot ready."


def test_imap_starttls_not_offered(pki: Pki) -> None:
    with ImapServer("none") as server:
        body = f"kind: imap\nhost: {LOOPBACK}\nport: {server.port}\ntls: starttls\n"
        result = probe(body)
    assert not result.ok
    assert "does not offer STARTTLS" in result.message


def test_imap_untrusted_certificate(pki: Pki) -> None:
    with ImapServer("implicit", server_context(pki.good)) as server:
        result = probe(f"kind: imap\nhost: {LOOPBACK}\nport: {server.port}\n")
    assert not result.ok
    assert "certificate not trusted" in result.message


# --- smtp -----------------------------------------------------------------------------------

RELAY = (
    "relay_test:\n"
    "  outside_from: probe@outside.invalid\n"
    "  outside_to: victim@elsewhere.invalid\n"
    "  local_to: postmaster@example.test\n"
)


def smtp_body(port: int, pki: Pki, starttls: bool = True) -> str:
    return (
        f"kind: smtp\nhost: {LOOPBACK}\nport: {port}\nstarttls: {str(starttls).lower()}\n"
        f"expect_banner: 'Microsoft ESMTP'\nca_file: {pki.ca_file}\nehlo_name: probe.test\n" + RELAY
    )


def test_smtp_closed_relay_with_starttls(pki: Pki) -> None:
    handler = RelayHandler(open_relay=False)
    with smtp_server(handler, server_context(pki.good)) as server:
        result = probe(smtp_body(server.port, pki))
    assert result.ok, result.message
    seen = result.observed
    assert seen["banner_code"] == 220
    assert seen["starttls_code"] == 220
    assert seen["protocol"].startswith("TLSv1")
    assert seen["rcpt_outside_code"] == 550
    assert seen["rcpt_local_code"] == 250
    assert seen["quit_code"] == 221
    assert "not an open relay" in result.message
    verbs = [verb for verb, _ in handler.events]
    assert verbs == ["MAIL", "RCPT", "RSET", "MAIL", "RCPT", "RSET"]
    assert "DATA" not in verbs


def test_smtp_open_relay_is_detected_and_nothing_sent(pki: Pki) -> None:
    handler = RelayHandler(open_relay=True)
    with smtp_server(handler, server_context(pki.good)) as server:
        result = probe(smtp_body(server.port, pki))
    assert not result.ok
    assert "open relay" in result.message
    assert result.observed["rcpt_outside_code"] == 250
    assert ("RCPT", "victim@elsewhere.invalid") in handler.events
    assert "DATA" not in [verb for verb, _ in handler.events]
    assert handler.events[-1][0] == "RSET"  # the accepted transaction is abandoned


def test_smtp_local_recipient_refused(pki: Pki) -> None:
    handler = RelayHandler(open_relay=False, local_domains=("other.test",))
    with smtp_server(handler) as server:
        result = probe(smtp_body(server.port, pki, starttls=False))
    assert not result.ok
    assert "postmaster@example.test" in result.message
    assert result.observed["rcpt_local_code"] == 550


def test_smtp_starttls_not_offered(pki: Pki) -> None:
    handler = RelayHandler(open_relay=False)
    with smtp_server(handler) as server:
        result = probe(smtp_body(server.port, pki))
    assert not result.ok
    assert "does not offer STARTTLS" in result.message
    assert handler.events == []


def test_smtp_silent_server_times_out() -> None:
    with silent_port() as port:
        result = probe(f"kind: smtp\nhost: {LOOPBACK}\nport: {port}\ntimeout: 0.5\n")
    assert not result.ok
    assert "no answer within 0.5 s" in result.message


# --- connect: another address, the same name (like curl --resolve) ---------------------------

NAME = "mail.example.test"  # in the test certificate, and resolving nowhere here
WRONG = "wrong.example.test"  # not in the certificate


def test_tcp_connect_goes_to_the_address(https: HttpsServer) -> None:
    result = probe(f"kind: tcp\nhost: {NAME}\nport: {https.port}\nconnect: {LOOPBACK}\n")
    assert result.ok, result.message
    assert result.target == f"{NAME}:{https.port} via {LOOPBACK}"
    assert result.observed["peer"] == LOOPBACK


@pytest.mark.parametrize(("host", "ok"), [(NAME, True), (WRONG, False)])
def test_tls_connect_checks_the_host_name(
    https: HttpsServer, pki: Pki, host: str, ok: bool
) -> None:
    body = f"kind: tls\nhost: {host}\nport: {https.port}\nconnect: {LOOPBACK}\nca_file: {pki.ca_file}\n"
    result = probe(body)
    assert result.ok is ok, result.message
    assert result.observed["server_name"] == host
    assert result.observed["verified"] is ok
    if not ok:
        assert f"certificate not valid for {WRONG}" in result.message
        assert "mismatch" in result.observed["verify_error"].lower()


@pytest.mark.parametrize(("host", "ok"), [(NAME, True), (WRONG, False)])
def test_http_connect_keeps_the_url_host(https: HttpsServer, pki: Pki, host: str, ok: bool) -> None:
    url = f"https://{host}:{https.port}/rpc/rpcproxy.dll"
    before = len(https.requests)
    result = probe(rpcproxy_body(url, pki.ca_file, f"connect: {LOOPBACK}\n"))
    assert result.ok is ok, result.message
    assert result.target == f"{url} via {LOOPBACK}"
    if ok:
        headers = https.requests[-1][2]
        assert headers["Host"] == f"{NAME}:{https.port}"  # the Host header names the URL's host
    else:
        assert len(https.requests) == before  # the certificate was refused: no request sent
        assert "certificate" in result.message.lower()


@pytest.mark.parametrize("mode", ["implicit", "starttls"])
@pytest.mark.parametrize(
    ("names", "ok"),
    [
        (f"host: {NAME}\n", True),
        (f"host: {WRONG}\n", False),
        (f"host: {WRONG}\nserver_name: {NAME}\n", True),
        (f"host: {NAME}\nserver_name: {WRONG}\n", False),
    ],
)
def test_imap_connect_checks_the_certificate_name(
    pki: Pki, mode: str, names: str, ok: bool
) -> None:
    with ImapServer(mode, server_context(pki.good)) as server:
        body = (
            f"kind: imap\n{names}port: {server.port}\ntls: {mode}\nconnect: {LOOPBACK}\n"
            f"expect_banner: 'Microsoft Exchange IMAP4rev1'\nca_file: {pki.ca_file}\n"
        )
        result = probe(body)
    assert result.ok is ok, result.message
    assert f" via {LOOPBACK}" in result.target
    if not ok:
        assert "certificate" in result.message.lower()


@pytest.mark.parametrize(
    ("names", "ok"),
    [
        (f"host: {NAME}\n", True),
        (f"host: {WRONG}\n", False),
        (f"host: {WRONG}\nserver_name: {NAME}\n", True),
        (f"host: {NAME}\nserver_name: {WRONG}\n", False),
    ],
)
def test_smtp_connect_checks_the_certificate_name(pki: Pki, names: str, ok: bool) -> None:
    handler = RelayHandler(open_relay=False)
    with smtp_server(handler, server_context(pki.good)) as server:
        body = smtp_body(server.port, pki).replace(f"host: {LOOPBACK}\n", names)
        result = probe(body + f"connect: {LOOPBACK}\n")
    assert result.ok is ok, result.message
    assert result.observed["banner_code"] == 220  # connected to the loopback server either way
    if ok:
        assert result.observed["protocol"].startswith("TLSv1")
    else:
        assert "certificate" in result.message.lower()
        assert handler.events == []  # nothing after a refused certificate


def test_connect_equal_to_host_is_not_mentioned() -> None:
    spec = parse_probe(
        "kind: tcp\nhost: Mail.example.com\nport: 443\nconnect: mail.example.com\n", RB, 1
    )
    assert describe_probe(spec) == "TCP Mail.example.com:443 expects the port open"


# --- dns ------------------------------------------------------------------------------------


def test_dns_localhost() -> None:
    result = probe("kind: dns\nname: localhost\nexpect: 127.0.0.1\n")
    assert result.ok, result.message
    assert "127.0.0.1" in result.observed["addresses"]


def test_dns_wrong_address() -> None:
    result = probe("kind: dns\nname: localhost\nexpect: [127.0.0.1, 127.0.0.2]\n")
    assert not result.ok
    assert "missing 127.0.0.2" in result.message


def test_dns_aaaa_literal() -> None:
    result = probe("kind: dns\nname: '::1'\nrecord: AAAA\nexpect: '0::1'\n")
    assert result.ok, result.message


# --- parsing and bad input ------------------------------------------------------------------


def test_parse_fills_defaults_and_location() -> None:
    spec = parse_probe("kind: tcp\nhost: dc1.example.test\nport: 6004\n", RB, 40)
    assert spec == TcpProbe(host="dc1.example.test", port=6004, path=RB, line=40)
    assert spec.timeout == 10.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.port = 1  # type: ignore[misc]


def test_parse_http_normalises_status() -> None:
    spec = parse_probe("kind: http\nurl: https://mail.example.com/\nexpect_status: 401\n", RB, 1)
    assert isinstance(spec, HttpProbe)
    assert spec.expect_status == (401,)
    assert spec.is_https


@pytest.mark.parametrize(
    ("body", "line", "words"),
    [
        ("kind: gopher\nhost: a\n", 30, ["unknown probe kind 'gopher'", "dns, http, imap"]),
        ("host: a\nport: 25\n", 30, ["no `kind:`"]),
        ("kind: tcp\nhost: a\nport: 25\nexpected: open\n", 33, ["unknown key 'expected'"]),
        ("kind: tcp\nhost: a\nport: '25'\n", 32, ["port must be a TCP port", "'25'"]),
        ("kind: tcp\nhost: a\n", 30, ["tcp probe needs 'port'"]),
        ("kind: smtp\nhost: a\nstarttls: maybe\n", 32, ["starttls must be true or false"]),
        ("kind: http\nurl: https://a/\n\nexpect_body: '(['\n", 33, ["regular expression"]),
        ("kind: http\nurl: https://a/\nexpect_status: [200, 1000]\n", 32, ["status code"]),
        ("kind: dns\nname: a\nexpect: mail.example.com\n", 32, ["not an IP address"]),
        ("kind: http\nurl: 'https://a\":443\"/'\n", 31, ["bad port"]),
        ("kind: tcp\nhost: a\nport: 1\nconnect: a b\n", 33, ["connect must be a host name"]),
        ("kind: dns\nname: a\nconnect: b\n", 32, ["unknown key 'connect'"]),
        ("kind: tls\nhost: a\nmin_version: SSLv3\n", 32, ["TLSv1.2", "'SSLv3'"]),
        ("kind: tcp\nhost: a\nport: 1\nhost: b\n", 33, ["'host' given twice"]),
        ("kind: tcp\nhost: [a\n", 32, ["not valid YAML"]),
        ("- kind: tcp\n", 30, ["must be a YAML mapping"]),
        (
            "kind: smtp\nhost: a\nrelay_test:\n  outside_from: a@b.test\n  outsideto: c@d.test\n",
            34,
            ["unknown key 'outsideto' in relay_test"],
        ),
    ],
)
def test_bad_bodies_name_the_line(body: str, line: int, words: list[str]) -> None:
    with pytest.raises(InputError) as info:
        parse_probe(body, RB, 30)
    text = info.value.format()
    for word in words:
        assert word in text
    problem = next(p for p in info.value.problems if words[0] in p.message)
    assert problem.path == RB
    assert problem.line == line, text
    assert info.value.exit_status == 2


def test_all_problems_are_reported_together() -> None:
    with pytest.raises(InputError) as info:
        parse_probe("kind: tcp\nhost: 'a b'\nport: 0\ncolour: red\n", RB, 1)
    lines = [p.line for p in info.value.problems]
    assert lines == [2, 3, 4]


# --- describe -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "text"),
    [
        (
            "kind: http\nurl: https://mail.example.com/rpc/rpcproxy.dll\nexpect_status: 401\n"
            "expect_headers: {WWW-Authenticate: 'Basic|NTLM|Negotiate'}\n",
            "HTTPS GET https://mail.example.com/rpc/rpcproxy.dll expects 401 with "
            "WWW-Authenticate matching /Basic|NTLM|Negotiate/",
        ),
        ("kind: tcp\nhost: dc1\nport: 6004\n", "TCP dc1:6004 expects the port open"),
        (
            "kind: tls\nhost: mail.example.com\nmin_days_valid: 30\n",
            "TLS mail.example.com:443 expects a certificate valid for mail.example.com "
            "for at least 30 more days",
        ),
        (
            "kind: imap\nhost: mail\ntls: starttls\nexpect_banner: Exchange\n",
            "IMAP mail:143 with STARTTLS expects a banner matching /Exchange/",
        ),
        ("kind: dns\nname: mail.example.com\n", "DNS A mail.example.com expects any A address"),
        (
            "kind: http\nurl: https://mail.example.com:8443/rpc/\nconnect: 10.0.0.5\n",
            "HTTPS GET https://mail.example.com:8443/rpc/ via 10.0.0.5 expects 200",
        ),
        (
            "kind: tls\nhost: mail.example.com\nport: 8443\nconnect: '::1'\n",
            "TLS mail.example.com:8443 via ::1 expects a certificate valid for mail.example.com",
        ),
        (
            "kind: imap\nhost: '::1'\nport: 993\nserver_name: mail.example.com\nconnect: '::1'\n",
            "IMAP [::1]:993 over implicit TLS expects a greeting and a certificate valid for "
            "mail.example.com",
        ),
        (
            "kind: smtp\nhost: mail.example.com\nport: 587\nstarttls: true\nconnect: lab1\n",
            "SMTP mail.example.com:587 via lab1 with STARTTLS expects a greeting",
        ),
    ],
)
def test_describe(body: str, text: str) -> None:
    assert describe_probe(parse_probe(body, RB, 1)) == text


def test_describe_smtp_relay() -> None:
    spec = parse_probe("kind: smtp\nhost: mail\n" + RELAY, RB, 1)
    assert isinstance(spec, SmtpProbe)
    line = describe_probe(spec)
    assert line.startswith("SMTP mail:25 expects a greeting; no open relay")
    assert "no DATA sent" in line
