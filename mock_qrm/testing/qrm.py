"""`MockQrm`: a mock QRM server (or a handle on a running one) with test helpers.

One class serves every way of using it: the pytest fixtures, `with`, `async with`,
and `MockQrm.connect(url)` for a server started elsewhere (a `mock-qrm serve`
process, a container). The server and the client always live on the object's
own event loop in a background thread (see `_bridge`), so:

- every helper has two spellings: `name()` blocks, `await aname()` does not;
- use the blocking ones in synchronous code, the `a` ones in async code
  (a blocking call from inside a running loop raises, rather than freezing a
  receiver that the same loop serves).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from mock_qrm.app import (
    InProcess,
    Running,
    Scenario,
    Settings,
    create_app,
    parse_scenario,
    read_scenario,
    serve,
)
from mock_qrm.client.calls import upload_body, webhook_body
from mock_qrm.client.errors import QrmUnavailable
from mock_qrm.client.feed import FeedFollower
from mock_qrm.client.http import QrmClient
from mock_qrm.client.matching import DeliveryMatch, StatusSpec, parse_statuses, timeout_message
from mock_qrm.client.mirror import QUICK_BACKOFF, FeedMirror, fetch_journal
from mock_qrm.contract.errors import QrmApiError
from mock_qrm.contract.models import (
    ApiCall,
    Attempt,
    ClockState,
    Delivery,
    DeliveryDetail,
    EmittedEvent,
    Fault,
    RateLimit,
    ScenarioApplied,
    UploadedReport,
    Webhook,
    WebhookStats,
)
from mock_qrm.testing._bridge import Bridged, blocking, on_loop

WebhookRef = Webhook | int
"""A webhook, or its id."""
DeliveryRef = Delivery | int
"""A delivery (`Delivery` or `DeliveryDetail`), or its id."""

DEFAULT_WAIT_TIMEOUT = 5.0
DEFAULT_EVENTS = ("report.created",)
_START_TIMEOUT = 10.0

_UNSET: Any = object()


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


def _rate_limit(limit: str | RateLimit) -> dict[str, Any]:
    return (RateLimit.parse(limit) if isinstance(limit, str) else limit).model_dump()


def _webhook_id(webhook: WebhookRef) -> int:
    return webhook if isinstance(webhook, int) else webhook.id


def _delivery_id(delivery: DeliveryRef) -> int:
    return delivery if isinstance(delivery, int) else delivery.id


def _match(
    status: StatusSpec,
    webhook: WebhookRef | None,
    event_code: str | None,
    resource_id: int | None,
    message_id: str | None,
    delivery_id: int | None = None,
    attempts: int | None = None,
) -> DeliveryMatch:
    """The helpers' filter arguments as one `DeliveryMatch`."""
    return DeliveryMatch(
        status=parse_statuses(status),
        webhook_id=None if webhook is None else _webhook_id(webhook),
        event_code=event_code,
        resource_id=resource_id,
        message_id=message_id,
        delivery_id=delivery_id,
        attempts=attempts,
    )


