"""A mock QRM server inside qrm-tui's own event loop, so one command gives a working system."""

from __future__ import annotations

from aiohttp import web

from mock_qrm.app import Scenario, ScenarioError, ServeError, Settings, create_app, serve
from mock_qrm.contract.errors import StorageError

SHUTDOWN_TIMEOUT = 0.5
"""Seconds open connections (the app's own feed) get to close when the server stops."""


class EmbeddedError(Exception):
    """The embedded server could not start; the message says why, in one line."""


class EmbeddedServer:
    """`create_app(settings)` on an `AppRunner`, listening on loopback (port 0: any free one);
    started in a scenario's state when given one (`qrm-tui --config`)."""

    def __init__(self, settings: Settings, scenario: Scenario | None = None) -> None:
        self.settings = settings
        self.scenario = scenario
        self._runner: web.AppRunner | None = None
        self.url: str | None = None

    async def start(self) -> str:
        """Open the store, start delivering and listening; the server's base URL."""
        if self.url is not None:
            return self.url
        try:
            running = await serve(
                create_app(self.settings, scenario=self.scenario),
                self.settings.host,
                self.settings.port,
                shutdown_timeout=SHUTDOWN_TIMEOUT,
            )
        except (StorageError, ServeError) as exc:
            raise EmbeddedError(str(exc)) from None
        except ScenarioError as exc:
            raise EmbeddedError("; ".join(exc.lines)) from None
        self._runner = running.runner
        self.url = running.url
        return self.url

    async def stop(self) -> None:
        """Stop listening and let attempts in flight finish (the dispatcher's grace)."""
        runner, self._runner, self.url = self._runner, None, None
        if runner is not None:
            await runner.cleanup()
