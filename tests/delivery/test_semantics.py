"""QRM's delivery rules (SPEC.md section 2), one test per rule, on a manual clock."""

from __future__ import annotations

import asyncio
import base64
import re
import socket
import time
import uuid
from datetime import datetime
from typing import Any

import pytest

from mock_qrm.contract.catalog import EventCatalog
from mock_qrm.receiver import RunningReceiver
from mock_qrm.server.domain.delivery import MessageBodies, message_body, message_id
from tests.delivery.helpers import (
    Client,
    add_webhook,
    advance,
    deliveries,
    delivery,
    only_delivery,
    until,
    upload,
)


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_200_within_the_timeout_is_success(api: Client, receiver: RunningReceiver) -> None:
    await add_webhook(api, receiver.url + "/ok")
    resource_id = await upload(api)
    row = await only_delivery(api, "delivered")
    detail = await delivery(api, row["id"])
    assert detail["attemptCount"] == 1
    [attempt] = detail["attempts"]
    assert attempt["outcome"] == "success"
    assert attempt["responseStatus"] == 200
    assert attempt["error"] is None
    assert attempt["trigger"] == "automatic"
    assert detail["resourceId"] == resource_id
    assert detail["completedAt"] is not None


async def test_message_body_is_exactly_qrms(api: Client, receiver: RunningReceiver) -> None:
    await add_webhook(api, receiver.url + "/ok")
    resource_id = await upload(api)
    await only_delivery(api, "delivered")
    [request] = receiver.received.entries()
    assert request.method == "POST"
    assert request.headers["Content-Type"] == "application/json"
    assert set(request.body) == {"messageId", "eventCode", "eventName", "payload"}  # type: ignore[arg-type]
    body: dict[str, Any] = request.body  # type: ignore[assignment]
    assert body["eventCode"] == "report.created"
    assert body["eventName"] == "An Inspection report is uploaded"
    assert body["payload"] == {"resourceId": resource_id, "path": f"/reports/{resource_id}"}
    assert re.fullmatch(r"wh-[0-9a-f-]{36}", body["messageId"])
    assert uuid.UUID(body["messageId"][3:]).version == 1


def test_message_ids_are_version_1_uuids_of_now_and_never_repeat() -> None:
    before = time.time()
    ids = [message_id() for _ in range(10_000)]
    after = time.time()
    assert len(set(ids)) == len(ids)
    uuids = [uuid.UUID(value.removeprefix("wh-")) for value in ids]
    assert {(u.version, u.variant) for u in uuids} == {(1, uuid.RFC_4122)}
    assert [u.time for u in uuids] == sorted(u.time for u in uuids)
    unix = [(u.time - 0x01B21DD213814000) / 1e7 for u in uuids]
    assert before - 0.001 <= unix[0] and unix[-1] <= after + 0.001
    assert all(u.node & 0x010000000000 for u in uuids)  # random, not a MAC address


@pytest.mark.parametrize("resource_id", [1, 12301, 10**15])
def test_message_bodies_filled_in_are_the_models_own(resource_id: int) -> None:
    catalog = EventCatalog.load()
    bodies = MessageBodies(catalog)
    for event in catalog.events:
        msg_id = message_id()
        expected = message_body(catalog, msg_id, event.code, resource_id)
        assert bodies(msg_id, event.code, resource_id) == expected
    # A code outside the catalog has its code for a name, as the model gives it.
    assert bodies("wh-1", "custom.event", 7) == message_body(catalog, "wh-1", "custom.event", 7)


@pytest.mark.parametrize("status", [201, 204, 301, 404, 500])
async def test_any_status_but_200_is_a_failure(
    api: Client, receiver: RunningReceiver, status: int
) -> None:
    await add_webhook(api, f"{receiver.url}/status/{status}")
    await upload(api)
    row = await only_delivery(api, "retry_scheduled")
    [attempt] = (await delivery(api, row["id"]))["attempts"]
    assert attempt["outcome"] == "failure"
    assert attempt["responseStatus"] == status
    assert attempt["error"] is None  # a status was received: it is the failure


