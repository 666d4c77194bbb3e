"""The mock QRM as one object: what every HTTP handler calls.

Handlers validate and serialise; this module decides. It owns the in-memory
webhook registry (shared with the dispatcher), the report simulation, tokens,
and the feed frames for webhook and report changes.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mock_qrm import __version__
from mock_qrm.delivery.clock import Clock, ManualClock, RealClock
from mock_qrm.delivery.dispatcher import Dispatcher, ScheduledEvent
from mock_qrm.delivery.feed import FeedHub
from mock_qrm.domain.catalog import EventCatalog
from mock_qrm.domain.models import (
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
    ReportQuery,
    ReportRow,
    UploadedReport,
    Webhook,
    WebhookCreate,
    WebhookPatch,
)
from mock_qrm.domain.timefmt import from_ms
from mock_qrm.reports import (
    ReportGenerator,
    ReportOverrideError,
    list_item,
    render_pdf,
    with_pdf_url,
)
from mock_qrm.settings import Settings
from mock_qrm.store import deliveries as journal
from mock_qrm.store import reports as report_store
from mock_qrm.store.db import Database
from mock_qrm.store.deliveries import DeliveryRecord
from mock_qrm.store.webhooks import StoredWebhook, last_delivery, load_webhooks, save_webhook

FIRST_REPORT_ID = 12301
FILE_READY = "report.file_ready"
TOKEN_LIFETIME = 24 * 3600.0


class NotFound(Exception):
    def __init__(self, what: str, key: object) -> None:
        super().__init__(f"{what} {key} was not found")


class FieldErrors(Exception):
    """A request that breaks a rule: 422 with messages keyed by dotted field path."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("Validation error")
        self.errors = errors


