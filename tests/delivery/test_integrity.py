"""Engine integrity: nothing acknowledged is undone, nothing gets stuck (issue 10).

Each test races requests on one resource, or takes the store away for a
moment, and asserts on what a user then sees: HTTP answers, the journal,
`/healthz`.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import Counter
from typing import Any

from mock_qrm.receiver import RunningReceiver
from tests.conftest import service_of
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

BOTH_EVENTS = ["report.created", "report.file_ready"]


async def _emit(api: Client, resource_id: int) -> int:
    response = await api.post(
        "/_mock/events", json={"eventCode": "report.created", "resourceId": resource_id}
    )
    assert response.status == 201, await response.text()
    count: int = (await response.json())["data"]["deliveries"]
    return count


# --- 1. a concurrent PATCH never undoes a DELETE or a deactivate -----------------------


async def test_delete_is_final_against_a_concurrent_patch(api: Client) -> None:
    resource_id = await upload(api)
    for round_ in range(30):
        webhook = await add_webhook(api, "http://127.0.0.1:1/ok", name=f"w{round_}")
        path = f"/api/v1/webhooks/{webhook['id']}"
        removed, patched = await asyncio.gather(
            api.delete(path), api.patch(path, json={"name": "z"})
        )
        assert removed.status == 204
        assert patched.status in (200, 404), await patched.text()
        assert (await api.get(path)).status == 404, f"round {round_}: the webhook came back"
        listed = await (await api.get("/api/v1/webhooks")).json()
        assert webhook["id"] not in [w["id"] for w in listed["data"]]
    assert await _emit(api, resource_id) == 0  # no removed webhook gets the next event


async def test_deactivate_is_final_against_a_concurrent_patch(api: Client) -> None:
    resource_id = await upload(api)
    for round_ in range(30):
        webhook = await add_webhook(api, "http://127.0.0.1:1/ok", name=f"w{round_}")
        path = f"/api/v1/webhooks/{webhook['id']}"
        deactivated, patched = await asyncio.gather(
            api.post(path + "/deactivate"), api.patch(path, json={"name": "renamed"})
        )
        assert (deactivated.status, patched.status) == (200, 200)
        shown = (await (await api.get(path)).json())["data"]
        assert shown["active"] is False, f"round {round_}: the PATCH re-activated it"
        assert shown["name"] == "renamed"
    assert await _emit(api, resource_id) == 0


# --- 2. reset during uploads ---------------------------------------------------------------


async def test_reset_during_uploads_answers_promptly_and_leaves_a_clean_journal(
    api: Client, receiver: RunningReceiver
) -> None:
    async def uploads() -> list[int]:
        answers = await asyncio.gather(*(api.post("/_mock/reports", json={}) for _ in range(50)))
        return [answer.status for answer in answers]

    async def reset() -> int:
        await asyncio.sleep(0)
        return (await api.post("/_mock/reset")).status

    for round_ in range(6):  # the race on the old engine showed in about one round in three
        await add_webhook(api, receiver.url + "/ok", events=BOTH_EVENTS)
        async with asyncio.timeout(10):  # a reset stuck cancelling would hang here
            before, reset_status, after = await asyncio.gather(uploads(), reset(), uploads())
        assert reset_status == 204
        assert set(before) | set(after) == {201}, f"round {round_}"

        # Everything after the reset works: a new webhook, uploads, fresh ids, events fire.
        webhook = await add_webhook(api, receiver.url + "/ok", events=BOTH_EVENTS)
        for _ in range(3):
            await upload(api)
        await advance(api, 10)  # past file_ready_delay
        rows = await until(
            lambda: _all_delivered(api, webhook["id"], at_least=6),  # noqa: B023
            what=f"six deliveries in round {round_}",
        )
        ids = [row["id"] for row in rows]
        assert len(ids) == len(set(ids))
        with sqlite3.connect(service_of(api).db.path) as conn:
            repeated = conn.execute(
                "SELECT delivery_id, number FROM attempts GROUP BY delivery_id, number"
                " HAVING COUNT(*) > 1"
            ).fetchall()
        assert repeated == [], f"round {round_}: two attempts share a number"
        assert (await api.post("/_mock/reset")).status == 204


async def _all_delivered(api: Client, webhook_id: int, at_least: int) -> list[dict[str, Any]]:
    rows = await deliveries(api, webhook_id=webhook_id)
    done = len(rows) >= at_least and all(row["status"] == "delivered" for row in rows)
    return rows if done else []


# --- 3. a brief write failure strands nothing --------------------------------------------


async def test_deliveries_waiting_while_writes_fail_are_retried_once_the_store_is_back(
    api: Client, receiver: RunningReceiver
) -> None:
    service = service_of(api)
    await service.db.writer.run(lambda c: c.execute("PRAGMA busy_timeout = 50"))
    await add_webhook(api, receiver.url + "/flaky/1", events=BOTH_EVENTS)
    resource_id = await upload(api)
    first = await only_delivery(api, "retry_scheduled")

    blocker = sqlite3.connect(service.db.path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # every write now fails: "database is locked"
    try:
        await advance(api, 61)  # the retry and report.file_ready both fall due
        health = await until(lambda: _health_if(api, 503), what="/healthz to answer 503")
        assert health["status"] == "degraded"
        assert "database write failed" in health["reason"]
        assert health["oldestOverdue"]["kind"] in ("event write", "delivery write")
        listed = await deliveries(api)  # reads still work
        assert [row["status"] for row in listed] == ["retry_scheduled"]
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()

    await until(lambda: _health_if(api, 200), within=10, what="/healthz to recover")
    # The retry went out; report.file_ready was emitted (its first try fails on /flaky/1).
    rows = await until(
        lambda: _statuses_if(api, ["delivered", "retry_scheduled"]), within=10, what="both"
    )
    by_event = {row["eventCode"]: row for row in rows}
    assert by_event["report.created"]["status"] == "delivered"
    detail = await delivery(api, first["id"])
    assert [a["outcome"] for a in detail["attempts"]] == ["failure", "success"]
    assert by_event["report.file_ready"]["resourceId"] == resource_id
    report = await (await api.get(f"/api/v1/reports/{resource_id}")).json()
    assert report["data"]["inspectionGeneral"].get("pdfUrl")


async def _health_if(api: Client, status: int) -> dict[str, Any] | None:
    response = await api.get("/healthz")
    body: dict[str, Any] = await response.json()
    return body if response.status == status else None


async def _statuses_if(api: Client, wanted: list[str]) -> list[dict[str, Any]]:
    rows = await deliveries(api)
    return rows if sorted(row["status"] for row in rows) == sorted(wanted) else []


# --- 4. attempt numbers are assigned where the attempt is recorded ----------------------


async def test_concurrent_manual_redeliveries_get_distinct_numbers(
    api: Client, receiver: RunningReceiver
) -> None:
    await add_webhook(api, receiver.url + "/ok")
    await upload(api)
    row = await only_delivery(api, "delivered")
    path = f"/api/v1/webhook-deliveries/{row['id']}/redeliver"
    answers = await asyncio.gather(*(api.post(path) for _ in range(10)))
    numbers = [(await answer.json())["data"]["number"] for answer in answers]
    assert sorted(numbers) == list(range(2, 12))
    detail = await delivery(api, row["id"])
    assert [a["number"] for a in detail["attempts"]] == list(range(1, 12))
    with sqlite3.connect(service_of(api).db.path) as conn:
        total, rows = conn.execute(
            "SELECT attempts_total, (SELECT COUNT(*) FROM attempts WHERE delivery_id = d.id)"
            " FROM deliveries d WHERE id = ?",
            (row["id"],),
        ).fetchone()
    assert total == rows == 11


# --- 5. the mock never delivers to itself ---------------------------------------------------


async def test_a_webhook_pointed_at_the_mock_itself_is_refused(api: Client) -> None:
    port = api.server.port
    for url in (
        f"http://127.0.0.1:{port}/_mock/reset",
        f"http://localhost:{port}/api/v1/webhook-deliveries/1/redeliver",
    ):
        response = await api.post(
            "/api/v1/webhooks", json={"name": "Loop", "url": url, "events": ["report.created"]}
        )
        assert response.status == 422
        body = await response.json()
        assert "is this mock QRM server itself" in body["errors"]["url"][0]
    webhook = await add_webhook(api, "http://127.0.0.1:1/ok")
    patched = await api.patch(
        f"/api/v1/webhooks/{webhook['id']}", json={"url": f"http://127.0.0.1:{port}/healthz"}
    )
    assert patched.status == 422


async def test_deliveries_carry_a_marker_the_api_refuses(
    api: Client, receiver: RunningReceiver
) -> None:
    await add_webhook(api, receiver.url + "/ok")
    await upload(api)
    row = await only_delivery(api, "delivered")
    [request] = receiver.received.entries()
    assert request.headers["X-Mock-Qrm-Delivery"] == row["messageId"]
    # Forwarded to the mock (a proxy, a receiver that relays): refused, nothing reset.
    relayed = await api.post("/_mock/reset", headers={"X-Mock-Qrm-Delivery": row["messageId"]})
    assert relayed.status == 403
    assert (await relayed.json())["errorCode"] == "Forbidden"
    assert len(await deliveries(api)) == 1


# --- 8. manual redelivery follows the webhook --------------------------------------------


async def test_redelivery_to_a_removed_webhook_is_404_and_to_an_inactive_one_409(
    api: Client, receiver: RunningReceiver
) -> None:
    removed = await add_webhook(api, receiver.url + "/ok", name="Removed")
    paused = await add_webhook(api, receiver.url + "/ok", name="Paused")
    await upload(api)
    rows = await until(lambda: _statuses_if(api, ["delivered", "delivered"]), what="deliveries")
    by_webhook = {row["webhookId"]: row for row in rows}
    assert (await api.delete(f"/api/v1/webhooks/{removed['id']}")).status == 204
    assert (await api.post(f"/api/v1/webhooks/{paused['id']}/deactivate")).status == 200
    sent_before = len(receiver.received.entries())

    gone = await api.post(f"/api/v1/webhook-deliveries/{by_webhook[removed['id']]['id']}/redeliver")
    assert gone.status == 404
    assert "was removed" in (await gone.json())["message"]
    inactive = await api.post(
        f"/api/v1/webhook-deliveries/{by_webhook[paused['id']]['id']}/redeliver"
    )
    assert inactive.status == 409
    assert "inactive" in (await inactive.json())["message"]
    bulk = await api.post("/api/v1/webhook-deliveries/redeliver", json={})
    assert (await bulk.json())["data"]["count"] == 0
    assert len(receiver.received.entries()) == sent_before
    triggers: Counter[str] = Counter()
    for row in rows:
        triggers.update(a["trigger"] for a in (await delivery(api, row["id"]))["attempts"])
    assert triggers == {"automatic": 2}


# --- 7. a failing read is the server's trouble: 503, and health says so -----------------


async def test_a_database_error_on_read_is_503_and_health_degraded(api: Client) -> None:
    service = service_of(api)
    reader = service.db.reader
    original = reader.execute_fetchall

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise sqlite3.DatabaseError("database disk image is malformed")

    reader.execute_fetchall = broken
    try:
        response = await api.get("/api/v1/webhook-deliveries")
        assert response.status == 503
        body = await response.json()
        assert body["errorCode"] == "Unavailable"
        assert "malformed" in body["message"]
        health = await api.get("/healthz")
        assert health.status == 503
        assert "malformed" in (await health.json())["reason"]
    finally:
        reader.execute_fetchall = original
    assert (await api.get("/api/v1/webhook-deliveries")).status == 200
    assert (await api.get("/healthz")).status == 200


# --- a retry due the moment its failure commits is not lost ----------------------------


async def test_a_retry_due_at_once_is_not_lost(server: Any, receiver: RunningReceiver) -> None:
    """With no interval, the retry is due when the failure commits, before its task resumes."""
    api = await server(retry_interval=0, manual_clock=False)
    await add_webhook(api, receiver.url + "/status/500")
    await upload(api)
    row = await only_delivery(api, "failed")
    assert [a["responseStatus"] for a in (await delivery(api, row["id"]))["attempts"]] == [500] * 4


async def test_attempts_total_counts_manual_attempts_and_attempt_count_does_not(
    api: Client, receiver: RunningReceiver
) -> None:
    """SPEC 8.1: `attemptCount` is the n of n/4; `attemptsTotal` counts manual attempts too."""
    await add_webhook(api, receiver.url + "/ok")
    await upload(api)
    row = await only_delivery(api, "delivered")
    assert (row["attemptCount"], row["attemptsTotal"]) == (1, 1)
    assert (await api.post(f"/api/v1/webhook-deliveries/{row['id']}/redeliver")).status == 200
    [after] = await deliveries(api)
    assert (after["attemptCount"], after["attemptsTotal"]) == (1, 2)
    detail = await delivery(api, row["id"])
    assert detail["attemptsTotal"] == len(detail["attempts"]) == 2


async def test_the_filter_predicate_selects_what_the_journal_query_selects(
    api: Client, receiver: RunningReceiver
) -> None:
    """`DeliveryFilter.matches()` (the kit, the CLI's --follow) agrees with the list query."""
    from mock_qrm.contract.models import Delivery, DeliveryFilter

    ok = await add_webhook(api, receiver.url + "/ok", events=BOTH_EVENTS)
    await add_webhook(api, receiver.url + "/status/500", name="Broken")
    for _ in range(3):
        await upload(api)
    await advance(api, 10)  # every due attempt started; wait for them to end too

    async def settled() -> list[dict[str, Any]] | None:
        rows = await deliveries(api)
        at_rest = len(rows) == 9 and all(r["status"] != "in_flight" for r in rows)
        return rows if at_rest else None

    journal = [Delivery.model_validate(row) for row in await until(settled)]
    filters: list[dict[str, Any]] = [
        {"webhook_id": ok["id"]},
        {"status": "retry_scheduled"},
        {"event_code": "report.file_ready"},
        {"resource_id": journal[0].resource_id, "webhook_id": ok["id"]},
        {"message_id": journal[3].message_id},
    ]
    for params in filters:
        listed = [row["id"] for row in await deliveries(api, **params)]
        flt = DeliveryFilter.model_validate(params)
        assert [d.id for d in journal if flt.matches(d)] == listed, params


# --- the store comes back: /healthz says so at once, and what it refused is written --------


async def test_health_is_ok_as_soon_as_the_store_takes_writes_again(
    api: Client, receiver: RunningReceiver
) -> None:
    """It stayed degraded until the stalled work's next retry, up to 5 s later (issue 28)."""
    await add_webhook(api, receiver.url + "/ok", events=BOTH_EVENTS)
    await upload(api)
    await only_delivery(api, "delivered")
    writer = service_of(api).db.writer
    original = writer._transaction

    def broken(jobs: Any) -> Any:
        raise sqlite3.OperationalError("disk I/O error")

    writer._transaction = broken  # type: ignore[method-assign]
    try:
        await advance(api, 5)  # report.file_ready falls due; its write is refused
        health = await api.get("/healthz")
        assert health.status == 503
        assert "disk I/O error" in (await health.json())["reason"]
    finally:
        writer._transaction = original  # type: ignore[method-assign]
    health = await api.get("/healthz")  # at once: no retry has come round yet
    assert health.status == 200, await health.text()
    body = await health.json()
    assert (body["status"], body["reason"]) == ("ok", None)
    rows = await deliveries(api)
    assert sorted(row["eventCode"] for row in rows) == ["report.created", "report.file_ready"]
