"""The webhook registry, one test per rule of SPEC.md section 2's field table and section 3's routes."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.api.test_errors import qrm_error
from tests.conftest import WEBHOOK, service_of

Client = TestClient[Any, Any]

CATALOG = Path(__file__).parents[2] / "fixtures" / "event_catalog.json"
ISO_MS_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
PASSWORD = "s3cret-Pa55word"
WITH_AUTH = {**WEBHOOK, "basicAuth": {"username": "qrm", "password": PASSWORD}}


async def create(api: Client, **fields: Any) -> dict[str, Any]:
    response = await api.post("/api/v1/webhooks", json={**WEBHOOK, **fields})
    assert response.status == 201, await response.text()
    webhook: dict[str, Any] = (await response.json())["data"]
    return webhook


async def listed(api: Client) -> list[dict[str, Any]]:
    response = await api.get("/api/v1/webhooks")
    assert response.status == 200
    data: list[dict[str, Any]] = (await response.json())["data"]
    return data


async def read(api: Client, webhook_id: int) -> dict[str, Any]:
    response = await api.get(f"/api/v1/webhooks/{webhook_id}")
    assert response.status == 200
    webhook: dict[str, Any] = (await response.json())["data"]
    return webhook


async def refused_create(api: Client, body: dict[str, Any], field: str) -> None:
    """A create that breaks one rule: 422 keyed by that field, and nothing written."""
    response = await api.post("/api/v1/webhooks", json=body)
    error = await qrm_error(response, 422)
    assert set(error["errors"]) == {field}, error
    assert await listed(api) == []


async def refused_patch(api: Client, webhook_id: int, body: dict[str, Any], field: str) -> None:
    """An edit that breaks one rule: 422 keyed by that field, and the webhook unchanged."""
    before = await read(api, webhook_id)
    held = asdict(service_of(api).webhooks[webhook_id])
    response = await api.patch(f"/api/v1/webhooks/{webhook_id}", json=body)
    error = await qrm_error(response, 422)
    assert set(error["errors"]) == {field}, error
    assert await read(api, webhook_id) == before
    assert asdict(service_of(api).webhooks[webhook_id]) == held


def without(field: str) -> dict[str, Any]:
    return {k: v for k, v in WEBHOOK.items() if k != field}


# -- name: mandatory, 1-100 characters after trimming


async def test_name_is_trimmed_and_mandatory(api: Client) -> None:
    webhook = await create(api, name="  Receiver  ")
    assert webhook["name"] == "Receiver"


@pytest.mark.parametrize("name", ["", "   ", "\t\n"], ids=["empty", "spaces", "whitespace"])
async def test_a_blank_name_is_refused(api: Client, name: str) -> None:
    await refused_create(api, {**WEBHOOK, "name": name}, "name")


async def test_a_missing_name_is_refused(api: Client) -> None:
    await refused_create(api, without("name"), "name")


async def test_name_may_be_one_to_a_hundred_characters_after_trimming(api: Client) -> None:
    assert (await create(api, name="a"))["name"] == "a"
    assert (await create(api, name=" " + "b" * 100 + " "))["name"] == "b" * 100


async def test_a_name_over_a_hundred_characters_is_refused(api: Client) -> None:
    await refused_create(api, {**WEBHOOK, "name": "n" * 101}, "name")


# -- url: absolute http(s) with a host, at most 2,048 characters, no credentials


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8766/ok", "https://hooks.example.com/qrm?x=1", "http://localhost/"],
)
async def test_http_and_https_urls_are_accepted(api: Client, url: str) -> None:
    assert (await create(api, url=url))["url"] == url


@pytest.mark.parametrize(
    "url",
    [
        "",
        "hooks.example.com/qrm",
        "/relative/path",
        "ftp://hooks.example.com/qrm",
        "mailto:qa@example.com",
        "javascript:alert(1)",
        "http://",
        "http:///path-without-host",
        "http://hooks example.com/qrm",
        "http://hooks.example.com:99999/qrm",
    ],
)
async def test_url_must_be_absolute_http_or_https_with_a_host(api: Client, url: str) -> None:
    await refused_create(api, {**WEBHOOK, "url": url}, "url")


async def test_a_missing_url_is_refused(api: Client) -> None:
    await refused_create(api, without("url"), "url")


async def test_url_may_be_2048_characters_but_no_more(api: Client) -> None:
    base = "http://hooks.example.com/"
    longest = base + "a" * (2048 - len(base))
    assert (await create(api, url=longest))["url"] == longest
    response = await api.post("/api/v1/webhooks", json={**WEBHOOK, "url": longest + "a"})
    error = await qrm_error(response, 422)
    assert set(error["errors"]) == {"url"}
    assert [w["url"] for w in await listed(api)] == [longest]


@pytest.mark.parametrize(
    "url",
    [
        "http://user:pass@hooks.example.com/qrm",
        "https://user@hooks.example.com/qrm",
        "http://:pass@hooks.example.com/qrm",
    ],
)
async def test_credentials_in_url_are_refused(api: Client, url: str) -> None:
    await refused_create(api, {**WEBHOOK, "url": url}, "url")


# -- events: at least one, known codes only, duplicates folded


async def test_events_need_at_least_one_code(api: Client) -> None:
    await refused_create(api, {**WEBHOOK, "events": []}, "events")


async def test_a_missing_events_list_is_refused(api: Client) -> None:
    await refused_create(api, without("events"), "events")


@pytest.mark.parametrize(
    "events",
    [["report.deleted"], ["report.created", "Report.Created"], ["report.created", ""]],
    ids=["unknown", "wrong-case", "blank"],
)
async def test_unknown_event_codes_are_refused(api: Client, events: list[str]) -> None:
    await refused_create(api, {**WEBHOOK, "events": events}, "events")


async def test_duplicate_events_are_folded(api: Client) -> None:
    events = ["report.created", "report.file_ready", "report.created", "report.file_ready"]
    webhook = await create(api, events=events)
    assert webhook["events"] == ["report.created", "report.file_ready"]
    assert (await read(api, webhook["id"]))["events"] == ["report.created", "report.file_ready"]


# -- basic auth: username without ':', both fields mandatory when enabled


async def test_basic_auth_is_optional(api: Client) -> None:
    assert (await create(api))["basicAuth"] is None
    assert (await create(api, basicAuth=None))["basicAuth"] is None


async def test_basic_auth_shows_username_and_that_a_password_is_set(api: Client) -> None:
    webhook = await create(api, basicAuth={"username": "qrm", "password": PASSWORD})
    assert webhook["basicAuth"] == {"username": "qrm", "passwordSet": True}


async def test_basic_auth_username_must_not_contain_a_colon(api: Client) -> None:
    body = {**WEBHOOK, "basicAuth": {"username": "qrm:admin", "password": PASSWORD}}
    await refused_create(api, body, "basicAuth.username")


@pytest.mark.parametrize(
    ("auth", "field"),
    [
        ({"password": PASSWORD}, "basicAuth.username"),
        ({"username": "", "password": PASSWORD}, "basicAuth.username"),
        ({"username": "qrm"}, "basicAuth.password"),
        ({"username": "qrm", "password": ""}, "basicAuth.password"),
        ({"username": "qrm", "password": None}, "basicAuth.password"),
    ],
    ids=["no-username", "empty-username", "no-password", "empty-password", "null-password"],
)
async def test_basic_auth_needs_both_username_and_password(
    api: Client, auth: dict[str, Any], field: str
) -> None:
    await refused_create(api, {**WEBHOOK, "basicAuth": auth}, field)


async def test_every_broken_rule_is_reported_at_once(api: Client) -> None:
    body = {
        "name": " ",
        "url": "ftp://x",
        "events": [],
        "basicAuth": {"username": "a:b", "password": ""},
    }
    response = await api.post("/api/v1/webhooks", json=body)
    error = await qrm_error(response, 422)
    assert set(error["errors"]) == {
        "name",
        "url",
        "events",
        "basicAuth.username",
        "basicAuth.password",
    }
    assert await listed(api) == []


# -- create, read, list


async def test_create_answers_201_with_the_webhook(api: Client) -> None:
    response = await api.post("/api/v1/webhooks", json=WEBHOOK)
    assert response.status == 201
    body = await response.json()
    assert set(body) == {"data"}
    webhook = body["data"]
    assert isinstance(webhook["id"], int)
    assert webhook["name"] == WEBHOOK["name"]
    assert webhook["url"] == WEBHOOK["url"]
    assert webhook["events"] == WEBHOOK["events"]
    assert webhook["basicAuth"] is None
    assert ISO_MS_Z.match(webhook["createdAt"]), webhook["createdAt"]
    assert ISO_MS_Z.match(webhook["updatedAt"]), webhook["updatedAt"]
    assert await read(api, webhook["id"]) == webhook
    assert await listed(api) == [webhook]


async def test_new_webhook_is_active(api: Client) -> None:
    webhook = await create(api)
    assert webhook["active"] is True
    assert (await read(api, webhook["id"]))["active"] is True


async def test_a_webhook_may_be_created_inactive(api: Client) -> None:
    webhook = await create(api, active=False)
    assert webhook["active"] is False


async def test_list_holds_every_webhook(api: Client) -> None:
    first = await create(api, name="First")
    second = await create(api, name="Second", active=False)
    assert first["id"] != second["id"]
    by_id = {w["id"]: w for w in await listed(api)}
    assert by_id == {first["id"]: first, second["id"]: second}


# -- edit: partial; an omitted password keeps the stored one


async def test_patch_changes_only_the_fields_sent(api: Client) -> None:
    webhook = await create(api, **WITH_AUTH)
    response = await api.patch(f"/api/v1/webhooks/{webhook['id']}", json={"name": "  Renamed  "})
    assert response.status == 200
    patched = (await response.json())["data"]
    assert patched["name"] == "Renamed"
    for field in ("id", "url", "events", "basicAuth", "active", "createdAt"):
        assert patched[field] == webhook[field], field
    assert await read(api, webhook["id"]) == patched
    assert service_of(api).webhooks[webhook["id"]].auth_password == PASSWORD


async def test_every_field_can_be_edited(api: Client) -> None:
    webhook = await create(api)
    changes = {
        "name": "Edited",
        "url": "https://hooks.example.com/edited",
        "events": ["report.file_ready"],
        "basicAuth": {"username": "edited", "password": "new-password"},
        "active": False,
    }
    response = await api.patch(f"/api/v1/webhooks/{webhook['id']}", json=changes)
    assert response.status == 200
    patched = (await response.json())["data"]
    assert patched["name"] == "Edited"
    assert patched["url"] == "https://hooks.example.com/edited"
    assert patched["events"] == ["report.file_ready"]
    assert patched["basicAuth"] == {"username": "edited", "passwordSet": True}
    assert patched["active"] is False
    assert await read(api, webhook["id"]) == patched
    assert service_of(api).webhooks[webhook["id"]].auth_password == "new-password"


async def test_omitted_password_keeps_the_stored_one(api: Client) -> None:
    webhook = await create(api, **WITH_AUTH)
    response = await api.patch(
        f"/api/v1/webhooks/{webhook['id']}", json={"basicAuth": {"username": "renamed"}}
    )
    assert response.status == 200
    assert (await response.json())["data"]["basicAuth"] == {
        "username": "renamed",
        "passwordSet": True,
    }
    stored = service_of(api).webhooks[webhook["id"]]
    assert stored.auth_username == "renamed"
    assert stored.auth_password == PASSWORD


async def test_a_sent_password_replaces_the_stored_one(api: Client) -> None:
    webhook = await create(api, **WITH_AUTH)
    response = await api.patch(
        f"/api/v1/webhooks/{webhook['id']}",
        json={"basicAuth": {"username": "qrm", "password": "rotated"}},
    )
    assert response.status == 200
    assert service_of(api).webhooks[webhook["id"]].auth_password == "rotated"


async def test_basic_auth_null_turns_it_off(api: Client) -> None:
    webhook = await create(api, **WITH_AUTH)
    response = await api.patch(f"/api/v1/webhooks/{webhook['id']}", json={"basicAuth": None})
    assert response.status == 200
    assert (await response.json())["data"]["basicAuth"] is None
    assert (await read(api, webhook["id"]))["basicAuth"] is None
    stored = service_of(api).webhooks[webhook["id"]]
    assert stored.auth_username is None
    assert stored.auth_password is None


async def test_enabling_basic_auth_on_edit_needs_a_password(api: Client) -> None:
    webhook = await create(api)
    await refused_patch(
        api, webhook["id"], {"basicAuth": {"username": "qrm"}}, "basicAuth.password"
    )
    assert service_of(api).webhooks[webhook["id"]].auth_password is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "   "}, "name"),
        ({"name": "n" * 101}, "name"),
        ({"url": "ftp://hooks.example.com/"}, "url"),
        ({"url": "http://user:pass@hooks.example.com/"}, "url"),
        ({"events": []}, "events"),
        ({"events": ["report.deleted"]}, "events"),
        ({"basicAuth": {"username": "a:b", "password": "pw"}}, "basicAuth.username"),
        ({"name": None}, "name"),
        ({"url": None}, "url"),
        ({"events": None}, "events"),
        ({"active": None}, "active"),
    ],
    ids=lambda v: json.dumps(v) if isinstance(v, dict) else v,
)
async def test_an_edit_follows_the_same_rules(
    api: Client, body: dict[str, Any], field: str
) -> None:
    webhook = await create(api, **WITH_AUTH)
    await refused_patch(api, webhook["id"], body, field)


async def test_an_empty_patch_changes_nothing(api: Client) -> None:
    webhook = await create(api, **WITH_AUTH)
    response = await api.patch(f"/api/v1/webhooks/{webhook['id']}", json={})
    assert response.status == 200
    patched = (await response.json())["data"]
    for field in ("name", "url", "events", "basicAuth", "active"):
        assert patched[field] == webhook[field], field


# -- activate, deactivate


async def test_deactivated_webhook_stays_listed(api: Client) -> None:
    webhook = await create(api)
    response = await api.post(f"/api/v1/webhooks/{webhook['id']}/deactivate")
    assert response.status == 200
    assert (await response.json())["data"]["active"] is False
    assert [(w["id"], w["active"]) for w in await listed(api)] == [(webhook["id"], False)]


async def test_activate_turns_a_webhook_back_on(api: Client) -> None:
    webhook = await create(api, active=False)
    response = await api.post(f"/api/v1/webhooks/{webhook['id']}/activate")
    assert response.status == 200
    assert (await response.json())["data"]["active"] is True
    assert (await read(api, webhook["id"]))["active"] is True


async def test_activate_and_deactivate_are_idempotent(api: Client) -> None:
    webhook = await create(api)
    for action, active in (("activate", True), ("deactivate", False), ("deactivate", False)):
        response = await api.post(f"/api/v1/webhooks/{webhook['id']}/{action}")
        assert response.status == 200
        assert (await response.json())["data"]["active"] is active


# -- unknown ids


@pytest.mark.parametrize(
    ("method", "suffix"),
    [("GET", ""), ("PATCH", ""), ("DELETE", ""), ("POST", "/activate"), ("POST", "/deactivate")],
)
async def test_unknown_webhook_is_404(api: Client, method: str, suffix: str) -> None:
    await create(api)
    body = {"name": "Renamed"} if method == "PATCH" else None
    response = await api.request(method, f"/api/v1/webhooks/999{suffix}", json=body)
    error = await qrm_error(response, 404)
    assert "999" in error["message"]


# -- the password is write-only


async def test_password_is_never_returned(api: Client) -> None:
    encoded = base64.b64encode(f"qrm:{PASSWORD}".encode()).decode()
    texts: list[str] = []

    async def keep(method: str, path: str, body: Any = None, status: int = 200) -> Any:
        response = await api.request(method, path, json=body)
        assert response.status == status, await response.text()
        texts.append(await response.text())
        return await response.json()

    created = (await keep("POST", "/api/v1/webhooks", WITH_AUTH, status=201))["data"]
    path = f"/api/v1/webhooks/{created['id']}"
    await keep("GET", "/api/v1/webhooks")
    await keep("GET", path)
    await keep("PATCH", path, {"name": "Renamed"})
    await keep("PATCH", path, {"basicAuth": {"username": "qrm"}})
    await keep("POST", f"{path}/deactivate")
    await keep("POST", f"{path}/activate")
    await keep("POST", "/_mock/reports", {}, status=201)
    (delivery,) = (await keep("GET", "/api/v1/webhook-deliveries"))["data"]
    attempt = await first_attempt(api, delivery["id"])
    sent = {k.lower(): v for k, v in attempt["requestHeaders"].items()}
    assert sent["authorization"] != f"Basic {encoded}"
    texts.append(json.dumps(attempt))
    await keep("GET", "/api/v1/webhook-deliveries")
    for text in texts:
        assert PASSWORD not in text
        assert encoded not in text
        assert '"password"' not in text


async def test_password_is_never_in_the_live_feed(api: Client) -> None:
    async with api.ws_connect("/api/v1/webhook-feed") as feed:
        hello = await feed.receive_json(timeout=5)
        assert hello["type"] == "hello"
        created = await create(api, **WITH_AUTH)
        await api.patch(f"/api/v1/webhooks/{created['id']}", json={"name": "Renamed"})
        await api.delete(f"/api/v1/webhooks/{created['id']}")
        actions = []
        while len(actions) < 3:
            frame = await feed.receive_str(timeout=5)
            assert PASSWORD not in frame
            assert '"password"' not in frame
            message = json.loads(frame)
            if message["type"] == "webhook":
                actions.append(message["action"])
        assert actions == ["created", "updated", "deleted"]


async def first_attempt(api: Client, delivery_id: int) -> dict[str, Any]:
    """The delivery's first attempt, once it has ended (the receiver at port 1 refuses fast)."""
    for _ in range(500):
        response = await api.get(f"/api/v1/webhook-deliveries/{delivery_id}")
        assert response.status == 200
        attempts = (await response.json())["data"]["attempts"]
        if attempts and attempts[0]["outcome"] is not None:
            attempt: dict[str, Any] = attempts[0]
            return attempt
        await asyncio.sleep(0.01)
    raise AssertionError(f"delivery {delivery_id} made no attempt within 5 s")


