"""create_app(settings): wiring only."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from mock_qrm.server.api import deliveries, faults, health, mock, reports, webhooks  # noqa: F401
from mock_qrm.server.api.auth import auth_middleware
from mock_qrm.server.api.context import SERVICE, api
from mock_qrm.server.api.errors import error_middleware, loop_guard_middleware
from mock_qrm.server.api.faults import apply_faults, record_calls
from mock_qrm.server.delivery.clock import Clock
from mock_qrm.server.service import QrmService
from mock_qrm.server.settings import Settings

MAX_BODY = 1024 * 1024


def create_app(settings: Settings, clock: Clock | None = None) -> web.Application:
    """The mock QRM server; the service opens on start-up and closes on clean-up."""
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
        yield
        await app[SERVICE].close()

    async def shut_down(app: web.Application) -> None:
        # Before aiohttp waits for handlers: feeds hung up, attempts given `shutdown_grace`.
        await app[SERVICE].shutdown()

    app.cleanup_ctx.append(lifecycle)
    app.on_shutdown.append(shut_down)
    return app