async def test_redirects_are_not_followed(api: Client, receiver: RunningReceiver) -> None:
    await add_webhook(api, receiver.url + "/redirect")
    await upload(api)
    row = await only_delivery(api, "retry_scheduled")
    [attempt] = (await delivery(api, row["id"]))["attempts"]
    assert attempt["responseStatus"] == 302
    assert [r.path for r in receiver.received.entries()] == ["/redirect"]


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("/reset", "connection_reset"),
        ("/hang", "timeout"),
        ("/malformed", "protocol"),
    ],
)
async def test_failures_without_a_status_have_an_error_class(
    server: Any, receiver: RunningReceiver, path: str, error: str
) -> None:
    api = await server(timeout=0.3)
    await add_webhook(api, receiver.url + path)
    await upload(api)
    row = await only_delivery(api, "retry_scheduled")
    [attempt] = (await delivery(api, row["id"]))["attempts"]
    assert attempt["responseStatus"] is None
    assert attempt["error"] == error
    assert attempt["outcome"] == "failure"


async def test_refused_connection_is_a_failure(api: Client) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    await add_webhook(api, f"http://127.0.0.1:{port}/ok")
    await upload(api)
    row = await only_delivery(api, "retry_scheduled")
    [attempt] = (await delivery(api, row["id"]))["attempts"]
    assert attempt["error"] == "connection_refused"


async def test_a_response_slower_than_the_timeout_is_a_failure(
    server: Any, receiver: RunningReceiver
) -> None:
    api = await server(timeout=0.2)
    await add_webhook(api, receiver.url + "/delay/1")
    await upload(api)
    row = await only_delivery(api, "retry_scheduled")
    [attempt] = (await delivery(api, row["id"]))["attempts"]
    assert attempt["error"] == "timeout"
    assert 150 <= attempt["durationMs"] < 900


async def test_retry_is_due_sixty_seconds_after_the_failed_attempt_ended(
    api: Client, receiver: RunningReceiver
) -> None:
    await add_webhook(api, receiver.url + "/status/500")
    await upload(api)
    row = await only_delivery(api, "retry_scheduled")
    [attempt] = (await delivery(api, row["id"]))["attempts"]
    ended = _time(attempt["startedAt"]).timestamp() + attempt["durationMs"] / 1000
    assert abs(_time(row["nextAttemptAt"]).timestamp() - (ended + 60)) < 0.002


async def test_retry_fires_sixty_seconds_after_failure_and_not_before(
    api: Client, receiver: RunningReceiver
) -> None:
    await add_webhook(api, receiver.url + "/status/500")
    await upload(api)
    await only_delivery(api, "retry_scheduled")
    await advance(api, 59.5)
    assert len(receiver.received.entries()) == 1
    await advance(api, 0.6)
    await until(lambda: _count(receiver, 2), what="the second attempt")
    row = await only_delivery(api, "retry_scheduled")
    assert row["attemptCount"] == 2


async def _count(receiver: RunningReceiver, n: int) -> bool:
    return len(receiver.received.entries()) >= n


async def test_three_retries_then_failed(api: Client, receiver: RunningReceiver) -> None:
    await add_webhook(api, receiver.url + "/status/500")
    await upload(api)
    for attempt in range(1, 4):
        await only_delivery(api, "retry_scheduled")
        await advance(api, 61)
        await until(lambda a=attempt: _count(receiver, a + 1))
    row = await only_delivery(api, "failed")
    assert row["attemptCount"] == 4
    assert row["nextAttemptAt"] is None
    await advance(api, 3600)
    assert len(receiver.received.entries()) == 4
    detail = await delivery(api, row["id"])
    assert [a["number"] for a in detail["attempts"]] == [1, 2, 3, 4]


async def test_retries_setting_changes_the_number_of_attempts(
    server: Any, receiver: RunningReceiver
) -> None:
    api = await server(retries=1)
    await add_webhook(api, receiver.url + "/status/500")
    await upload(api)
    await only_delivery(api, "retry_scheduled")
    await advance(api, 61)
    row = await only_delivery(api, "failed")
    assert row["attemptCount"] == 2


