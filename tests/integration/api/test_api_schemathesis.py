"""Schemathesis over the OpenAPI document the real service serves.

Every operation gets generated requests, valid and malformed (Schemathesis' positive and
negative modes), sent to ``python -m api`` on the crawled database. Each response must be
no 5xx, have a declared status code, content type, headers and a body that conforms to the
declared schema, reject what the schema rules out and accept what it allows (a schema-valid
request is never a 422); every error is one line of JSON.
"""

from __future__ import annotations

import json

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = pytest.mark.integration

#: Examples per operation and mode: enough to reach every parameter, bounded so the whole
#: run stays well under a minute.
EXAMPLES = 40

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    positive_data_acceptance,
]


@pytest.fixture(scope="module")
def api_schema(api_server: str) -> schemathesis.BaseSchema:
    """The service's own /openapi.json, as served, without the dashboard's HTML pages."""
    config = schemathesis.Config.from_dict({"generation": {"max-examples": EXAMPLES}})
    loaded = schemathesis.openapi.from_url(f"{api_server}/openapi.json", config=config)
    return loaded.include(path_regex=r"^/(v1/|healthz)")


def _check(case: schemathesis.Case) -> None:
    response = case.call(timeout=30)
    case.validate_response(response, checks=CHECKS)
    if response.status_code >= 400:
        text = response.text
        assert "\n" not in text.strip() and "Traceback" not in text, text
        assert set(json.loads(text)) == {"error"}, text


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_operation_conforms(
    api_schema: schemathesis.BaseSchema, mode: GenerationMode
) -> None:
    operations = []
    for result in api_schema.get_all_operations():
        assert isinstance(result, Ok), f"the served schema is invalid: {result}"
        operations.append(result.ok())
    paths = {op.path for op in operations}
    assert {"/v1/sources", "/v1/countries/{iso}", "/v1/changes.atom", "/healthz"} <= paths
    for operation in operations:
        if mode is GenerationMode.NEGATIVE and not list(operation.iter_parameters()):
            continue  # nothing to malform (/healthz)

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def run(case: schemathesis.Case) -> None:
            _check(case)

        try:
            run()
        except Exception as exc:
            raise AssertionError(f"{operation.label} ({mode.value}): {exc}") from exc
