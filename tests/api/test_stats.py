"""`GET /api/v1/webhooks/{id}/stats` (SPEC.md section 9.6): figures that agree with the journal.

Every figure is checked against what a user can read for themselves: each
delivery's attempts (`GET /api/v1/webhook-deliveries/{id}`) and the deliveries
list's totals. `expected_stats` is that arithmetic, written plainly.
"""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mock_qrm.receiver import RunningReceiver
from tests.api.test_errors import qrm_error
from tests.delivery.helpers import Client, add_webhook, advance, delivery, until, upload

MINUTE = timedelta(minutes=1)


def when(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def nearest_rank(values: list[int], p: int) -> int | None:
    if not values:
        return None
    ordered = sorted(values)
    rank = -(-p * len(ordered) // 100)
    return ordered[rank - 1]


def expected_stats(details: list[dict[str, Any]], since: datetime | None) -> dict[str, Any]:
    """The figures, from the deliveries and their attempts as the journal shows them."""
    attempts = [
        a
        for d in details
        for a in d["attempts"]
        if a["outcome"] is not None and (since is None or when(a["startedAt"]) >= since)
    ]
    outcomes = Counter(a["outcome"] for a in attempts)
    answered = outcomes["success"] + outcomes["failure"]
    timed = [
        a["durationMs"]
        for a in attempts
        if a["outcome"] in ("success", "failure") and a["durationMs"] is not None
    ]

    def last(outcome: str) -> str | None:
        starts = [a["startedAt"] for a in attempts if a["outcome"] == outcome]
        return max(starts, key=when) if starts else None

    created = [d for d in details if since is None or when(d["createdAt"]) >= since]
    by_status = Counter(
        str(a["responseStatus"]) if a["responseStatus"] is not None else a["error"]
        for a in attempts
    )
    return {
        "attempts": len(attempts),
        "delivered": sum(d["status"] == "delivered" for d in created),
        "failed": sum(d["status"] == "failed" for d in created),
        "successRate": outcomes["success"] / answered if answered else None,
        "latencyMs": {f"p{p}": nearest_rank(timed, p) for p in (50, 95, 99)},
        "byStatus": dict(by_status),
        "lastSuccessAt": last("success"),
        "lastFailureAt": last("failure"),
    }


async def stats(api: Client, webhook_id: int, **params: Any) -> dict[str, Any]:
    response = await api.get(f"/api/v1/webhooks/{webhook_id}/stats", params=params)
    assert response.status == 200, await response.text()
    body: dict[str, Any] = (await response.json())["data"]
    return body


def figures(body: dict[str, Any]) -> dict[str, Any]:
    """The stats' figures, without the echo of the question (`webhookId`, `since`, ...)."""
    shown = {k: body[k] for k in expected_stats([], None)}
    shown["byStatus"] = dict(body["byStatus"])
    return shown


async def journal(api: Client, webhook_id: int) -> list[dict[str, Any]]:
    """Every delivery of the webhook with its attempts, from the API a user reads."""
    listed = await api.get(
        "/api/v1/webhook-deliveries", params={"webhook_id": webhook_id, "limit": 200}
    )
    rows = (await listed.json())["data"]
    return [await delivery(api, row["id"]) for row in rows]


async def settled(api: Client) -> None:
    """Nothing in flight or pending: every attempt due has ended."""

    async def quiet() -> bool:
        response = await api.get("/api/v1/webhook-deliveries", params={"limit": 200})
        rows = (await response.json())["data"]
        return bool(rows) and all(r["status"] not in ("pending", "in_flight") for r in rows)

    await until(quiet, what="every due attempt to end")


async def test_stats_agree_with_the_journal_for_any_since(
    server: Any, receiver: RunningReceiver
) -> None:
    """Flaky, broken, slow, refused and healthy receivers over four minutes of retries, a
    manual redelivery: for the whole journal and for `since` at every attempt's start (and a
    millisecond either side), at minute boundaries and beyond both ends."""
    api: Client = await server(retries=3)
    hooks = [
        await add_webhook(api, receiver.url + "/flaky/2", name="Flaky"),
        await add_webhook(api, receiver.url + "/status/500", name="Broken"),
        await add_webhook(api, receiver.url + "/delay/0.03", name="Slow"),
        await add_webhook(api, "http://127.0.0.1:1/refused", name="Refused"),
        await add_webhook(api, receiver.url + "/ok", name="Healthy"),
    ]
    for _ in range(3):
        await upload(api)
    await settled(api)
    for _ in range(4):
        await advance(api, 61)
        await settled(api)
    broken = await journal(api, hooks[1]["id"])
    redelivered = await api.post(f"/api/v1/webhook-deliveries/{broken[0]['id']}/redeliver")
    assert redelivered.status == 200

    for hook in hooks:
        details = await journal(api, hook["id"])
        starts = sorted({when(a["startedAt"]) for d in details for a in d["attempts"]})
        edges = [s.replace(second=0, microsecond=0) for s in starts]
        ms = timedelta(milliseconds=1)
        candidates = {
            *starts,
            *(s + ms for s in starts),
            *(s - ms for s in starts),
            *edges,
            *(e + MINUTE for e in edges),
            starts[0] - timedelta(days=1),
            starts[-1] + timedelta(days=1),
        }
        assert figures(await stats(api, hook["id"])) == expected_stats(details, None), hook
        for since in sorted(candidates):
            got = await stats(api, hook["id"], since=stamp(since))
            assert figures(got) == expected_stats(details, since), (hook["name"], since)
            assert got["since"] == stamp(since)


async def test_a_flaky_receiver_reads_as_a_user_expects(
    api: Client, receiver: RunningReceiver
) -> None:
    """Two 500s then a 200: three attempts, one delivery delivered, a third of them answered 200."""
    hook = await add_webhook(api, receiver.url + "/flaky/2")
    await upload(api)
    for _ in range(3):
        await settled(api)
        await advance(api, 61)
    await settled(api)
    body = await stats(api, hook["id"])
    assert body["attempts"] == 3
    assert body["byStatus"] == {"200": 1, "500": 2}
    assert body["successRate"] == pytest.approx(1 / 3)
    assert (body["delivered"], body["failed"]) == (1, 0)
    assert body["lastSuccessAt"] > body["lastFailureAt"]
    assert body["webhookId"] == hook["id"] and body["removed"] is False


async def test_every_attempt_failing_makes_the_delivery_failed(
    server: Any, receiver: RunningReceiver
) -> None:
    api: Client = await server(retries=1)
    hook = await add_webhook(api, receiver.url + "/status/503")
    await upload(api)
    await settled(api)
    await advance(api, 61)
    await settled(api)
    body = await stats(api, hook["id"])
    assert (body["attempts"], body["byStatus"], body["successRate"]) == (2, {"503": 2}, 0.0)
    assert (body["delivered"], body["failed"]) == (0, 1)
    assert body["lastSuccessAt"] is None and body["lastFailureAt"] is not None


async def test_a_webhook_with_no_attempts_answers_zeros_and_nulls(api: Client) -> None:
    hook = await add_webhook(api, "http://127.0.0.1:1/x")
    body = await stats(api, hook["id"])
    assert body == {
        "webhookId": hook["id"],
        "removed": False,
        "since": None,
        "attempts": 0,
        "delivered": 0,
        "failed": 0,
        "successRate": None,
        "latencyMs": {"p50": None, "p95": None, "p99": None},
        "byStatus": {},
        "lastSuccessAt": None,
        "lastFailureAt": None,
        "perMinute": [],
    }


@pytest.mark.parametrize("path", ["/api/v1/webhooks/999/stats", "/api/v1/webhooks/0/stats"])
async def test_an_unknown_webhook_is_404_in_qrms_shape(api: Client, path: str) -> None:
    body = await qrm_error(await api.get(path), 404)
    assert body["errorCode"] == "NotFound"
    assert "Webhook" in body["message"]


async def test_a_removed_webhook_keeps_its_history_and_its_stats(
    api: Client, receiver: RunningReceiver
) -> None:
    hook = await add_webhook(api, receiver.url + "/ok")
    await upload(api)
    await settled(api)
    before = await stats(api, hook["id"])
    assert (await api.delete(f"/api/v1/webhooks/{hook['id']}")).status == 204
    assert (await api.get(f"/api/v1/webhooks/{hook['id']}")).status == 404
    after = await stats(api, hook["id"])
    assert after["removed"] is True
    assert figures(after) == figures(before)
    assert (after["attempts"], after["delivered"]) == (1, 1)


async def test_since_counts_attempts_started_and_deliveries_created_from_then_on(
    api: Client, receiver: RunningReceiver
) -> None:
    """A delivery created before `since` whose retry starts after it: its attempt counts,
    the delivery does not (as the deliveries list's `since` would not list it)."""
    hook = await add_webhook(api, receiver.url + "/flaky/1")
    await upload(api)
    await settled(api)
    await advance(api, 61)
    await settled(api)
    [detail] = await journal(api, hook["id"])
    first, second = detail["attempts"]
    since = second["startedAt"]
    body = await stats(api, hook["id"], since=since)
    assert (body["attempts"], body["byStatus"], body["successRate"]) == (1, {"200": 1}, 1.0)
    assert body["lastFailureAt"] is None and body["lastSuccessAt"] == second["startedAt"]
    assert body["delivered"] == 0  # created before `since`
    listed = await api.get(
        "/api/v1/webhook-deliveries",
        params={"webhook_id": hook["id"], "status": "delivered", "since": since},
    )
    assert (await listed.json())["total"] == 0
    whole = await stats(api, hook["id"], since=first["startedAt"])
    assert (whole["attempts"], whole["delivered"]) == (2, 1)


async def test_delivered_and_failed_agree_with_the_deliveries_lists_totals(
    server: Any, receiver: RunningReceiver
) -> None:
    api: Client = await server(retries=0)
    ok = await add_webhook(api, receiver.url + "/ok", name="Ok")
    bad = await add_webhook(api, receiver.url + "/status/500", name="Bad")
    clock_at = []
    for _ in range(3):
        clock_at.append((await (await api.get("/_mock/clock")).json())["data"]["now"])
        await upload(api)
        await settled(api)
        await advance(api, 30)
    for hook, since in itertools.product((ok, bad), [None, *clock_at]):
        params = {} if since is None else {"since": since}
        body = await stats(api, hook["id"], **params)
        for status in ("delivered", "failed"):
            listed = await api.get(
                "/api/v1/webhook-deliveries",
                params={"webhook_id": hook["id"], "status": status, **params},
            )
            assert body[status] == (await listed.json())["total"], (hook["name"], since, status)


async def test_an_attempt_in_flight_counts_once_it_ends(
    server: Any, receiver: RunningReceiver
) -> None:
    api: Client = await server(timeout=0.3, retries=0)
    hook = await add_webhook(api, receiver.url + "/hang")
    await upload(api)

    async def in_flight() -> bool:
        [detail] = await journal(api, hook["id"])
        return detail["status"] == "in_flight"

    await until(in_flight, what="the attempt to start")
    assert (await stats(api, hook["id"]))["attempts"] == 0
    await settled(api)
    body = await stats(api, hook["id"])
    assert (body["attempts"], body["byStatus"], body["failed"]) == (1, {"timeout": 1}, 1)
    assert body["latencyMs"]["p50"] >= 300


async def test_per_minute_gives_the_last_minutes_one_by_one(
    api: Client, receiver: RunningReceiver
) -> None:
    hook = await add_webhook(api, receiver.url + "/flaky/1")
    await upload(api)
    await settled(api)
    await advance(api, 61)
    await settled(api)
    now = when((await (await api.get("/_mock/clock")).json())["data"]["now"])
    body = await stats(api, hook["id"], per_minute=3)
    minutes = body["perMinute"]
    assert [when(m["at"]) for m in minutes] == [
        now.replace(second=0, microsecond=0) - back * MINUTE for back in (2, 1, 0)
    ]
    assert [m["attempts"] for m in minutes] == [0, 1, 1]
    assert [m["failures"] for m in minutes] == [0, 1, 0]
    assert minutes[0]["p95"] is None and minutes[2]["p95"] is not None
    assert (await stats(api, hook["id"]))["perMinute"] == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": "yesterday"}, "since"),
        ({"since": "1700000000"}, "since"),
        ({"per_minute": "-1"}, "per_minute"),
        ({"per_minute": "1441"}, "per_minute"),
        ({"per_minute": "1.5"}, "per_minute"),
    ],
)
async def test_bad_parameters_are_422_on_their_field(
    api: Client, params: dict[str, str], field: str
) -> None:
    hook = await add_webhook(api, "http://127.0.0.1:1/x")
    response = await api.get(f"/api/v1/webhooks/{hook['id']}/stats", params=params)
    body = await qrm_error(response, 422)
    assert field in body["errors"], body


async def test_a_reset_empties_the_stats(api: Client, receiver: RunningReceiver) -> None:
    hook = await add_webhook(api, receiver.url + "/ok")
    await upload(api)
    await settled(api)
    assert (await stats(api, hook["id"]))["attempts"] == 1
    assert (await api.post("/_mock/reset")).status == 204
    again = await add_webhook(api, receiver.url + "/ok")
    assert again["id"] == hook["id"]  # ids start again: nothing of the old one may show
    assert (await stats(api, again["id"]))["attempts"] == 0


async def test_the_route_is_in_the_openapi_document(api: Client) -> None:
    document = await (await api.get("/openapi.json")).json()
    operation = document["paths"]["/api/v1/webhooks/{webhook_id}/stats"]["get"]
    assert {p["name"] for p in operation["parameters"]} == {"webhook_id", "since", "per_minute"}
    assert set(operation["responses"]) >= {"200", "404", "422"}
    schema = document["components"]["schemas"]["WebhookStats"]
    assert set(schema["properties"]) >= {
        "attempts", "delivered", "failed", "successRate", "latencyMs", "byStatus",
        "lastSuccessAt", "lastFailureAt",
    }  # fmt: skip
    assert "interrupted" in schema["properties"]["successRate"]["description"]