# -- the event catalog


async def test_events_are_listed_grouped_by_component(api: Client) -> None:
    response = await api.get("/api/v1/webhook-events")
    assert response.status == 200
    catalog = json.loads(CATALOG.read_text(encoding="utf-8"))
    assert await response.json() == {"data": catalog["components"]}


async def test_the_catalog_has_the_two_inspection_events(api: Client) -> None:
    response = await api.get("/api/v1/webhook-events")
    components = {c["component"]: c["events"] for c in (await response.json())["data"]}
    assert components["Inspection"] == [
        {"eventCode": "report.created", "eventName": "An Inspection report is uploaded"},
        {
            "eventCode": "report.file_ready",
            "eventName": "An Inspection report file is ready to view",
        },
    ]


# -- remove: gone from the list, its delivery history stays


async def test_delete_answers_204_and_the_webhook_is_gone(api: Client) -> None:
    kept = await create(api, name="Kept")
    removed = await create(api, name="Removed")
    response = await api.delete(f"/api/v1/webhooks/{removed['id']}")
    assert response.status == 204
    assert await response.read() == b""
    assert [w["id"] for w in await listed(api)] == [kept["id"]]
    await qrm_error(await api.get(f"/api/v1/webhooks/{removed['id']}"), 404)
    await qrm_error(await api.delete(f"/api/v1/webhooks/{removed['id']}"), 404)