async def test_flaky_receiver_is_retried_until_it_answers_200(
    api: Client, receiver: RunningReceiver
) -> None:
    await add_webhook(api, receiver.url + "/flaky/2")
    await upload(api)
    for _ in range(2):
        await only_delivery(api, "retry_scheduled")
        await advance(api, 60.5)
    row = await only_delivery(api, "delivered")
    assert row["attemptCount"] == 3
    ids = {r.message_id for r in receiver.received.entries()}
    assert len(ids) == 1  # the same messageId on every retry


async def test_every_retry_carries_the_same_message_id_and_body(
    api: Client, receiver: RunningReceiver
) -> None:
    await add_webhook(api, receiver.url + "/status/503")
    await upload(api)
    await only_delivery(api, "retry_scheduled")
    await advance(api, 61)
    await until(lambda: _count(receiver, 2))
    first, second = receiver.received.entries()
    assert first.body == second.body


async def test_basic_auth_is_sent_and_redacted_in_the_journal(
    api: Client, receiver: RunningReceiver
) -> None:
    await add_webhook(
        api,
        receiver.url + "/auth/qrm/s3cret",
        basicAuth={"username": "qrm", "password": "s3cret"},
    )
    await upload(api)
    row = await only_delivery(api, "delivered")
    [request] = receiver.received.entries()
    expected = "Basic " + base64.b64encode(b"qrm:s3cret").decode()
    assert request.headers["Authorization"] == expected
    [attempt] = (await delivery(api, row["id"]))["attempts"]
    journaled = {k: v for k, v in attempt.items() if k != "url"}  # the receiver's path names it
    assert "s3cret" not in str(journaled)
    assert expected.split()[1] not in str(journaled)
    assert attempt["requestHeaders"]["Authorization"] == "Basic [redacted]"


async def test_wrong_basic_auth_is_a_401_failure(api: Client, receiver: RunningReceiver) -> None:
    await add_webhook(
        api, receiver.url + "/auth/qrm/right", basicAuth={"username": "qrm", "password": "wrong"}
    )
    await upload(api)
    row = await only_delivery(api, "retry_scheduled")
    assert row["lastResponseStatus"] == 401


async def test_inactive_webhook_gets_no_delivery(api: Client, receiver: RunningReceiver) -> None:
    await add_webhook(api, receiver.url + "/ok", active=False)
    await upload(api)
    assert await deliveries(api) == []


async def test_webhook_gets_only_events_it_subscribed_to(
    api: Client, receiver: RunningReceiver
) -> None:
    await add_webhook(api, receiver.url + "/ok", events=["report.file_ready"])
    resource_id = await upload(api)
    assert await deliveries(api) == []
    await advance(api, 5)
    row = await only_delivery(api, "delivered")
    assert row["eventCode"] == "report.file_ready"
    assert row["resourceId"] == resource_id


async def test_file_ready_is_emitted_after_the_delay_and_makes_the_pdf_available(
    api: Client, receiver: RunningReceiver
) -> None:
    await add_webhook(api, receiver.url + "/ok", events=["report.created", "report.file_ready"])
    resource_id = await upload(api)
    report = (await (await api.get(f"/api/v1/reports/{resource_id}")).json())["data"]
    assert not report["inspectionGeneral"].get("pdfUrl")
    assert (await api.get(f"/files/reports/{resource_id}.pdf")).status == 404
    await advance(api, 4.9)
    assert [r["eventCode"] for r in await deliveries(api)] == ["report.created"]
    await advance(api, 0.2)
    rows = await deliveries(api)
    assert sorted(r["eventCode"] for r in rows) == ["report.created", "report.file_ready"]
    report = (await (await api.get(f"/api/v1/reports/{resource_id}")).json())["data"]
    assert report["inspectionGeneral"]["pdfUrl"].endswith(f"/files/reports/{resource_id}.pdf")
    pdf = await api.get(f"/files/reports/{resource_id}.pdf")
    assert pdf.status == 200
    assert (await pdf.read()).startswith(b"%PDF")


