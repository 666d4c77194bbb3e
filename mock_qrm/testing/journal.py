"""What a test waits for, and a live copy of the delivery journal to wait on.

`FeedMirror` follows the server's WebSocket feed and keeps the latest state of
every delivery, so a wait is a condition on that copy, woken by each frame:
nothing polls and nothing sleeps. A delivery that reached its state before the
wait began is found at once, because the mirror starts from a REST snapshot.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import datetime

from mock_qrm.client import (
    FeedConnected,
    FeedEvent,
    FeedFollower,
    FeedLost,
    QrmApiError,
    QrmClient,
)
from mock_qrm.contract.models import Delivery, DeliveryFilter, DeliveryStatus, FeedFrame
from mock_qrm.server.delivery.feed import FeedHub

log = logging.getLogger(__name__)

StatusSpec = DeliveryStatus | str | Iterable[DeliveryStatus | str] | None
"""One state, several (any of them), or `None` for any state."""

_PAGE = 200
_BACKOFF = (0.05, 0.1, 0.2, 0.4, 0.8, 1.0)
"""Reconnection backoff of a test's mirror: a test server is local and quick to come back."""


class DeliveryWaitTimeout(AssertionError):
    """No delivery matched in time. An `AssertionError`, so test runners report a failure.

    The message names what was expected and lists the journal, which is also
    kept on the exception (`expected`, `journal`) for programmatic use.
    """

    def __init__(self, message: str, expected: DeliveryMatch, journal: list[Delivery]) -> None:
        super().__init__(message)
        self.expected = expected
        self.journal = journal


DeliveryWaitTimeout.__module__ = "mock_qrm.testing"  # how test reports name it: its public home


def parse_statuses(status: StatusSpec) -> frozenset[DeliveryStatus] | None:
    """Accept `"delivered"`, `DeliveryStatus.FAILED`, a tuple of either, or `None` (any)."""
    if status is None:
        return None
    values = [status] if isinstance(status, str) else list(status)
    try:
        return frozenset(DeliveryStatus(value) for value in values)
    except ValueError:
        known = ", ".join(s.value for s in DeliveryStatus)
        raise ValueError(f"unknown delivery status in {status!r}; known: {known}") from None


@dataclass(frozen=True, slots=True)
class DeliveryMatch:
    """The criteria of a wait; `None` leaves a criterion out."""

    status: frozenset[DeliveryStatus] | None = frozenset({DeliveryStatus.DELIVERED})
    webhook_id: int | None = None
    event_code: str | None = None
    resource_id: int | None = None
    message_id: str | None = None
    delivery_id: int | None = None
    attempts: int | None = None
    """`attemptCount`: automatic attempts made so far (manual redeliveries do not count)."""

    def matches(self, delivery: Delivery) -> bool:
        shared = DeliveryFilter.model_construct(
            webhook_id=self.webhook_id,
            event_code=self.event_code,
            resource_id=self.resource_id,
            message_id=self.message_id,
            status=None,
            since=None,
            until=None,
        )
        return (
            shared.matches(delivery)
            and (self.status is None or delivery.status in self.status)
            and (self.delivery_id is None or delivery.id == self.delivery_id)
            and (self.attempts is None or delivery.attempt_count == self.attempts)
        )

    def matches_all_but_status(self, delivery: Delivery) -> bool:
        return DeliveryMatch(
            None,
            self.webhook_id,
            self.event_code,
            self.resource_id,
            self.message_id,
            self.delivery_id,
            self.attempts,
        ).matches(delivery)

    def describe(self, count: int = 1) -> str:
        """`a delivery with status delivered, event report.created, resource 12346`."""
        parts = []
        if self.delivery_id is not None:
            parts.append(f"id {self.delivery_id}")
        if self.status is not None:
            parts.append("status " + " or ".join(sorted(s.value for s in self.status)))
        if self.webhook_id is not None:
            parts.append(f"webhook {self.webhook_id}")
        if self.event_code is not None:
            parts.append(f"event {self.event_code}")
        if self.resource_id is not None:
            parts.append(f"resource {self.resource_id}")
        if self.message_id is not None:
            parts.append(f"messageId {self.message_id}")
        if self.attempts is not None:
            parts.append(f"{self.attempts} automatic attempt{'' if self.attempts == 1 else 's'}")
        what = "a delivery" if count == 1 else f"{count} deliveries"
        return what + (" with " + ", ".join(parts) if parts else "")


