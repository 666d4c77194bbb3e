"""`qrm-tui --web`: the terminal app in a browser, one app session per tab (textual-serve).

Each tab that connects starts its own `qrm-tui --server URL` process, and every
one of them talks to the same mock server: the one given with --server, or a
single server embedded in this process and shared by all tabs, so a webhook
added in one tab shows up in the others. Off loopback a password guards every
route (HTTP basic auth): the browser asks for it before the page, its scripts
or its WebSocket are served.
"""

from __future__ import annotations

import asyncio
import binascii
import contextlib
import hmac
import os
import re
import shlex
import socket
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Self

import aiohttp_jinja2
from aiohttp import BasicAuth, hdrs, web
from aiohttp.typedefs import Handler, Middleware
from pydantic import BaseModel, Field, SecretStr, model_validator
from textual_serve.server import Server, to_int

from mock_qrm import __version__
from mock_qrm.app import (
    Running,
    Scenario,
    ScenarioError,
    ServeError,
    Settings,
    create_app,
    is_loopback,
    listen,
    serve,
    stop_on_signals,
)
from mock_qrm.client.errors import QrmUnavailable
from mock_qrm.client.http import QrmClient
from mock_qrm.contract.errors import QrmApiError, StorageError
from qrm_tui.demo import Demo, DemoOptions
from qrm_tui.embedded import SHUTDOWN_TIMEOUT

PASSWORD_ENV = "QRM_TUI_WEB_PASSWORD"
REALM = "qrm-tui"
SESSIONS_GRACE = 1.0
"""Seconds open tabs get at shutdown before their sessions are cancelled (each app then quits)."""
TAB_KEY_VARIABLE = "QRM_TUI_API_KEY"
"""How each tab's app gets the server's key (a `ClientSettings` source)."""


class WebError(Exception):
    """The web app could not start; the message says why, in one line."""


class WebSettings(BaseModel):
    """Where the browser reaches the app, and the password that guards it off loopback."""

    host: str = Field("127.0.0.1", min_length=1)
    port: int = Field(8000, ge=0, le=65535)
    password: SecretStr | None = None

    @model_validator(mode="after")
    def _password_off_loopback(self) -> Self:
        if self.password is not None and not self.password.get_secret_value():
            raise ValueError("the web password must not be empty")
        if self.password is None and not is_loopback(self.host):
            raise ValueError(
                f"refusing to serve the app on {self.host} without a password: "
                f"pass --web-password (or {PASSWORD_ENV}), or bind to 127.0.0.1"
            )
        return self


def basic_auth(password: str) -> Middleware:
    """A middleware that answers 401 to any request without the password (any user name)."""
    expected = password.encode()

    @web.middleware
    async def require_password(request: web.Request, handler: Handler) -> web.StreamResponse:
        header = request.headers.get(hdrs.AUTHORIZATION, "")
        given = b""
        with contextlib.suppress(ValueError, binascii.Error):
            given = BasicAuth.decode(header, encoding="utf-8").password.encode()
        if header and hmac.compare_digest(given, expected):
            return await handler(request)
        raise web.HTTPUnauthorized(
            text="This qrm-tui needs its password.\n",
            headers={hdrs.WWW_AUTHENTICATE: f'Basic realm="{REALM}", charset="UTF-8"'},
        )

    return require_password


def tab_command(server: str, start: str | None = None) -> str:
    """The shell command textual-serve runs for each tab: this app, on the shared server
    (opening on the `start` screen, if given)."""
    screen = ["--screen", start] if start else []
    return shlex.join([sys.executable, "-m", "qrm_tui", "--server", server, *screen])


@contextlib.contextmanager
def tab_key(api_key: str | None) -> Iterator[None]:
    """The server's key for every tab's app, in the environment it inherits (`QRM_TUI_API_KEY`).

    Not on its command line: any user of the machine can read a process's
    arguments, only its owner its environment.
    """
    if not api_key:
        yield
        return
    before = os.environ.get(TAB_KEY_VARIABLE)
    os.environ[TAB_KEY_VARIABLE] = api_key
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(TAB_KEY_VARIABLE, None)
        else:
            os.environ[TAB_KEY_VARIABLE] = before


class WebApp(Server):
    """textual-serve's server, with its links taken from the request and an optional password.

    textual-serve builds its page's URLs from the host it was told to bind, which
    a browser cannot use for 0.0.0.0; here they come from the address the browser
    itself used, so the same app works behind a published port or a proxy.
    """

    def __init__(self, command: str, *, password: SecretStr | None, title: str = "qrm-tui") -> None:
        super().__init__(command, title=title)
        self.password = password

    async def make_app(self) -> web.Application:
        app = await self._make_app()  # textual-serve's routes: page, WebSocket, statics
        if self.password is not None:
            app.middlewares.append(basic_auth(self.password.get_secret_value()))
        return app

    async def on_startup(self, app: web.Application) -> None:
        """Nothing: `run_web` says where it listens, instead of textual-serve's logo."""

    async def handle_index(self, request: web.Request) -> web.StreamResponse:
        base = f"{request.scheme}://{request.host}"
        websocket = f"{'wss' if request.scheme == 'https' else 'ws'}://{request.host}"
        context: dict[str, Any] = {
            "font_size": to_int(request.query.get("fontsize", "16"), 16),
            "app_websocket_url": f"{websocket}{request.app.router['websocket'].url_for()}",
            "config": {"static": {"url": f"{base}/static/"}},
            "application": {"name": self.title},
        }
        page = aiohttp_jinja2.render_string("app_index.html", request, context)
        return web.Response(text=local_fonts(page, f"{base}/static/"), content_type="text/html")


