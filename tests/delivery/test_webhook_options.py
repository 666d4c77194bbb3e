"""Inspectorio's newer webhook options (SPEC.md section 8.7): custom headers and a rate limit."""

from __future__ import annotations

import asyncio
import threading
from datetime import datetime
from typing import Any

import pytest

from mock_qrm.receiver import RunningReceiver
from mock_qrm.server.store.db import Writer
from tests.api.test_errors import qrm_error
from tests.conftest import service_of
from tests.delivery.helpers import (
    Client,
    add_webhook,
    advance,
    deliveries,
    delivery,
    until,
    upload,
)


def _seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


async def _delivered(api: Client, count: int) -> list[dict[str, Any]]:
    async def check() -> list[dict[str, Any]] | None:
        rows = await deliveries(api, status="delivered")
        return rows if len(rows) == count else None

    found: list[dict[str, Any]] = await until(check, what=f"{count} delivered")
    return found


# --- the API -------------------------------------------------------------------------


async def test_a_webhook_keeps_its_headers_and_rate_limit(api: Client) -> None:
    created = await add_webhook(
        api,
        "http://127.0.0.1:9/ok",
        headers={"X-Tenant": "acme", "X-Trace": ""},
        rateLimit={"limit": 2, "period": "minute"},
    )
    assert created["headers"] == {"X-Tenant": "acme", "X-Trace": ""}
    assert created["rateLimit"] == {"limit": 2, "period": "minute"}
    shown = await (await api.get(f"/api/v1/webhooks/{created['id']}")).json()
    assert shown["data"]["headers"] == {"X-Tenant": "acme", "X-Trace": ""}

    patched = await api.patch(
        f"/api/v1/webhooks/{created['id']}", json={"headers": {"X-Other": "1"}, "rateLimit": None}
    )
    assert patched.status == 200, await patched.text()
    data = (await patched.json())["data"]
    assert data["headers"] == {"X-Other": "1"}  # the whole set is replaced
    assert data["rateLimit"] is None

    untouched = await api.patch(f"/api/v1/webhooks/{created['id']}", json={"name": "Renamed"})
    assert (await untouched.json())["data"]["headers"] == {"X-Other": "1"}


@pytest.mark.parametrize(
    ("body", "path", "words"),
    [
        ({"headers": {"Content-Type": "text/plain"}}, "headers.Content-Type", "set by the request"),
        ({"headers": {"host": "example.com"}}, "headers.host", "set by the request"),
        ({"headers": {"X-Mock-Qrm-Delivery": "x"}}, "headers.X-Mock-Qrm-Delivery", "request"),
        ({"headers": {"Bad Name": "x"}}, "headers.Bad Name", "pattern"),
        ({"headers": {"X-Split": "a\r\nX-Evil: 1"}}, "headers.X-Split", "control characters"),
        ({"headers": {"X-A": "1", "x-a": "2"}}, "headers.x-a", "ignore case"),
        ({"headers": {f"X-{n}": "v" for n in range(21)}}, "headers", "20"),
        ({"headers": {"X-A": 5}}, "headers.X-A", "string"),
        ({"rateLimit": {"limit": 0, "period": "minute"}}, "rateLimit.limit", "at least 1"),
        ({"rateLimit": {"limit": 2, "period": "day"}}, "rateLimit.period", "minute"),
        ({"rateLimit": {"limit": 2}}, "rateLimit.period", "required"),
        (
            {
                "headers": {"Authorization": "Bearer t"},
                "basicAuth": {"username": "u", "password": "p"},
            },
            "headers.Authorization",
            "basic authentication",
        ),
    ],
)
async def test_bad_options_are_422_by_dotted_path(
    api: Client, body: dict[str, Any], path: str, words: str
) -> None:
    webhook = {"name": "Hook", "url": "http://127.0.0.1:9/ok", "events": ["report.created"]}
    response = await api.post("/api/v1/webhooks", json={**webhook, **body})
    error = await qrm_error(response, 422)
    assert path in error["errors"], error
    assert words in " ".join(error["errors"][path]), error
    listed = await (await api.get("/api/v1/webhooks")).json()
    assert listed["data"] == []  # nothing half-made


async def test_turning_basic_auth_on_over_an_authorization_header_is_refused(api: Client) -> None:
    created = await add_webhook(api, "http://127.0.0.1:9/ok", headers={"Authorization": "Bearer t"})
    response = await api.patch(
        f"/api/v1/webhooks/{created['id']}",
        json={"basicAuth": {"username": "u", "password": "p"}},
    )
    error = await qrm_error(response, 422)
    assert "headers.Authorization" in error["errors"]
    shown = await (await api.get(f"/api/v1/webhooks/{created['id']}")).json()
    assert shown["data"]["basicAuth"] is None  # unchanged


