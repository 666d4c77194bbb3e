"""The async client of the mock QRM's HTTP API and live feed, over aiohttp.

Used by the TUI, the testing kit, `mock-qrm deliveries --follow`, `wait` and
`check-receiver`. It sends the calls of `mock_qrm.client.calls` and parses the
answers with the same pydantic models the server serialises, so there is one
definition of a webhook.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Mapping
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self, TypeVar

import aiohttp
from pydantic import BaseModel, TypeAdapter

from mock_qrm.client import calls
from mock_qrm.client.calls import Call
from mock_qrm.client.errors import NOT_JSON, QrmUnavailable, os_reason
from mock_qrm.client.settings import DEFAULT_SERVER
from mock_qrm.contract.errors import QrmApiError
from mock_qrm.contract.models import (
    FEED_TYPES,
    ApiCall,
    Attempt,
    BulkRedeliverResult,
    ClockState,
    Delivery,
    DeliveryDetail,
    EmittedEvent,
    EventComponent,
    Fault,
    FeedFrame,
    Health,
    Page,
    ReportRow,
    ScenarioApplied,
    ScenarioDocument,
    UploadedReport,
    Webhook,
    WebhookStats,
)
from mock_qrm.contract.timefmt import iso_z

M = TypeVar("M")


def _unreachable(url: str, exc: BaseException) -> QrmUnavailable:
    """A connection failure in words a person can act on."""
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return QrmUnavailable(url, "host name not found")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return QrmUnavailable(url, os_reason(exc.os_error))
    if isinstance(exc, TimeoutError):
        return QrmUnavailable(url, "did not answer in time", reached=True)
    return QrmUnavailable(url, f"broke the connection ({type(exc).__name__})", reached=True)


class QrmClient:
    def __init__(
        self, base_url: str = DEFAULT_SERVER, api_key: str | None = None, timeout: float = 10.0
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers=calls.auth_headers(self.api_key), timeout=self._timeout
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def send(self, call: Call) -> Any:
        """One call; the decoded JSON answer, `None` for 204. Raises QrmApiError or QrmUnavailable."""
        try:
            async with self._client().request(
                call.method,
                self.base_url + call.path,
                params=call.query,
                json=call.body,
            ) as response:
                text = await response.text()
                if response.status >= 400:
                    raise calls.refusal(response.status, text)
                if response.status == 204 or not text:
                    return None
                return json.loads(text)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _unreachable(self.base_url, exc) from exc
        except ValueError:  # not JSON, or a number too long for Python's int parser
            raise QrmUnavailable(self.base_url, NOT_JSON, reached=True) from None

    async def _data(self, model: type[M] | Any, call: Call) -> M:
        """The answer's `data`, as `model`."""
        result: M = _parse(model, (await self.send(call))["data"])
        return result

    # --- server ----------------------------------------------------------------

    async def health(self) -> Health:
        """The server's health, degraded or not (a 503 from `/healthz` still carries it)."""
        try:
            body = await self.send(calls.health())
        except QrmApiError as exc:
            if exc.status != 503 or not isinstance(exc.body, dict) or "status" not in exc.body:
                raise
            body = exc.body
        return Health.model_validate(body)

    async def clock(self) -> ClockState:
        return await self._data(ClockState, calls.clock())

    async def advance(self, seconds: float) -> ClockState:
        return await self._data(ClockState, calls.advance(seconds))

    async def reset(self) -> None:
        await self.send(calls.reset())

    # --- scenarios ---------------------------------------------------------------

    async def scenario(self, *, with_secrets: bool = False) -> ScenarioDocument:
        return await self._data(ScenarioDocument, calls.scenario(with_secrets))

    async def apply_scenario(self, body: Mapping[str, Any]) -> ScenarioApplied:
        """`POST /_mock/config`; a refusal is a 422 `QrmApiError` keyed `webhooks.0.url`, ..."""
        return await self._data(ScenarioApplied, calls.apply_scenario(body))

    # --- faults on QRM's routes, and the calls receivers made ---------------------

    async def add_fault(self, route: str, **spec: Any) -> Fault:
        """`add_fault("GET /api/v1/reports/{id}", status=503, times=2)`; see FaultSpec."""
        return await self._data(Fault, calls.add_fault(route, **spec))

    async def faults(self) -> list[Fault]:
        return await self._data(list[Fault], calls.faults())

    async def remove_fault(self, fault_id: int) -> None:
        await self.send(calls.remove_fault(fault_id))

    async def clear_faults(self) -> None:
        await self.send(calls.clear_faults())

    async def api_calls(self) -> list[ApiCall]:
        return await self._data(list[ApiCall], calls.api_calls())

    # --- webhooks ----------------------------------------------------------------

    async def event_components(self) -> list[EventComponent]:
        return await self._data(list[EventComponent], calls.event_components())

    async def webhooks(self) -> list[Webhook]:
        return await self._data(list[Webhook], calls.webhooks())

    async def webhook(self, webhook_id: int) -> Webhook:
        return await self._data(Webhook, calls.webhook(webhook_id))

    async def create_webhook(
        self,
        name: str,
        url: str,
        events: list[str],
        basic_auth: tuple[str, str] | None = None,
        active: bool = True,
        *,
        headers: Mapping[str, str] | None = None,
        rate_limit: Mapping[str, Any] | None = None,
    ) -> Webhook:
        """`rate_limit` is the API's object: `{"limit": 2, "period": "minute"}`."""
        body = calls.webhook_body(name, url, events, basic_auth, active, headers, rate_limit)
        return await self._data(Webhook, calls.create_webhook(body))

    async def update_webhook(self, webhook_id: int, changes: Mapping[str, Any]) -> Webhook:
        """A partial update with API field names (`name`, `url`, `events`, `basicAuth`, `active`,
        `headers`, `rateLimit`)."""
        return await self._data(Webhook, calls.update_webhook(webhook_id, changes))

    async def delete_webhook(self, webhook_id: int) -> None:
        await self.send(calls.delete_webhook(webhook_id))

    async def set_active(self, webhook_id: int, active: bool) -> Webhook:
        return await self._data(Webhook, calls.set_active(webhook_id, active))

    async def stats(
        self, webhook_id: int, since: datetime | str | None = None, per_minute: int = 0
    ) -> WebhookStats:
        """The webhook's figures from the journal (see `WebhookStats`); a removed one's too.

        `since` (a datetime, naive is UTC, or ISO 8601 text) counts attempts started and
        deliveries created from then on; `per_minute` adds the last N minutes one by one.
        """
        when = since
        if isinstance(when, datetime):
            when = iso_z(when if when.tzinfo else when.replace(tzinfo=UTC))
        return await self._data(WebhookStats, calls.webhook_stats(webhook_id, when, per_minute))

    # --- reports -----------------------------------------------------------------

    async def upload_report(self, overrides: Mapping[str, Any] | None = None) -> UploadedReport:
        return await self._data(UploadedReport, calls.upload_report(overrides))

    async def emit_event(self, event_code: str, resource_id: int) -> EmittedEvent:
        return await self._data(EmittedEvent, calls.emit_event(event_code, resource_id))

    async def report_rows(self, limit: int = 50, offset: int = 0) -> Page[ReportRow]:
        page: Page[ReportRow] = _parse(
            Page[ReportRow], await self.send(calls.report_rows(limit, offset))
        )
        return page

    async def report(self, report_id: int | str) -> dict[str, Any]:
        """The report's `data`, as `GET /api/v1/reports/{id}` returns it inside its envelope."""
        data: dict[str, Any] = (await self.send(calls.report(report_id)))["data"]
        return data

    # --- deliveries ----------------------------------------------------------------

    async def deliveries(self, **filters: Any) -> Page[Delivery]:
        """A page of the journal, newest first: the filters and paging of `calls.deliveries`."""
        page: Page[Delivery] = _parse(Page[Delivery], await self.send(calls.deliveries(**filters)))
        return page

    async def delivery(self, delivery_id: int) -> DeliveryDetail:
        return await self._data(DeliveryDetail, calls.delivery(delivery_id))

    async def redeliver(self, delivery_id: int) -> Attempt:
        return await self._data(Attempt, calls.redeliver(delivery_id))

    async def redeliver_matching(self, **filters: Any) -> int:
        result: BulkRedeliverResult = await self._data(
            BulkRedeliverResult, calls.redeliver_matching(**filters)
        )
        return result.count

    async def feed(
        self, after_seq: int | None = None, boot_id: str | None = None
    ) -> AsyncGenerator[FeedFrame, None]:
        """Frames of the live feed until the server closes it (see `FeedFollower`)."""
        params = {
            k: str(v)
            for k, v in {"after_seq": after_seq, "boot_id": boot_id}.items()
            if v is not None
        }
        try:
            async with self._client().ws_connect(
                self.base_url + calls.FEED_PATH,
                params=params,
                heartbeat=30,
                timeout=aiohttp.ClientWSTimeout(ws_close=5),
            ) as ws:
                async for message in ws:
                    if message.type is aiohttp.WSMsgType.TEXT:
                        frame = FeedFrame.model_validate_json(message.data)
                        if frame.type in FEED_TYPES:  # a newer server's frames are skipped
                            yield frame
                    elif message.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                        break
        except aiohttp.WSServerHandshakeError as exc:
            if exc.status == 401:
                raise QrmApiError(401, "Unauthenticated", "Missing or wrong API key") from None
            raise QrmUnavailable(
                self.base_url, f"refused the feed: {exc.status} {exc.message}", reached=True
            ) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _unreachable(self.base_url, exc) from exc


def _parse(model: Any, body: Any) -> Any:
    if isinstance(model, type) and issubclass(model, BaseModel):
        return model.model_validate(body)
    return TypeAdapter(model).validate_python(body)
