"""Schemathesis against the OpenAPI document ``runbook serve`` serves at ``/openapi.json``.

A real server (uvicorn on a free loopback port, :class:`test_console_api.Served`) with a
paused run in its store; every operation of the document is called with generated data
(a few examples each, to stay well under a minute on a shared machine) and a valid
bearer token, and schemathesis checks each answer: no server error, a status and content
type the document lists, a body its schema accepts, auth enforced (a call without the
token must get 401), bad data refused.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")
pytest.importorskip("starlette")
pytest.importorskip("argon2")

from hypothesis import HealthCheck, settings  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from test_console_api import OPERATOR, Served  # noqa: E402

pytestmark = pytest.mark.skipif(os.name != "posix", reason="sh steps")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    served = Served(tmp_path_factory.mktemp("openapi"))
    paused = served.cli(
        "run",
        "approved.md",
        "--env",
        "env.yml",
        "--state-dir",
        served.state,
        "--run-id",
        "r1",
        "--no-input",
        "--operator",
        OPERATOR,
    )
    assert paused.returncode == 3, paused.stderr
    yield served
    served.stop()


def test_the_api_keeps_to_its_openapi_document(server: Served) -> None:
    from hypothesis import given
    from schemathesis.specs.openapi.checks import positive_data_acceptance

    schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
    headers = {"Authorization": f"Bearer {server.tokens[OPERATOR]}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 12

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=8,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def keeps_to_it(case: Any) -> None:
            # A well-formed body naming no runbook of the library, or no run, is refused
            # as bad input (400/404/409) by design: valid by the schema is not acceptable.
            case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])

        keeps_to_it()
