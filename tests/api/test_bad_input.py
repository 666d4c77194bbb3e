"""Hostile or broken input is a 4xx in QRM's error shape, never a 500 (SPEC.md section 3)."""

from __future__ import annotations

import gzip
import json
import zlib
from typing import Any

import pytest
from aiohttp import WSServerHandshakeError
from aiohttp.test_utils import TestClient

from tests.api.test_errors import qrm_error, webhooks_held
from tests.conftest import WEBHOOK

Client = TestClient[Any, Any]
JSON = {"Content-Type": "application/json"}


async def _webhook(api: Client) -> int:
    response = await api.post("/api/v1/webhooks", json=WEBHOOK)
    assert response.status == 201, await response.text()
    webhook_id: int = (await response.json())["data"]["id"]
    return webhook_id


# -- JSON nested too deeply: 400, whichever parser would have given up first


def _nested(depth: int, kind: str) -> str:
    if kind == "array":
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


@pytest.mark.parametrize("depth", [300, 1_000, 100_000])
@pytest.mark.parametrize("kind", ["array", "object"])
async def test_json_nested_too_deep_is_400(api: Client, kind: str, depth: int) -> None:
    raw = _nested(depth, kind)
    response = await api.post("/api/v1/webhooks", data=raw, headers=JSON)
    error = await qrm_error(response, 400)
    assert "nested too deeply" in error["message"]
    assert await webhooks_held(api) == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PATCH", "/api/v1/webhooks/{id}"),
        ("POST", "/_mock/reports"),
        ("POST", "/api/v1/webhook-deliveries/redeliver"),
        ("POST", "/_mock/reset"),
    ],
)
async def test_json_nested_too_deep_inside_a_field_is_400_on_every_body(
    api: Client, method: str, path: str
) -> None:
    webhook_id = await _webhook(api)
    raw = '{"name": ' + _nested(1_000, "array") + "}"
    response = await api.request(method, path.format(id=webhook_id), data=raw, headers=JSON)
    error = await qrm_error(response, 400)
    assert "nested too deeply" in error["message"]


# -- Content-Encoding: gzip and deflate are read; a body that is not what it says is 400;
#    any other coding is 415, before the body is read


@pytest.mark.parametrize(
    ("coding", "compress"),
    [("gzip", gzip.compress), ("deflate", zlib.compress), ("identity", lambda raw: raw)],
)
async def test_a_body_in_a_supported_content_encoding_is_read(
    api: Client, coding: str, compress: Any
) -> None:
    raw = compress(json.dumps(WEBHOOK).encode())
    response = await api.post(
        "/api/v1/webhooks", data=raw, headers={**JSON, "Content-Encoding": coding}
    )
    assert response.status == 201, await response.text()
    assert [w["name"] for w in await webhooks_held(api)] == [WEBHOOK["name"]]


@pytest.mark.parametrize("coding", ["gzip", "deflate", "GZIP"])
async def test_a_body_that_is_not_in_its_content_encoding_is_400(api: Client, coding: str) -> None:
    response = await api.post(
        "/api/v1/webhooks",
        data=json.dumps(WEBHOOK),
        headers={**JSON, "Content-Encoding": coding},
    )
    error = await qrm_error(response, 400)
    assert "could not be decoded" in error["message"]
    assert await webhooks_held(api) == []


async def test_a_truncated_gzip_body_is_400(api: Client) -> None:
    raw = gzip.compress(json.dumps(WEBHOOK).encode())[:-12]
    response = await api.post(
        "/api/v1/webhooks", data=raw, headers={**JSON, "Content-Encoding": "gzip"}
    )
    error = await qrm_error(response, 400)
    assert "could not be decoded" in error["message"]
    assert await webhooks_held(api) == []


@pytest.mark.parametrize("coding", ["br", "zstd", "compress", "x-made-up", "gzip, br"])
async def test_an_unsupported_content_encoding_is_415(api: Client, coding: str) -> None:
    response = await api.post(
        "/api/v1/webhooks", data=json.dumps(WEBHOOK), headers={**JSON, "Content-Encoding": coding}
    )
    error = await qrm_error(response, 415)
    assert "Content-Encoding" in error["message"]
    assert await webhooks_held(api) == []


async def test_an_unsupported_content_encoding_is_415_where_the_body_is_ignored(
    api: Client,
) -> None:
    webhook_id = await _webhook(api)
    response = await api.post(
        f"/api/v1/webhooks/{webhook_id}/deactivate",
        data=b"\x00\x01",
        headers={"Content-Encoding": "br"},
    )
    await qrm_error(response, 415)
    assert [w["active"] for w in await webhooks_held(api)] == [True]


async def test_a_gzip_body_over_one_mib_once_decoded_is_413(api: Client) -> None:
    """A small gzip body that inflates past the limit is refused, not inflated in full."""
    raw = json.dumps({**WEBHOOK, "name": "x" * (4 * 1024 * 1024)}).encode()
    packed = gzip.compress(raw)
    assert len(packed) < 64 * 1024
    response = await api.post(
        "/api/v1/webhooks", data=packed, headers={**JSON, "Content-Encoding": "gzip"}
    )
    await qrm_error(response, 413)
    assert await webhooks_held(api) == []


# -- the feed's parameters are checked before the upgrade: 422, not a 500 inside the socket

