"""Tests for runbook_engine.evidence.redact."""

from __future__ import annotations

import json

import pytest

from runbook_engine.evidence.redact import Redactor, marker

CANARY = "canary-7f3a9c1e-SECRET"


def test_canary_never_survives_free_text() -> None:
    r = Redactor({"admin_password": CANARY})
    text = f"login ok\npassword={CANARY}; again:{CANARY}\n"
    out = r.redact(text)
    assert CANARY not in out
    assert out == (
        "login ok\npassword=[REDACTED:admin_password]; again:[REDACTED:admin_password]\n"
    )


def test_canary_never_survives_nested_object() -> None:
    r = Redactor({"admin_password": CANARY})
    obj = {
        "command": f"net user admin {CANARY}",
        "outputs": [f"echo {CANARY}", ("x", {"deep": CANARY})],
        "count": 3,
        "flag": True,
        "none": None,
    }
    out = r.redact_obj(obj)
    assert CANARY not in json.dumps(out)
    assert out["count"] == 3 and out["flag"] is True and out["none"] is None
    assert isinstance(out["outputs"][1], tuple)
    assert out["outputs"][1][1]["deep"] == "[REDACTED:admin_password]"
    # the input is not modified
    assert obj["command"] == f"net user admin {CANARY}"


def test_longest_value_first() -> None:
    r = Redactor({"short": "abcd", "long": "abcdefgh"})
    assert r.redact("xx abcdefgh yy abcd") == "xx [REDACTED:long] yy [REDACTED:short]"


def test_marker_is_not_redacted_again() -> None:
    # a secret whose value is part of another secret's marker
    r = Redactor({"pw": "REDACTED", "token": "s3cr3t-token"})
    assert r.redact("s3cr3t-token") == "[REDACTED:token]"
    assert r.redact("REDACTED") == "[REDACTED:pw]"


def test_short_values_not_in_free_text_but_in_structured_fields() -> None:
    r = Redactor({"pin": "42"})
    assert r.redact("answer 42 of 142") == "answer 42 of 142"
    assert r.redact_obj({"pin": "42"}) == {"pin": marker("pin")}
    assert r.redact_obj({"other": "42"}) == {"other": marker("pin")}
    assert r.redact_obj(["42", "142"]) == [marker("pin"), "142"]


def test_value_under_secret_key_redacted_whatever_type() -> None:
    r = Redactor({"pin": "1234"})
    assert r.redact_obj({"pin": 1234, "n": 1234}) == {"pin": marker("pin"), "n": 1234}


def test_secret_in_dict_key_is_redacted() -> None:
    r = Redactor({"pw": "hunter22"})
    assert r.redact_obj({"hunter22": 1}) == {marker("pw"): 1}


def test_regex_characters_in_secret() -> None:
    r = Redactor({"pw": "a.b*c(d)[e]$"})
    assert r.redact("x a.b*c(d)[e]$ y aXbbc(d)[e]$") == "x [REDACTED:pw] y aXbbc(d)[e]$"


def test_empty_redactor_and_empty_values() -> None:
    e = Redactor.empty()
    assert not e
    assert e.redact("anything") == "anything"
    assert e.redact_obj({"a": ["b"]}) == {"a": ["b"]}
    r = Redactor({"unset": ""})
    assert not r
    assert r.redact("text") == "text"


def test_repr_does_not_show_values() -> None:
    r = Redactor({"admin_password": CANARY})
    assert CANARY not in repr(r)
    assert CANARY not in str(r)
    assert "admin_password" in repr(r)
    assert r.names == frozenset({"admin_password"})


def test_non_string_value_rejected() -> None:
    with pytest.raises(TypeError):
        Redactor({"pw": 1234})  # type: ignore[dict-item]
