"""A typed async client of the mock QRM's HTTP API and live feed.

Used by the CLI, the TUI and the testing kit; it parses responses with the same
pydantic models the server serialises, so there is one definition of a webhook.
"""

from __future__ import annotations

import asyncio
import errno
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, TypeVar

import aiohttp
from pydantic import AliasChoices, BaseModel, Field, TypeAdapter, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from mock_qrm.contract.models import (
    FEED_TYPES,
    ApiCall,
    ApiError,
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
    UploadedReport,
    Webhook,
    check_url,
)

DEFAULT_SERVER = "http://127.0.0.1:8765"


class ClientSettings(BaseSettings):
    """Where the server is and its key, for every client (the CLI, the TUI, check-receiver).

    From flags, else `QRM_TUI_*` or `MOCK_QRM_*` variables, in that order. No
    server anywhere is `None`: the CLI then uses the default address, the TUI
    embeds a server of its own.
    """

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    server: str | None = Field(
        None, validation_alias=AliasChoices("server", "QRM_TUI_SERVER", "MOCK_QRM_SERVER")
    )
    api_key: str | None = Field(
        None, validation_alias=AliasChoices("api_key", "QRM_TUI_API_KEY", "MOCK_QRM_API_KEY")
    )

    @field_validator("server", "api_key")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("server")
    @classmethod
    def _server_url(cls, value: str | None) -> str | None:
        return None if value is None else check_url(value).rstrip("/")

    @property
    def url(self) -> str:
        return self.server or DEFAULT_SERVER

    @classmethod
    def resolve(cls, given: Mapping[str, str], environ: Mapping[str, str]) -> ClientSettings:
        """Flags (`given`: server, api_key) over the environment (`QRM_TUI_*`, then `MOCK_QRM_*`)."""
        names = {"QRM_TUI_SERVER", "MOCK_QRM_SERVER", "QRM_TUI_API_KEY", "MOCK_QRM_API_KEY"}
        from_env = {k: v for k, v in environ.items() if k in names and v}
        return cls.model_validate({**from_env, **given})


M = TypeVar("M")