# --- delivery --------------------------------------------------------------------------


async def test_custom_headers_go_with_every_attempt_and_are_in_the_journal(
    api: Client, receiver: RunningReceiver
) -> None:
    await add_webhook(
        api, receiver.url + "/ok", headers={"X-Tenant": "acme", "User-Agent": "my-agent"}
    )
    await upload(api)
    [row] = await _delivered(api, 1)
    [request] = receiver.received.entries()
    assert request.headers["X-Tenant"] == "acme"
    assert request.headers["User-Agent"] == "my-agent"
    assert request.headers["Content-Type"] == "application/json"
    [attempt] = (await delivery(api, row["id"]))["attempts"]
    assert attempt["requestHeaders"]["X-Tenant"] == "acme"


async def test_two_a_minute_delivers_the_third_report_a_window_after_the_first(
    api: Client, receiver: RunningReceiver
) -> None:
    """The issue's example: `X-Tenant: acme`, 2/minute, three reports, one attempt each."""
    await add_webhook(
        api,
        receiver.url + "/ok",
        headers={"X-Tenant": "acme"},
        rateLimit={"limit": 2, "period": "minute"},
    )
    for _ in range(3):
        await upload(api)
    await _delivered(api, 2)
    [waiting] = await deliveries(api, status="pending")
    first = min(_seconds(row["createdAt"]) for row in await deliveries(api))
    assert waiting["attemptCount"] == 0 and waiting["attemptsTotal"] == 0  # waiting is no attempt
    assert _seconds(waiting["nextAttemptAt"]) == pytest.approx(first + 60, abs=0.01)

    await advance(api, 59.9)
    assert len(await deliveries(api, status="delivered")) == 2
    await advance(api, 0.1)
    rows = await _delivered(api, 3)
    assert all(row["attemptsTotal"] == 1 for row in rows)
    assert [r.headers["X-Tenant"] for r in receiver.received.entries()] == ["acme"] * 3
    third = max(rows, key=lambda row: row["id"])
    [attempt] = (await delivery(api, third["id"]))["attempts"]
    assert _seconds(attempt["startedAt"]) - first == pytest.approx(60, abs=0.01)


async def test_the_window_is_scaled_with_time(server: Any, receiver: RunningReceiver) -> None:
    api = await server(manual_clock=False, time_scale=600)  # a minute is 0.1 s
    await add_webhook(api, receiver.url + "/ok", rateLimit={"limit": 1, "period": "minute"})
    for _ in range(3):
        await upload(api)
    rows = await _delivered_within(api, 3, within=5)
    starts = sorted(_seconds(row["createdAt"]) for row in rows)
    attempts = sorted(
        [_seconds((await delivery(api, row["id"]))["attempts"][0]["startedAt"]) for row in rows]
    )
    assert attempts[2] - attempts[0] >= 0.2 - 0.01  # two windows of 0.1 s
    assert attempts[2] - starts[0] < 2.0


async def _delivered_within(api: Client, count: int, within: float) -> list[dict[str, Any]]:
    async def check() -> list[dict[str, Any]] | None:
        rows = await deliveries(api, status="delivered")
        return rows if len(rows) == count else None

    found: list[dict[str, Any]] = await until(check, within, f"{count} delivered")
    return found


async def test_a_retry_waits_for_the_window_too(api: Client, receiver: RunningReceiver) -> None:
    await add_webhook(api, receiver.url + "/status/500", rateLimit={"limit": 1, "period": "hour"})
    await upload(api)

    async def retry_scheduled() -> dict[str, Any] | None:
        rows = await deliveries(api, status="retry_scheduled")
        return rows[0] if rows else None

    row = await until(retry_scheduled, what="a scheduled retry")
    due = _seconds(row["nextAttemptAt"])
    await advance(api, 61)  # the retry is due, but the hour's one attempt is spent

    async def moved() -> dict[str, Any] | None:
        row = await retry_scheduled()
        return row if row and _seconds(row["nextAttemptAt"]) > due else None

    row = await until(moved, what="the retry, moved")
    assert row["attemptCount"] == 1 and row["attemptsTotal"] == 1
    assert _seconds(row["nextAttemptAt"]) == pytest.approx(
        _seconds(row["createdAt"]) + 3600, abs=0.01
    )
    await advance(api, 3539)

    async def retried() -> dict[str, Any] | None:
        row = await retry_scheduled()
        return row if row and row["attemptCount"] == 2 else None

    await until(retried, what="the second attempt, an hour after the first")


