"""The live feed: numbered frames, replay after a reconnect, resync, slow clients dropped."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import WSMsgType

from mock_qrm.receiver import RunningReceiver
from mock_qrm.server.delivery.feed import SUBSCRIBER_QUEUE, FeedHub
from tests.conftest import service_of
from tests.delivery.helpers import Client, add_webhook, only_delivery, until, upload


async def _frames(ws: Any, count: int, within: float = 5.0) -> list[dict[str, Any]]:
    frames = []
    async with asyncio.timeout(within):
        while len(frames) < count:
            message = await ws.receive()
            assert message.type is WSMsgType.TEXT, message
            frames.append(message.json())
    return frames


async def test_feed_says_hello_then_streams_changes_with_increasing_seq(
    api: Client, receiver: RunningReceiver
) -> None:
    ws = await api.ws_connect("/api/v1/webhook-feed")
    [hello] = await _frames(ws, 1)
    assert hello["type"] == "hello"
    assert hello["bootId"]
    await add_webhook(api, receiver.url + "/ok")
    await upload(api)
    await only_delivery(api, "delivered")
    frames = await _frames(ws, 5)
    seqs = [f["seq"] for f in frames]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    kinds = [(f["type"], f.get("action")) for f in frames]
    assert kinds[0] == ("webhook", "created")
    assert ("report", "created") in kinds
    statuses = [f["delivery"]["status"] for f in frames if f["type"] == "delivery"]
    assert statuses[-1] == "delivered"
    assert "in_flight" in statuses
    await ws.close()


async def test_reconnecting_with_after_seq_replays_what_was_missed(
    api: Client, receiver: RunningReceiver
) -> None:
    ws = await api.ws_connect("/api/v1/webhook-feed")
    [hello] = await _frames(ws, 1)
    await ws.close()
    await add_webhook(api, receiver.url + "/ok")
    await upload(api)
    await only_delivery(api, "delivered")
    ws = await api.ws_connect(
        "/api/v1/webhook-feed", params={"after_seq": hello["seq"], "boot_id": hello["bootId"]}
    )
    frames = await _frames(ws, 2)
    assert frames[0]["type"] == "hello"
    assert frames[1]["seq"] == hello["seq"] + 1
    assert frames[1]["type"] == "webhook"
    await ws.close()


async def test_a_gap_older_than_the_buffer_gets_resync(
    server: Any, receiver: RunningReceiver
) -> None:
    api = await server(feed_buffer=10)
    await add_webhook(api, receiver.url + "/ok")
    for _ in range(5):
        await upload(api)
    ws = await api.ws_connect("/api/v1/webhook-feed", params={"after_seq": 1})
    hello, resync = await _frames(ws, 2)
    assert hello["type"] == "hello"
    assert resync["type"] == "resync"
    await ws.close()


async def test_another_servers_seq_gets_resync(api: Client) -> None:
    ws = await api.ws_connect("/api/v1/webhook-feed", params={"after_seq": 0, "boot_id": "old"})
    _, resync = await _frames(ws, 2)
    assert resync["type"] == "resync"
    await ws.close()


async def test_bad_after_seq_is_422(api: Client) -> None:
    response = await api.get("/api/v1/webhook-feed", params={"after_seq": "x"})
    assert response.status == 422


def test_a_subscriber_that_stops_reading_is_dropped_without_blocking_publish() -> None:
    hub = FeedHub(buffer_size=100)
    stalled, _ = hub.subscribe()
    healthy, _ = hub.subscribe()
    for _ in range(SUBSCRIBER_QUEUE + 10):
        hub.publish("delivery")
        if not healthy.queue.empty():
            healthy.queue.get_nowait()
    assert stalled.dropped
    assert not healthy.dropped
    assert hub.subscribers == 1
    assert stalled.queue.get_nowait() is None  # its reader is told to reconnect


async def test_a_slow_websocket_client_never_slows_delivery(
    api: Client, receiver: RunningReceiver
) -> None:
    ws = await api.ws_connect("/api/v1/webhook-feed")  # connected, never read again
    await add_webhook(api, receiver.url + "/ok")
    service = service_of(api)
    for _ in range(SUBSCRIBER_QUEUE // 2):
        service.feed.publish("heartbeat")
    await upload(api)
    await only_delivery(api, "delivered", within=3)
    await ws.close()


async def test_an_open_feed_does_not_hold_up_shutdown(server: Any) -> None:
    api = await server(shutdown_grace=0)
    ws = await api.ws_connect("/api/v1/webhook-feed")
    await _frames(ws, 1)
    started = asyncio.get_running_loop().time()
    await api.close()
    assert asyncio.get_running_loop().time() - started < 2.0


async def test_a_client_that_closes_is_unsubscribed_at_once(api: Client) -> None:
    hub = service_of(api).feed
    ws = await api.ws_connect("/api/v1/webhook-feed")
    await _frames(ws, 1)
    assert hub.subscribers == 1
    await ws.close()
    await until(lambda: _none_left(hub), within=2, what="the subscription to go")


async def _none_left(hub: FeedHub) -> bool:
    return hub.subscribers == 0


# --- the testing kit's in-process follower -------------------------------------------


def _delivery(delivery_id: int) -> Any:
    from mock_qrm.contract.codes import DeliveryStatus
    from mock_qrm.server.domain.records import DeliveryRecord

    record = DeliveryRecord(
        id=delivery_id,
        message_id=f"wh-{delivery_id}",
        event_id=1,
        webhook_id=1,
        event_code="report.created",
        resource_id=12301,
        status=DeliveryStatus.PENDING,
        body=b"{}",
        created_at=1_700_000_000.0,
    )
    return lambda: record.public("Hook")


async def _follow(hub: FeedHub, published: int) -> list[tuple[str, int | None]]:
    """Publish `published` delivery frames without letting the follower read, then read all.

    The follower reads the hub as the kit reads an embedded server's feed: through the
    server's in-process connection, resumed by the one resume loop when it falls behind.
    """
    from mock_qrm.client.feed import FeedConnected, FeedFollower, FeedLost

    async def no_wait(_: float) -> None:
        return None

    follower = FeedFollower(
        lambda after, boot: hub.connect(after, boot).models(), "embedded", sleep=no_wait
    )
    events = follower.events()
    assert isinstance(await anext(events), FeedConnected)
    for n in range(1, published + 1):
        hub.publish("webhook")  # not a mirror's business: skipped below
        hub.publish("delivery", _delivery(n))
    assert hub.subscribers == 0  # it fell behind: the hub dropped it
    seen: list[tuple[str, int | None]] = []
    async with asyncio.timeout(5):
        while len(seen) < published and ("resync", None) not in seen:
            event = await anext(events)
            if isinstance(event, FeedConnected | FeedLost) or event.type not in (
                "delivery",
                "resync",
            ):
                continue
            seen.append((event.type, event.delivery.id if event.delivery else None))
    await events.aclose()
    assert hub.subscribers == 0
    return seen


async def test_the_kits_follower_catches_up_from_the_hub_after_falling_behind(
    monkeypatch: Any,
) -> None:
    """An embedded server's feed is read from its hub; a dropped reader resumes, losing nothing."""
    monkeypatch.setattr("mock_qrm.server.delivery.feed.SUBSCRIBER_QUEUE", 4)
    seen = await _follow(FeedHub(buffer_size=100), published=10)
    assert seen == [("delivery", n) for n in range(1, 11)]


async def test_the_kits_follower_resyncs_when_the_hub_no_longer_has_what_it_missed(
    monkeypatch: Any,
) -> None:
    monkeypatch.setattr("mock_qrm.server.delivery.feed.SUBSCRIBER_QUEUE", 4)
    seen = await _follow(FeedHub(buffer_size=5), published=10)
    assert seen[-1] == ("resync", None)
    assert ("delivery", 10) not in seen