async def test_deactivating_cancels_pending_retries(api: Client, receiver: RunningReceiver) -> None:
    webhook = await add_webhook(api, receiver.url + "/status/500")
    await upload(api)
    await only_delivery(api, "retry_scheduled")
    response = await api.post(f"/api/v1/webhooks/{webhook['id']}/deactivate")
    assert response.status == 200
    row = await only_delivery(api, "cancelled")
    assert row["nextAttemptAt"] is None
    await advance(api, 120)
    assert len(receiver.received.entries()) == 1


async def test_activating_again_does_not_replay_missed_events(
    api: Client, receiver: RunningReceiver
) -> None:
    webhook = await add_webhook(api, receiver.url + "/ok")
    await api.post(f"/api/v1/webhooks/{webhook['id']}/deactivate")
    await upload(api)
    await api.post(f"/api/v1/webhooks/{webhook['id']}/activate")
    await advance(api, 60)
    assert await deliveries(api) == []
    await upload(api)
    await only_delivery(api, "delivered")


async def test_removing_cancels_pending_retries_and_keeps_history(
    api: Client, receiver: RunningReceiver
) -> None:
    webhook = await add_webhook(api, receiver.url + "/status/500")
    await upload(api)
    await only_delivery(api, "retry_scheduled")
    assert (await api.delete(f"/api/v1/webhooks/{webhook['id']}")).status == 204
    row = await only_delivery(api, "cancelled")
    assert row["webhookName"] == "Receiver"
    assert len((await delivery(api, row["id"]))["attempts"]) == 1


async def test_failure_in_flight_when_deactivated_ends_cancelled(
    server: Any, receiver: RunningReceiver
) -> None:
    api = await server(timeout=0.5)
    webhook = await add_webhook(api, receiver.url + "/hang")
    await upload(api)
    await only_delivery(api, "in_flight")
    await api.post(f"/api/v1/webhooks/{webhook['id']}/deactivate")
    row = await only_delivery(api, "cancelled")
    assert len((await delivery(api, row["id"]))["attempts"]) == 1


async def test_success_in_flight_when_deactivated_ends_delivered(
    server: Any, receiver: RunningReceiver
) -> None:
    api = await server(timeout=2.0)
    webhook = await add_webhook(api, receiver.url + "/delay/0.3")
    await upload(api)
    await only_delivery(api, "in_flight")
    await api.post(f"/api/v1/webhooks/{webhook['id']}/deactivate")
    await only_delivery(api, "delivered")


async def test_an_edited_url_applies_to_the_next_attempt(
    api: Client, receiver: RunningReceiver
) -> None:
    webhook = await add_webhook(api, receiver.url + "/status/500")
    await upload(api)
    await only_delivery(api, "retry_scheduled")
    response = await api.patch(
        f"/api/v1/webhooks/{webhook['id']}", json={"url": receiver.url + "/ok"}
    )
    assert response.status == 200
    await advance(api, 61)
    row = await only_delivery(api, "delivered")
    urls = [a["url"] for a in (await delivery(api, row["id"]))["attempts"]]
    assert urls == [receiver.url + "/status/500", receiver.url + "/ok"]


async def test_response_body_is_capped_at_16_kib(api: Client, receiver: RunningReceiver) -> None:
    await add_webhook(api, receiver.url + "/huge/64")
    await upload(api)
    row = await only_delivery(api, ("delivered", "retry_scheduled"))
    [attempt] = (await delivery(api, row["id"]))["attempts"]
    assert attempt["responseTruncated"] is True
    assert len(attempt["responseBody"]) == 16 * 1024


