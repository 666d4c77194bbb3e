"""A live copy of the delivery journal, kept current by the feed: what a client waits on.

`FeedMirror` follows the server's feed and keeps the latest state of every
delivery, so a wait is a condition on that copy, woken by each frame: nothing
polls and nothing sleeps. A delivery that reached its state before the wait
began is found at once, because the mirror starts from a REST snapshot.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from mock_qrm.client.feed import FeedConnected, FeedFollower, FeedLost
from mock_qrm.client.http import QrmClient
from mock_qrm.client.matching import DeliveryMatch
from mock_qrm.contract.errors import QrmApiError
from mock_qrm.contract.models import Delivery, FeedFrame

log = logging.getLogger(__name__)

PAGE = 200
QUICK_BACKOFF = (0.05, 0.1, 0.2, 0.4, 0.8, 1.0)
"""Reconnection backoff of a mirror: the server is local and quick to come back."""


async def fetch_journal(client: QrmClient) -> list[Delivery]:
    """Every delivery in the journal, newest first, page by page."""
    rows: list[Delivery] = []
    while True:
        page = await client.deliveries(limit=PAGE, offset=len(rows))
        rows.extend(page.data)
        if not page.data or len(rows) >= page.total:
            return rows


class FeedMirror:
    """The latest state of every delivery, kept current by the live feed.

    Started from a REST snapshot taken after the feed is open (so nothing falls
    between the two), then updated frame by frame; after a `resync` frame (a
    reset, or a client that fell behind) the snapshot is taken again. The feed
    comes from `follower`: by default the client's WebSocket; the kit gives an
    embedded server's in-process feed instead.
    """

    def __init__(self, client: QrmClient, follower: FeedFollower | None = None) -> None:
        self._client = client
        self._follower = follower
        self.deliveries: dict[int, Delivery] = {}
        self.changed = asyncio.Condition()
        self.ready = asyncio.Event()
        self.error: BaseException | None = None
        self.resyncs = 0
        self._stale_through = 0
        self._wipes = 0

    async def follow(self) -> None:
        """Consume the feed until cancelled, reconnecting with `after_seq` when it drops."""
        follower = self._follower or FeedFollower(
            self._client.feed, self._client.base_url, QUICK_BACKOFF
        )
        try:
            async for event in follower.events():
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