def describe_delivery(delivery: Delivery) -> str:
    """One journal line: id, webhook, event, resource, state, attempts, last result."""
    if delivery.last_response_status is not None:
        last = f"last answer HTTP {delivery.last_response_status}"
    elif delivery.last_error is not None:
        last = f"last error {delivery.last_error}"
    else:
        last = "no answer yet"
    line = (
        f"#{delivery.id} webhook {delivery.webhook_id} {delivery.webhook_name!r}, "
        f"{delivery.event_code}, resource {delivery.resource_id}: {delivery.status.value}, "
        f"{delivery.attempt_count} attempt{'' if delivery.attempt_count == 1 else 's'}, {last}"
    )
    if delivery.next_attempt_at is not None:
        line += f", next attempt at {delivery.next_attempt_at:%Y-%m-%dT%H:%M:%S}Z"
    return line


def timeout_message(
    expected: DeliveryMatch,
    count: int,
    timeout: float,
    matched: list[Delivery],
    journal: list[Delivery],
    *,
    manual_now: datetime | None,
) -> str:
    """What was expected, what the journal holds instead, and the likely reason.

    `manual_now` is the server's time when its clock is manual (else `None`):
    a retry waiting on a frozen clock is the commonest reason for a wait to fail.
    """
    lines = [f"Expected {expected.describe(count)} within {timeout:g} s"]
    if count > 1 and matched:
        lines[0] += f"; only {len(matched)} matched: " + ", ".join(f"#{d.id}" for d in matched)
    else:
        lines[0] += ", but none matched."
    if journal:
        lines.append(
            f"The journal holds {len(journal)} deliver{'y' if len(journal) == 1 else 'ies'}:"
        )
        lines.extend("  " + describe_delivery(d) for d in sorted(journal, key=lambda d: d.id))
    else:
        lines.append(
            "The journal is empty: no event reached an active webhook subscribed to it "
            "(was the webhook created, for this event, before the report was uploaded?)."
        )
    dues = [
        d.next_attempt_at
        for d in journal
        if d.status is DeliveryStatus.RETRY_SCHEDULED
        and d.next_attempt_at is not None
        and expected.matches_all_but_status(d)
    ]
    if manual_now is not None and dues:
        wait = max(1, math.ceil((min(dues) - manual_now).total_seconds()))
        lines.append(
            "Hint: the server's clock is manual, so a retry_scheduled delivery waits until "
            f"the clock is moved; the next retry is due in {wait} s: call qrm.advance({wait}) "
            f"(or await qrm.aadvance({wait})) first."
        )
    return "\n".join(lines)


async def fetch_journal(client: QrmClient) -> list[Delivery]:
    """Every delivery in the journal, newest first, page by page."""
    rows: list[Delivery] = []
    while True:
        page = await client.deliveries(limit=_PAGE, offset=len(rows))
        rows.extend(page.data)
        if not page.data or len(rows) >= page.total:
            return rows


async def hub_events(hub: FeedHub) -> AsyncIterator[FeedEvent]:
    """The feed of a server in this very process, from its hub: what the WebSocket
    would carry to a mirror (delivery frames, and resync), without the socket.

    A subscriber that falls behind is dropped by the hub, as a WebSocket one
    is, and catches up the same way: from the hub's buffer, or a `resync`.
    """
    subscription, _ = hub.subscribe()
    seen = hub.seq  # before yielding: frames published meanwhile come after it
    yield FeedConnected("embedded", hub.boot_id, resumed=False)
    try:
        while True:
            frame = await subscription.queue.get()
            if frame is None:  # fell behind
                subscription, missed = hub.subscribe(seen)
                if missed is None:
                    seen = hub.seq
                    yield FeedFrame(seq=seen, type="resync")
                    continue
                frames = missed
            else:
                frames = [frame]
            for each in frames:
                seen = each.seq
                if each.type == "delivery":
                    delivery = each.model()
                    assert isinstance(delivery, Delivery)
                    yield FeedFrame(seq=each.seq, type="delivery", delivery=delivery)
                elif each.type == "resync":
                    yield FeedFrame(seq=each.seq, type="resync")
    finally:
        subscription.drop()


