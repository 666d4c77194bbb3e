"""A mock QRM server inside qrm-tui's own event loop, so one command gives a working system."""

from __future__ import annotations

from aiohttp import web

from mock_qrm.app import create_app
from mock_qrm.settings import Settings
from mock_qrm.store.db import StoreError

SHUTDOWN_TIMEOUT = 0.5
"""Seconds open connections (the app's own feed) get to close when the server stops."""


class EmbeddedError(Exception):
    """The embedded server could not start; the message says why, in one line."""


class EmbeddedServer:
    """`create_app(settings)` on an `AppRunner`, listening on loopback (port 0: any free one)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._runner: web.AppRunner | None = None
        self.url: str | None = None

    async def start(self) -> str:
        """Open the store, start delivering and listening; the server's base URL."""
        if self.url is not None:
            return self.url
        runner = web.AppRunner(
            create_app(self.settings),
            handle_signals=False,
            access_log=None,
            shutdown_timeout=SHUTDOWN_TIMEOUT,
        )
        try:
            await runner.setup()
        except StoreError as exc:
            raise EmbeddedError(str(exc)) from None
        site = web.TCPSite(runner, self.settings.host, self.settings.port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise EmbeddedError(
                f"cannot listen on {self.settings.host}:{self.settings.port}: {exc.strerror or exc}"
            ) from None
        host, port = runner.addresses[0][:2]
        self._runner = runner
        self.url = f"http://{host}:{port}"
        return self.url

    async def stop(self) -> None:
        """Stop listening and let attempts in flight finish (the dispatcher's grace)."""
        runner, self._runner, self.url = self._runner, None, None
        if runner is not None:
            await runner.cleanup()