async def test_delete_keeps_delivery_history(api: Client) -> None:
    webhook = await create(api)
    upload = await api.post("/_mock/reports", json={})
    assert upload.status == 201
    report_id = (await upload.json())["data"]["resourceId"]
    before = await api.get("/api/v1/webhook-deliveries")
    history = (await before.json())["data"]
    assert [(d["webhookId"], d["eventCode"], d["resourceId"]) for d in history] == [
        (webhook["id"], "report.created", report_id)
    ]

    response = await api.delete(f"/api/v1/webhooks/{webhook['id']}")
    assert response.status == 204

    assert await listed(api) == []
    after = await api.get("/api/v1/webhook-deliveries")
    assert after.status == 200
    kept = (await after.json())["data"]
    assert [(d["id"], d["messageId"], d["webhookId"]) for d in kept] == [
        (d["id"], d["messageId"], d["webhookId"]) for d in history
    ]
    detail = await api.get(f"/api/v1/webhook-deliveries/{history[0]['id']}")
    assert detail.status == 200
    assert (await detail.json())["data"]["webhookName"] == webhook["name"]


async def test_the_webhook_list_is_a_qrm_page(api: TestClient[Any, Any]) -> None:
    for n in range(3):
        await api.post("/api/v1/webhooks", json={**WEBHOOK, "name": f"hook {n}"})
    body = await (await api.get("/api/v1/webhooks", params={"limit": 2, "offset": 1})).json()
    assert (body["limit"], body["offset"], body["total"]) == (2, 1, 3)
    assert [w["name"] for w in body["data"]] == ["hook 1", "hook 2"]


