"""The mock QRM as one object: what every HTTP handler calls.

Handlers validate and serialise; this module decides. It wires the store,
the dispatcher (fan-out and delivery) and the webhook registry, and keeps
what belongs to no one of them: report simulation, tokens, health, reset.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mock_qrm import __version__
from mock_qrm.contract.catalog import EventCatalog
from mock_qrm.contract.errors import Conflict, FieldErrors, NotFound
from mock_qrm.contract.models import (
    Attempt,
    ClockState,
    DeliveryDetail,
    DeliveryFilter,
    EmittedEvent,
    EventComponent,
    EventTypeOut,
    Health,
    LoginForm,
    LoginResult,
    OverdueItem,
    ReportQuery,
    ReportRow,
    StatsQuery,
    UploadedReport,
    Webhook,
    WebhookCreate,
    WebhookPatch,
    WebhookStats,
    unknown_codes,
)
from mock_qrm.contract.timefmt import from_ms
from mock_qrm.server.delivery.clock import Clock, ManualClock, RealClock
from mock_qrm.server.delivery.dispatcher import Dispatcher
from mock_qrm.server.delivery.feed import FeedHub
from mock_qrm.server.delivery.loopguard import refuse_own_address
from mock_qrm.server.delivery.registry import WebhookRegistry
from mock_qrm.server.domain.faults import FaultBook
from mock_qrm.server.domain.records import FIRST_REPORT_ID, GeneratedReport, WebhookRecord
from mock_qrm.server.reports import (
    ReportGenerator,
    ReportOverrideError,
    check_overrides,
    list_item,
    render_pdf,
    with_pdf_url,
)
from mock_qrm.server.settings import Settings
from mock_qrm.server.store import journal
from mock_qrm.server.store import reports as report_store
from mock_qrm.server.store import stats as stats_store
from mock_qrm.server.store.db import Database

TOKEN_LIFETIME = 24 * 3600.0

__all__ = ["Conflict", "FieldErrors", "NotFound", "QrmService", "ReportPage"]

Address = tuple[str, int]
"""Where this server was reached: a webhook must not point back at it."""


@dataclass(frozen=True, slots=True)
class ReportPage:
    items: list[dict[str, Any]]
    total: int


class QrmService:
    def __init__(self, settings: Settings, db: Database, clock: Clock) -> None:
        self.settings = settings
        self.db = db
        self.clock = clock
        self.catalog = EventCatalog.load()
        self.feed = FeedHub(settings.feed_buffer)
        self.generator = ReportGenerator(settings.seed)
        self.dispatcher = Dispatcher(
            db,
            clock,
            settings.retry_policy,
            self.catalog,
            self.feed,
            concurrency=settings.concurrency,
            webhook_concurrency=settings.webhook_concurrency,
            file_ready_delay=settings.scaled_file_ready_delay,
        )
        self.registry = WebhookRegistry(db, clock, self.feed, self.dispatcher)
        self.faults = FaultBook()
        self._tokens: dict[bytes, float] = {}
        self._resetting = asyncio.Lock()
        self._closed = False
        self._seeded_here = False
        """This process seeded the database: every report below the first upload is a seeded one."""

    @classmethod
    async def open(cls, settings: Settings, clock: Clock | None = None) -> QrmService:
        """Open the store, seed reports on first start, recover and start delivering."""
        db = await Database.open(settings.db)
        service = cls(
            settings, db, clock or (ManualClock() if settings.manual_clock else RealClock())
        )
        try:
            if await report_store.count_reports(db) == 0:
                await db.writer.run(service._seed)
                service._seeded_here = True
            await service.registry.load()
            await service.dispatcher.start()
        except BaseException:
            await service.dispatcher.close(grace=0)
            await db.close()
            raise
        return service

    def _seed(self, conn: sqlite3.Connection) -> None:
        now = from_ms(self._now_ms())
        for report in self.generator.seed_reports(self.settings.seed_reports, now, FIRST_REPORT_ID):
            report_store.save_report(conn, report, file_ready_at=report.created_at.timestamp())

    async def shutdown(self) -> None:
        """Stop taking part: feeds hung up, attempts in flight given `shutdown_grace` to finish."""
        self.feed.close()
        self.faults.clear_faults()  # a call held by a fault's delay answers now
        await self.dispatcher.close(self.settings.shutdown_grace)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self.shutdown()
        await self.db.close()

    @property
    def webhooks(self) -> Mapping[int, WebhookRecord]:
        """Every webhook not removed, as committed (a read-only mapping by id)."""
        return self.registry.webhooks

    # --- auth ------------------------------------------------------------------

    def login(self, form: LoginForm) -> LoginResult | None:
        """Any credentials when no key is set; with a key, the password must be it."""
        key = self.settings.api_key_value
        if key is not None and not hmac.compare_digest(form.password.encode(), key.encode()):
            return None
        token = secrets.token_urlsafe(32)
        self._tokens[_digest(token)] = self.clock.now() + TOKEN_LIFETIME
        return LoginResult(
            token=token,
            refresh_token=secrets.token_urlsafe(32),
            username=form.username,
            org_name="Mock QRM",
            avatar_url="https://developers.inspectorio.com/img/user.png",
        )

    def authorised(self, api_key: str | None, token: str | None) -> bool:
        key = self.settings.api_key_value
        if key is None:
            return True
        if api_key is not None and hmac.compare_digest(api_key.encode(), key.encode()):
            return True
        if token is not None:
            expires = self._tokens.get(_digest(token))
            return expires is not None and expires > self.clock.now()
        return False

    # --- webhooks ----------------------------------------------------------------

    def event_components(self) -> list[EventComponent]:
        return [
            EventComponent(
                component=component,
                events=[EventTypeOut(event_code=e.code, event_name=e.name) for e in events],
            )
            for component, events in self.catalog.components().items()
        ]

    @property
    def validation_context(self) -> dict[str, Any]:
        return {"event_codes": self.catalog.codes}

    async def list_webhooks(self) -> list[Webhook]:
        return [await self.registry.public(w) for w in tuple(self.registry.webhooks.values())]

    async def get_webhook(self, webhook_id: int) -> Webhook:
        return await self.registry.public(self.registry.get(webhook_id))

    async def create_webhook(self, spec: WebhookCreate, reached: Address | None = None) -> Webhook:
        await refuse_own_address(spec.url, reached)
        return (await self.registry.create(spec)).public()  # new: no delivery to read yet

    async def update_webhook(
        self, webhook_id: int, patch: WebhookPatch, reached: Address | None = None
    ) -> Webhook:
        if patch.url is not None:
            await refuse_own_address(patch.url, reached)
        return await self.registry.public(await self.registry.update(webhook_id, patch))

    async def set_active(self, webhook_id: int, active: bool) -> Webhook:
        return await self.update_webhook(webhook_id, WebhookPatch(active=active))

    async def delete_webhook(self, webhook_id: int) -> None:
        await self.registry.delete(webhook_id)

    async def webhook_stats(self, webhook_id: int, query: StatsQuery) -> WebhookStats:
        """From the journal; a removed webhook's history stays, and so do its stats."""
        stats = await stats_store.webhook_stats(
            self.db, webhook_id, query.since, self._now_ms(), query.per_minute
        )
        if stats is None:
            raise NotFound("Webhook", webhook_id)
        return stats

    # --- reports -----------------------------------------------------------------

    async def list_reports(self, query: ReportQuery, file_url: Callable[[int], str]) -> ReportPage:
        stored, total = await report_store.list_reports(self.db, query)
        items = [
            list_item(with_pdf_url(r.document, file_url(r.id) if r.file_ready else None))
            for r in stored
        ]
        return ReportPage(items, total)

    async def get_report(self, report_id: str, file_url: Callable[[int], str]) -> dict[str, Any]:
        stored = await report_store.get_report(self.db, report_id)
        if stored is None:
            raise NotFound("Report", report_id)
        return with_pdf_url(stored.document, file_url(stored.id) if stored.file_ready else None)

    async def report_pdf(self, report_id: int) -> bytes:
        stored = await report_store.get_report(self.db, str(report_id))
        if stored is None or not stored.file_ready:
            raise NotFound("Report file", report_id)
        return render_pdf(stored.document)

    async def report_rows(self, limit: int, offset: int) -> tuple[list[ReportRow], int]:
        return await report_store.report_rows(self.db, limit, offset)

    async def upload_report(self, overrides: dict[str, Any]) -> UploadedReport:
        """An inspector uploads a report: `report.created` now, `report.file_ready` later."""
        created_at = from_ms(self._now_ms())
        try:
            wanted = check_overrides(overrides)
        except ReportOverrideError as exc:
            raise FieldErrors({f"overrides.{exc.field}": [exc.message]}) from None

        def build(report_id: int) -> GeneratedReport:
            # Run in the transaction that numbers the report: ids never collide.
            return self.generator.generate(report_id, created_at, wanted)

        report = await self.dispatcher.upload(build)
        return UploadedReport(
            resource_id=report.id, inspection_id=report.inspection_id, path=f"/reports/{report.id}"
        )

    async def emit_event(self, code: str, resource_id: int) -> EmittedEvent:
        if problem := unknown_codes([code], self.catalog.codes):
            raise FieldErrors({"eventCode": [problem]})
        deliveries = await self.dispatcher.emit(code, resource_id)
        return EmittedEvent(event_code=code, resource_id=resource_id, deliveries=deliveries)

    # --- deliveries --------------------------------------------------------------

    async def list_deliveries(
        self, flt: DeliveryFilter, limit: int, offset: int
    ) -> tuple[list[Any], int]:
        return await journal.list_deliveries(self.db, flt, limit, offset)

    async def get_delivery(self, delivery_id: int) -> DeliveryDetail:
        detail = await journal.delivery_detail(self.db, delivery_id)
        if detail is None:
            raise NotFound("Delivery", delivery_id)
        return detail

    async def redeliver(self, delivery_id: int) -> Attempt:
        return await self.dispatcher.redeliver(delivery_id)

    async def redeliver_matching(self, flt: DeliveryFilter) -> int:
        """A manual attempt for each match whose webhook is still there and active."""
        ids = await journal.redeliverable_ids(self.db, flt)
        self.dispatcher.redeliver_matching(ids)
        return len(ids)

    # --- clock, health, reset ---------------------------------------------------

    def clock_state(self) -> ClockState:
        return ClockState(
            now=from_ms(self._now_ms()),
            manual=self.clock.manual,
            time_scale=self.settings.time_scale,
        )

    async def advance(self, seconds: float) -> ClockState:
        if not isinstance(self.clock, ManualClock):
            raise Conflict("The clock is not manual: start the server with --manual-clock")
        await self.dispatcher.advance(seconds)
        return self.clock_state()

    def health(self) -> Health:
        """`ok`, or `degraded` with the reason; `unavailable` when the store or dispatcher is down."""
        overdue = self.dispatcher.oldest_overdue()
        alive = self.dispatcher.alive or self._resetting.locked()
        store = self.db.failing
        reason = store or (None if alive else "the dispatcher is not running")
        if reason is None and overdue is not None:
            reason = f"{overdue.kind} {overdue.id} is {overdue.late:.1f} s overdue"
        return Health(
            status="ok" if reason is None else "degraded",
            reason=reason,
            unavailable=store is not None or not alive,
            version=__version__,
            dispatcher_alive=alive,
            queue_depth=self.dispatcher.queue_depth,
            in_flight=self.dispatcher.in_flight,
            oldest_overdue_ms=None if overdue is None else round(overdue.late * 1000),
            oldest_overdue=None
            if overdue is None
            else OverdueItem(kind=overdue.kind, id=overdue.id, late_ms=round(overdue.late * 1000)),
            manual_clock=self.clock.manual,
            now=from_ms(self._now_ms()),
            time_scale=self.settings.time_scale,
            max_attempts=self.settings.retry_policy.max_attempts,
            timeout_seconds=self.settings.retry_policy.timeout,
            retry_interval_seconds=self.settings.retry_policy.retry_interval,
        )

    async def reset(self, *, fresh: bool = False) -> int:
        """Back to the seeded state: no webhooks, no journal, the seeded reports.

        The dispatcher stops first (nothing left running), the wipe and reseed
        are one transaction, and memory is dropped when it commits: whatever
        commits after it starts from the seeded state, with fresh ids.

        `fresh` goes on to the state of a server just started on a new database,
        which is how the testing kit reuses one server for many tests: a manual
        clock back at the wall time, fault ids from 1, no login tokens. It keeps
        the seeded reports rather than generating them again (they never change)
        when this process seeded them. Returns the seq of the feed's `resync` frame.
        """
        async with self._resetting:
            await self.dispatcher.quiesce()
            keep_seeded = fresh and self._seeded_here

            def wipe(conn: sqlite3.Connection) -> None:
                if keep_seeded:
                    journal.wipe(
                        conn, keep_reports_below=FIRST_REPORT_ID + self.settings.seed_reports
                    )
                else:
                    journal.wipe(conn)
                    self._seed(conn)

            def forget(_: None) -> None:
                # With the wipe's commit, not after the restart: no call in between
                # meets a fault (or a token) from before the reset.
                self.registry.replace([])
                self.dispatcher.forget()
                if fresh:
                    self.faults.clear_faults()  # a call its delay holds answers now
                    self.faults = FaultBook()
                    self._tokens.clear()
                else:
                    self.faults.clear()

            try:
                await self.db.writer.run(wipe, on_commit=forget)
                if fresh and isinstance(self.clock, ManualClock):
                    self.clock.rewind()  # nothing is scheduled: the dispatcher is stopped
            finally:
                await self.dispatcher.start()
            return self.feed.publish("resync")

    def _now_ms(self) -> int:
        return round(self.clock.now() * 1000)


def _digest(token: str) -> bytes:
    """Tokens are kept and looked up by hash: a lookup leaks no timing about a real token."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
