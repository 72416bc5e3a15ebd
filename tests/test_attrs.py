"""Tests for the fenced-block info-string grammar (runbook_engine.source.attrs).

Grammar (DESIGN.md §2, FORMAT-SPEC.md "Steps"):
``LANG {#id .class key=value key="value with spaces"}``.  Several cases come
from other Markdown executors' bug reports (DESIGN.md §7): attributes split on
spaces inside quotes, a ``}`` inside a quoted value ending the list, and the
attribute list leaking into the language.
"""

from __future__ import annotations

import dataclasses

import pytest

attrs_mod = pytest.importorskip("runbook_engine.source.attrs")
parse_info = attrs_mod.parse_info
AttrSyntaxError = attrs_mod.AttrSyntaxError


# (info string, lang, id, classes, attrs, has_attrs)
VALID = [
    pytest.param("cmd", "cmd", None, (), {}, False, id="language-only"),
    pytest.param("", None, None, (), {}, False, id="empty"),
    pytest.param("cmd {#x}", "cmd", "x", (), {}, True, id="id-only"),
    pytest.param("{#a}", None, "a", (), {}, True, id="no-language-never-becomes-language"),
    pytest.param(
        'sh {#x cwd="my dir" title="x}y"}',
        "sh",
        "x",
        (),
        {"cwd": "my dir", "title": "x}y"},
        True,
        id="quoted-space-and-brace",
    ),
    pytest.param(
        'cmd {#nspi-set target=dc title="Set NSPI protocol sequence" check=nspi-check'
        " backout=nspi-backout timeout=60}",
        "cmd",
        "nspi-set",
        (),
        {
            "target": "dc",
            "title": "Set NSPI protocol sequence",
            "check": "nspi-check",
            "backout": "nspi-backout",
            "timeout": "60",
        },
        True,
        id="format-spec-example",
    ),
    pytest.param("sh {#v .verify}", "sh", "v", ("verify",), {}, True, id="one-class"),
    pytest.param(
        "sh {.precheck #p .verify}",
        "sh",
        "p",
        ("precheck", "verify"),
        {},
        True,
        id="classes-in-order-id-anywhere",
    ),
    pytest.param(
        "sh {#x title='it is \"quoted\"'}",
        "sh",
        "x",
        (),
        {"title": 'it is "quoted"'},
        True,
        id="single-quotes-hold-double",
    ),
    pytest.param(
        'sh {#x title="say \\"hi\\""}',
        "sh",
        "x",
        (),
        {"title": 'say "hi"'},
        True,
        id="escaped-double-quote",
    ),
    pytest.param(
        'sh {#x title="{a} {b}"}', "sh", "x", (), {"title": "{a} {b}"}, True, id="braces-in-value"
    ),
    pytest.param('sh {#x title=""}', "sh", "x", (), {"title": ""}, True, id="empty-quoted-value"),
    pytest.param(
        "sh {#x when=\"a == b and c != 'd'\"}",
        "sh",
        "x",
        (),
        {"when": "a == b and c != 'd'"},
        True,
        id="equals-and-quotes-in-value",
    ),
    pytest.param(
        "sh {#x retry-delay=5 on-failure=continue}",
        "sh",
        "x",
        (),
        {"retry-delay": "5", "on-failure": "continue"},
        True,
        id="hyphenated-keys-kept-as-written",
    ),
    pytest.param(
        "sh   {#x    timeout=5   .verify}",
        "sh",
        "x",
        ("verify",),
        {"timeout": "5"},
        True,
        id="extra-spaces",
    ),
    pytest.param("sh { #x }", "sh", "x", (), {}, True, id="spaces-inside-braces"),
    pytest.param("sh {#x}   ", "sh", "x", (), {}, True, id="trailing-whitespace"),
    pytest.param("sh {#step_1}", "sh", "step_1", (), {}, True, id="underscore-id"),
    pytest.param(
        'manual {#m title="Café — ünïcode"}',
        "manual",
        "m",
        (),
        {"title": "Café — ünïcode"},
        True,
        id="unicode-value",
    ),
    pytest.param(
        "powershell {#ps title='a b' cwd=C:\\Temp}",
        "powershell",
        "ps",
        (),
        {"title": "a b", "cwd": "C:\\Temp"},
        True,
        id="backslash-in-unquoted-value",
    ),
]


