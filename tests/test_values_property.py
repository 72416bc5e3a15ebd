"""Property test (hypothesis): random values at random places of sh, bash and python bodies
never run anything and come back byte for byte.  3 x 700 = 2,100 examples per CI run
(``RBE_HYPOTHESIS_EXAMPLES`` changes the count per test).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from values_corpus import tailored  # type: ignore[import-not-found]

EXAMPLES = int(os.environ.get("RBE_HYPOTHESIS_EXAMPLES", "700"))
META = [*"$`'\"\\;&|<>(){}[]*?~#!%^=\n\t ", "“", "”", "‘", "’", "„"]
PIECES = st.one_of(
    st.text(
        alphabet=st.one_of(
            # every character a value may hold: no control characters but TAB and LF (the
            # parameter is multiline), no line/paragraph separators or bidi controls (RB224)
            st.characters(
                blacklist_categories=("Cs", "Cc"),
                blacklist_characters="\u2028\u2029\u202a\u202b\u202c\u202d\u202e"
                "\u2066\u2067\u2068\u2069",
            ),
            st.sampled_from(META),
        ),
        max_size=12,
    ),
    st.sampled_from(["$(touch MARK)", "`touch MARK`", "__import__('os').system('touch MARK')"]),
    st.sampled_from(["${IFS}", "'''", '"""', "EOF", "{x}", "\\x41", "%s", "$(", "${"]),
)
VALUES = st.lists(PIECES, max_size=4).map("".join)

# Places a value can stand, each printing the value on one line between < and >.
SH_PLACES = [
    "printf '<%s>\\n' {v}",
    "printf '<%s>\\n' \"{v}\"",
    "printf '<%s>\\n' '{v}'",
    "printf '%s\\n' \"<{v}>\"",
    "printf '%s\\n' '<{v}>'",
    "X={v}; printf '<%s>\\n' \"$X\"",
    "cat <<EOF\n<{v}>\nEOF",
    'sh -c \'printf "<%s>\\n" "{v}"\'',
    "sh -c \"printf '<%s>\\n' {v}\"",
    "awk 'BEGIN { print \"<{v}>\" }'",
    "case {v} in *) printf '<%s>\\n' {v};; esac",
    "printf '<%s>\\n' \"${UNSET_X:-{v}}\"",
    "# don't {v}\nprintf '<%s>\\n' {v}",
]
BASH_PLACES = [
    *SH_PLACES,
    "printf '%s\\n' $'<{v}>'",
    'cat <<< "<{v}>"',
    "bash -c 'printf \"<%s>\\n\" {v}'",
]
PY_PLACES = [
    "print('<' + {v} + '>')",
    "print('<{v}>')",
    'print("<{v}>")',
    "print('''<{v}>''')",
    'print(f"<{v}>")',
    "print(r'<{v}>')",
    "x = {v}\nprint(f'<{x}>')",
    "# it's {v}\nprint('<' + {v} + '>')",
]


def _run(kind: str, argv: list[str], places: list[str], value: str, picks: list[int]) -> None:
    template = "\n".join(places[i].replace("{v}", "{{ v }}") for i in picks)
    with tempfile.TemporaryDirectory() as folder:
        cwd = Path(folder)
        step = tailored(kind, template, value, cwd)
        script = cwd / "step"
        script.write_bytes(step.run_body.encode("utf-8"))
        env = {k: v for k, v in os.environ.items() if not k.startswith("RUNBOOK_")}
        env.update(step.env)
        proc = subprocess.run([*argv, str(script)], cwd=cwd, env=env, capture_output=True)
        assert not (cwd / "MARK").exists(), step.run_body
        assert proc.returncode == 0, (step.run_body, proc.stderr)
        assert proc.stdout.decode("utf-8") == f"<{value}>\n" * len(picks), step.run_body


def _settings() -> settings:
    return settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )


@pytest.mark.skipif(not shutil.which("sh"), reason="no sh")
@_settings()
@given(value=VALUES, picks=st.lists(st.integers(0, len(SH_PLACES) - 1), min_size=1, max_size=3))
def test_sh_random_values_round_trip(value: str, picks: list[int]) -> None:
    _run("sh", ["sh"], SH_PLACES, value, picks)


@pytest.mark.skipif(not shutil.which("bash"), reason="no bash")
@_settings()
@given(value=VALUES, picks=st.lists(st.integers(0, len(BASH_PLACES) - 1), min_size=1, max_size=3))
def test_bash_random_values_round_trip(value: str, picks: list[int]) -> None:
    _run("bash", ["bash"], BASH_PLACES, value, picks)


@_settings()
@given(value=VALUES, picks=st.lists(st.integers(0, len(PY_PLACES) - 1), min_size=1, max_size=3))
def test_python_random_values_round_trip(value: str, picks: list[int]) -> None:
    _run("python", [sys.executable, "-I", "-S"], PY_PLACES, value, picks)
