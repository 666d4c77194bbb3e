"""`/openapi.json` describes the whole server; `/healthz` says how it is (SPEC.md section 3)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from openapi_spec_validator import OpenAPIV31SpecValidator, validate
from pydantic import ValidationError

from mock_qrm.contract.models import WebhookPatch
from mock_qrm.contract.rules import MAX_URL_LENGTH, NAME_PATTERN, URL_PATTERN, check_url
from mock_qrm.server.reports.overrides import OVERRIDABLE
from tests.api.test_errors import qrm_error

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


# -- the document says what the server enforces (what `--checks all` found, issue 11)


def body_schema(document: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    operation = document["paths"][path][method]
    return resolve(document, operation["requestBody"]["content"]["application/json"]["schema"])


def path_parameter(document: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    (parameter,) = document["paths"][path][method]["parameters"]
    assert parameter["in"] == "path"
    schema: dict[str, Any] = parameter["schema"]
    return schema


async def test_openapi_states_the_webhook_rules_the_server_checks(
    api: Client, document: dict[str, Any]
) -> None:
    create = body_schema(document, "post", "/api/v1/webhooks")["properties"]
    for blank in ("   ", "\x1f\u3000\t"):  # what str.strip() trims, not only ECMA's \s
        assert re.search(create["name"]["pattern"], blank) is None
        response = await api.post(
            "/api/v1/webhooks",
            json={"name": blank, "url": "http://h/", "events": ["report.created"]},
        )
        assert set((await qrm_error(response, 422))["errors"]) == {"name"}
    for name, documented in (
        ("n" * 100, True),
        (f"\u3000 {'n' * 100}\n", True),
        ("n" * 101, False),
    ):
        assert bool(re.search(create["name"]["pattern"], name)) is documented
        response = await api.post(
            "/api/v1/webhooks",
            json={"name": name, "url": "http://h/", "events": ["report.created"]},
        )
        assert response.status == (201 if documented else 422)
    assert create["url"]["maxLength"] == 2048
    assert create["events"]["minItems"] == 1
    codes = resolve(document, create["events"]["items"])["enum"]
    catalog = (await (await api.get("/api/v1/webhook-events")).json())["data"]
    assert sorted(codes) == sorted(e["eventCode"] for c in catalog for e in c["events"])
    auth = resolve(document, create["basicAuth"]["anyOf"][0])["properties"]
    assert re.search(auth["username"]["pattern"], "a:b") is None
    assert auth["password"]["minLength"] == 1


@pytest.mark.parametrize(
    ("url", "accepted"),
    [
        ("https://hooks.example.com/qrm?x=1#y", True),
        ("  HTTP://127.0.0.1:8080/x  ", True),
        ("http://[::1]:65535/", True),
        ("ftp://hooks.example.com/", False),
        ("http://user:pass@hooks.example.com/", False),
        ("http://hooks.example.com:0/", False),
        ("http://hooks.example.com:65536/", False),
        ("http://[::g]/", False),
        ("http://hooks.example.com/a b", False),
        ("http:///nohost", False),
    ],
)
async def test_the_documented_url_pattern_is_what_the_server_accepts(
    api: Client, document: dict[str, Any], url: str, accepted: bool
) -> None:
    pattern = body_schema(document, "post", "/api/v1/webhooks")["properties"]["url"]["pattern"]
    assert bool(re.search(pattern, url)) is accepted
    body = {"name": "n", "url": url, "events": ["report.created"]}
    response = await api.post("/api/v1/webhooks", json=body)
    assert response.status == (201 if accepted else 422), await response.text()


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_every_url_the_documented_pattern_matches_is_a_webhook_url(data: st.DataObject) -> None:
    """The server's own check (`check_url`), on URLs drawn from the pattern it documents."""
    url = data.draw(st.from_regex(URL_PATTERN).filter(lambda u: len(u) <= MAX_URL_LENGTH))
    assert check_url(url) == url.strip()