UPGRADE = {
    "Connection": "Upgrade",
    "Upgrade": "websocket",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("after_seq=%C2%B2", "after_seq"),  # "²": str.isdigit says yes, int() says no
        ("after_seq=%D9%A1", "after_seq"),  # Arabic-Indic one
        ("after_seq=-1", "after_seq"),
        ("after_seq=1e3", "after_seq"),
        ("after_seq=", "after_seq"),
        ("after_seq=" + "9" * 40, "after_seq"),
        ("boot_id=", "boot_id"),
        ("boot_id=" + "a" * 200, "boot_id"),
        ("boot_id=a%00b", "boot_id"),
        ("boot_id=%C3%A9t%C3%A9", "boot_id"),
    ],
)
async def test_a_bad_feed_parameter_is_422_before_the_upgrade(
    api: Client, query: str, field: str
) -> None:
    with pytest.raises(WSServerHandshakeError) as refused:
        await api.ws_connect(f"/api/v1/webhook-feed?{query}")
    assert refused.value.status == 422
    response = await api.get(f"/api/v1/webhook-feed?{query}", headers=UPGRADE)
    error = await qrm_error(response, 422)
    assert set(error["errors"]) == {field}


async def test_good_feed_parameters_still_connect(api: Client) -> None:
    ws = await api.ws_connect("/api/v1/webhook-feed?after_seq=0&boot_id=0123abcdef")
    hello = await ws.receive_json(timeout=5)
    assert hello["type"] == "hello"
    await ws.close()


# -- report overrides: a date the generator cannot place in time is 422, keyed by its field

FAR_FUTURE = "9999-12-31T23:59:59-23:59"  # year 10000 in UTC
FAR_PAST = "0001-01-01T00:00:00+23:59"  # year 0 in UTC


@pytest.mark.parametrize(
    "field",
    [
        "inspectionDate",
        "createdDate",
        "updatedDate",
        "systemUpdatedAt",
        "expectedDate",
        "actualInspectionDate",
    ],
)
@pytest.mark.parametrize("value", [FAR_FUTURE, FAR_PAST], ids=["far-future", "far-past"])
async def test_an_override_date_out_of_range_is_422(api: Client, field: str, value: str) -> None:
    response = await api.post("/_mock/reports", json={"overrides": {field: value}})
    error = await qrm_error(response, 422)
    assert set(error["errors"]) == {f"overrides.{field}"}


@pytest.mark.parametrize(
    "overrides",
    [
        {"createdDate": "0001-01-01T00:00:00Z"},  # the inspection would be before year 1
        {"inspectionDate": "0001-01-01"},  # the expected date would be before year 1
        {"createdDate": "9999-12-31T23:59:59Z", "status": "pending"},  # expected in year 10000
    ],
    ids=["created-year-1", "inspected-year-1", "pending-at-the-end-of-time"],
)
async def test_an_override_date_too_close_to_the_ends_of_time_is_422(
    api: Client, overrides: dict[str, str]
) -> None:
    response = await api.post("/_mock/reports", json={"overrides": overrides})
    error = await qrm_error(response, 422)
    [key] = error["errors"]
    assert key.startswith("overrides.") and key.endswith("Date")


@pytest.mark.parametrize(
    "overrides",
    [
        {"createdDate": "1900-01-01T00:00:00Z", "inspectionDate": "1900-01-01"},
        {"createdDate": "9998-12-31T23:59:59.999Z", "status": "pending"},
        {"inspectionDate": "9998-12-31T23:59:59+23:59"},
    ],
    ids=["first-day", "last-moment-pending", "last-day-far-east"],
)
async def test_an_override_date_inside_the_range_makes_a_report(
    api: Client, overrides: dict[str, str]
) -> None:
    response = await api.post("/_mock/reports", json={"overrides": overrides})
    assert response.status == 201, await response.text()
    report_id = (await response.json())["data"]["resourceId"]
    report = await api.get(f"/api/v1/reports/{report_id}")
    assert report.status == 200, await report.text()


# -- webhook URLs: no control characters, raw in the JSON string

CONTROLS = ["\x00", "\x01", "\x1b", "\x7f", "\x85", "\n", "\t", "\r"]


@pytest.mark.parametrize("char", CONTROLS, ids=[f"U+{ord(c):04X}" for c in CONTROLS])
async def test_a_webhook_url_with_a_control_character_is_422(api: Client, char: str) -> None:
    url = f"http://127.0.0.1:1/o{char}k"
    created = await api.post("/api/v1/webhooks", json={**WEBHOOK, "url": url})
    error = await qrm_error(created, 422)
    assert set(error["errors"]) == {"url"}
    assert await webhooks_held(api) == []

    webhook_id = await _webhook(api)
    patched = await api.patch(f"/api/v1/webhooks/{webhook_id}", json={"url": url})
    error = await qrm_error(patched, 422)
    assert set(error["errors"]) == {"url"}
    assert [w["url"] for w in await webhooks_held(api)] == [WEBHOOK["url"]]


# -- an unknown event code is refused wherever one is named, and the 422 lists the known ones

KNOWN = "known: report.created, report.file_ready"


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("GET", "/api/v1/webhook-deliveries?event_code=report.uploaded", None, "event_code"),
        (
            "POST",
            "/api/v1/webhook-deliveries/redeliver",
            {"eventCode": "report.uploaded"},
            "eventCode",
        ),
        (
            "POST",
            "/_mock/events",
            {"eventCode": "report.uploaded", "resourceId": 12301},
            "eventCode",
        ),
        ("POST", "/api/v1/webhooks", {**WEBHOOK, "events": ["report.uploaded"]}, "events"),
    ],
    ids=["list-filter", "bulk-redeliver", "emit", "create"],
)
async def test_an_unknown_event_code_is_422_naming_the_known_ones(
    api: Client, method: str, path: str, body: Any, field: str
) -> None:
    response = await api.request(method, path, json=body)
    error = await qrm_error(response, 422)
    [message] = error["errors"][field]
    assert message == f"Unknown event code: report.uploaded; {KNOWN}"
