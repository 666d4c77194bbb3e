"""What the live feed brought, held for the screens to take in batches.

The feed worker writes here as frames arrive, with no message per frame (500
updates a second would be 500 messages). Each reader (a screen, the inspector)
opens an `Inbox` and empties it on its own timer, every ~150 ms: a burst of
changes becomes one table update, and a delivery that changed five times in
between is drawn once, as it is now. No Textual here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

from mock_qrm.contract.codes import DeliveryStatus
from mock_qrm.contract.models import Delivery, ReportRow

T = TypeVar("T")

INBOX_LIMIT = 20_000
"""Distinct ids an unread inbox holds before it gives up and asks its reader to reload."""

ATTEMPT_ENDS = frozenset(
    {
        DeliveryStatus.DELIVERED,
        DeliveryStatus.RETRY_SCHEDULED,
        DeliveryStatus.FAILED,
    }
)
"""The states a delivery frame reports when an attempt has just ended."""


class Inbox(Generic[T]):
    """One reader's unread changes: the latest of each item, by id.

    A reader that does not come back for a long while (its screen hidden under
    a flood) is not buffered for forever: past `limit` ids the inbox empties
    itself and sets `overflowed`, and the reader reloads over REST instead.
    """

    def __init__(self, key: Callable[[T], int], limit: int = INBOX_LIMIT) -> None:
        self._key = key
        self._limit = limit
        self._pending: dict[int, T] = {}
        self.overflowed = False

    def put(self, item: T) -> None:
        if self.overflowed:
            return
        self._pending[self._key(item)] = item
        if len(self._pending) > self._limit:
            self._pending.clear()
            self.overflowed = True

    def take(self) -> list[T]:
        """Everything unread, and forget it."""
        items = list(self._pending.values())
        self._pending.clear()
        return items

    def discard(self) -> None:
        """Forget what is unread: the reader is about to reload everything over REST."""
        self._pending.clear()
        self.overflowed = False

    def __len__(self) -> int:
        return len(self._pending)


class Channel(Generic[T]):
    """One kind of change (deliveries, reports), copied into every open inbox."""

    def __init__(self, key: Callable[[T], int], limit: int = INBOX_LIMIT) -> None:
        self._key = key
        self._limit = limit
        self._inboxes: list[Inbox[T]] = []

    def open(self) -> Inbox[T]:
        inbox = Inbox(self._key, self._limit)
        self._inboxes.append(inbox)
        return inbox

    def close(self, inbox: Inbox[T]) -> None:
        if inbox in self._inboxes:
            self._inboxes.remove(inbox)

    def publish(self, item: T) -> None:
        for inbox in self._inboxes:
            inbox.put(item)


class RateMeter:
    """Events per second over the last `seconds` seconds, in one-second buckets."""

    def __init__(self, seconds: int = 60, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._counts = [0] * seconds
        self._second = int(clock())
        self._since = self._second
        """The first second measured: nothing before it is drawn as a quiet second."""

    def _roll(self, second: int) -> None:
        gap = second - self._second
        if gap <= 0:
            return
        for step in range(1, min(gap, self.seconds) + 1):
            self._counts[(self._second + step) % self.seconds] = 0
        self._second = second

    def add(self, count: int = 1) -> None:
        second = int(self._clock())
        self._roll(second)
        self._counts[second % self.seconds] += count

    def series(self) -> list[float]:
        """Per second, oldest first, ending with the last complete second; only the
        seconds measured (at most `seconds`): the time before the meter started is unknown."""
        now = int(self._clock())
        self._roll(now)
        measured = min(self.seconds, max(0, now - self._since))
        return [float(self._counts[(now - back) % self.seconds]) for back in range(measured, 0, -1)]


class StatsPacer:
    """Whose statistics are stale, and when they may be read again: never hammering the server.

    A webhook is due once the feed tells of one of its deliveries. Reads come
    at most every `interval` seconds, and rest at least `1 / share` times as long
    as the last read took, so a slow server (a million-row journal, many webhooks)
    spends at most `share` of its time answering them.
    """

    def __init__(
        self, interval: float = 2.0, share: float = 0.1, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.interval = interval
        self.share = share
        self._clock = clock
        self._due: set[int] = set()
        self._next = 0.0
        self._began = 0.0
        self._reading = False
        self._urgent = False

    def mark(self, webhook_ids: Iterable[int], *, now: bool = False) -> None:
        """These webhooks' figures changed; `now`: read at the next chance, rested or not."""
        self._due.update(webhook_ids)
        if now:
            self._next = 0.0
            self._urgent = True

    def take(self) -> set[int]:
        """The webhooks to read now (none while resting or reading); they are no longer due."""
        if self._reading or not self._due or self._clock() < self._next:
            return set()
        taken, self._due = self._due, set()
        self._reading = True
        self._urgent = False
        self._began = self._clock()
        return taken

    def done(self, unread: Iterable[int] = ()) -> None:
        """The read ended; `unread` (the server could not be reached) stay due."""
        ended = self._clock()
        self._due.update(unread)
        self._reading = False
        if not self._urgent:  # else one marked `now` while this read ran: at the next chance
            self._next = ended + max(self.interval, (ended - self._began) / self.share)


class LiveStore:
    """The app's one store of feed changes; the feed worker is its only writer."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.deliveries: Channel[Delivery] = Channel(lambda delivery: delivery.id)
        self.reports: Channel[ReportRow] = Channel(lambda report: report.id)
        self.attempts = RateMeter(clock=clock)
        """Attempts that ended, per second: what the deliveries screen's sparkline draws."""

    def delivery_changed(self, delivery: Delivery) -> None:
        self.deliveries.publish(delivery)
        if delivery.status in ATTEMPT_ENDS:
            self.attempts.add()

    def report_changed(self, report: ReportRow) -> None:
        self.reports.publish(report)
