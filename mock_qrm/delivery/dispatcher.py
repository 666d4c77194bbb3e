"""Where retries happen: the scheduler loop, the attempt, the state transitions.

The journal is the truth. In memory the dispatcher keeps only what is still
moving: unfinished deliveries and a heap of due times, rebuilt at start-up from
one query (crash recovery is that query, not a special case). Every attempt is
journaled as started *before* the request goes out, so an attempt cut short by
a kill is found and marked `interrupted` on the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import sqlite3
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from mock_qrm.delivery.clock import Clock
from mock_qrm.delivery.feed import FeedHub
from mock_qrm.delivery.sender import Sender, redact, request_headers
from mock_qrm.domain.catalog import EventCatalog
from mock_qrm.domain.models import (
    Attempt,
    DeliveryStatus,
    MessagePayload,
    Outcome,
    Trigger,
    WebhookMessage,
)
from mock_qrm.domain.policy import RetryPolicy, is_success
from mock_qrm.domain.timefmt import from_ms
from mock_qrm.store import deliveries as journal
from mock_qrm.store.db import Database
from mock_qrm.store.deliveries import AttemptRecord, DeliveryRecord
from mock_qrm.store.webhooks import StoredWebhook, load_webhook

log = logging.getLogger(__name__)

RETRYABLE = (DeliveryStatus.PENDING, DeliveryStatus.RETRY_SCHEDULED)


@dataclass(frozen=True, slots=True)
class ScheduledEvent:
    """An event due later (`report.file_ready`), kept in the `events` table until emitted."""

    id: int
    code: str
    resource_id: int
    due_at: float


def message_id() -> str:
    """`wh-` + a time-based UUID, as QRM's messages carry."""
    return f"wh-{uuid.uuid1()}"


def message_body(catalog: EventCatalog, msg_id: str, code: str, resource_id: int) -> bytes:
    event = catalog.get(code)
    message = WebhookMessage(
        message_id=msg_id,
        event_code=code,
        event_name=event.name if event else code,
        payload=MessagePayload(resource_id=resource_id, path=f"/reports/{resource_id}"),
    )
    return message.model_dump_json(by_alias=True).encode()


