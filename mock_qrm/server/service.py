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
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from mock_qrm import __version__
from mock_qrm.contract.catalog import EventCatalog
from mock_qrm.contract.errors import Conflict, FieldErrors, NotFound, validation_messages
from mock_qrm.contract.models import (
    Attempt,
    ClockState,
    DeliveryDetail,
    DeliveryFilter,
    EmittedEvent,
    EventComponent,
    EventTypeOut,
    FaultSpec,
    Health,
    LoginForm,
    LoginResult,
    OverdueItem,
    ReportQuery,
    ReportRow,
    ScenarioApplied,
    ScenarioApply,
    ScenarioBasicAuth,
    ScenarioDocument,
    ScenarioWebhook,
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
from mock_qrm.server.domain.webhooks import declared, new_webhook, patched, to_match
from mock_qrm.server.reports import (
    ReportGenerator,
    ReportOverrideError,
    check_overrides,
    list_item,
    render_pdf,
    with_pdf_url,
)
from mock_qrm.server.scenario import PATH_SETTINGS, exported_settings, unknown_name
from mock_qrm.server.settings import Settings
from mock_qrm.server.store import journal
from mock_qrm.server.store import reports as report_store
from mock_qrm.server.store import stats as stats_store
from mock_qrm.server.store.db import Database
from mock_qrm.serving import is_loopback

TOKEN_LIFETIME = 24 * 3600.0
STORE_PROBE_SECONDS = 1.0
"""How long `/healthz` waits on a store that was failing before it answers as things stand."""
MAX_TOKENS_PER_USER = 100
"""Login tokens kept per username: the 101st login forgets that user's oldest token."""
MAX_TOKENS = 10_000
"""Login tokens kept in all (some 2 MB): past it, the oldest of anyone's is forgotten."""

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
            tls=settings.receiver_tls,
        )
        self.registry = WebhookRegistry(db, clock, self.feed, self.dispatcher)
        self.faults = FaultBook()
        self._tokens: dict[bytes, tuple[float, str]] = {}
        """Login tokens by digest, oldest first: when each expires, and whose it is."""
        self._user_tokens: dict[str, deque[bytes]] = {}
        """Each username's tokens, oldest first."""
        self._resetting = asyncio.Lock()
        self._applying = asyncio.Lock()
        """One scenario at a time: two that name the same new webhook create it once."""
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
        """Any credentials when no key is set; with a key, the password must be it.

        Tokens are bounded: expired ones are dropped, and past `MAX_TOKENS_PER_USER` for
        the username, or `MAX_TOKENS` in all, the oldest is forgotten (it answers 401).
        """
        key = self.settings.api_key_value
        if key is not None and not hmac.compare_digest(_as_bytes(form.password), key.encode()):
            return None
        now = self.clock.now()
        self._forget_tokens(lambda expires: expires <= now)
        theirs = self._user_tokens.get(form.username)
        if theirs is not None and len(theirs) >= MAX_TOKENS_PER_USER:
            del self._tokens[theirs.popleft()]
        elif len(self._tokens) >= MAX_TOKENS:
            self._forget_tokens(lambda _: True, at_most=1)
        mine = self._user_tokens.setdefault(form.username, deque())
        token = secrets.token_urlsafe(32)
        digest = _digest(token)
        self._tokens[digest] = (now + TOKEN_LIFETIME, form.username)
        mine.append(digest)
        return LoginResult(
            token=token,
            refresh_token=secrets.token_urlsafe(32),
            username=form.username,
            org_name="Mock QRM",
            avatar_url="https://developers.inspectorio.com/img/user.png",
        )

    def authorised(self, api_key: str | None, token: str | None) -> bool:
        """Whether a request with these headers may pass. A header is any bytes (aiohttp
        decodes what is not UTF-8 as lone surrogates): `_as_bytes` encodes any of it."""
        key = self.settings.api_key_value
        if key is None:
            return True
        if api_key is not None and hmac.compare_digest(_as_bytes(api_key), key.encode()):
            return True
        if token is not None:
            known = self._tokens.get(_digest(token))
            return known is not None and known[0] > self.clock.now()
        return False

    def _forget_tokens(self, gone: Callable[[float], bool], at_most: int | None = None) -> None:
        """Drop the oldest tokens while `gone(expires)` holds: the oldest of all is the oldest
        of its user too, so each leaves the front of both."""
        while self._tokens and at_most != 0:
            digest, (expires, username) = next(iter(self._tokens.items()))
            if not gone(expires):
                return
            del self._tokens[digest]
            mine = self._user_tokens[username]
            mine.popleft()
            if not mine:
                del self._user_tokens[username]
            at_most = None if at_most is None else at_most - 1

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

    async def list_webhooks(self, limit: int = 200, offset: int = 0) -> tuple[list[Webhook], int]:
        """A page of webhooks, oldest first, and how many there are."""
        return await self.registry.page(limit, offset)

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

    # --- scenarios (SPEC 9.4) ------------------------------------------------------

    def scenario(self, *, with_secrets: bool = False) -> ScenarioDocument:
        """The running state as a scenario declares it; passwords only `with_secrets`."""
        return ScenarioDocument(
            server=exported_settings(self.settings),
            webhooks=[
                ScenarioWebhook(
                    name=w.name,
                    url=w.url,
                    events=list(w.events),
                    active=w.active,
                    basic_auth=None
                    if w.auth_username is None
                    else ScenarioBasicAuth(
                        username=w.auth_username,
                        password=w.auth_password if with_secrets else None,
                    ),
                    headers=dict(w.headers),
                    rate_limit=w.rate_limit,
                )
                for w in sorted(self.registry.webhooks.values(), key=lambda w: w.id)
            ],
            faults=[
                FaultSpec(
                    route=f.route,
                    status=f.status,
                    delay_ms=f.delay_ms,
                    retry_after=f.retry_after,
                    reset=f.reset,
                    times=f.remaining,
                )
                for f in self.faults.list()
            ],
        )

    def may_see_secrets(self, peer: str | None) -> bool:
        """Passwords go to a caller with the API key, or on loopback when there is none.

        Whoever may call the API may already point a webhook at a receiver of their
        own and read its password there (the URL can change, the password stays): this
        shows them nothing they could not get. A server without a key listens on
        loopback only; the peer check holds when a proxy forwards to it.
        """
        return self.settings.api_key is not None or (peer is not None and is_loopback(peer))

    async def apply_scenario(
        self, scenario: ScenarioApply, reached: Address | None, *, starting: bool = False
    ) -> ScenarioApplied:
        """Each webhook created, or updated to match, by name, in order; each fault added.

        Everything is checked before anything is written, so a refused scenario changes
        nothing: a webhook the API would refuse (422: headers that cannot be sent, a URL
        that is this server), or one the server as it stands cannot take (409: a name two
        of its webhooks share, settings it does not run with). Then one transaction per
        webhook, through the registry, as the routes write. A name given twice is one
        webhook, declared and then updated. `starting`: applied as the server starts, its
        settings already made from the scenario's (and the flags').
        """
        async with self._applying:
            invalid: dict[str, list[str]] = {}
            conflicts = {} if starting else self._settings_differ(scenario.server)
            becomes: dict[str, WebhookRecord] = {}
            """Each name as the webhooks before it in the scenario leave it."""
            for index, spec in enumerate(scenario.webhooks):
                where = f"webhooks.{index}"
                current = becomes.get(spec.name)
                if current is None:
                    named = self._named(spec.name)
                    if len(named) > 1:
                        ids = ", ".join(str(w.id) for w in named)
                        conflicts[f"{where}.name"] = [
                            f"{len(named)} webhooks are named {spec.name!r} (ids {ids}): remove"
                            " or rename all but one, so the scenario knows which to update"
                        ]
                    current = named[0] if len(named) == 1 else None
                try:
                    await refuse_own_address(spec.url, reached)
                    if current is None:
                        becomes[spec.name] = new_webhook(spec, 0, 0)
                    else:
                        becomes[spec.name] = patched(current, to_match(spec), 0)
                except FieldErrors as exc:
                    for field, messages in exc.errors.items():
                        invalid.setdefault(f"{where}.{field}", []).extend(messages)
            if invalid:
                raise FieldErrors({**invalid, **conflicts})
            if conflicts:
                raise Conflict("The scenario does not fit this server as it stands", conflicts)
            applied = ScenarioApplied()
            for spec in scenario.webhooks:
                await self._declare(spec, applied)
            applied.faults.extend(self.faults.add(fault) for fault in scenario.faults)
            return applied

    def _named(self, name: str) -> list[WebhookRecord]:
        return sorted(
            (w for w in self.registry.webhooks.values() if w.name == name), key=lambda w: w.id
        )

    async def _declare(self, spec: WebhookCreate, applied: ScenarioApplied) -> None:
        """The webhook named `spec.name` made what `spec` declares (the oldest, if a request
        made another of that name since the scenario was checked)."""
        named = self._named(spec.name)
        if not named:
            applied.created.append((await self.registry.create(spec)).public())
            return
        current = named[0]
        if declared(current, spec):
            applied.unchanged.append(await self.registry.public(current))
            return
        try:
            changed = await self.registry.update(current.id, to_match(spec))
        except NotFound:  # removed since it was read: the scenario makes it again
            applied.created.append((await self.registry.create(spec)).public())
        else:
            applied.updated.append(await self.registry.public(changed))

    def _settings_differ(self, server: dict[str, Any]) -> dict[str, list[str]]:
        """Settings cannot change while the server runs: each one given must be what it runs with."""
        errors: dict[str, list[str]] = {}
        known = Settings.model_fields
        given = {name: value for name, value in server.items() if name in known}
        for name in server.keys() - given.keys():
            errors[f"server.{name}"] = [unknown_name("setting", name, known)]
        for name in PATH_SETTINGS & given.keys():  # compared as given: no file is opened for it
            value = given.pop(name)
            if value != getattr(self.settings, name):
                errors[f"server.{name}"] = [_fixed(name, getattr(self.settings, name))]
        try:  # no environment read: the settings it runs with, and those given
            wanted = Settings.model_validate({**self.settings.model_dump(), **given})
        except ValidationError as exc:
            for loc, message in validation_messages(exc):
                errors[".".join(("server", *map(str, loc)))] = [message]
            return errors
        for name in given:
            runs_with = getattr(self.settings, name)
            if getattr(wanted, name) != runs_with:
                errors[f"server.{name}"] = [_fixed(name, runs_with)]
        return errors

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

    async def checked_health(self) -> Health:
        """`health()`, after trying a failing store again: it reads `ok` as soon as the store
        works and the writes it refused are written, not at the next retry (up to 5 s on)."""
        if self.db.failing is not None:
            await self.db.probe(within=STORE_PROBE_SECONDS)
        if self.db.failing is None and self.dispatcher.stalled:
            await self.dispatcher.unstalled(within=STORE_PROBE_SECONDS)
        return self.health()

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
            insecure_receivers=self.settings.insecure_receivers,
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
                    self._user_tokens.clear()
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


def _as_bytes(text: str) -> bytes:
    """Any text as bytes, lone surrogates too (they never equal a key or a token's)."""
    return text.encode("utf-8", "surrogatepass")


def _fixed(name: str, runs_with: Any) -> str:
    """Why a setting given to a running server is refused (never showing the API key)."""
    if name == "api_key":
        shown = "another key" if runs_with is not None else "none"
    else:
        shown = repr(runs_with)
    return (
        f"cannot change while the server runs (it runs with {shown}): start it with this"
        " setting instead"
    )


def _digest(token: str) -> bytes:
    """Tokens are kept and looked up by hash: a lookup leaks no timing about a real token."""
    return hashlib.sha256(_as_bytes(token)).digest()
