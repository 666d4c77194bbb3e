"""The TUI's client layer (no Textual): the reconnecting feed, error wording, row labels."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

from aiohttp.test_utils import TestServer

from mock_qrm.app import create_app
from mock_qrm.contract.codes import DeliveryStatus
from mock_qrm.contract.models import Delivery, LastDelivery, Webhook
from qrm_tui.client import (
    FeedConnected,
    FeedEvent,
    FeedLost,
    QrmUnavailable,
    TuiClient,
    describe_error,
    with_delivery,
)
from qrm_tui.screens.webhooks import events_label, last_delivery_label
from tests.conftest import make_settings
from tests.tui.conftest import url_of

NOW = datetime(2026, 11, 28, 15, 4, 5, tzinfo=UTC)


async def _next(events: AsyncIterator[FeedEvent], kind: type | str) -> FeedEvent:
    """The next event of a kind (a class, or a frame type), skipping the others."""
    async with asyncio.timeout(5):
        async for event in events:
            if isinstance(kind, str):
                if getattr(event, "type", None) == kind:
                    return event
            elif isinstance(event, kind):
                return event
    raise AssertionError("the feed ended")


async def _serve(db: Path, port: int | None = None) -> TestServer:
    server = TestServer(create_app(make_settings(db=str(db))), host="127.0.0.1", port=port)
    await server.start_server(shutdown_timeout=0.2)
    return server


async def test_the_feed_resumes_after_a_drop_and_resyncs_after_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "qrm.sqlite3"
    server = await _serve(db)
    port = server.port
    async with TuiClient(url_of(server)) as client, TuiClient(url_of(server)) as other:
        feed = client.live_feed(backoff=(0.01,))
        events = feed.events()
        first = await _next(events, FeedConnected)
        assert isinstance(first, FeedConnected) and not first.resumed
        await other.create_webhook("A", "http://127.0.0.1:1/a", ["report.created"])
        frame = await _next(events, "webhook")
        assert getattr(frame, "action", None) == "created"

        await server.close()
        lost = await _next(events, FeedLost)
        assert isinstance(lost, FeedLost) and lost.retry_in == 0.01
        server = await _serve(db, port)
        again = await _next(events, FeedConnected)
        assert isinstance(again, FeedConnected) and again.resumed  # asked to resume…
        assert again.boot_id != first.boot_id
        await _next(events, "resync")  # …but a new boot cannot replay: reload
        await other.create_webhook("B", "http://127.0.0.1:1/b", ["report.created"])
        frame = await _next(events, "webhook")
        assert getattr(getattr(frame, "webhook", None), "name", None) == "B"
        await events.aclose()  # type: ignore[attr-defined]
    await server.close()


async def test_unreachable_servers_are_described_in_words() -> None:
    async with TuiClient("http://127.0.0.1:9") as client:
        try:
            await client.webhooks()
        except QrmUnavailable as exc:
            assert describe_error(exc) == "cannot reach http://127.0.0.1:9: connection refused"
        else:
            raise AssertionError("expected QrmUnavailable")


def _webhook(last: LastDelivery | None = None) -> Webhook:
    return Webhook(
        id=1,
        name="W",
        url="http://x/",
        events=["report.created"],
        active=True,
        created_at=NOW,
        updated_at=NOW,
        last_delivery=last,
    )


def _delivery(delivery_id: int, status: DeliveryStatus, code: int | None = None) -> Delivery:
    return Delivery(
        id=delivery_id,
        message_id="wh-1",
        webhook_id=1,
        webhook_name="W",
        event_code="report.created",
        resource_id=12301,
        status=status,
        attempt_count=1,
        created_at=NOW,
        last_response_status=code,
    )


def test_a_delivery_frame_becomes_the_webhooks_last_delivery_unless_older() -> None:
    webhook = with_delivery(_webhook(), _delivery(5, DeliveryStatus.DELIVERED, 200))
    assert webhook.last_delivery is not None and webhook.last_delivery.delivery_id == 5
    assert with_delivery(webhook, _delivery(4, DeliveryStatus.FAILED, 500)) is webhook
    assert with_delivery(webhook, _delivery(5, DeliveryStatus.DELIVERED, 200)) is webhook


def test_last_delivery_labels() -> None:
    def label(status: DeliveryStatus, code: int | None = None, error: str | None = None) -> str:
        last = LastDelivery(delivery_id=1, status=status, response_status=code, error=error, at=NOW)
        return last_delivery_label(last)[0]

    assert last_delivery_label(None)[0] == "—"
    assert label(DeliveryStatus.DELIVERED, 200) == "✓ 200"
    assert label(DeliveryStatus.FAILED, 500) == "✗ 500"
    assert label(DeliveryStatus.FAILED, error="connection_refused") == "✗ connection_refused"
    assert label(DeliveryStatus.RETRY_SCHEDULED, 503) == "↻ 503"
    assert label(DeliveryStatus.RETRY_SCHEDULED, error="timeout") == "↻ timeout"
    assert label(DeliveryStatus.CANCELLED) == "⊘ cancelled"
    assert label(DeliveryStatus.IN_FLIGHT) == "→ sending"
    assert label(DeliveryStatus.PENDING) == "… pending"


def test_events_label_fits_its_column() -> None:
    assert events_label(["report.created"]) == "report.created"
    assert events_label(["report.created", "report.file_ready"]) == "report.created +1"
    assert events_label([]) == "—"