class MockQrm(Bridged):
    """A mock QRM for tests: its URLs and key to hand to the code under test, and helpers.

    `MockQrm(**settings)` runs its own server (any `Settings` field, e.g.
    `retries=1`, `timeout=0.5`, `ca_file=...`; defaults: loopback, a free port, a fresh
    `:memory:` database, a manual clock, 5 seeded reports, a random API key).
    `MockQrm(config="scenario.toml")` starts it in the state a scenario file declares
    (SPEC 9.4), as `mock-qrm serve --config` does; settings given here beat the file's.
    `MockQrm.connect(url, api_key=...)` drives a server that is already running.
    Either way, start it with `with`, `async with`, `start()` or `await astart()`.

    `wait_timeout` bounds every `wait_for_*` call that gives no `timeout`.
    """

    def __init__(
        self,
        *,
        wait_timeout: float = DEFAULT_WAIT_TIMEOUT,
        config: str | Path | None = None,
        **settings: Any,
    ) -> None:
        scenario = None if config is None else read_scenario(config, os.environ)
        embedded = Settings.isolated(**{**(scenario.server if scenario else {}), **settings})
        self._setup(embedded, None, embedded.api_key_value, wait_timeout, scenario)

    @classmethod
    def connect(
        cls,
        base_url: str,
        *,
        api_key: str | None = None,
        wait_timeout: float = DEFAULT_WAIT_TIMEOUT,
    ) -> MockQrm:
        """A handle on a server started elsewhere (`mock-qrm serve --manual-clock ...`).

        `base_url` is the server's root (`http://127.0.0.1:8765`); a trailing
        `/api/v1` is accepted too. Starting and closing it opens and closes only
        the client and the feed; the server keeps running.
        """
        qrm = cls.__new__(cls)
        remote = base_url.rstrip("/").removesuffix("/api/v1")
        qrm._setup(None, remote, api_key, wait_timeout)
        return qrm

    def _setup(
        self,
        settings: Settings | None,
        remote: str | None,
        api_key: str | None,
        wait_timeout: float,
        scenario: Scenario | None = None,
    ) -> None:
        self.settings = settings
        """The embedded server's settings; `None` for a server joined with `connect`."""
        self.wait_timeout = wait_timeout
        self._remote = remote
        self._api_key = api_key
        self._base_url: str | None = None
        self._running: Running | None = None
        self._port: InProcess | None = None
        """The embedded server's own port: the kit's commonest calls skip the HTTP trip."""
        self._client: QrmClient | None = None
        self._mirror: FeedMirror | None = None
        self._follower: asyncio.Task[None] | None = None
        self._scenario = scenario
        """The scenario the embedded server starts in (and is renewed to)."""

    def __repr__(self) -> str:
        where = self._base_url or self._remote or "not started"
        mode = "connected" if self.settings is None else "embedded"
        return f"<MockQrm {where} ({mode})>"

    # --- what the code under test needs -----------------------------------------

    @property
    def base_url(self) -> str:
        """The server's root, e.g. `http://127.0.0.1:54321` (`/healthz`, `/_mock/...`)."""
        if self._base_url is None:
            raise RuntimeError("MockQrm is not running: start it first")
        return self._base_url

    @property
    def api_url(self) -> str:
        """The QRM API base a receiver calls back: `base_url + "/api/v1"`.

        A webhook's `payload.path` (`/reports/12301`) is relative to it.
        """
        return self.base_url + "/api/v1"

    @property
    def api_key(self) -> str | None:
        """The key the API wants in the `apiKey` header; `None` when it is open."""
        return self._api_key

    # --- life cycle ----------------------------------------------------------------

    async def _open(self) -> None:
        if self.settings is not None:
            app = create_app(self.settings, scenario=self._scenario)
            self._running = await serve(app, self.settings.host, self.settings.port)
            self._port = InProcess(self._running)
            self._base_url = self._running.url
        else:
            assert self._remote is not None
            self._base_url = self._remote
        self._client = QrmClient(self._base_url, self._api_key)
        if self._port is None:
            await self._client.health()  # "nothing listens there" now, not at the first wait
            follower = None
        else:
            follower = FeedFollower(self._port.feed, self._base_url, QUICK_BACKOFF)
        self._mirror = FeedMirror(self._client, follower)
        self._follower = asyncio.create_task(self._mirror.follow(), name="mock-qrm-kit-feed")
        try:
            await asyncio.wait_for(self._mirror.ready.wait(), _START_TIMEOUT)
        except TimeoutError:
            raise QrmUnavailable(
                self._base_url, f"opened no live feed within {_START_TIMEOUT:g} s", reached=True
            ) from None
        if self._mirror.error is not None:
            raise self._mirror.error

    async def _shut(self) -> None:
        if self._follower is not None:
            self._follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follower
            self._follower = None
        if self._client is not None:
            await self._client.close()
            self._client = None
        self._port = None
        if self._running is not None:
            await self._running.close()
            self._running = None

    def _renew_soon(self) -> concurrent.futures.Future[None]:
        """Start making an embedded server as good as new for another test; done in under 1 ms.

        Its state goes back to how it started (`QrmService.reset(fresh=True)`:
        webhooks, journal, uploaded reports, faults, API calls, tokens, the
        manual clock), and the feed mirror with it; the port, key, thread and
        seeded reports stay. The pytest plugin's pool calls it as a test ends,
        so nothing the test left running outlives it, and waits for it before the next.
        """
        loop = self._kit_loop()  # first: a closed MockQrm raises before a coroutine exists
        return asyncio.run_coroutine_threadsafe(self._renewed(), loop)

    async def _renewed(self) -> None:
        if self._port is None:
            raise RuntimeError("only a MockQrm that runs its own server can be renewed")
        mirror = self._feed
        if mirror.error is not None:
            raise mirror.error
        mirror.forget_through(await self._port.reset(fresh=True))
        if self._scenario is not None:  # as it started: in the scenario's state
            await self._port.apply_scenario(self._scenario, with_server=False)

    @property
    def _api(self) -> QrmClient:
        if self._client is None:
            raise RuntimeError("MockQrm is not running: start it first")
        return self._client

    @property
    def _feed(self) -> FeedMirror:
        if self._mirror is None:
            raise RuntimeError("MockQrm is not running: start it first")
        return self._mirror

    # --- scenarios -------------------------------------------------------------------

    @on_loop
    async def aload_config(self, scenario: str | Path) -> ScenarioApplied:
        """Apply a scenario file (SPEC 9.4) to the running server, as `serve --config` does at
        start: each webhook created, or updated to match, by name; each fault added.

        `scenario` is a path (a `Path`, or a `str` of one line) or the TOML itself (a `str`
        of several lines). It is checked whole first: any problem raises `ScenarioError`
        listing every one as `FILE:LINE: field: message`, and nothing changes. Its
        `[server]` settings must be those the server runs with (settings cannot change
        while it runs: start one with `MockQrm(config=...)` instead).
        """
        if isinstance(scenario, str) and "\n" in scenario:
            parsed = parse_scenario(scenario, "<scenario>", os.environ, folder=Path.cwd())
        else:
            parsed = read_scenario(scenario, os.environ)
        if self._port is not None:
            return await self._port.apply_scenario(parsed)
        body = parsed.body().model_dump(mode="json", by_alias=True)
        try:
            return await self._api.apply_scenario(body)
        except QrmApiError as exc:
            if exc.status not in (409, 422) or not exc.errors:
                raise
            raise parsed.refused(exc.errors) from None

    load_config = blocking(aload_config)

    # --- webhooks ------------------------------------------------------------------

    @on_loop
    async def acreate_webhook(
        self,
        url: str,
        *,
        events: Iterable[str] = DEFAULT_EVENTS,
        name: str = "Receiver under test",
        basic_auth: tuple[str, str] | None = None,
        active: bool = True,
        headers: Mapping[str, str] | None = None,
        rate_limit: str | RateLimit | None = None,
    ) -> Webhook:
        """Register a webhook (QRM's "Configuration > Webhooks"); `basic_auth` is (user, password).

        `headers` go with every attempt; `rate_limit` is `"2/minute"` or `"100/hour"`.
        """
        limit = None if rate_limit is None else _rate_limit(rate_limit)
        if self._port is None:
            return await self._api.create_webhook(
                name, url, list(events), basic_auth, active, headers=headers, rate_limit=limit
            )
        body = webhook_body(name, url, list(events), basic_auth, active, headers, limit)
        return await self._port.create_webhook(body)

    create_webhook = blocking(acreate_webhook)

    @on_loop
    async def aupdate_webhook(
        self,
        webhook: WebhookRef,
        *,
        name: str | None = None,
        url: str | None = None,
        events: Iterable[str] | None = None,
        basic_auth: tuple[str, str] | None = _UNSET,
        active: bool | None = None,
        headers: Mapping[str, str] | None = None,
        rate_limit: str | RateLimit | None = _UNSET,
    ) -> Webhook:
        """Change some fields; `basic_auth=None` turns basic auth off, `active=False` cancels retries.

        `headers` replaces every custom header (`{}` removes them); `rate_limit=None` removes the limit.
        """
        changes: dict[str, Any] = {}
        if name is not None:
            changes["name"] = name
        if url is not None:
            changes["url"] = url
        if events is not None:
            changes["events"] = list(events)
        if basic_auth is not _UNSET:
            changes["basicAuth"] = (
                None
                if basic_auth is None
                else {"username": basic_auth[0], "password": basic_auth[1]}
            )
        if active is not None:
            changes["active"] = active
        if headers is not None:
            changes["headers"] = dict(headers)
        if rate_limit is not _UNSET:
            changes["rateLimit"] = None if rate_limit is None else _rate_limit(rate_limit)
        return await self._api.update_webhook(_webhook_id(webhook), changes)

    update_webhook = blocking(aupdate_webhook)

    @on_loop
    async def adelete_webhook(self, webhook: WebhookRef) -> None:
        """Remove a webhook; its delivery history stays in the journal."""
        await self._api.delete_webhook(_webhook_id(webhook))

    delete_webhook = blocking(adelete_webhook)

    @on_loop
    async def awebhooks(self) -> list[Webhook]:
        """Every webhook, as `GET /api/v1/webhooks` lists them."""
        return await self._api.webhooks()

    webhooks = blocking(awebhooks)

    @on_loop
    async def astats(
        self,
        webhook: WebhookRef,
        since: datetime | str | None = None,
        *,
        per_minute: int = 0,
    ) -> WebhookStats:
        """The webhook's figures from the journal (`GET /api/v1/webhooks/{id}/stats`).

        `attempts` (ended, by status in `by_status`), `success_rate` (answered 200 over
        succeeded or failed), `latency_ms.p50/p95/p99`, and the deliveries `delivered`
        and `failed`. `since` (a datetime, naive is UTC, or ISO 8601 text) counts
        attempts started and deliveries created from then on; the server's clock is the
        manual one, so `qrm.clock().now` is a good `since`. A removed webhook answers too.
        """
        return await self._api.stats(_webhook_id(webhook), since, per_minute)

    stats = blocking(astats)

    # --- reports and events ------------------------------------------------------------

    @on_loop
    async def aupload_report(self, overrides: Mapping[str, Any] | None = None) -> UploadedReport:
        """An inspector uploads a report: `report.created` goes out now.

        `overrides` sets `inspectionGeneral` fields (`{"caseNumber": "C-1"}`).
        `report.file_ready` follows after the `file_ready_delay` setting, which on
        the manual clock means once `advance` has moved past it.
        """
        if self._port is None:
            return await self._api.upload_report(overrides)
        return await self._port.upload_report(upload_body(overrides))

    upload_report = blocking(aupload_report)

    @on_loop
    async def atrigger(self, event_code: str, resource_id: int) -> EmittedEvent:
        """Emit any catalog event for an existing report (`report.file_ready`, ...)."""
        return await self._api.emit_event(event_code, resource_id)

    trigger = blocking(atrigger)

    @on_loop
    async def areport(self, report_id: int | str) -> dict[str, Any]:
        """The report's `data`, exactly as `GET /api/v1/reports/{report_id}` returns it."""
        return await self._api.report(report_id)

    report = blocking(areport)

    # --- the clock -----------------------------------------------------------------------

    @on_loop
    async def aadvance(self, seconds: float) -> ClockState:
        """Move the manual clock; returns once every attempt now due has been started.

        It does not wait for those attempts to end: follow with `wait_for_delivery`.
        """
        return await self._api.advance(seconds)

    advance = blocking(aadvance)

    @on_loop
    async def aclock(self) -> ClockState:
        """The server's time, whether it is manual, and its time scale."""
        return await self._api.clock()

    clock = blocking(aclock)

    @on_loop
    async def aadd_fault(
        self,
        route: str = "GET /api/v1/reports/{id}",
        *,
        status: int | None = None,
        delay_ms: int | None = None,
        retry_after: int | None = None,
        reset: bool = False,
        times: int | None = None,
    ) -> Fault:
        """Make one of QRM's routes fail for the receiver's call back (SPEC 8.4).

        `add_fault(status=503, times=1)`: the next `GET /api/v1/reports/{id}`
        answers 503 in QRM's error shape. `delay_ms` waits first (alone: the
        normal answer, late), `retry_after` adds the header, `reset` drops the
        connection; `times=None` applies until `clear_faults()` or `reset()`.
        """
        return await self._api.add_fault(
            route,
            status=status,
            delay_ms=delay_ms,
            retry_after=retry_after,
            reset=reset or None,
            times=times,
        )

    add_fault = blocking(aadd_fault)

    @on_loop
    async def aclear_faults(self) -> None:
        await self._api.clear_faults()

    clear_faults = blocking(aclear_faults)

    @on_loop
    async def aapi_calls(self) -> list[ApiCall]:
        """The calls made to QRM's routes, oldest first: did the receiver call back?"""
        return await self._api.api_calls()

    api_calls = blocking(aapi_calls)

    @on_loop
    async def areset(self) -> None:
        """Back to the seeded state: no webhooks, an empty journal.

        Returns once the feed has caught up with the reset, so a wait that
        follows cannot match a delivery from before it.
        """
        mirror = self._feed
        if self._port is not None:  # the wipe's resync frame is known: forget exactly through it
            mirror.forget_through(await self._port.reset())
            return
        before = mirror.resyncs
        await self._api.reset()
        async with mirror.changed:
            await asyncio.wait_for(
                mirror.changed.wait_for(lambda: mirror.resyncs > before or mirror.error),
                _START_TIMEOUT,
            )

    reset = blocking(areset)

    # --- the journal ------------------------------------------------------------------------

    @on_loop
    async def adeliveries(
        self,
        *,
        webhook: WebhookRef | None = None,
        status: StatusSpec = None,
        event_code: str | None = None,
        resource_id: int | None = None,
        message_id: str | None = None,
    ) -> list[Delivery]:
        """The journal's deliveries, oldest first, optionally filtered."""
        expected = _match(status, webhook, event_code, resource_id, message_id)
        rows = await fetch_journal(self._api)
        return sorted((d for d in rows if expected.matches(d)), key=lambda d: d.id)

    deliveries = blocking(adeliveries)

    @on_loop
    async def adelivery(self, delivery: DeliveryRef) -> DeliveryDetail:
        """One delivery with the message as sent and every attempt."""
        return await self._api.delivery(_delivery_id(delivery))

    delivery = blocking(adelivery)

    @on_loop
    async def aattempts(self, delivery: DeliveryRef) -> list[Attempt]:
        """A delivery's attempts, first first: request, response or error class, outcome."""
        return (await self._api.delivery(_delivery_id(delivery))).attempts

    attempts = blocking(aattempts)

    @on_loop
    async def aredeliver(self, delivery: DeliveryRef) -> Attempt:
        """One manual attempt with the same messageId; returns it once it has ended."""
        return await self._api.redeliver(_delivery_id(delivery))

    redeliver = blocking(aredeliver)

    @on_loop
    async def await_for_delivery(
        self,
        *,
        status: StatusSpec = "delivered",
        webhook: WebhookRef | None = None,
        event_code: str | None = None,
        resource_id: int | None = None,
        message_id: str | None = None,
        delivery_id: int | None = None,
        attempts: int | None = None,
        timeout: float | None = None,  # noqa: ASYNC109  (the blocking twin shares this signature)
    ) -> DeliveryDetail:
        """The oldest delivery that matches, with its attempts, as soon as there is one.

        Waits on the live feed, so it returns the moment the server reports the
        state. `status` is one state, several, or `None` for any (default
        `delivered`); `attempts` is the number of automatic attempts made. On
        timeout (`timeout`, default `wait_timeout`) it raises `DeliveryWaitTimeout`,
        an `AssertionError` whose message lists what the journal holds instead.
        """
        [found] = await self._wait(
            1,
            status,
            webhook,
            event_code,
            resource_id,
            message_id,
            delivery_id,
            attempts,
            timeout,
        )
        return found

    wait_for_delivery = blocking(await_for_delivery)

    @on_loop
    async def await_for_deliveries(
        self,
        count: int,
        *,
        status: StatusSpec = "delivered",
        webhook: WebhookRef | None = None,
        event_code: str | None = None,
        resource_id: int | None = None,
        message_id: str | None = None,
        attempts: int | None = None,
        timeout: float | None = None,  # noqa: ASYNC109  (the blocking twin shares this signature)
    ) -> list[DeliveryDetail]:
        """The `count` oldest matching deliveries, once there are that many (see `wait_for_delivery`)."""
        return await self._wait(
            count, status, webhook, event_code, resource_id, message_id, None, attempts, timeout
        )

    wait_for_deliveries = blocking(await_for_deliveries)

    async def _wait(
        self,
        count: int,
        status: StatusSpec,
        webhook: WebhookRef | None,
        event_code: str | None,
        resource_id: int | None,
        message_id: str | None,
        delivery_id: int | None,
        attempts: int | None,
        within: float | None,
    ) -> list[DeliveryDetail]:
        __tracebackhide__ = True
        if count < 1:
            raise ValueError("count must be at least 1")
        expected = _match(
            status, webhook, event_code, resource_id, message_id, delivery_id, attempts
        )
        limit = self.wait_timeout if within is None else within
        mirror = self._feed
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        while True:
            try:
                found = await mirror.wait(expected, count, max(0.0, deadline - loop.time()))
            except TimeoutError:
                raise await self._timed_out(expected, count, limit) from None
            # Frames are published once committed: a read after one shows at least its state.
            details: list[DeliveryDetail] = []
            gone: list[Delivery] = []
            for seen in found:
                try:
                    details.append(await self._detail(seen.id))
                except QrmApiError as exc:
                    if exc.status != 404:
                        raise
                    gone.append(seen)
            if not gone:
                return details
            mirror.drop(gone)  # wiped by a reset the mirror had not caught up with: wait on

    async def _detail(self, delivery_id: int) -> DeliveryDetail:
        """`GET /api/v1/webhook-deliveries/{id}`; from an embedded server, without the HTTP trip."""
        if self._port is None:
            return await self._api.delivery(delivery_id)
        return await self._port.delivery(delivery_id)

    async def _timed_out(
        self, expected: DeliveryMatch, count: int, waited: float
    ) -> DeliveryWaitTimeout:
        mirror = self._feed
        manual_now: datetime | None = None
        try:  # the journal as the server has it now; the mirror if the server is gone
            journal = await fetch_journal(self._api)
            clock = await self._api.clock()
            manual_now = clock.now if clock.manual else None
        except Exception:
            journal = list(mirror.deliveries.values())
        message = timeout_message(
            expected, count, waited, mirror.matching(expected), journal, manual_now=manual_now
        )
        return DeliveryWaitTimeout(message, expected, journal)


MockQrmFactory = Callable[..., MockQrm]
"""The type of the `mock_qrm_factory` fixture: settings in, a started `MockQrm` out."""


__all__ = [
    "DEFAULT_WAIT_TIMEOUT",
    "DeliveryRef",
    "DeliveryWaitTimeout",
    "MockQrm",
    "MockQrmFactory",
    "WebhookRef",
]