@settings(max_examples=200, deadline=None)
@given(st.text(st.sampled_from(" \t\n\x1b\x1c\x85\x9b\u3000\ufeffnä"), max_size=104))
def test_the_documented_name_pattern_is_what_the_server_accepts(name: str) -> None:
    """Trimmed as `str.strip()` trims, which is not what ECMA's `\\s` means (`\\x1c`, `\\ufeff`)."""
    try:
        WebhookPatch.model_validate({"name": name})
        accepted = True
    except ValidationError:
        accepted = False
    assert bool(re.search(NAME_PATTERN, name)) is accepted


def test_openapi_does_not_offer_null_for_a_webhook_field_a_patch_refuses_null_for(
    document: dict[str, Any],
) -> None:
    patch = body_schema(document, "patch", "/api/v1/webhooks/{webhook_id}")["properties"]
    for field in ("name", "url", "events", "active"):
        assert "anyOf" not in patch[field] and patch[field]["type"] != "null", field
        assert "default" not in patch[field], field
    assert {"type": "null"} in patch["basicAuth"]["anyOf"]  # null turns basic auth off


async def test_a_patch_setting_a_field_to_null_is_422(api: Client) -> None:
    created = await api.post(
        "/api/v1/webhooks", json={"name": "n", "url": "http://h/", "events": ["report.created"]}
    )
    webhook_id = (await created.json())["data"]["id"]
    response = await api.patch(f"/api/v1/webhooks/{webhook_id}", json={"name": None})
    error = await qrm_error(response, 422)
    assert set(error["errors"]) == {"name"}


def test_openapi_lists_the_report_fields_an_upload_may_override(document: dict[str, Any]) -> None:
    overrides = body_schema(document, "post", "/_mock/reports")["properties"]["overrides"]
    assert overrides["additionalProperties"] is False
    assert set(overrides["properties"]) == set(OVERRIDABLE)
    assert {"caseNumber", "inspectionResult", "createdDate"} <= set(overrides["properties"])
    assert "id" not in overrides["properties"]  # assigned by the server


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/webhooks/{webhook_id}"),
        ("post", "/api/v1/webhooks/{webhook_id}/activate"),
        ("get", "/api/v1/webhook-deliveries/{delivery_id}"),
        ("post", "/api/v1/webhook-deliveries/{delivery_id}/redeliver"),
        ("get", "/files/reports/{report_id}.pdf"),
        ("delete", "/_mock/faults/{fault_id}"),
    ],
)
def test_openapi_types_a_numeric_id_in_a_path_as_an_integer(
    document: dict[str, Any], method: str, path: str
) -> None:
    assert path_parameter(document, method, path) == {
        "type": "integer",
        "minimum": 1,
        "maximum": 10**18 - 1,
    }


def test_openapi_types_a_report_id_as_a_number_or_an_inspection_uuid(
    document: dict[str, Any],
) -> None:
    schema = path_parameter(document, "get", "/api/v1/reports/{report_id}")
    assert {s.get("type") for s in schema["anyOf"]} == {"integer", "string"}
    assert {"type": "string", "format": "uuid"} in schema["anyOf"]


@pytest.mark.parametrize(
    "path", ["/api/v1/webhooks/abc", "/api/v1/webhooks/-1", "/api/v1/webhook-deliveries/1.5"]
)
async def test_a_path_id_that_is_not_an_integer_is_404(api: Client, path: str) -> None:
    await qrm_error(await api.get(path), 404)


def test_openapi_says_a_fault_needs_a_status_a_delay_or_a_reset(document: dict[str, Any]) -> None:
    fault = body_schema(document, "post", "/_mock/faults")
    assert [option["required"] for option in fault["anyOf"]] == [["status"], ["delayMs"], ["reset"]]
    assert fault["not"]["required"] == ["status", "reset"]