async def test_manual_redelivery_is_one_attempt_with_the_same_message_id(
    api: Client, receiver: RunningReceiver
) -> None:
    webhook = await add_webhook(api, receiver.url + "/status/500")
    await upload(api)
    await only_delivery(api, "retry_scheduled")
    for _ in range(3):
        await advance(api, 61)
        await until(lambda: _count(receiver, 2))
    row = await only_delivery(api, "failed")
    await api.patch(f"/api/v1/webhooks/{webhook['id']}", json={"url": receiver.url + "/ok"})
    response = await api.post(f"/api/v1/webhook-deliveries/{row['id']}/redeliver")
    assert response.status == 200
    attempt = (await response.json())["data"]
    assert attempt["trigger"] == "manual"
    assert attempt["responseStatus"] == 200
    row = await only_delivery(api, "delivered")
    ids = {r.message_id for r in receiver.received.entries()}
    assert len(ids) == 1


async def test_failed_manual_redelivery_schedules_no_retry(
    api: Client, receiver: RunningReceiver
) -> None:
    await add_webhook(api, receiver.url + "/status/500")
    await upload(api)
    for _ in range(3):
        await only_delivery(api, "retry_scheduled")
        await advance(api, 61)
    row = await only_delivery(api, "failed")
    response = await api.post(f"/api/v1/webhook-deliveries/{row['id']}/redeliver")
    assert (await response.json())["data"]["outcome"] == "failure"
    await advance(api, 600)
    assert len(receiver.received.entries()) == 5
    assert (await only_delivery(api, "failed"))["id"] == row["id"]


async def test_successful_manual_redelivery_of_a_retrying_delivery_stops_its_retries(
    api: Client, receiver: RunningReceiver
) -> None:
    webhook = await add_webhook(api, receiver.url + "/status/500")
    await upload(api)
    row = await only_delivery(api, "retry_scheduled")
    await api.patch(f"/api/v1/webhooks/{webhook['id']}", json={"url": receiver.url + "/ok"})
    await api.post(f"/api/v1/webhook-deliveries/{row['id']}/redeliver")
    await only_delivery(api, "delivered")
    await advance(api, 600)
    assert len(receiver.received.entries()) == 2


async def test_bulk_redelivery_by_filter(api: Client, receiver: RunningReceiver) -> None:
    broken = await add_webhook(api, receiver.url + "/status/500", name="Broken")
    await add_webhook(api, receiver.url + "/ok", name="Healthy")
    await upload(api)
    await upload(api)
    await until(lambda: _count(receiver, 4))
    response = await api.post(
        "/api/v1/webhook-deliveries/redeliver", json={"webhookId": broken["id"]}
    )
    assert response.status == 200
    assert (await response.json())["data"] == {"count": 2}
    await until(lambda: _count(receiver, 6))
    manual = [
        a
        for row in await deliveries(api, webhook_id=broken["id"])
        for a in (await delivery(api, row["id"]))["attempts"]
        if a["trigger"] == "manual"
    ]
    assert len(manual) == 2


async def test_redelivering_an_unknown_delivery_is_404(api: Client) -> None:
    response = await api.post("/api/v1/webhook-deliveries/999/redeliver")
    assert response.status == 404
    assert (await response.json())["errorCode"] == "NotFound"


async def test_one_delivery_per_webhook_each_with_its_own_message_id(
    api: Client, receiver: RunningReceiver
) -> None:
    for name in ("A", "B", "C"):
        await add_webhook(api, receiver.url + "/ok", name=name)
    await upload(api)
    await until(lambda: _count(receiver, 3))
    rows = await deliveries(api)
    assert sorted(r["webhookName"] for r in rows) == ["A", "B", "C"]
    assert len({r["messageId"] for r in rows}) == 3


async def test_trigger_emits_an_event_for_an_existing_report(
    api: Client, receiver: RunningReceiver
) -> None:
    await add_webhook(api, receiver.url + "/ok")
    response = await api.post(
        "/_mock/events", json={"eventCode": "report.created", "resourceId": 12301}
    )
    assert response.status == 201
    assert (await response.json())["data"]["deliveries"] == 1
    row = await only_delivery(api, "delivered")
    assert row["resourceId"] == 12301