async def test_a_page_of_webhooks_shows_each_ones_newest_delivery(api: Client) -> None:
    """The list reads the last deliveries of its page only (issue 28): still each one's own."""
    from tests.delivery.helpers import add_webhook, deliveries, upload

    first = await add_webhook(api, "http://127.0.0.1:1/a", name="A")
    second = await add_webhook(api, "http://127.0.0.1:1/b", name="B")
    quiet = await add_webhook(api, "http://127.0.0.1:1/c", name="C", active=False)
    await upload(api)
    await upload(api)
    newest = {}
    for row in await deliveries(api):  # newest first
        newest.setdefault(row["webhookId"], row["id"])
    page = await (await api.get("/api/v1/webhooks", params={"limit": 2, "offset": 1})).json()
    assert page["total"] == 3 and (page["limit"], page["offset"]) == (2, 1)
    assert [w["id"] for w in page["data"]] == [second["id"], quiet["id"]]
    assert page["data"][0]["lastDelivery"]["deliveryId"] == newest[second["id"]]
    assert page["data"][1]["lastDelivery"] is None
    whole = await (await api.get("/api/v1/webhooks")).json()
    assert whole["data"][0]["id"] == first["id"]
    assert whole["data"][0]["lastDelivery"]["deliveryId"] == newest[first["id"]]


async def test_a_page_far_past_the_end_is_empty(api: Client) -> None:
    """The fuzzer's offset of 2**63 - 2 with limit 101 went past what islice takes: a 500."""
    response = await api.get("/api/v1/webhooks", params={"limit": 101, "offset": 2**63 - 2})
    assert response.status == 200, await response.text()
    assert (await response.json())["data"] == []
