"""Property-based tests from the API's own `/openapi.json`: generated valid and invalid requests (fixed seed,
at least 1,000 of them) never get a 500, and every response matches the documented status and schema."""

from __future__ import annotations

import pytest

MIN_CASES = 1000


@pytest.fixture()
def wsgi(service):
    """The WSGI application `recsys serve` runs under gunicorn, over the session's service, in process."""
    from recsys.cli.serve import api_handlers
    from recsys.serving.api import openapi_json
    from recsys.serving.http_server import pooled
    from recsys.serving.wsgi import wsgi_app

    handlers, app = api_handlers(service, 1)
    spec = openapi_json(app)
    return wsgi_app(pooled(handlers), lambda: spec)


def test_generated_requests_get_no_500_and_match_the_schema(wsgi, tiny_world):
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from schemathesis.checks import not_a_server_error
    from schemathesis.generation import GenerationMode
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        negative_data_rejection,
        response_schema_conformance,
        status_code_conformance,
    )

    schema = schemathesis.openapi.from_wsgi("/openapi.json", wsgi)
    strategy = st.one_of(
        schema.as_strategy(GenerationMode.POSITIVE), schema.as_strategy(GenerationMode.NEGATIVE)
    )
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
        negative_data_rejection,
    ]
    seen: list[tuple[str, int]] = []

    @settings(
        max_examples=MIN_CASES + 100,
        derandomize=True,  # a fixed seed: the same cases on every run
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case) -> None:
        response = case.call_and_validate(checks=checks)
        seen.append((case.operation.label, response.status_code))

    run()
    assert len(seen) >= MIN_CASES
    assert not [s for s in seen if s[1] >= 500]
    # Both kinds of answer were exercised on every operation: accepted requests and refused ones.
    assert {label for label, status in seen if status < 300} >= {
        "GET /health",
        "GET /recommendations/{user_id}",
        "POST /interactions",
    }
    assert {label for label, status in seen if 400 <= status < 500} >= {
        "GET /recommendations/{user_id}",
        "POST /interactions",
        "DELETE /users/{user_id}",
    }
