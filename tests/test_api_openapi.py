"""The OpenAPI document of /v1/ (api/openapi.py), checked against the running server by
schemathesis: bodies made from the document, sent over HTTP to a live server, and every answer
checked against it. No answer may be a server error, or have a status, content type or body the
document does not declare. Bounded: a few dozen examples an operation, no worker needed (a create
stores its job; the broker keeps its message until the test's queue is emptied)."""

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api import services
from videos.models import VideoGeneration

pytestmark = [pytest.mark.stack, pytest.mark.django_db(transaction=True)]
EXAMPLES = 25  # an operation: bounded, so CI stays quick
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
def bearer(user):
    return {"Authorization": f"Bearer {services.api_key_create(user=user).key}", "X-Runway-Version": "2024-11-06"}


def test_every_answer_keeps_to_the_document(live_server, bearer, settings):
    settings.RUNWAY_MAX_ACTIVE_PER_USER = 10_000  # let creates through, to check their answers too
    settings.RUNWAY_DAILY_LIMIT_PER_USER = 10_000
    schema = schemathesis.openapi.from_url(live_server.url + "/v1/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 9  # five creates, uploads, a task's GET and DELETE, the organization

    for operation in operations:

        @hypothesis_settings(
            max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        @given(case=operation.as_strategy())
        def keeps_to_it(case):
            case.call_and_validate(base_url=live_server.url, headers=bearer, checks=CHECKS)

        keeps_to_it()


def test_the_document_is_openapi_3_1_and_names_every_model(client):
    document = client.get("/v1/openapi.json").json()
    assert document["openapi"] == "3.1.0"
    bodies = document["paths"]["/v1/image_to_video"]["post"]["requestBody"]["content"]["application/json"]
    models = {variant["properties"]["model"]["const"] for variant in bodies["schema"]["oneOf"]}
    assert {"gen4_turbo", "gen4.5", "veo3.1"} <= models
    assert not VideoGeneration.objects.exists()
