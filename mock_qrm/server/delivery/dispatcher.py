"""Where retries happen: fan-out, the scheduler loop, and each attempt.

The journal is the truth. Every change is one of its named transactions,
applied in order by the writer; the dispatcher's memory (what still waits, a
heap of due times) is updated from what each transaction committed, in commit
order, never from a copy taken before an await. Recovery at start-up is one
transaction too. Every attempt is journaled as started *before* the request
goes out, so an attempt cut short by a kill is found and marked `interrupted`
on the next start.

A write the store refuses (a full disk, a locked file) strands nothing: the
attempt, the scheduled event or the attempt's result is tried again with
backoff until the store takes it, and health says what is overdue meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import ssl
import time
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass

from mock_qrm.contract.catalog import EventCatalog
from mock_qrm.contract.codes import Outcome, Trigger
from mock_qrm.contract.errors import Conflict, NotFound, RateLimited, StorageError
from mock_qrm.contract.models import Attempt
from mock_qrm.contract.timefmt import from_ms
from mock_qrm.server.delivery.clock import Clock
from mock_qrm.server.delivery.feed import FeedHub
from mock_qrm.server.delivery.sender import Sender
from mock_qrm.server.domain.delivery import WAITING, MessageBodies, request_headers
from mock_qrm.server.domain.policy import RetryPolicy, is_success
from mock_qrm.server.domain.records import AttemptRecord, GeneratedReport, ScheduledEvent
from mock_qrm.server.store import journal
from mock_qrm.server.store.db import Database
from mock_qrm.server.store.journal import Named, Started

log = logging.getLogger(__name__)

ATTEMPT_STARTED = "attempt_started"
ATTEMPT_ENDED = "attempt_ended"
"""A delivery frame's `action` when an attempt changed it (with the attempt's `trigger`)."""

STORE_BACKOFF = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0)
"""Real seconds between tries of a write the store refused (not scaled: it is the disk's time)."""


@dataclass(frozen=True, slots=True)
class Overdue:
    """The most overdue piece of work: a delivery, a scheduled event, or a write to retry."""

    kind: str
    id: int
    late: float


class Dispatcher:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        policy: RetryPolicy,
        catalog: EventCatalog,
        feed: FeedHub,
        *,
        concurrency: int,
        webhook_concurrency: int,
        file_ready_delay: float,
        tls: Callable[[], ssl.SSLContext] | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.policy = policy
        self.catalog = catalog
        self.feed = feed
        self._body = MessageBodies(catalog)
        self.file_ready_delay = file_ready_delay
        self._concurrency = concurrency
        self.sender = Sender(policy.timeout, pool_size=concurrency, tls=tls)
        self._global = asyncio.Semaphore(concurrency)
        self._webhook_concurrency = webhook_concurrency
        self._per_webhook: dict[int, asyncio.Semaphore] = {}
        self._active: dict[int, Named] = {}
        """Deliveries waiting or in flight, as last committed."""
        self._launched: dict[int, object] = {}
        """Deliveries an automatic attempt was launched for, each with its launch's token."""
        self._in_flight = 0
        self._heap: list[tuple[float, int, int]] = []
        self._events: list[tuple[float, int, ScheduledEvent]] = []
        self._order = itertools.count()
        self._stalled: dict[tuple[str, int], tuple[float, int]] = {}
        """Work whose write the store refused: since when (monotonic seconds), and how many tries."""
        self._unstalled = asyncio.Event()
        """Set while no work waits on the store (`_stalled` is empty)."""
        self._unstalled.set()
        self._writable = asyncio.Event()
        """Set (and replaced) when the store takes a write again: stalled work retries at once."""
        db.writer.on_writable(self._store_writable)
        self._stopping = False
        self._wakeup = asyncio.Event()
        self._webhooks_changed = asyncio.Event()
        """Set (and replaced) when a webhook changes: bulk redeliveries waiting on a limit look again."""
        self._loop_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[object]] = set()
        self._settled_at = float("-inf")
        """The clock reading of the scheduler's last pass."""
        self._progress: set[asyncio.Future[None]] = set()
        """Waiters woken by each pass and each committed change (`advance`)."""
        self._queued: set[int] = set()
        """Deliveries launched but waiting for a slot: every one of their webhook's is taken."""

    # --- life cycle ---------------------------------------------------------

    async def start(self) -> int:
        """Recover from the journal and start the scheduler; returns attempts found interrupted."""
        self._stopping = False
        recovered = await self.db.writer.run(
            lambda c: journal.recover(c, self.clock.now()), on_commit=self._recovered
        )
        self._loop_task = asyncio.create_task(self._run(), name="mock-qrm-dispatcher")
        return recovered.interrupted

    def _recovered(self, recovered: journal.Recovered) -> None:
        self.forget()
        self.track(recovered.waiting)
        for event in recovered.events:
            self._schedule(event)

    def forget(self) -> None:
        """Drop everything in memory (the journal was wiped, or is about to be re-read)."""
        self._active.clear()
        self._heap.clear()
        self._events.clear()
        self._stalled.clear()
        self._unstalled.set()

    async def quiesce(self, grace: float = 0.0) -> None:
        """Stop scheduling; let attempts in flight finish for `grace` seconds, then cancel them.

        Nothing is left running when this returns. A cancelled attempt stays
        unfinished in the journal and is marked `interrupted` and retried by
        the next `start`, exactly as after a kill.
        """
        self._stopping = True
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
            self._loop_task = None
        if grace > 0 and self._tasks:
            await asyncio.wait(tuple(self._tasks), timeout=grace)
        # Not asyncio.wait_for: it can swallow a cancel on 3.11. Cancel, then wait, until none.
        while self._tasks:
            for task in self._tasks:
                task.cancel()
            await asyncio.wait(tuple(self._tasks))
        self._launched.clear()
        self._progressed()

    async def close(self, grace: float) -> None:
        await self.quiesce(grace)
        await self.sender.close()

    @property
    def alive(self) -> bool:
        return self._loop_task is not None and not self._loop_task.done()

    # --- fan-out --------------------------------------------------------------------

    async def emit(self, code: str, resource_id: int) -> int:
        """An event now: one delivery per webhook active and subscribed when it commits."""
        now = self.clock.now()
        emitted = await self.db.writer.run(
            lambda c: journal.emit_event(c, code, resource_id, now, self._body),
            on_commit=self._emitted,
        )
        return len(emitted.deliveries)

    async def upload(self, build: Callable[[int], GeneratedReport]) -> GeneratedReport:
        """A report uploaded now: `report.created` at once, `report.file_ready` after the delay."""
        now = self.clock.now()
        due = now + self.file_ready_delay
        uploaded = await self.db.writer.run(
            lambda c: journal.upload_report(c, build, now, due, self._body),
            on_commit=self._uploaded,
        )
        return uploaded.report

    def _uploaded(self, uploaded: journal.Uploaded) -> None:
        self.track(uploaded.deliveries)
        self._schedule(uploaded.file_ready)
        self.feed.publish("report", uploaded.row, action="created")

    def _emitted(self, emitted: journal.Emitted) -> None:
        self.track(emitted.deliveries)
        if emitted.report is not None:
            self.feed.publish("report", emitted.report, action="updated")

    def _schedule(self, event: ScheduledEvent) -> None:
        heapq.heappush(self._events, (event.due_at, event.id, event))
        self._wakeup.set()

    # --- memory follows commits -----------------------------------------------------

    def track(
        self, changes: Iterable[Named], action: str | None = None, trigger: Trigger | None = None
    ) -> None:
        """Apply committed delivery changes to memory, and tell the feed (`action`: what an
        attempt did, `attempt_started` or `attempt_ended`, with its `trigger`)."""
        for named in changes:
            record = named.record
            if record.status.is_final:
                self._active.pop(record.id, None)
            else:
                self._active[record.id] = named
                if record.status in WAITING and record.next_attempt_at is not None:
                    heapq.heappush(
                        self._heap, (record.next_attempt_at, next(self._order), record.id)
                    )
            self.feed.publish("delivery", named, action, trigger)
        self._wakeup.set()
        self._progressed()

    def _started(self, started: Started | Named | None) -> None:
        if isinstance(started, Started):
            delivery = started.delivery
            named = Named(delivery, started.webhook.name)
            trigger = started.attempt.trigger
            if delivery.status.is_final:  # a manual attempt on a finished delivery
                self.feed.publish("delivery", named, ATTEMPT_STARTED, trigger)
            else:
                self.track([named], ATTEMPT_STARTED, trigger)
        elif started is not None:
            self.track([started])

    def _finished(
        self, finished: Named | None, released: Callable[[], None] | None, trigger: Trigger
    ) -> None:
        if released is not None:
            released()
        if finished is not None:
            self.track([finished], ATTEMPT_ENDED, trigger)

    # --- manual redelivery ----------------------------------------------------------

    async def redeliver(self, delivery_id: int) -> Attempt:
        """One manual attempt with the same messageId; it schedules no automatic retry.

        Refused for a removed webhook (404) or an inactive one (409).
        """
        record = await journal.load_delivery(self.db, delivery_id)
        if record is None:
            raise NotFound("Delivery", delivery_id)
        slots = await self._take_slots(record.webhook_id)
        try:
            started = await self._start(delivery_id, Trigger.MANUAL)
            assert isinstance(started, Started)  # a manual start is refused, never skipped
            ended = await self._request(started)
        finally:
            self._free_slots(slots)
        return _public_attempt(await self._finish(started, ended))

    def webhook_changed(self) -> None:
        """A webhook changed (its limit, its state): waiting bulk redeliveries try again now."""
        self._webhooks_changed.set()
        self._webhooks_changed = asyncio.Event()

    def redeliver_matching(self, ids: list[int]) -> None:
        """A manual attempt for each, in the background (bulk redelivery)."""
        for delivery_id in ids:
            self._spawn(self._redeliver_quietly(delivery_id))

    async def _redeliver_quietly(self, delivery_id: int) -> None:
        """One of a bulk redelivery: it waits for room under the webhook's rate limit."""
        while True:
            # Taken before the attempt: a change committed while it is refused still wakes it.
            changed = self._webhooks_changed
            try:
                await self.redeliver(delivery_id)
            except (NotFound, Conflict):  # the webhook changed since the query
                return
            except RateLimited as limited:
                await self.clock.wait(limited.free_at, changed)
            else:
                return

    # --- manual clock ---------------------------------------------------------------

    async def advance(self, seconds: float) -> None:
        """With a manual clock: move time and return once everything now due has been started.

        Started means journaled as started (or, past a rate limit, given a later due
        time): a read right after sees the attempt. A delivery queued for a slot,
        every one of its webhook's being in flight, starts when one frees.
        """
        advance = getattr(self.clock, "advance", None)
        if advance is None:
            raise RuntimeError("the clock is not manual")
        target: float = advance(seconds)  # where the clock landed (it keeps whole milliseconds)
        self._wakeup.set()
        loop = asyncio.get_running_loop()
        while self.alive and (self._settled_at < target or self._due_by(target)):
            waiter = loop.create_future()
            self._progress.add(waiter)
            try:
                await waiter
            finally:
                self._progress.discard(waiter)

    def _due_by(self, moment: float) -> bool:
        """A delivery due by `moment` still waits to start: not one queued for a slot
        (its webhook's are all in flight) nor one the store refuses to start."""
        return any(
            named.record.status in WAITING
            and named.record.next_attempt_at is not None
            and named.record.next_attempt_at <= moment
            and delivery_id not in self._queued
            and ("delivery", delivery_id) not in self._stalled
            for delivery_id, named in self._active.items()
        )

    def _progressed(self) -> None:
        """Wake `advance`: a pass ended, or a change committed, or the scheduler stopped."""
        for waiter in self._progress:
            if not waiter.done():
                waiter.set_result(None)

    # --- health ---------------------------------------------------------------

    @property
    def queue_depth(self) -> int:
        return len(self._active) - len(self._launched.keys() & self._active.keys())

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def busy(self) -> bool:
        """Anything still moving: waiting deliveries, attempts, scheduled events."""
        return bool(self._active or self._tasks or self._events)

    def oldest_overdue(self, grace: float = 1.0) -> Overdue | None:
        """The work that has most missed its time, if by more than `grace` seconds.

        Work whose write the store refused comes first, however briefly: it is
        stuck until the store takes writes again.
        """
        if self._stalled:
            since, kind, key = min(
                (since, kind, key) for (kind, key), (since, _) in self._stalled.items()
            )
            return Overdue(f"{kind} write", key, time.monotonic() - since)
        now = self.clock.now()
        candidates = [
            (named.record.next_attempt_at, "delivery", delivery_id)
            for delivery_id, named in self._active.items()
            if named.record.status in WAITING
            and named.record.next_attempt_at is not None
            and delivery_id not in self._launched
        ]
        if self._events:
            due, event_id, _ = self._events[0]
            candidates.append((due, "event", event_id))
        if not candidates:
            return None
        due, kind, key = min(candidates)
        late = now - due
        return Overdue(kind, key, late) if late > grace else None

    # --- the scheduler ----------------------------------------------------------

    async def _run(self) -> None:
        while True:
            now = self.clock.now()
            while self._events and self._events[0][0] <= now:
                _, _, event = heapq.heappop(self._events)
                # Inline, so its deliveries are due in this very pass (exact manual clock).
                await self._emit_scheduled(event)
            while self._heap and self._heap[0][0] <= now:
                due, _, delivery_id = heapq.heappop(self._heap)
                named = self._active.get(delivery_id)
                if (
                    named is None
                    or named.record.status not in WAITING
                    or named.record.next_attempt_at != due
                    or delivery_id in self._launched
                ):
                    continue  # superseded: cancelled, delivered by hand, or rescheduled
                token = self._launched[delivery_id] = object()
                self._spawn(self._automatic(delivery_id, named.record.webhook_id, token))
            self._settled_at = now
            self._progressed()
            deadline = min(
                (heap[0][0] for heap in (self._heap, self._events) if heap), default=None
            )
            self._wakeup.clear()
            await self.clock.wait(deadline, self._wakeup)

    async def _emit_scheduled(self, event: ScheduledEvent) -> None:
        now = self.clock.now()
        try:
            await self.db.writer.run(
                lambda c: journal.emit_event(
                    c, event.code, event.resource_id, now, self._body, scheduled_id=event.id
                ),
                on_commit=self._emitted,
            )
        except StorageError:
            self._retry_later(("event", event.id), lambda: self._schedule(event))
        except NotFound:
            log.warning("event %s for report %s: the report is gone", event.id, event.resource_id)
        else:
            self._unstall(("event", event.id))

    def _stall(self, key: tuple[str, int]) -> float:
        """The store refused this work's write: note it, and how long to back off."""
        since, tries = self._stalled.get(key, (time.monotonic(), 0))
        self._stalled[key] = (since, tries + 1)
        self._unstalled.clear()
        self._progressed()  # `advance` waits for no write the store refuses
        return STORE_BACKOFF[min(tries, len(STORE_BACKOFF) - 1)]

    def _unstall(self, key: tuple[str, int]) -> None:
        self._stalled.pop(key, None)
        if not self._stalled:
            self._unstalled.set()

    async def _back_off(self, key: tuple[str, int]) -> None:
        """Wait before trying the work again: the backoff, in real time (a manual clock may
        never move), or until the store takes a write again, whichever comes first."""
        writable = self._writable
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(writable.wait(), self._stall(key))

    def _retry_later(self, key: tuple[str, int], again: Callable[[], None]) -> None:
        """Try the work again after `_back_off`."""

        async def later() -> None:
            await self._back_off(key)
            again()

        self._spawn(later())

    def _store_writable(self) -> None:
        """A write committed after writes had failed: what waits on the store tries now."""
        self._writable.set()
        self._writable = asyncio.Event()

    @property
    def stalled(self) -> bool:
        """Some work waits for the store to take its write."""
        return bool(self._stalled)

    async def unstalled(self, within: float) -> bool:
        """Whether every write the store refused is written, waiting up to `within` seconds."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._unstalled.wait(), within)
        return self._unstalled.is_set()

    def _spawn(self, coro: Coroutine[object, object, object]) -> None:
        if self._stopping:
            coro.close()
            return
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._reap)

    def _reap(self, task: asyncio.Task[object]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("dispatcher task failed", exc_info=error)

    async def _take_slots(
        self, webhook_id: int, delivery_id: int | None = None
    ) -> asyncio.Semaphore:
        """A slot of the webhook's, then a global one; `_free_slots(returned)` gives both back.

        Per-webhook first: a hanging receiver queues on its own slots, not the global ones.
        (Plain calls rather than a context manager: this runs once per attempt.)
        """
        semaphore = self._per_webhook.get(webhook_id)
        if semaphore is None:
            semaphore = self._per_webhook[webhook_id] = asyncio.Semaphore(self._webhook_concurrency)
        full = semaphore.locked() or self._global.locked()
        queued = delivery_id if full else None
        if queued is not None:
            # Every slot is taken (a hanging receiver): `advance` does not wait for this one.
            self._queued.add(queued)
            self._progressed()
        try:
            await semaphore.acquire()
            try:
                await self._global.acquire()
            except BaseException:
                semaphore.release()
                raise
        finally:
            if queued is not None:
                self._queued.discard(queued)
        return semaphore

    def _free_slots(self, semaphore: asyncio.Semaphore) -> None:
        self._global.release()
        semaphore.release()

    # --- one attempt ------------------------------------------------------------

    async def _automatic(self, delivery_id: int, webhook_id: int, token: object) -> None:
        def release() -> None:
            # When the result commits, not when this task resumes: its retry may be due
            # (and popped by the scheduler) before then.
            if self._launched.get(delivery_id) is token:
                del self._launched[delivery_id]

        try:
            slots = await self._take_slots(webhook_id, delivery_id)
            try:
                started = await self._start(delivery_id, Trigger.AUTOMATIC, release)
                if not isinstance(started, Started):
                    return
                ended = await self._request(started)
            finally:
                # The slots hold requests, not writes: the next attempt may go while this
                # one's result is written.
                self._free_slots(slots)
            await self._finish(started, ended, release)
        except StorageError:
            self._retry_later(("delivery", delivery_id), lambda: self._due_again(delivery_id))
        finally:
            release()

    def _due_again(self, delivery_id: int) -> None:
        """A start the store refused: the delivery is due again now (it still waits, as committed)."""
        named = self._active.get(delivery_id)
        if named is not None and named.record.status in WAITING:
            now = self.clock.now()
            due = min(now, named.record.next_attempt_at or now)
            self._active[delivery_id] = Named(
                named.record.but(next_attempt_at=due), named.webhook_name
            )
            heapq.heappush(self._heap, (due, next(self._order), delivery_id))
            self._wakeup.set()

    async def _start(
        self, delivery_id: int, trigger: Trigger, released: Callable[[], None] | None = None
    ) -> Started | Named | None:
        """Journal an attempt as started; `released` runs at commit if none started."""

        def committed(started: Started | Named | None) -> None:
            if released is not None and not isinstance(started, Started):
                released()  # a rate-limited delivery is due again: let the scheduler have it
            self._started(started)

        now = self.clock.now()
        started = await self.db.writer.run(
            lambda c: journal.start_attempt(
                c, delivery_id, trigger, now, request_headers, self.policy
            ),
            on_commit=committed,
        )
        self._unstall(("delivery", delivery_id))
        return started

    async def _request(self, started: Started) -> AttemptRecord:
        """The attempt's request, and how it ended."""
        self._in_flight += 1
        try:
            result = await self.sender.send(
                started.attempt.url, started.delivery.body, started.headers
            )
        finally:
            self._in_flight -= 1
        ended = started.attempt._replace(
            duration_ms=result.duration_ms,
            response_status=result.status,
            response_headers=result.headers,
            response_body=result.body,
            response_truncated=result.truncated,
            error=result.error,
            error_detail=result.error_detail,
            outcome=Outcome.SUCCESS if is_success(result.status) else Outcome.FAILURE,
        )
        return ended

    async def _finish(
        self, started: Started, ended: AttemptRecord, released: Callable[[], None] | None = None
    ) -> AttemptRecord:
        """An attempt's result journaled: retried until the store takes it."""
        key = ("attempt", ended.id)
        while True:
            try:
                await self.db.writer.run(
                    lambda c: journal.finish_attempt(
                        c, started, ended, self.policy, self.clock.now()
                    ),
                    on_commit=lambda finished: self._finished(finished, released, ended.trigger),
                )
            except StorageError:
                await self._back_off(key)
            else:
                self._unstall(key)
                return ended


def _public_attempt(attempt: AttemptRecord) -> Attempt:
    return Attempt(
        number=attempt.number,
        trigger=attempt.trigger,
        started_at=from_ms(round(attempt.started_at * 1000)),
        duration_ms=attempt.duration_ms,
        url=attempt.url,
        request_headers=attempt.request_headers,
        request_body=attempt.request_body,
        response_status=attempt.response_status,
        response_headers=attempt.response_headers,
        response_body=attempt.response_body,
        response_truncated=attempt.response_truncated,
        error=attempt.error,
        error_detail=attempt.error_detail,
        outcome=attempt.outcome,
    )
