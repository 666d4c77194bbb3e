"""The server's one face: all that code outside `mock_qrm.server` may use of it.

- `create_app(settings)` wires the server; `serve(app, host, port)` runs it on a socket;
  `Settings` (and `Settings.isolated` for a throw-away server) configures it.
- `read_scenario(path, environ)` reads a scenario file (SPEC 9.4) whole, or raises a
  `ScenarioError` listing every problem as `FILE:LINE: field: message`;
  `create_app(settings, scenario=...)` applies it as the server starts.
- `InProcess(running)` is its port for code in the same process, the testing kit: the
  calls the kit makes most (create a webhook, upload a report, read a delivery, reset,
  the feed), without the HTTP trip but validated and refused exactly as over HTTP, by
  the same functions the routes use, with the same errors a client gets (`QrmApiError`).

The CLI, the TUI and the kit import this module, the contract and the client, and
nothing else of the server (a test of the import graph holds them to it).
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web

from mock_qrm.contract.errors import Conflict, FieldErrors, QrmApiError
from mock_qrm.contract.models import (
    DeliveryDetail,
    FeedFrame,
    ScenarioApplied,
    UploadedReport,
    Webhook,
)
from mock_qrm.server.api import deliveries, faults, health, mock, reports, scenarios, webhooks
from mock_qrm.server.api.auth import auth_middleware
from mock_qrm.server.api.context import SERVICE, api
from mock_qrm.server.api.errors import error_middleware, failure, loop_guard_middleware
from mock_qrm.server.api.faults import apply_faults, record_calls
from mock_qrm.server.delivery.clock import Clock
from mock_qrm.server.scenario import Scenario, ScenarioError, parse_scenario, read_scenario
from mock_qrm.server.service import QrmService
from mock_qrm.server.settings import MEMORY, Settings, default_db_path
from mock_qrm.serving import (
    Running,
    ServeError,
    is_loopback,
    listen,
    serve,
    settle_heap,
    stop_on_signals,
)

__all__ = [
    "MAX_BODY",
    "MEMORY",
    "InProcess",
    "Running",
    "Scenario",
    "ScenarioError",
    "ServeError",
    "Settings",
    "applied_scenario",
    "create_app",
    "default_db_path",
    "is_loopback",
    "listen",
    "parse_scenario",
    "read_scenario",
    "serve",
    "settle_heap",
    "stop_on_signals",
]

_ROUTES = (deliveries, faults, health, mock, reports, scenarios, webhooks)
"""The handler modules: each registers its routes on `api` when imported."""

MAX_BODY = 1024 * 1024

T = TypeVar("T")


_APPLIED = web.AppKey("scenario_applied", ScenarioApplied)


def create_app(
    settings: Settings, clock: Clock | None = None, scenario: Scenario | None = None
) -> web.Application:
    """The mock QRM server; the service opens on start-up and closes on clean-up.

    With a `scenario`, its webhooks and faults are applied once the service is open,
    before the server listens: no client ever sees it without them. Its settings are
    the caller's to put in `settings` (under the flags). A scenario the database's state
    refuses (a name two webhooks share) fails the start with a `ScenarioError`.
    """
    app = web.Application(
        middlewares=[
            record_calls,
            error_middleware,
            loop_guard_middleware,
            auth_middleware,
            apply_faults,
        ],
        client_max_size=MAX_BODY,
        # Bodies stay as sent: routing decodes them, and refuses other codings in QRM's shape.
        handler_args={"auto_decompress": False},
    )
    app.add_routes(api.routes)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        app[SERVICE] = await QrmService.open(settings, clock)
        if scenario is not None:
            app[_APPLIED] = await _applied_at_start(app[SERVICE], settings, scenario)
        yield
        await app[SERVICE].close()

    async def shut_down(app: web.Application) -> None:
        # Before aiohttp waits for handlers: feeds hung up, attempts given `shutdown_grace`.
        await app[SERVICE].shutdown()

    app.cleanup_ctx.append(lifecycle)
    app.on_shutdown.append(shut_down)
    return app


async def _applied_at_start(
    service: QrmService, settings: Settings, scenario: Scenario
) -> ScenarioApplied:
    # Not listening yet: the address a webhook must not point back at is the one it will have.
    reached = (settings.host, settings.port) if settings.port else None
    try:
        return await service.apply_scenario(scenario.body(), reached, starting=True)
    except (FieldErrors, Conflict) as exc:
        await service.close()
        raise scenario.refused(exc.errors or {"": [str(exc)]}) from None
    except BaseException:
        await service.close()
        raise


def applied_scenario(app: web.Application) -> ScenarioApplied | None:
    """What the scenario given to `create_app` did as the server started, if one was."""
    return app.get(_APPLIED)


class InProcess:
    """The port of a server running in this process (see the module).

    What its routes would do with the same body, without the HTTP trip, which
    was a third of a kit test's time: `create_webhook(body)` is `POST
    /api/v1/webhooks` with `body` as its JSON. Faults and the API-call record are
    about QRM's routes, which a receiver calls over HTTP: not here.
    """

    def __init__(self, running: Running) -> None:
        self._service = running.app[SERVICE]
        address = running.runner.addresses[0] if running.runner.addresses else None
        self._reached = None if address is None else (str(address[0]), int(address[1]))
        """The address clients reach the server on: a webhook must not point back at it."""

    async def create_webhook(self, body: dict[str, Any]) -> Webhook:
        return await self._refused_as_over_http(
            lambda: webhooks.create(self._service, _as_sent(body), self._reached)
        )

    async def upload_report(self, body: dict[str, Any]) -> UploadedReport:
        return await self._refused_as_over_http(lambda: mock.upload(self._service, _as_sent(body)))

    async def delivery(self, delivery_id: int) -> DeliveryDetail:
        """`GET /api/v1/webhook-deliveries/{id}`'s `data`, as a client would parse it."""
        detail = await self._refused_as_over_http(lambda: self._service.get_delivery(delivery_id))
        return DeliveryDetail.model_validate_json(detail.model_dump_json(by_alias=True))

    async def reset(self, *, fresh: bool = False) -> int:
        """`POST /_mock/reset`; `fresh` also forgets tokens, faults and the manual clock's
        moves (a server as good as new, for the kit's next test). Returns the seq of the
        feed's `resync` frame for the wipe."""
        return await self._refused_as_over_http(lambda: self._service.reset(fresh=fresh))

    async def apply_scenario(
        self, scenario: Scenario, *, with_server: bool = True
    ) -> ScenarioApplied:
        """`POST /_mock/config` with the scenario; a refusal as the file's lines (`ScenarioError`).

        `with_server=False` leaves its settings out (a server started from them, under others).
        """
        try:
            body = scenario.body(with_server=with_server)
            return await self._service.apply_scenario(body, self._reached)
        except (FieldErrors, Conflict) as exc:
            raise scenario.refused(exc.errors or {"": [str(exc)]}) from None

    def feed(
        self, after_seq: int | None = None, boot_id: str | None = None
    ) -> AsyncGenerator[FeedFrame, None]:
        """The frames the WebSocket feed would carry, until this reader falls behind."""
        return self._service.feed.connect(after_seq, boot_id).models()

    async def _refused_as_over_http(self, call: Callable[[], Awaitable[T]]) -> T:
        try:
            return await call()
        except Exception as exc:
            refused = failure(exc)
            if refused is None:
                raise
            error = refused.error
            raise QrmApiError(
                refused.status, error.error_code, error.message, error.errors
            ) from None


def _as_sent(body: dict[str, Any]) -> bytes:
    """`body` as a client's JSON, within the size limit every route enforces (413)."""
    raw = json.dumps(body).encode()
    if len(raw) > MAX_BODY:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY, actual_size=len(raw))
    return raw
