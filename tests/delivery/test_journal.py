"""The journal API and health: filters, paging, one row per attempt, a visible stall."""

from __future__ import annotations

import asyncio
import contextlib

from mock_qrm.receiver import RunningReceiver
from tests.conftest import service_of
from tests.delivery.helpers import Client, add_webhook, advance, deliveries, until, upload


async def _two_webhooks(api: Client, receiver: RunningReceiver) -> tuple[int, int]:
    ok = await add_webhook(api, receiver.url + "/ok", name="Healthy")
    broken = await add_webhook(api, receiver.url + "/status/500", name="Broken")
    for _ in range(3):
        await upload(api)

    async def settled() -> bool:
        rows = await deliveries(api)
        return len(rows) == 6 and all(r["status"] in ("delivered", "retry_scheduled") for r in rows)

    await until(settled)
    return ok["id"], broken["id"]


async def test_deliveries_are_listed_newest_first_with_total(
    api: Client, receiver: RunningReceiver
) -> None:
    await _two_webhooks(api, receiver)
    response = await api.get("/api/v1/webhook-deliveries", params={"limit": 4, "offset": 1})
    body = await response.json()
    assert (body["limit"], body["offset"], body["total"]) == (4, 1, 6)
    ids = [row["id"] for row in body["data"]]
    assert ids == sorted(ids, reverse=True)
    assert len(ids) == 4


async def test_deliveries_filter_by_webhook_status_and_event(
    api: Client, receiver: RunningReceiver
) -> None:
    ok, broken = await _two_webhooks(api, receiver)
    assert {r["webhookId"] for r in await deliveries(api, webhook_id=ok)} == {ok}
    retrying = await deliveries(api, status="retry_scheduled")
    assert len(retrying) == 3
    assert {r["webhookId"] for r in retrying} == {broken}
    assert await deliveries(api, event_code="report.file_ready") == []
    assert len(await deliveries(api, event_code="report.created")) == 6


async def test_deliveries_filter_by_time_range(api: Client, receiver: RunningReceiver) -> None:
    await _two_webhooks(api, receiver)
    clock = (await (await api.get("/_mock/clock")).json())["data"]["now"]
    assert len(await deliveries(api, until=clock)) == 6
    assert await deliveries(api, since="2999-01-01T00:00:00Z") == []


async def test_deliveries_list_rejects_bad_parameters(api: Client) -> None:
    for params in ({"limit": 0}, {"limit": 201}, {"status": "lost"}, {"offset": -1}):
        response = await api.get("/api/v1/webhook-deliveries", params=params)
        assert response.status == 422, params
        assert (await response.json())["errorCode"] == "ValidationError"


async def test_default_page_is_fifty(api: Client) -> None:
    body = await (await api.get("/api/v1/webhook-deliveries")).json()
    assert body["limit"] == 50


async def test_one_journal_row_per_attempt(api: Client, receiver: RunningReceiver) -> None:
    _, broken = await _two_webhooks(api, receiver)
    await advance(api, 61)

    async def second_attempts() -> bool:
        rows = await deliveries(api, webhook_id=broken)
        return all(r["attemptCount"] == 2 and r["status"] == "retry_scheduled" for r in rows)

    await until(second_attempts)
    row = (await deliveries(api, webhook_id=broken))[0]
    detail = (await (await api.get(f"/api/v1/webhook-deliveries/{row['id']}")).json())["data"]
    assert [a["number"] for a in detail["attempts"]] == [1, 2]
    assert detail["message"]["messageId"] == row["messageId"]
    for attempt in detail["attempts"]:
        assert set(attempt) >= {
            "number", "trigger", "startedAt", "durationMs", "url", "requestHeaders",
            "responseStatus", "responseHeaders", "responseBody", "responseTruncated",
            "error", "outcome",
        }  # fmt: skip
        assert attempt["requestBody"] == detail["attempts"][0]["requestBody"]


async def test_unknown_delivery_is_404(api: Client) -> None:
    response = await api.get("/api/v1/webhook-deliveries/424242")
    assert response.status == 404


async def test_health_reports_queue_depth_and_a_stalled_scheduler(
    api: Client, receiver: RunningReceiver
) -> None:
    await _two_webhooks(api, receiver)
    health = await (await api.get("/healthz")).json()
    assert health["status"] == "ok"
    assert health["dispatcherAlive"] is True
    assert health["queueDepth"] == 3
    assert health["oldestOverdueMs"] is None

    dispatcher = service_of(api).dispatcher
    loop = dispatcher._loop_task
    assert loop is not None
    loop.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await loop
    service_of(api).clock.advance(120)  # type: ignore[attr-defined]
    health = await (await api.get("/healthz")).json()
    assert health["status"] == "degraded"
    assert health["dispatcherAlive"] is False
    assert health["oldestOverdueMs"] >= 59_000


async def test_deliveries_filter_by_resource_and_message_id(
    api: Client, receiver: RunningReceiver
) -> None:
    await _two_webhooks(api, receiver)
    rows = await deliveries(api)
    first = rows[-1]
    by_resource = await deliveries(api, resource_id=first["resourceId"])
    assert len(by_resource) == 2
    assert {r["resourceId"] for r in by_resource} == {first["resourceId"]}
    [by_message] = await deliveries(api, message_id=first["messageId"])
    assert by_message["id"] == first["id"]
