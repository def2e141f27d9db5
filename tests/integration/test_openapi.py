"""The OpenAPI document: public, valid, generated from the schemas the API checks requests with,
and honest: a property-based fuzz run (schemathesis) finds no 5xx and no answer it does not
describe."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from openapi_spec_validator import validate
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api import schemas
from core.schema import Checker, Variants
from tests.conftest import ADMIN_KEY

PUBLIC = {"/healthz", "/readyz", "/openapi.json"}


def test_openapi_document_is_public_and_a_valid_openapi_3_1_document(app: Any) -> None:
    response = app.test_client().get("/openapi.json")  # no API key
    assert response.status_code == 200 and response.mimetype == "application/json"
    document = response.get_json()
    validate(document)
    assert document["openapi"].startswith("3.1")
    assert document["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
    for path in PUBLIC:
        assert document["paths"][path]["get"]["security"] == []


def test_every_route_of_the_app_is_in_the_document(app: Any) -> None:
    document = app.test_client().get("/openapi.json").get_json()
    documented = {(path, method.upper()) for path, ops in document["paths"].items() for method in ops}
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/static"):
            continue
        path = rule.rule.replace("<", "{").replace(">", "}")
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            assert (path, method) in documented, f"{method} {path} is not documented"


def test_the_document_publishes_the_very_schemas_requests_are_checked_with(app: Any, settings: Any) -> None:
    document = app.test_client().get("/openapi.json").get_json()
    components = document["components"]["schemas"]
    checked = app.extensions["tasker_schemas"]
    for name, item in checked.items():
        if isinstance(item, Checker):
            published = components[name]
            for field, part in item.parts.items():  # checked with another published schema
                prop = published["properties"][field]
                assert (prop.get("items") or prop)["$ref"] == f"#/components/schemas/{part}", name
                published = {**published, "properties": {**published["properties"],
                                                         field: item.schema["properties"][field]}}
            assert published == item.schema, name
        elif isinstance(item, Variants):
            refs = [ref["$ref"].rsplit("/", 1)[1] for ref in components[name]["oneOf"]]
            assert [components[r] for r in refs] == list(item.variants.values()), name
    # and they follow the operator's settings, as the checks do
    assert components["TaskCreate_http"]["properties"]["timeout_s"]["maximum"] == settings.http_timeout_max_s
    rebuilt = schemas.build(settings)
    assert components["TaskPatch"] == rebuilt["TaskPatch"].schema


def test_a_documented_limit_is_the_enforced_limit(client: Any) -> None:
    document = client.get("/openapi.json").get_json()
    retries = document["components"]["schemas"]["TaskCreate_task_sum2"]["properties"]["retries"]
    ok = client.post("/tasks", json={"task": "sum2", "params": {"first": 1, "second": 2},
                                     "retries": retries["maximum"], "delay": "1h"})
    assert ok.status_code == 201, ok.get_json()
    too_many = client.post("/tasks", json={"task": "sum2", "params": {"first": 1, "second": 2},
                                           "retries": retries["maximum"] + 1})
    assert too_many.status_code == 400
    assert too_many.get_json()["error"]["message"] == (
        f"'retries' must be an integer between {retries['minimum']} and {retries['maximum']}")


# --- fuzzing ------------------------------------------------------------------------------

def _operations() -> list[tuple[str, str, GenerationMode]]:
    """Every (method, path) of the document with the generation modes that apply to it (only
    an operation that takes input can be sent invalid input), read off an app that is never
    served (collection needs the list before any database exists)."""
    from api.app import create_app
    from core.settings import Settings

    app = create_app(Settings(database_url="postgresql://nobody@127.0.0.1:1/none", sqs_endpoint="http://127.0.0.1:1",
                              task_modules="tests.support.plugin_tasks"))
    document = app.test_client().get("/openapi.json").get_json()
    app.extensions["tasker"].engine.dispose()
    out = []
    for path, ops in sorted(document["paths"].items()):
        for method, op in sorted(ops.items()):
            out.append((method.upper(), path, GenerationMode.POSITIVE))
            if op.get("parameters") or op.get("requestBody"):
                out.append((method.upper(), path, GenerationMode.NEGATIVE))
    return out


@pytest.mark.parametrize(("method", "path", "mode"), _operations())
def test_fuzzed_requests_get_no_5xx_and_only_documented_answers(app: Any, method: str, path: str,
                                                                  mode: GenerationMode) -> None:
    """Generated requests that fit the document (positive) and that break it (negative), sent
    with an admin key: never a server error, every answer (status, content type, body,
    headers) is one the document describes, and a request that breaks the document is
    refused with a 4xx."""
    api = schemathesis.openapi.from_wsgi("/openapi.json", app)
    # the key is ours to send (an admin key, below); a generated Authorization header would
    # make a case "negative" only by a header this test then replaces
    api.config.generation.update(with_security_parameters=False)
    # invalid input may also be refused for its size: a URL or headers over the API's limits
    rejection = api.config.checks.negative_data_rejection
    rejection.expected_statuses = [*rejection.expected_statuses, "413", "414", "431"]
    strategy = api[path][method].as_strategy(generation_mode=mode)
    checks = [not_a_server_error, status_code_conformance, content_type_conformance,
              response_schema_conformance, response_headers_conformance]
    if mode is GenerationMode.NEGATIVE:
        checks.append(negative_data_rejection)

    @given(case=strategy)
    @settings(max_examples=20, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        case.call_and_validate(headers={"Authorization": f"Bearer {ADMIN_KEY}"}, checks=checks)

    run()