class FeedMirror:
    """The latest state of every delivery, kept current by the live feed.

    Started from a REST snapshot taken after the feed is open (so nothing falls
    between the two), then updated frame by frame; after a `resync` frame (a
    reset, or a client that fell behind) the snapshot is taken again. The feed
    of an embedded server is read from its hub (`hub_events`), not the WebSocket.
    """

    def __init__(self, client: QrmClient, hub: FeedHub | None = None) -> None:
        self._client = client
        self._hub = hub
        self.deliveries: dict[int, Delivery] = {}
        self.changed = asyncio.Condition()
        self.ready = asyncio.Event()
        self.error: BaseException | None = None
        self.resyncs = 0
        self._stale_through = 0
        self._wipes = 0

    async def follow(self) -> None:
        """Consume the feed until cancelled, reconnecting with `after_seq` when it drops."""
        if self._hub is not None:
            events = hub_events(self._hub)
        else:
            events = FeedFollower(self._client, backoff=_BACKOFF).events()
        try:
            async for event in events:
                if isinstance(event, FeedConnected):
                    if not event.resumed:  # first connection: the journal so far, then changes
                        await self._load_snapshot()
                        self.ready.set()
                elif isinstance(event, FeedLost):
                    if not self.ready.is_set():
                        await self._fail(event.error or RuntimeError(event.reason))
                        return
                    log.info("mock-qrm feed lost (%s); reconnecting", event.reason)
                else:
                    await self._apply(event)
        except QrmApiError as exc:  # a wrong API key does not heal by retrying
            await self._fail(exc)

    async def _apply(self, frame: FeedFrame) -> None:
        if frame.seq is not None and frame.seq <= self._stale_through:
            return  # from before a wipe that `forget_through` has applied already
        if frame.type == "resync":
            await self._load_snapshot()
            self.resyncs += 1
        elif frame.type == "delivery" and frame.delivery is not None:
            self.deliveries[frame.delivery.id] = frame.delivery
        else:
            return
        async with self.changed:
            self.changed.notify_all()

    def forget_through(self, seq: int) -> None:
        """The journal was wiped and frame `seq` is the feed's `resync` for it: forget now.

        Frames up to it are still on their way; they are dropped as they arrive,
        so nothing from before the wipe can match a wait that starts after it.
        """
        self.deliveries = {}
        self._stale_through = seq
        self._wipes += 1

    def drop(self, stale: Iterable[Delivery]) -> None:
        """Deliveries the server no longer has (the mirror missed their wipe): forget them,
        unless a frame has meanwhile put a new delivery under the same id."""
        for delivery in stale:
            if self.deliveries.get(delivery.id) is delivery:
                del self.deliveries[delivery.id]

    async def _load_snapshot(self) -> None:
        # Read page by page: a wipe meanwhile (`forget_through`) could leave rows from
        # before it among them, so read again until none happened.
        while True:
            wipes = self._wipes
            rows = await fetch_journal(self._client)
            if wipes == self._wipes:
                self.deliveries = {d.id: d for d in rows}
                return

    async def _fail(self, exc: BaseException) -> None:
        self.error = exc
        self.ready.set()
        async with self.changed:
            self.changed.notify_all()

    def matching(self, expected: DeliveryMatch) -> list[Delivery]:
        """The deliveries that match, oldest first."""
        return sorted(
            (d for d in self.deliveries.values() if expected.matches(d)), key=lambda d: d.id
        )

    async def wait(self, expected: DeliveryMatch, count: int, within: float) -> list[Delivery]:
        """The first `count` matching deliveries once there are that many; TimeoutError if not."""

        def enough() -> list[Delivery] | None:
            if self.error is not None:
                raise RuntimeError(f"the mock QRM feed stopped: {self.error}") from self.error
            hits = self.matching(expected)
            return hits[:count] if len(hits) >= count else None

        found = enough()  # already there: no wait at all, even with a timeout of 0
        if found is None:
            async with self.changed:
                found = await asyncio.wait_for(self.changed.wait_for(enough), within)
        assert found is not None  # wait_for returns only once the predicate is truthy
        return found