async def test_a_manual_redelivery_counts_and_is_429_when_there_is_no_room(
    api: Client, receiver: RunningReceiver
) -> None:
    await add_webhook(api, receiver.url + "/ok", rateLimit={"limit": 2, "period": "minute"})
    await upload(api)
    [row] = await _delivered(api, 1)
    first = await api.post(f"/api/v1/webhook-deliveries/{row['id']}/redeliver")
    assert first.status == 200, await first.text()
    second = await api.post(f"/api/v1/webhook-deliveries/{row['id']}/redeliver")
    error = await qrm_error(second, 429)
    assert "rate limited (2/minute)" in error["message"]
    assert second.headers["Retry-After"] == "60"
    assert (await delivery(api, row["id"]))["attemptsTotal"] == 2  # the refused one is no attempt

    await upload(api)  # the automatic attempt waits for the manual one to leave the window
    [waiting] = await deliveries(api, status="pending")
    assert waiting["attemptsTotal"] == 0


async def test_a_bulk_redelivery_waits_its_turn(server: Any, receiver: RunningReceiver) -> None:
    api = await server(retries=0)
    hook = await add_webhook(
        api, receiver.url + "/status/500", rateLimit={"limit": 1, "period": "minute"}
    )
    for _ in range(2):
        await upload(api)
    await advance(api, 60)

    async def failed() -> list[dict[str, Any]] | None:
        rows = await deliveries(api, status="failed")
        return rows if len(rows) == 2 else None

    await until(failed, what="two failed deliveries")
    patched = await api.patch(f"/api/v1/webhooks/{hook['id']}", json={"url": receiver.url + "/ok"})
    assert patched.status == 200
    await advance(api, 60)
    response = await api.post("/api/v1/webhook-deliveries/redeliver", json={"status": "failed"})
    assert (await response.json())["data"] == {"count": 2}
    await _delivered(api, 1)
    await advance(api, 30)
    assert len(await deliveries(api, status="delivered")) == 1  # the second waits its minute
    await advance(api, 30)
    await _delivered(api, 2)


async def test_removing_the_limit_lets_what_it_held_back_go_now(
    api: Client, receiver: RunningReceiver
) -> None:
    hook = await add_webhook(api, receiver.url + "/ok", rateLimit={"limit": 1, "period": "hour"})
    await upload(api)
    await upload(api)
    await _delivered(api, 1)
    [held] = await deliveries(api, status="pending")
    assert _seconds(held["nextAttemptAt"]) > _seconds(held["createdAt"]) + 3500

    patched = await api.patch(
        f"/api/v1/webhooks/{hook['id']}", json={"rateLimit": {"limit": 2, "period": "hour"}}
    )
    assert patched.status == 200
    await _delivered(api, 2)  # no clock move: due now, and the new limit has room
    assert [r["attemptsTotal"] for r in await deliveries(api)] == [1, 1]


async def test_a_new_limit_does_not_pull_a_retry_forward(
    api: Client, receiver: RunningReceiver
) -> None:
    hook = await add_webhook(api, receiver.url + "/status/500")

    async def scheduled() -> dict[str, Any] | None:
        rows = await deliveries(api, status="retry_scheduled")
        return rows[0] if rows else None

    await upload(api)
    row = await until(scheduled, what="a scheduled retry")
    patched = await api.patch(f"/api/v1/webhooks/{hook['id']}", json={"rateLimit": None})
    assert patched.status == 200  # unchanged limit: nothing re-timed
    patched = await api.patch(
        f"/api/v1/webhooks/{hook['id']}", json={"rateLimit": {"limit": 5, "period": "minute"}}
    )
    assert patched.status == 200
    assert (await scheduled()) == row  # still due 60 s after the failed attempt