_FONT_LINK = re.compile(r"<link[^>]*fonts\.googleapis\.com[^>]*>", re.IGNORECASE)
_LOCAL_FONT = """<style>
      @font-face {{
        font-family: "Roboto Mono";
        src: url("{static}fonts/RobotoMono-VariableFont_wght.ttf") format("truetype");
        font-weight: 100 700;
        font-style: normal;
      }}
      @font-face {{
        font-family: "Roboto Mono";
        src: url("{static}fonts/RobotoMono-Italic-VariableFont_wght.ttf") format("truetype");
        font-weight: 100 700;
        font-style: italic;
      }}
    </style>"""


def local_fonts(page: str, static: str) -> str:
    """textual-serve's page asks a public font service for Roboto Mono, which it ships
    itself: the page asks this server instead, so it loads with no request leaving the
    machine (a demo room without internet would wait on a timeout, then fall back)."""
    return _FONT_LINK.sub(lambda _: _LOCAL_FONT.format(static=static), page)


@contextlib.asynccontextmanager
async def shared_demo(
    server: str, api_key: str | None, options: DemoOptions
) -> AsyncIterator[Demo]:
    """The demo's receiver, webhooks and uploads, once for every tab (not once per tab)."""
    demo = Demo(options)
    async with QrmClient(server, api_key) as client:
        try:
            await demo.start(client, await client.health(), await client.event_components())
        except (QrmUnavailable, QrmApiError) as exc:
            await demo.stop()
            raise WebError(f"the demo could not start: {exc}") from None
        uploads = asyncio.create_task(demo.upload_forever(client))
        try:
            yield demo
        finally:
            uploads.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await uploads
            await demo.stop()


async def run_web(
    settings: WebSettings,
    *,
    server: str | None,
    api_key: str | None,
    embedded: Settings | None = None,
    demo: DemoOptions | None = None,
    scenario: Scenario | None = None,
    say: Callable[[str], None] = print,
) -> None:
    """Serve the app until SIGINT or SIGTERM; with `embedded` settings, one shared server
    first (in `scenario`'s state, if given).

    The app's port is taken first: if it is in use, nothing else starts (the embedded
    server would open, and seed, its database).
    """
    try:
        sockets = await listen(settings.host, settings.port)
    except ServeError as exc:
        raise WebError(str(exc)) from None
    mock: Running | None = None
    try:
        if embedded is not None:
            try:
                mock = await serve(
                    create_app(embedded, scenario=scenario),
                    embedded.host,
                    embedded.port,
                    shutdown_timeout=SHUTDOWN_TIMEOUT,
                )
            except (StorageError, ServeError) as exc:
                raise WebError(f"the embedded server could not start: {exc}") from None
            except ScenarioError as exc:
                raise WebError("; ".join(exc.lines)) from None
            server, api_key = mock.url, embedded.api_key_value
        if server is None:
            raise WebError("no server to point the app at")
        async with contextlib.AsyncExitStack() as stack:
            if demo is not None:
                await stack.enter_async_context(shared_demo(server, api_key, demo))
            await _serve_tabs(settings, sockets, server, api_key, say, demo is not None)
    finally:
        for sock in sockets:
            sock.close()
        if mock is not None:
            await mock.close()


async def _serve_tabs(
    settings: WebSettings,
    sockets: list[socket.socket],
    server: str,
    api_key: str | None,
    say: Callable[[str], None],
    demo: bool,
) -> None:
    """textual-serve on its sockets until SIGINT or SIGTERM; each tab runs `tab_command`."""
    start = "deliveries" if demo else None  # as the terminal demo opens: on the live feed
    web_app = WebApp(tab_command(server, start), password=settings.password)
    with tab_key(api_key):
        await _serve_app(web_app, settings, sockets, server, say)


async def _serve_app(
    web_app: WebApp,
    settings: WebSettings,
    sockets: list[socket.socket],
    server: str,
    say: Callable[[str], None],
) -> None:
    running = await serve(
        await web_app.make_app(),
        settings.host,
        settings.port,
        sockets=sockets,
        shutdown_timeout=SESSIONS_GRACE,
    )
    try:
        stop = stop_on_signals()
        guard = " (password required)" if settings.password is not None else ""
        say(f"qrm-tui {__version__} serving the app on {running.url}{guard}")
        say(f"every browser tab is its own session on the mock server {server}")
        await stop.wait()
    finally:
        await running.close()
