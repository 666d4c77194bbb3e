"""`/openapi.json` describes the whole server; `/healthz` says how it is (SPEC.md section 3)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from openapi_spec_validator import OpenAPIV31SpecValidator, validate

Client = TestClient[Any, Any]

# Every route of SPEC.md section 3, path parameters written `{}` whatever their name.
SPEC_ROUTES = {
    ("post", "/api/v1/auth/login"),
    ("get", "/api/v1/reports"),
    ("get", "/api/v1/reports/{}"),
    ("get", "/api/v1/webhook-events"),
    ("get", "/api/v1/webhooks"),
    ("post", "/api/v1/webhooks"),
    ("get", "/api/v1/webhooks/{}"),
    ("patch", "/api/v1/webhooks/{}"),
    ("delete", "/api/v1/webhooks/{}"),
    ("post", "/api/v1/webhooks/{}/activate"),
    ("post", "/api/v1/webhooks/{}/deactivate"),
    ("get", "/api/v1/webhook-deliveries"),
    ("get", "/api/v1/webhook-deliveries/{}"),
    ("post", "/api/v1/webhook-deliveries/{}/redeliver"),
    ("post", "/api/v1/webhook-deliveries/redeliver"),
    ("get", "/api/v1/webhook-feed"),
    ("post", "/_mock/reports"),
    ("post", "/_mock/events"),
    ("get", "/_mock/clock"),
    ("post", "/_mock/clock/advance"),
    ("post", "/_mock/reset"),
    ("get", "/healthz"),
}
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


@pytest.fixture
async def document(api: Client) -> dict[str, Any]:
    response = await api.get("/openapi.json")
    assert response.status == 200
    assert response.content_type == "application/json"
    body: dict[str, Any] = await response.json()
    return body


def documented_routes(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method, re.sub(r"\{[^}]+\}", "{}", path))
        for path, item in document["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


def resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        pointer = node["$ref"].removeprefix("#/").split("/")
        target: Any = document
        for part in pointer:
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def test_openapi_is_a_valid_openapi_3_1_document(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1.")
    validate(document, cls=OpenAPIV31SpecValidator)


def test_openapi_lists_every_route_of_the_spec(document: dict[str, Any]) -> None:
    missing = SPEC_ROUTES - documented_routes(document)
    assert not missing, f"not in /openapi.json: {sorted(missing)}"


def test_openapi_has_a_webhooks_section_for_the_outgoing_message(
    document: dict[str, Any],
) -> None:
    webhooks = document["webhooks"]
    assert webhooks
    (operation,) = (item["post"] for item in webhooks.values())
    schema = resolve(document, operation["requestBody"]["content"]["application/json"]["schema"])
    assert set(schema["properties"]) >= {"messageId", "eventCode", "eventName", "payload"}
    payload = resolve(document, schema["properties"]["payload"])
    assert set(payload["properties"]) >= {"resourceId", "path"}
    assert "200" in operation["responses"]


def test_openapi_documents_the_api_key_header(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"].values()
    assert {"type": "apiKey", "in": "header", "name": "apiKey"} in list(schemes)
    assert document["paths"]["/healthz"]["get"]["security"] == []


def test_openapi_documents_errors_in_qrm_shape(document: dict[str, Any]) -> None:
    create = document["paths"]["/api/v1/webhooks"]["post"]["responses"]
    assert {"201", "400", "401", "413", "422"} <= set(create)
    error = resolve(document, create["422"]["content"]["application/json"]["schema"])
    assert set(error["properties"]) == {"errorCode", "message", "errors"}


async def test_healthz_reports_liveness_queue_and_overdue(api: Client) -> None:
    response = await api.get("/healthz")
    assert response.status == 200
    assert response.content_type == "application/json"
    body = await response.json()
    assert set(body) >= {"status", "dispatcherAlive", "queueDepth", "oldestOverdueMs"}
    assert body["status"] == "ok"
    assert body["dispatcherAlive"] is True
    assert body["queueDepth"] == 0
    assert body["oldestOverdueMs"] is None