async def test_a_limit_set_now_counts_the_attempts_before_it(
    api: Client, receiver: RunningReceiver
) -> None:
    hook = await add_webhook(api, receiver.url + "/ok")
    await upload(api)
    [row] = await _delivered(api, 1)
    redeliver = f"/api/v1/webhook-deliveries/{row['id']}/redeliver"
    assert (await api.post(redeliver)).status == 200
    patched = await api.patch(
        f"/api/v1/webhooks/{hook['id']}", json={"rateLimit": {"limit": 2, "period": "hour"}}
    )
    assert patched.status == 200
    await qrm_error(await api.post(redeliver), 429)  # two attempts already in this hour

    await advance(api, 61)
    patched = await api.patch(
        f"/api/v1/webhooks/{hook['id']}", json={"rateLimit": {"limit": 1, "period": "minute"}}
    )
    assert (await api.post(redeliver)).status == 200  # the minute before is empty
    patched = await api.patch(
        f"/api/v1/webhooks/{hook['id']}", json={"rateLimit": {"limit": 3, "period": "hour"}}
    )
    await qrm_error(await api.post(redeliver), 429)  # three in this hour, counted across limits


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"headers": {"X A": "1"}}, "headers.X A"),
        ({"headers": {"X-N": 5}}, "headers.X-N"),
        ({"headers": {"X-C1": "a\u0085b"}}, "headers.X-C1"),
        ({"name": 5}, "name"),
        ({"rateLimit": {"limit": 0, "period": "hour"}}, "rateLimit.limit"),
    ],
)
async def test_a_patchs_errors_are_keyed_by_the_field_alone(
    api: Client, body: dict[str, Any], path: str
) -> None:
    """An optional field's errors used to come keyed `headers.dict[...]` plus `headers.none`."""
    hook = await add_webhook(api, "http://127.0.0.1:9/ok")
    error = await qrm_error(await api.patch(f"/api/v1/webhooks/{hook['id']}", json=body), 422)
    assert list(error["errors"]) == [path]


async def test_header_values_are_journaled_as_sent(api: Client, receiver: RunningReceiver) -> None:
    await add_webhook(
        api,
        receiver.url + "/ok",
        headers={"X-Padded": "  padded  ", "Authorization": "Bearer tok"},
    )
    await upload(api)
    [row] = await _delivered(api, 1)
    [request] = receiver.received.entries()
    [attempt] = (await delivery(api, row["id"]))["attempts"]
    assert request.headers["X-Padded"] == attempt["requestHeaders"]["X-Padded"] == "padded"
    assert attempt["requestHeaders"]["Authorization"] == "Bearer tok"  # configuration, shown
    assert request.headers["Authorization"] == "Bearer tok"


async def test_a_waiting_bulk_redelivery_goes_when_the_limit_is_removed(
    api: Client, receiver: RunningReceiver
) -> None:
    hook = await _limited_and_delivered(api, receiver)
    await _redeliver_delivered(api)
    patched = await api.patch(f"/api/v1/webhooks/{hook['id']}", json={"rateLimit": None})
    assert patched.status == 200
    await _redelivered(api)


async def test_a_bulk_redelivery_refused_as_the_limit_is_removed_goes_at_once(
    api: Client, receiver: RunningReceiver
) -> None:
    """The refusal and the PATCH commit together: the PATCH's wake-up must not be missed."""
    hook = await _limited_and_delivered(api, receiver)
    writer = service_of(api).db.writer
    gate = threading.Event()
    held = writer.submit(lambda _: gate.wait(5))  # every later write waits behind this one
    try:
        await _redeliver_delivered(api)
        await _backlog(writer, 1, "the redelivery's start, queued")
        patch = asyncio.ensure_future(
            api.patch(f"/api/v1/webhooks/{hook['id']}", json={"rateLimit": None})
        )
        await _backlog(writer, 2, "the PATCH, queued after it")
    finally:
        gate.set()
    assert await held
    assert (await patch).status == 200
    await _redelivered(api)


async def _limited_and_delivered(api: Client, receiver: RunningReceiver) -> dict[str, Any]:
    """A webhook limited to one attempt an hour, its one delivery delivered."""
    hook = await add_webhook(api, receiver.url + "/ok", rateLimit={"limit": 1, "period": "hour"})
    await upload(api)
    await _delivered(api, 1)
    return hook


async def _redeliver_delivered(api: Client) -> None:
    response = await api.post("/api/v1/webhook-deliveries/redeliver", json={"status": "delivered"})
    assert (await response.json())["data"] == {"count": 1}


async def _redelivered(api: Client) -> None:
    async def second_attempt() -> list[dict[str, Any]] | None:
        rows = await deliveries(api)
        return rows if rows[0]["attemptsTotal"] == 2 else None

    await until(second_attempt, what="the bulk redelivery, with no clock move")


async def _backlog(writer: Writer, jobs: int, what: str) -> None:
    async def queued() -> bool:
        return writer.backlog >= jobs

    await until(queued, what=what)