class Conflict(Exception):
    """The request is well-formed but cannot apply in the server's current mode."""


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
        self.webhooks: dict[int, StoredWebhook] = {}
        self._tokens: dict[bytes, float] = {}
        self.dispatcher = self._new_dispatcher()

    def _new_dispatcher(self) -> Dispatcher:
        return Dispatcher(
            self.db,
            self.clock,
            self.settings.retry_policy,
            self.catalog,
            self.feed,
            self.webhooks,
            concurrency=self.settings.concurrency,
            webhook_concurrency=self.settings.webhook_concurrency,
            on_event_due=self._emit_scheduled,
        )

    @classmethod
    async def open(cls, settings: Settings, clock: Clock | None = None) -> QrmService:
        """Open the store, seed reports on first start, recover and start delivering."""
        db = await Database.open(settings.db)
        service = cls(
            settings, db, clock or (ManualClock() if settings.manual_clock else RealClock())
        )
        try:
            await service._start()
        except BaseException:
            await db.close()
            raise
        return service

    async def _start(self) -> None:
        self.db.ensure_next_id("reports", FIRST_REPORT_ID)
        if await report_store.count_reports(self.db) == 0:
            await self._seed()
        self.webhooks.clear()
        self.webhooks.update({w.id: w for w in await load_webhooks(self.db)})
        await self.dispatcher.start()

    async def _seed(self) -> None:
        now = from_ms(round(self.clock.now() * 1000))
        reports = self.generator.seed_reports(self.settings.seed_reports, now, FIRST_REPORT_ID)

        def job(conn: sqlite3.Connection) -> None:
            for report in reports:
                report_store.save_report(conn, report, file_ready_at=report.created_at.timestamp())

        await self.db.writer.run(job)
        self.db.ensure_next_id("reports", FIRST_REPORT_ID + len(reports))

    async def close(self) -> None:
        await self.dispatcher.stop(self.settings.shutdown_grace)
        self.feed.close()
        await self.db.close()

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
        return [await self._public(w) for w in self.webhooks.values()]

    async def get_webhook(self, webhook_id: int) -> Webhook:
        return await self._public(self._webhook(webhook_id))

    async def create_webhook(self, spec: WebhookCreate) -> Webhook:
        now = self._now_ms()
        webhook = StoredWebhook(
            id=self.db.next_id("webhooks"),
            name=spec.name,
            url=spec.url,
            events=spec.events,
            auth_username=spec.basic_auth.username if spec.basic_auth else None,
            auth_password=spec.basic_auth.password if spec.basic_auth else None,
            active=spec.active,
            created_at=now,
            updated_at=now,
        )
        await self.db.writer.run(lambda c: save_webhook(c, webhook))
        self.webhooks[webhook.id] = webhook
        return await self._announce(webhook, "created")

    async def update_webhook(self, webhook_id: int, patch: WebhookPatch) -> Webhook:
        current = self._webhook(webhook_id)
        changed = patch.model_fields_set
        updated = StoredWebhook(**{f: getattr(current, f) for f in StoredWebhook.__slots__})
        if "name" in changed and patch.name is not None:
            updated.name = patch.name
        if "url" in changed and patch.url is not None:
            updated.url = patch.url
        if "events" in changed and patch.events is not None:
            updated.events = patch.events
        if "active" in changed and patch.active is not None:
            updated.active = patch.active
        if "basic_auth" in changed:
            if patch.basic_auth is None:
                updated.auth_username = updated.auth_password = None
            else:
                password = patch.basic_auth.password or current.auth_password
                if password is None:
                    raise FieldErrors({"basicAuth.password": ["Password is required"]})
                updated.auth_username = patch.basic_auth.username
                updated.auth_password = password
        for field in ("name", "url", "events", "active"):
            if field in changed and getattr(patch, field) is None:
                raise FieldErrors({field: ["must not be null"]})
        updated.updated_at = self._now_ms()
        await self.db.writer.run(lambda c: save_webhook(c, updated))
        self.webhooks[webhook_id] = updated
        if current.active and not updated.active:
            self.dispatcher.cancel_webhook(webhook_id)
        return await self._announce(updated, "updated")

    async def set_active(self, webhook_id: int, active: bool) -> Webhook:
        return await self.update_webhook(webhook_id, WebhookPatch(active=active))

    async def delete_webhook(self, webhook_id: int) -> None:
        webhook = self._webhook(webhook_id)
        removed = StoredWebhook(**{f: getattr(webhook, f) for f in StoredWebhook.__slots__})
        removed.deleted_at = removed.updated_at = self._now_ms()
        await self.db.writer.run(lambda c: save_webhook(c, removed))
        del self.webhooks[webhook_id]
        self.dispatcher.cancel_webhook(webhook_id)
        self.feed.publish("webhook", removed.public(), action="deleted")

    def _webhook(self, webhook_id: int) -> StoredWebhook:
        webhook = self.webhooks.get(webhook_id)
        if webhook is None:
            raise NotFound("Webhook", webhook_id)
        return webhook

    async def _public(self, webhook: StoredWebhook) -> Webhook:
        return webhook.public(await last_delivery(self.db, webhook.id))

    async def _announce(self, webhook: StoredWebhook, action: str) -> Webhook:
        public = await self._public(webhook)
        self.feed.publish("webhook", public, action=action)
        return public

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
        now = self.clock.now()
        report_id = self.db.next_id("reports")
        try:
            report = self.generator.generate(report_id, from_ms(round(now * 1000)), overrides)
        except ReportOverrideError as exc:
            raise FieldErrors({f"overrides.{exc.field}": [exc.message]}) from None
        created_id = self.db.next_id("events")
        records = self.dispatcher.fan_out(created_id, "report.created", report_id, now)
        file_ready = ScheduledEvent(
            self.db.next_id("events"),
            FILE_READY,
            report_id,
            now + self.settings.scaled_file_ready_delay,
        )

        def job(conn: sqlite3.Connection) -> None:
            report_store.save_report(conn, report, file_ready_at=None)
            journal.insert_event(
                conn, created_id, "report.created", report_id, now, now, emitted=True
            )
            journal.insert_deliveries(conn, records)
            journal.insert_event(
                conn, file_ready.id, FILE_READY, report_id, now, file_ready.due_at, emitted=False
            )

        await self.db.writer.run(job)
        self.dispatcher.enqueue(records)
        self.dispatcher.schedule_event(file_ready)
        await self._announce_report(report_id, "created")
        return UploadedReport(
            resource_id=report_id, inspection_id=report.inspection_id, path=f"/reports/{report_id}"
        )

    async def emit_event(self, code: str, resource_id: int) -> EmittedEvent:
        if self.catalog.get(code) is None:
            raise FieldErrors({"eventCode": [f"Unknown event code: {code}"]})
        now = self.clock.now()
        event = ScheduledEvent(self.db.next_id("events"), code, resource_id, now)
        records = await self._fan_out(event, now, scheduled=False)
        return EmittedEvent(event_code=code, resource_id=resource_id, deliveries=len(records))

    async def _emit_scheduled(self, event: ScheduledEvent) -> None:
        await self._fan_out(event, self.clock.now(), scheduled=True)

    async def _fan_out(
        self, event: ScheduledEvent, now: float, *, scheduled: bool
    ) -> list[DeliveryRecord]:
        records = self.dispatcher.fan_out(event.id, event.code, event.resource_id, now)
        marks_file_ready = event.code == FILE_READY

        def job(conn: sqlite3.Connection) -> None:
            # Checked in the writer's transaction: no extra round trip, and no race with reset.
            if not report_store.report_exists(conn, event.resource_id):
                raise NotFound("Report", event.resource_id)
            if scheduled:
                journal.mark_event_emitted(conn, event.id, now)
            else:
                journal.insert_event(
                    conn, event.id, event.code, event.resource_id, now, now, emitted=True
                )
            if marks_file_ready:
                report_store.mark_file_ready(conn, event.resource_id, now)
            journal.insert_deliveries(conn, records)

        await self.db.writer.run(job)
        self.dispatcher.enqueue(records)
        if marks_file_ready:
            await self._announce_report(event.resource_id, "updated")
        return records

    async def _announce_report(self, report_id: int, action: str) -> None:
        row = await report_store.report_row_by_id(self.db, report_id)
        if row is not None:
            self.feed.publish("report", row, action=action)

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
        record = await journal.load_delivery(self.db, delivery_id)
        if record is None:
            raise NotFound("Delivery", delivery_id)
        return await self.dispatcher.redeliver(record)

    async def redeliver_matching(self, flt: DeliveryFilter) -> int:
        ids = await journal.matching_ids(self.db, flt)
        for delivery_id in ids:
            record = await journal.load_delivery(self.db, delivery_id)
            if record is not None:
                self.dispatcher.redeliver_later(record)
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
        overdue = self.dispatcher.oldest_overdue()
        alive = self.dispatcher.alive
        return Health(
            status="ok" if alive and overdue is None else "degraded",
            version=__version__,
            dispatcher_alive=alive,
            queue_depth=self.dispatcher.queue_depth,
            in_flight=self.dispatcher.in_flight,
            oldest_overdue_ms=None if overdue is None else round(overdue * 1000),
            manual_clock=self.clock.manual,
            now=from_ms(self._now_ms()),
            time_scale=self.settings.time_scale,
            max_attempts=self.settings.retry_policy.max_attempts,
            timeout_seconds=self.settings.retry_policy.timeout,
            retry_interval_seconds=self.settings.retry_policy.retry_interval,
        )

    async def reset(self) -> None:
        """Back to the seeded state: no webhooks, no journal, the seeded reports."""
        await self.dispatcher.stop(grace=0)
        await self.db.writer.run(report_store.delete_all)
        self.db.reset_ids()
        self.dispatcher = self._new_dispatcher()
        await self._start()
        self.feed.publish("resync")

    def _now_ms(self) -> int:
        return round(self.clock.now() * 1000)


def _digest(token: str) -> bytes:
    """Tokens are kept and looked up by hash: a lookup leaks no timing about a real token."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