class Dispatcher:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        policy: RetryPolicy,
        catalog: EventCatalog,
        feed: FeedHub,
        webhooks: dict[int, StoredWebhook],
        *,
        concurrency: int,
        webhook_concurrency: int,
        on_event_due: Callable[[ScheduledEvent], Awaitable[None]],
    ) -> None:
        self.db = db
        self.clock = clock
        self.policy = policy
        self.catalog = catalog
        self.feed = feed
        self.webhooks = webhooks
        self.sender = Sender(policy.timeout, pool_size=concurrency)
        self._on_event_due = on_event_due
        self._global = asyncio.Semaphore(concurrency)
        self._webhook_concurrency = webhook_concurrency
        self._per_webhook: dict[int, asyncio.Semaphore] = {}
        self._active: dict[int, DeliveryRecord] = {}
        self._launched: set[int] = set()
        self._in_flight = 0
        self._heap: list[tuple[float, int, int]] = []
        self._events: list[tuple[float, int, ScheduledEvent]] = []
        self._order = itertools.count()
        self._wakeup = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._settled = asyncio.Condition()
        self._settled_at = float("-inf")
        self._stopping = False

    # --- life cycle ---------------------------------------------------------

    async def start(self) -> int:
        """Recover from the journal and start the scheduler; returns attempts found interrupted."""
        now = self.clock.now()
        interrupted = await self.db.writer.run(lambda c: journal.interrupt_unfinished(c, now))
        for record in await journal.unfinished_deliveries(self.db):
            self._active[record.id] = record
            self._push(record)
        for event_id, code, resource_id, due_at in await journal.pending_events(self.db):
            self.schedule_event(ScheduledEvent(event_id, code, resource_id, due_at))
        self._loop_task = asyncio.create_task(self._run(), name="mock-qrm-dispatcher")
        return interrupted

    async def stop(self, grace: float = 5.0) -> None:
        """Stop scheduling; let attempts in flight finish for `grace` seconds, then hand them back.

        A handed-back attempt stays unfinished in the journal and is marked
        `interrupted` and retried at the next start, exactly as after a kill.
        """
        self._stopping = True
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        await self.sender.close()

    @property
    def alive(self) -> bool:
        return self._loop_task is not None and not self._loop_task.done()

    # --- what the service calls ------------------------------------------------

    def fan_out(
        self, event_id: int, code: str, resource_id: int, now: float
    ) -> list[DeliveryRecord]:
        """One new delivery per active webhook subscribed to `code` (not yet saved or queued)."""
        records = []
        for webhook in self.webhooks.values():
            if not webhook.active or code not in webhook.events:
                continue
            msg_id = message_id()
            records.append(
                DeliveryRecord(
                    id=self.db.next_id("deliveries"),
                    message_id=msg_id,
                    event_id=event_id,
                    webhook_id=webhook.id,
                    event_code=code,
                    resource_id=resource_id,
                    status=DeliveryStatus.PENDING,
                    body=message_body(self.catalog, msg_id, code, resource_id),
                    created_at=now,
                    next_attempt_at=now,
                )
            )
        return records

    def enqueue(self, records: Iterable[DeliveryRecord]) -> None:
        """Start tracking saved deliveries; due ones go out on the next tick."""
        for record in records:
            self._active[record.id] = record
            self._push(record)
            self._publish(record)
        self._wakeup.set()

    def schedule_event(self, event: ScheduledEvent) -> None:
        heapq.heappush(self._events, (event.due_at, event.id, event))
        self._wakeup.set()

    def cancel_webhook(self, webhook_id: int) -> None:
        """Deactivated or removed: pending retries are cancelled; attempts in flight end as they end."""
        now = self.clock.now()
        cancelled = []
        for record in list(self._active.values()):
            if record.webhook_id == webhook_id and record.id not in self._launched:
                record.status = DeliveryStatus.CANCELLED
                record.next_attempt_at = None
                record.completed_at = now
                del self._active[record.id]
                cancelled.append(record)
        if cancelled:
            self._save_then_publish(lambda c: journal.update_deliveries(c, cancelled), cancelled)

    async def redeliver(self, record: DeliveryRecord) -> Attempt:
        """One manual attempt with the same messageId; it schedules no automatic retry."""
        tracked = self._active.get(record.id, record)
        attempt = await self._attempt(tracked, Trigger.MANUAL)
        return _public_attempt(attempt)

    def redeliver_later(self, record: DeliveryRecord) -> None:
        """A manual attempt in the background (bulk redelivery)."""
        self._spawn(self.redeliver(record))

    async def advance(self, seconds: float) -> None:
        """With a manual clock: move time and return once everything now due has been started."""
        target = self.clock.now() + seconds
        advance = getattr(self.clock, "advance", None)
        if advance is None:
            raise RuntimeError("the clock is not manual")
        advance(seconds)
        self._wakeup.set()
        async with self._settled:
            await self._settled.wait_for(lambda: self._settled_at >= target or not self.alive)

    # --- health ---------------------------------------------------------------

    @property
    def queue_depth(self) -> int:
        return len(self._active) - len(self._launched & self._active.keys())

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def oldest_overdue(self, grace: float = 1.0) -> float | None:
        """Seconds by which the most overdue waiting attempt has missed its time, if over `grace`."""
        now = self.clock.now()
        dues = [
            r.next_attempt_at
            for r in self._active.values()
            if r.status in RETRYABLE
            and r.next_attempt_at is not None
            and r.id not in self._launched
        ]
        if self._events:
            dues.append(self._events[0][0])
        late = now - min(dues) if dues else 0.0
        return late if late > grace else None

    # --- the scheduler ----------------------------------------------------------

    def _push(self, record: DeliveryRecord) -> None:
        if record.status in RETRYABLE and record.next_attempt_at is not None:
            heapq.heappush(self._heap, (record.next_attempt_at, next(self._order), record.id))

    async def _run(self) -> None:
        while True:
            now = self.clock.now()
            while self._events and self._events[0][0] <= now:
                _, _, event = heapq.heappop(self._events)
                try:
                    # Inline, so its deliveries are due in this very pass (exact manual clock).
                    await self._on_event_due(event)
                except Exception:
                    log.exception("emitting scheduled event %s failed", event.id)
            while self._heap and self._heap[0][0] <= now:
                due, _, delivery_id = heapq.heappop(self._heap)
                record = self._active.get(delivery_id)
                if (
                    record is None
                    or record.status not in RETRYABLE
                    or record.next_attempt_at != due
                    or delivery_id in self._launched
                ):
                    continue  # superseded: cancelled, delivered by hand, or rescheduled
                self._launched.add(delivery_id)
                self._spawn(self._automatic(record))
            async with self._settled:
                self._settled_at = now
                self._settled.notify_all()
            deadline = min(
                (heap[0][0] for heap in (self._heap, self._events) if heap), default=None
            )
            self._wakeup.clear()
            await self.clock.wait(deadline, self._wakeup)

    def _spawn(self, coro: Awaitable[object]) -> None:
        async def guarded() -> None:
            try:
                await coro
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("dispatcher task failed")

        task = asyncio.create_task(guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _semaphore(self, webhook_id: int) -> asyncio.Semaphore:
        semaphore = self._per_webhook.get(webhook_id)
        if semaphore is None:
            semaphore = self._per_webhook[webhook_id] = asyncio.Semaphore(self._webhook_concurrency)
        return semaphore

    async def _automatic(self, record: DeliveryRecord) -> None:
        try:
            await self._attempt(record, Trigger.AUTOMATIC)
        except _Skipped:
            pass
        finally:
            self._launched.discard(record.id)

    async def _attempt(self, record: DeliveryRecord, trigger: Trigger) -> AttemptRecord:
        # Per-webhook slot first: a hanging receiver queues on its own slots, not the global ones.
        async with self._semaphore(record.webhook_id), self._global:
            webhook = self.webhooks.get(record.webhook_id)
            if trigger is Trigger.AUTOMATIC and (webhook is None or not webhook.active):
                self._finish_cancelled(record)
                raise _Skipped
            if webhook is None:
                webhook = await self._removed_webhook(record.webhook_id)
            return await self._send(record, webhook, trigger)

    async def _send(
        self, record: DeliveryRecord, webhook: StoredWebhook, trigger: Trigger
    ) -> AttemptRecord:
        headers = request_headers(webhook.basic_auth)
        body = record.body
        record.attempts_total += 1
        attempt = AttemptRecord(
            id=self.db.next_id("attempts"),
            delivery_id=record.id,
            number=record.attempts_total,
            trigger=trigger,
            started_at=self.clock.now(),
            url=webhook.url,
            request_headers=redact(headers),
            request_body=body.decode(),
        )
        if trigger is Trigger.AUTOMATIC:
            record.status = DeliveryStatus.IN_FLIGHT
            record.next_attempt_at = None
        started = _snapshot(record)
        await self.db.writer.run(lambda c: _started(c, attempt, started))
        self._publish(record)

        self._in_flight += 1
        try:
            result = await self.sender.send(webhook.url, body, headers)
        finally:
            self._in_flight -= 1

        attempt.duration_ms = result.duration_ms
        attempt.response_status = result.status
        attempt.response_headers = result.headers
        attempt.response_body = result.body
        attempt.response_truncated = result.truncated
        attempt.error = result.error
        success = is_success(result.status)
        attempt.outcome = Outcome.SUCCESS if success else Outcome.FAILURE
        record.last_status = result.status
        record.last_error = result.error
        record.last_duration_ms = result.duration_ms
        self._transition(record, attempt, success)
        finished = _snapshot(record)
        self._save_then_publish(lambda c: _finished(c, attempt, finished), [finished])
        return attempt

    def _transition(self, record: DeliveryRecord, attempt: AttemptRecord, success: bool) -> None:
        now = self.clock.now()
        if success:
            record.status = DeliveryStatus.DELIVERED
            record.next_attempt_at = None
            record.completed_at = now
        elif attempt.trigger is Trigger.MANUAL or record.status is DeliveryStatus.DELIVERED:
            pass  # a manual failure changes nothing; a late failure cannot undo a delivery
        else:
            record.attempt_count += 1
            webhook = self.webhooks.get(record.webhook_id)
            ended = attempt.started_at + (attempt.duration_ms or 0) / 1000
            due = self.policy.next_attempt_at(record.attempt_count, ended)
            if webhook is None or not webhook.active:
                record.status = DeliveryStatus.CANCELLED
                record.completed_at = now
            elif due is None:
                record.status = DeliveryStatus.FAILED
                record.completed_at = now
            else:
                record.status = DeliveryStatus.RETRY_SCHEDULED
                record.next_attempt_at = due
        if attempt.trigger is Trigger.AUTOMATIC and success:
            record.attempt_count += 1
        if record.status.is_final:
            self._active.pop(record.id, None)
        elif attempt.trigger is Trigger.AUTOMATIC and record.status in RETRYABLE:
            self._push(record)
            self._wakeup.set()

    def _finish_cancelled(self, record: DeliveryRecord) -> None:
        record.status = DeliveryStatus.CANCELLED
        record.next_attempt_at = None
        record.completed_at = self.clock.now()
        self._active.pop(record.id, None)
        snapshot = _snapshot(record)
        self._save_then_publish(lambda c: journal.update_deliveries(c, [snapshot]), [snapshot])

    async def _removed_webhook(self, webhook_id: int) -> StoredWebhook:
        webhook = await load_webhook(self.db, webhook_id)
        if webhook is None:
            raise LookupError(f"webhook {webhook_id} does not exist")
        return webhook

    def _save_then_publish(
        self, job: Callable[[sqlite3.Connection], None], records: list[DeliveryRecord]
    ) -> None:
        """Journal a change without waiting, and tell the feed once it is committed.

        A client that reads the API after a frame then never sees an older state.
        `records` must not change any more: pass snapshots of live ones.
        """
        future = self.db.writer.submit(job)

        def published(done: asyncio.Future[None]) -> None:
            if not done.cancelled() and done.exception() is not None:
                log.error("journal write failed: %s", done.exception())
                return
            for record in records:
                self._publish(record)

        future.add_done_callback(published)

    def _publish(self, record: DeliveryRecord) -> None:
        webhook = self.webhooks.get(record.webhook_id)
        name = webhook.name if webhook else ""
        self.feed.publish("delivery", record.public(name))


class _Skipped(Exception):
    """The delivery was cancelled before its attempt could start."""


def _snapshot(record: DeliveryRecord) -> DeliveryRecord:
    """A copy for the writer: the live record keeps changing after the job is queued."""
    return DeliveryRecord(**{name: getattr(record, name) for name in DeliveryRecord.__slots__})


def _started(conn: sqlite3.Connection, attempt: AttemptRecord, record: DeliveryRecord) -> None:
    journal.insert_attempt(conn, attempt)
    journal.update_deliveries(conn, [record])


def _finished(conn: sqlite3.Connection, attempt: AttemptRecord, record: DeliveryRecord) -> None:
    journal.finish_attempt(conn, attempt)
    journal.update_deliveries(conn, [record])


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
        outcome=attempt.outcome,
    )
