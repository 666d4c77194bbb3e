"""Errors: every failure answers in QRM's shape, as JSON, with the right status (SPEC.md section 3)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from tests.conftest import WEBHOOK

Client = TestClient[Any, Any]
ONE_MIB = 1024 * 1024


async def qrm_error(response: ClientResponse, status: int) -> dict[str, Any]:
    """Assert `response` is a `status` error in exactly QRM's shape, and return its body.

    QRM's shape is `{"errorCode", "message"}` plus, on 422 only, `errors` mapping
    a dotted field path to its messages; nothing else, never HTML.
    """
    text = await response.text()
    assert response.status == status, text[:500]
    assert response.content_type == "application/json", text[:500]
    assert not text.lstrip().startswith("<"), text[:500]
    body = await response.json()
    assert isinstance(body, dict)
    assert set(body) <= {"errorCode", "message", "errors"}, body
    assert isinstance(body["errorCode"], str) and body["errorCode"]
    assert isinstance(body["message"], str) and body["message"]
    assert ("errors" in body) == (status == 422), body
    if "errors" in body:
        errors = body["errors"]
        assert isinstance(errors, dict) and errors
        for field, messages in errors.items():
            assert isinstance(field, str) and field
            assert isinstance(messages, list) and messages
            assert all(isinstance(m, str) and m for m in messages)
    return body


async def webhooks_held(api: Client) -> list[dict[str, Any]]:
    response = await api.get("/api/v1/webhooks")
    assert response.status == 200
    data: list[dict[str, Any]] = (await response.json())["data"]
    return data


# -- 400: the body is not JSON


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b'{"name": "x",}', b"\xff\xfe{}", b""],
    ids=["broken", "trailing-comma", "not-utf8", "empty"],
)
async def test_malformed_json_is_400(api: Client, raw: bytes) -> None:
    response = await api.post(
        "/api/v1/webhooks", data=raw, headers={"Content-Type": "application/json"}
    )
    await qrm_error(response, 400)
    assert await webhooks_held(api) == []


async def test_malformed_json_on_login_is_400(api: Client) -> None:
    response = await api.post(
        "/api/v1/auth/login", data=b"username=a", headers={"Content-Type": "application/json"}
    )
    await qrm_error(response, 400)


# -- 422: JSON of the wrong shape


@pytest.mark.parametrize(
    "raw",
    [json.dumps([WEBHOOK]), '"webhook"', "42", "null"],
    ids=["array", "string", "number", "null"],
)
async def test_a_body_that_is_not_an_object_is_422(api: Client, raw: str) -> None:
    response = await api.post(
        "/api/v1/webhooks", data=raw, headers={"Content-Type": "application/json"}
    )
    error = await qrm_error(response, 422)
    assert set(error["errors"]) == {"body"}
    assert await webhooks_held(api) == []


@pytest.mark.parametrize(
    ("field", "value", "key"),
    [
        ("name", 5, "name"),
        ("name", ["Receiver"], "name"),
        ("url", {"href": "http://127.0.0.1:1/ok"}, "url"),
        ("events", "report.created", "events"),
        ("events", [1], "events.0"),
        ("active", "yes", "active"),
        ("active", 1, "active"),
        ("basicAuth", "user:password", "basicAuth"),
        ("basicAuth", {"username": 7, "password": "pw"}, "basicAuth.username"),
    ],
    ids=lambda v: repr(v) if not isinstance(v, str) else v,
)
async def test_a_field_of_the_wrong_type_is_422(
    api: Client, field: str, value: Any, key: str
) -> None:
    response = await api.post("/api/v1/webhooks", json={**WEBHOOK, field: value})
    error = await qrm_error(response, 422)
    assert set(error["errors"]) == {key}
    assert await webhooks_held(api) == []


async def test_an_unknown_field_is_422_not_ignored(api: Client) -> None:
    response = await api.post("/api/v1/webhooks", json={**WEBHOOK, "nmae": "typo"})
    error = await qrm_error(response, 422)
    assert set(error["errors"]) == {"nmae"}
    assert await webhooks_held(api) == []


@pytest.mark.parametrize(
    "query",
    ["limit=abc", "limit=0", "offset=-1", "order=random", "status=lost", "created_from=yesterday"],
)
async def test_a_bad_query_parameter_is_422_keyed_by_its_name(api: Client, query: str) -> None:
    response = await api.get(f"/api/v1/reports?{query}")
    error = await qrm_error(response, 422)
    assert set(error["errors"]) == {query.partition("=")[0]}


# -- 404: unknown ids and routes


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/webhooks/999"),
        ("PATCH", "/api/v1/webhooks/999"),
        ("DELETE", "/api/v1/webhooks/999"),
        ("POST", "/api/v1/webhooks/999/activate"),
        ("POST", "/api/v1/webhooks/999/deactivate"),
        ("GET", "/api/v1/webhook-deliveries/999"),
        ("POST", "/api/v1/webhook-deliveries/999/redeliver"),
        ("GET", "/api/v1/reports/99999"),
        ("GET", f"/api/v1/reports/{uuid.UUID(int=1)}"),
        ("GET", "/files/reports/99999.pdf"),
    ],
)
async def test_an_unknown_id_is_404(api: Client, method: str, path: str) -> None:
    body = {"name": "Renamed"} if method == "PATCH" else None
    response = await api.request(method, path, json=body)
    await qrm_error(response, 404)


async def test_an_unknown_event_report_is_404(api: Client) -> None:
    response = await api.post(
        "/_mock/events", json={"eventCode": "report.created", "resourceId": 99999}
    )
    await qrm_error(response, 404)


HUGE = 10**30


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", f"/api/v1/reports/{HUGE}", None, 404),
        ("GET", "/api/v1/reports/%C2%B2", None, 404),  # "²" is a digit to str.isdigit
        ("GET", "/api/v1/webhooks/%C2%B2", None, 404),  # no such webhook id, like any other
        ("GET", "/api/v1/webhooks/%D9%A1", None, 404),  # Arabic-Indic "1" is not webhook 1
        ("GET", "/files/reports/%C2%B2.pdf", None, 404),
        ("GET", f"/api/v1/reports?offset={HUGE}", None, 422),
        ("GET", f"/api/v1/webhook-deliveries?webhook_id={HUGE}", None, 422),
        ("GET", f"/api/v1/webhook-deliveries?offset={HUGE}", None, 422),
        ("POST", "/_mock/events", {"eventCode": "report.created", "resourceId": HUGE}, 422),
        ("POST", "/api/v1/webhook-deliveries/redeliver", {"webhookId": HUGE}, 422),
    ],
)
async def test_an_out_of_range_or_non_ascii_number_is_refused_not_a_crash(
    api: Client, method: str, path: str, body: Any, status: int
) -> None:
    await api.post("/api/v1/webhooks", json=WEBHOOK)
    response = await api.request(method, path, json=body)
    await qrm_error(response, status)


@pytest.mark.parametrize(
    "path", ["/nope", "/api/v1/nope", "/api/v2/reports", "/_mock/nope", "/api/v1/webhooks/1/x"]
)
async def test_an_unknown_route_is_404(api: Client, path: str) -> None:
    await qrm_error(await api.get(path), 404)


# -- 405, 413


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", "/api/v1/webhooks"),
        ("DELETE", "/api/v1/reports"),
        ("POST", "/api/v1/reports/12301"),
        ("PUT", "/api/v1/webhooks/1"),
        ("GET", "/api/v1/webhooks/1/activate"),
        ("GET", "/api/v1/auth/login"),
        ("DELETE", "/_mock/clock"),
    ],
)
async def test_a_wrong_method_is_405(api: Client, method: str, path: str) -> None:
    await qrm_error(await api.request(method, path), 405)


async def test_a_body_over_one_mib_is_413(api: Client) -> None:
    padding = "x" * ONE_MIB
    response = await api.post("/api/v1/webhooks", json={**WEBHOOK, "name": padding})
    await qrm_error(response, 413)
    assert await webhooks_held(api) == []


async def test_a_body_of_exactly_one_mib_is_read(api: Client) -> None:
    """The limit is "over 1 MiB": a body of 1 MiB is parsed (and here fails a rule, not the size)."""
    head = b'{"name": "'
    tail = b'", "url": "http://127.0.0.1:1/ok", "events": ["report.created"]}'
    raw = head + b"x" * (ONE_MIB - len(head) - len(tail)) + tail
    assert len(raw) == ONE_MIB
    response = await api.post(
        "/api/v1/webhooks", data=raw, headers={"Content-Type": "application/json"}
    )
    error = await qrm_error(response, 422)
    assert set(error["errors"]) == {"name"}


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/_mock/clock/advance", {"seconds": "5"}, "seconds"),
        (
            "/api/v1/webhooks",
            {"name": "x", "url": "http://h/", "events": "report.created"},
            "events",
        ),
        ("/_mock/events", {"eventCode": "report.created", "resourceId": "12301"}, "resourceId"),
    ],
)
async def test_a_json_value_of_the_wrong_type_is_422_not_coerced(
    api: TestClient[Any, Any], path: str, body: dict[str, Any], field: str
) -> None:
    response = await api.post(path, json=body)
    error = await qrm_error(response, 422)
    assert field in error["errors"]


@pytest.mark.parametrize("path", ["/api/v1/webhooks/abc", "/api/v1/webhook-deliveries/x1"])
async def test_an_id_that_cannot_exist_is_an_unknown_id(
    api: TestClient[Any, Any], path: str
) -> None:
    await qrm_error(await api.get(path), 404)