async def test_trigger_rejects_unknown_event_and_report(api: Client) -> None:
    response = await api.post(
        "/_mock/events", json={"eventCode": "report.nope", "resourceId": 12301}
    )
    assert response.status == 422
    assert "eventCode" in (await response.json())["errors"]
    response = await api.post(
        "/_mock/events", json={"eventCode": "report.created", "resourceId": 1}
    )
    assert response.status == 404


async def test_advance_is_refused_without_a_manual_clock(server: Any) -> None:
    api = await server(manual_clock=False)
    response = await api.post("/_mock/clock/advance", json={"seconds": 1})
    assert response.status == 409
    assert "manual" in (await response.json())["message"]


async def test_advance_returns_once_every_due_retry_has_started(
    api: Client, receiver: RunningReceiver
) -> None:
    """What `advance` promises: a read right after it sees every due attempt started."""
    await add_webhook(api, receiver.url + "/status/500")
    for _ in range(20):
        await upload(api)

    async def all_retrying() -> bool:
        rows = await deliveries(api)
        return len(rows) == 20 and all(r["status"] == "retry_scheduled" for r in rows)

    await until(all_retrying)
    await advance(api, 61)
    rows = await deliveries(api)
    assert [r["attemptsTotal"] for r in rows] == [2] * 20  # the retry of every one has started


async def test_advance_does_not_wait_for_a_delivery_queued_behind_a_hanging_one(
    server: Any, receiver: RunningReceiver
) -> None:
    """With every slot of the webhook held by a hung request, the next delivery queues for one."""
    api = await server(webhook_concurrency=1, timeout=60.0)
    await add_webhook(api, receiver.url + "/hang")
    await upload(api)
    await upload(api)

    async def one_hangs_one_queues() -> bool:
        return sorted(r["status"] for r in await deliveries(api)) == ["in_flight", "pending"]

    await until(one_hangs_one_queues)
    async with asyncio.timeout(5):  # not the hung request's 60 s
        await advance(api, 1)
    assert sorted(r["status"] for r in await deliveries(api)) == ["in_flight", "pending"]


async def test_time_scale_shrinks_the_retry_interval(
    server: Any, receiver: RunningReceiver
) -> None:
    api = await server(manual_clock=False, time_scale=300.0)  # 60 s becomes 0.2 s
    await add_webhook(api, receiver.url + "/flaky/1")
    await upload(api)
    row = await only_delivery(api, "delivered", within=5)
    detail = await delivery(api, row["id"])
    first, second = detail["attempts"]
    gap = _time(second["startedAt"]).timestamp() - _time(first["startedAt"]).timestamp()
    assert 0.19 <= gap < 0.6


async def test_tls_failure_has_its_own_error_class(api: Client, receiver: RunningReceiver) -> None:
    await add_webhook(api, receiver.url.replace("http://", "https://") + "/ok")
    await upload(api)
    row = await only_delivery(api, "retry_scheduled")
    [attempt] = (await delivery(api, row["id"]))["attempts"]
    assert attempt["error"] == "tls"


async def test_a_hanging_receiver_never_delays_other_webhooks(
    server: Any, receiver: RunningReceiver
) -> None:
    api = await server(timeout=30, webhook_concurrency=2, concurrency=4)
    await add_webhook(api, receiver.url + "/hang", name="Hanging")
    healthy = await add_webhook(api, receiver.url + "/ok", name="Healthy")
    for _ in range(6):  # six hanging attempts: more than the global cap of four
        await upload(api)

    async def all_healthy_delivered() -> bool:
        rows = await deliveries(api, webhook_id=healthy["id"])
        return len(rows) == 6 and all(r["status"] == "delivered" for r in rows)

    await until(all_healthy_delivered, within=3, what="the healthy webhook's six deliveries")
    hanging = [r["status"] for r in await deliveries(api) if r["webhookName"] == "Hanging"]
    assert sorted(hanging) == ["in_flight", "in_flight", "pending", "pending", "pending", "pending"]