@pytest.mark.parametrize(("info", "lang", "ident", "classes", "attrs", "has_attrs"), VALID)
def test_parse_info_valid(
    info: str,
    lang: str | None,
    ident: str | None,
    classes: tuple[str, ...],
    attrs: dict[str, str],
    has_attrs: bool,
) -> None:
    result = parse_info(info)
    assert result.lang == lang
    assert result.id == ident
    assert tuple(result.classes) == classes
    assert dict(result.attrs) == attrs
    assert result.has_attrs is has_attrs


@pytest.mark.parametrize("info", [p.values[0] for p in VALID])
def test_attributes_never_leak_into_language(info: str) -> None:
    lang = parse_info(info).lang
    assert lang is None or ("{" not in lang and "}" not in lang and "#" not in lang)


def test_info_string_is_frozen() -> None:
    result = parse_info("sh {#x}")
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.id = "y"  # type: ignore[misc]


# (info string, what is wrong); the error column must point inside the attribute list.
INVALID = [
    pytest.param('sh {#x title="abc}', id="unterminated-double-quote"),
    pytest.param("sh {#x title='abc}", id="unterminated-single-quote"),
    pytest.param('sh {#x title="abc\\"}', id="escaped-quote-leaves-value-open"),
    pytest.param("sh {#x title=a", id="missing-closing-brace"),
    pytest.param("sh {#x", id="missing-closing-brace-after-id"),
    pytest.param("sh {#x 9bad=1}", id="key-starts-with-digit"),
    pytest.param("sh {#x ke$y=1}", id="key-with-dollar"),
    pytest.param("sh {#x =v}", id="empty-key"),
    pytest.param("sh {#a #b}", id="two-ids"),
    pytest.param("sh {#x} trailing", id="text-after-closing-brace"),
    pytest.param("sh {#x}}", id="second-closing-brace"),
    pytest.param("sh {#}", id="empty-id"),
]


@pytest.mark.parametrize("info", INVALID)
def test_parse_info_invalid(info: str) -> None:
    with pytest.raises(AttrSyntaxError) as excinfo:
        parse_info(info)
    err = excinfo.value
    assert isinstance(err.col, int)
    assert info.index("{") <= err.col <= len(info), f"col {err.col} outside the attribute list"
    assert str(err).strip(), "the error needs a message"


def test_error_column_for_unterminated_quote_is_at_or_after_the_quote() -> None:
    info = 'sh {#x cwd="my dir}'
    with pytest.raises(AttrSyntaxError) as excinfo:
        parse_info(info)
    assert excinfo.value.col >= info.index('"')


def test_error_column_for_two_ids_points_at_second() -> None:
    info = "sh {#first #second}"
    with pytest.raises(AttrSyntaxError) as excinfo:
        parse_info(info)
    assert excinfo.value.col >= info.index("#second")


def test_backslashes_in_quoted_values_are_kept_for_windows_paths() -> None:
    # Only the quote character is escaped: UNC paths and registry keys keep their backslashes.
    info = parse_info(r'cmd {#x cwd="\\server\share" title="say \"hi\""}')
    assert info.attrs == {"cwd": r"\\server\share", "title": 'say "hi"'}


@pytest.mark.parametrize(
    ("text", "seconds"), [("5m", 300), ("90s", 90), ("1h30m", 5400), ("2h", 7200), ("1m5s", 65)]
)
def test_estimate_durations(text: str, seconds: int) -> None:
    assert attrs_mod.parse_estimate(text) == seconds


@pytest.mark.parametrize("text", ["5", "0m", "5 m", "30m1h", "", "m", "25h", "1.5m", "-5m"])
def test_bad_estimates_are_rejected(text: str) -> None:
    with pytest.raises(ValueError, match="must be a duration such as 5m, 90s or 1h30m"):
        attrs_mod.parse_estimate(text)