def webhook_body(
    name: str,
    url: str,
    events: list[str],
    basic_auth: tuple[str, str] | None,
    active: bool,
    headers: Mapping[str, str] | None,
    rate_limit: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """`POST /api/v1/webhooks`'s body."""
    body: dict[str, Any] = {"name": name, "url": url, "events": events, "active": active}
    if basic_auth is not None:
        body["basicAuth"] = {"username": basic_auth[0], "password": basic_auth[1]}
    if headers:
        body["headers"] = dict(headers)
    if rate_limit is not None:
        body["rateLimit"] = dict(rate_limit)
    return body


def upload_body(overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """`POST /_mock/reports`'s body."""
    return {"overrides": dict(overrides)} if overrides else {}


class QrmApiError(Exception):
    """The server answered with an error in QRM's shape."""

    def __init__(self, status: int, error: ApiError, health: Health | None = None) -> None:
        super().__init__(f"{status} {error.error_code}: {error.message}")
        self.status = status
        self.error = error
        self.health = health
        """The body of a 503 from `/healthz`: the server is up but degraded."""

    @property
    def field_errors(self) -> dict[str, list[str]]:
        return self.error.errors or {}


class QrmUnavailable(Exception):
    """The server could not be reached or did not speak our API; `reason` says why."""

    def __init__(self, url: str, reason: str, *, reached: bool = False) -> None:
        super().__init__(f"{url} {reason}" if reached else f"cannot reach {url}: {reason}")
        self.url = url
        self.reason = reason


def _unreachable(url: str, exc: BaseException) -> QrmUnavailable:
    """A connection failure in words a person can act on."""
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return QrmUnavailable(url, "host name not found")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return QrmUnavailable(url, _os_reason(exc.os_error))
    if isinstance(exc, TimeoutError):
        return QrmUnavailable(url, "did not answer in time", reached=True)
    return QrmUnavailable(url, f"broke the connection ({type(exc).__name__})", reached=True)


def _os_reason(error: OSError) -> str:
    reasons = {
        errno.ECONNREFUSED: "connection refused",
        errno.ETIMEDOUT: "connection timed out",
        errno.EHOSTUNREACH: "host unreachable",
        errno.ENETUNREACH: "network unreachable",
        errno.ECONNRESET: "connection reset",
    }
    return reasons.get(error.errno or 0, error.strerror or str(error))


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

    @property
    def headers(self) -> dict[str, str]:
        return {"apiKey": self.api_key} if self.api_key else {}

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(headers=self.headers, timeout=self._timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        """One call; the decoded JSON body, `None` for 204. Raises QrmApiError or QrmUnavailable."""
        query = {k: str(v) for k, v in (params or {}).items() if v is not None}
        try:
            async with self._client().request(
                method, self.base_url + path, json=json_body, params=query
            ) as response:
                text = await response.text()
                if response.status >= 400:
                    raise _api_failure(response.status, text)
                if response.status == 204 or not text:
                    return None
                return json.loads(text)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _unreachable(self.base_url, exc) from exc
        except json.JSONDecodeError:
            raise QrmUnavailable(
                self.base_url, "is not a mock-qrm server (its answer was not JSON)", reached=True
            ) from None

    async def _get(self, model: Any, path: str, **params: Any) -> Any:
        return _parse(model, await self.request("GET", path, params=params))

    # --- server ----------------------------------------------------------------

    async def health(self) -> Health:
        """The server's health, degraded or not (a 503 from `/healthz` still carries it)."""
        try:
            result: Health = await self._get(Health, "/healthz")
        except QrmApiError as exc:
            if exc.status != 503 or exc.health is None:
                raise
            return exc.health
        return result

    async def clock(self) -> ClockState:
        return _data(ClockState, await self.request("GET", "/_mock/clock"))

    async def advance(self, seconds: float) -> ClockState:
        return _data(
            ClockState,
            await self.request("POST", "/_mock/clock/advance", json_body={"seconds": seconds}),
        )

    async def reset(self) -> None:
        await self.request("POST", "/_mock/reset")

    # --- faults on QRM's routes, and the calls receivers made ---------------------

    async def add_fault(self, route: str, **spec: Any) -> Fault:
        """`add_fault("GET /api/v1/reports/{id}", status=503, times=2)`; see FaultSpec."""
        body = {"route": route, **{_camel(k): v for k, v in spec.items() if v is not None}}
        return _data(Fault, await self.request("POST", "/_mock/faults", json_body=body))

    async def faults(self) -> list[Fault]:
        return _data(list[Fault], await self.request("GET", "/_mock/faults"))

    async def remove_fault(self, fault_id: int) -> None:
        await self.request("DELETE", f"/_mock/faults/{fault_id}")

    async def clear_faults(self) -> None:
        await self.request("DELETE", "/_mock/faults")

    async def api_calls(self) -> list[ApiCall]:
        return _data(list[ApiCall], await self.request("GET", "/_mock/api-calls"))

    # --- webhooks ----------------------------------------------------------------

    async def event_components(self) -> list[EventComponent]:
        return _data(list[EventComponent], await self.request("GET", "/api/v1/webhook-events"))

    async def webhooks(self) -> list[Webhook]:
        return _data(list[Webhook], await self.request("GET", "/api/v1/webhooks"))

    async def webhook(self, webhook_id: int) -> Webhook:
        return _data(Webhook, await self.request("GET", f"/api/v1/webhooks/{webhook_id}"))

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
        body = webhook_body(name, url, events, basic_auth, active, headers, rate_limit)
        return _data(Webhook, await self.request("POST", "/api/v1/webhooks", json_body=body))

    async def update_webhook(self, webhook_id: int, changes: Mapping[str, Any]) -> Webhook:
        """A partial update with API field names (`name`, `url`, `events`, `basicAuth`, `active`,
        `headers`, `rateLimit`)."""
        return _data(
            Webhook,
            await self.request("PATCH", f"/api/v1/webhooks/{webhook_id}", json_body=dict(changes)),
        )

    async def delete_webhook(self, webhook_id: int) -> None:
        await self.request("DELETE", f"/api/v1/webhooks/{webhook_id}")

    async def set_active(self, webhook_id: int, active: bool) -> Webhook:
        action = "activate" if active else "deactivate"
        return _data(Webhook, await self.request("POST", f"/api/v1/webhooks/{webhook_id}/{action}"))

    # --- reports -----------------------------------------------------------------

    async def upload_report(self, overrides: Mapping[str, Any] | None = None) -> UploadedReport:
        body = upload_body(overrides)
        return _data(UploadedReport, await self.request("POST", "/_mock/reports", json_body=body))

    async def emit_event(self, event_code: str, resource_id: int) -> EmittedEvent:
        body = {"eventCode": event_code, "resourceId": resource_id}
        return _data(EmittedEvent, await self.request("POST", "/_mock/events", json_body=body))

    async def report_rows(self, limit: int = 50, offset: int = 0) -> Page[ReportRow]:
        page: Page[ReportRow] = await self._get(
            Page[ReportRow], "/_mock/reports", limit=limit, offset=offset
        )
        return page

    async def report(self, report_id: int | str) -> dict[str, Any]:
        """QRM's report document, exactly as `GET /api/v1/reports/{id}` returns it."""
        body = await self.request("GET", f"/api/v1/reports/{report_id}")
        data: dict[str, Any] = body["data"]
        return data

    # --- deliveries ----------------------------------------------------------------

    async def deliveries(
        self,
        *,
        webhook_id: int | None = None,
        status: str | None = None,
        event_code: str | None = None,
        since: str | None = None,
        until: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> Page[Delivery]:
        page: Page[Delivery] = await self._get(
            Page[Delivery],
            "/api/v1/webhook-deliveries",
            webhook_id=webhook_id,
            status=status,
            event_code=event_code,
            since=since,
            until=until,
            limit=limit,
            offset=offset,
        )
        return page

    async def delivery(self, delivery_id: int) -> DeliveryDetail:
        return _data(
            DeliveryDetail, await self.request("GET", f"/api/v1/webhook-deliveries/{delivery_id}")
        )

    async def redeliver(self, delivery_id: int) -> Attempt:
        return _data(
            Attempt,
            await self.request("POST", f"/api/v1/webhook-deliveries/{delivery_id}/redeliver"),
        )

    async def redeliver_matching(self, **flt: Any) -> int:
        body = {_camel(k): v for k, v in flt.items() if v is not None}
        result: BulkRedeliverResult = _data(
            BulkRedeliverResult,
            await self.request("POST", "/api/v1/webhook-deliveries/redeliver", json_body=body),
        )
        return result.count

    async def feed(
        self, after_seq: int | None = None, boot_id: str | None = None
    ) -> AsyncIterator[FeedFrame]:
        """Frames of the live feed until the server closes it."""
        params = {
            k: str(v)
            for k, v in {"after_seq": after_seq, "boot_id": boot_id}.items()
            if v is not None
        }
        try:
            async with self._client().ws_connect(
                self.base_url + "/api/v1/webhook-feed",
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
                raise QrmApiError(
                    401, ApiError(error_code="Unauthenticated", message="Missing or wrong API key")
                ) from None
            raise QrmUnavailable(
                self.base_url, f"refused the feed: {exc.status} {exc.message}", reached=True
            ) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _unreachable(self.base_url, exc) from exc


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _api_failure(status: int, text: str) -> QrmApiError:
    if status == 503:
        try:
            health = Health.model_validate_json(text)
        except ValueError:
            pass
        else:
            reason = health.reason or "degraded"
            return QrmApiError(status, ApiError(error_code="Unavailable", message=reason), health)
    return QrmApiError(status, _api_error(status, text))


def _api_error(status: int, text: str) -> ApiError:
    try:
        return ApiError.model_validate_json(text)
    except ValueError:  # not our error body: a proxy, or not a mock-qrm server at all
        said = "" if text.lstrip().startswith("<") else " ".join(text.split())[:200]  # no HTML
        return ApiError(
            error_code="Generic",
            message=f"the server answered HTTP {status}{': ' + said if said else ''}"
            " (is it a mock-qrm server?)",
        )


def _parse(model: Any, body: Any) -> Any:
    if isinstance(model, type) and issubclass(model, BaseModel):
        return model.model_validate(body)
    return TypeAdapter(model).validate_python(body)


def _data(model: type[M] | Any, body: Any) -> M:
    result: M = _parse(model, body["data"])
    return result


# --- the live feed, followed for good ------------------------------------------------

BACKOFF: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 5.0)
"""Seconds between reconnection attempts; the last one repeats."""


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
    """`GET /api/v1/webhook-feed` as one endless stream of `FeedEvent`s.

    Each connection asks for what came after the last frame seen (`after_seq`,
    `boot_id`); the server replays it or sends `resync`. A connection that breaks
    yields `FeedLost` and is retried after the backoff, forever. The TUI, the
    kit's journal mirror and `mock-qrm deliveries --follow` / `wait` all follow
    the feed through this one loop.
    """

    def __init__(
        self,
        client: QrmClient,
        backoff: Sequence[float] = BACKOFF,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.client = client
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
            reason = f"{self.client.base_url} closed the feed"
            error: QrmUnavailable | None = None
            try:
                async for frame in self.client.feed(self.after_seq, self.boot_id):
                    if frame.type == "hello":
                        resumed = self.after_seq is not None
                        if not resumed:
                            self.after_seq = frame.seq
                        self.boot_id = frame.boot_id
                        failures = 0
                        yield FeedConnected(self.client.base_url, frame.boot_id or "", resumed)
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
