"""The live feed, followed for good: one resume loop for every client.

`FeedFollower` turns connections to the feed into one endless stream of
`FeedEvent`s. Each connection asks for what came after the last frame seen
(`after_seq`, `boot_id`); the server replays it or sends `resync`. A connection
that ends or breaks yields `FeedLost` and is tried again after the backoff,
forever. The TUI, the kit's journal mirror, `mock-qrm deliveries --follow`,
`wait` and `check-receiver` all follow the feed through this loop, whether its
frames come over the WebSocket (`QrmClient.feed`) or, for a server in the same
process, from the server's own port (`mock_qrm.app.InProcess.feed`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass

from mock_qrm.client.errors import QrmUnavailable
from mock_qrm.contract.models import FeedFrame

BACKOFF: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 5.0)
"""Seconds between reconnection attempts; the last one repeats."""

Connect = Callable[[int | None, str | None], AsyncGenerator[FeedFrame, None]]
"""Open the feed after a seq, on a server boot: its frames, until the server ends them."""


@dataclass(frozen=True, slots=True)
class FeedConnected:
    """The feed is open. `resumed`: frames missed since `after_seq` follow (else reload)."""

    server: str
    boot_id: str
    resumed: bool


@dataclass(frozen=True, slots=True)
class FeedLost:
    """The feed broke (`error`); the next attempt is in `retry_in` seconds."""

    reason: str
    retry_in: float
    error: QrmUnavailable | None = None


FeedEvent = FeedFrame | FeedConnected | FeedLost


class FeedFollower:
    """One server's feed as one endless stream of `FeedEvent`s (see the module)."""

    def __init__(
        self,
        connect: Connect,
        server: str,
        backoff: Sequence[float] = BACKOFF,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._connect = connect
        self.server = server
        """What `FeedConnected` and `FeedLost` name the server by (its URL)."""
        self.backoff = tuple(backoff) or BACKOFF
        self._sleep = sleep
        self.after_seq: int | None = None
        self.boot_id: str | None = None

    def forget(self) -> None:
        """Start the next connection afresh: the caller could not reload what it missed."""
        self.after_seq = None
        self.boot_id = None

    async def events(self) -> AsyncIterator[FeedEvent]:
        failures = 0
        while True:
            reason = f"{self.server} closed the feed"
            error: QrmUnavailable | None = None
            try:
                async with contextlib.aclosing(
                    self._connect(self.after_seq, self.boot_id)
                ) as frames:
                    async for frame in frames:
                        if frame.type == "hello":
                            resumed = self.after_seq is not None
                            if not resumed:
                                self.after_seq = frame.seq
                            self.boot_id = frame.boot_id
                            failures = 0
                            yield FeedConnected(self.server, frame.boot_id or "", resumed)
                            continue
                        if frame.seq is not None and frame.type != "heartbeat":
                            self.after_seq = frame.seq
                        yield frame
            except QrmUnavailable as exc:
                reason, error = str(exc), exc
            delay = self.backoff[min(failures, len(self.backoff) - 1)]
            failures += 1
            yield FeedLost(reason, delay, error)
            await self._sleep(delay)
