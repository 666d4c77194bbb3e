"""The TUI against a real mock QRM: a server on a free port, the app pointed at it."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import pytest
from aiohttp.test_utils import TestServer
from rich.console import Console
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Label, Static

from mock_qrm.app import create_app
from mock_qrm.client import QrmClient
from mock_qrm.server.api.context import SERVICE
from mock_qrm.server.service import QrmService
from qrm_tui.app import QrmTuiApp, Target
from qrm_tui.widgets.live_table import LiveTable
from tests.conftest import make_settings

LABEL = "mock-qrm (test)"
"""The header's server text in tests: no port, so snapshots stay the same."""

FAST_BACKOFF = (0.05, 0.1, 0.2)
SIZE = (120, 36)

ServerFactory = Callable[..., Awaitable[TestServer]]
T = TypeVar("T")


@pytest.fixture
def qrm_server(aiohttp_server: Any) -> ServerFactory:
    """A factory: `await qrm_server(api_key="k")` is a fresh mock QRM on a free port."""

    async def start(**overrides: Any) -> TestServer:
        server: TestServer = await aiohttp_server(
            create_app(make_settings(**overrides)), shutdown_timeout=0.2
        )
        return server

    return start


@pytest.fixture
async def server(qrm_server: ServerFactory) -> TestServer:
    """A fresh mock QRM (manual clock) for one TUI test."""
    return await qrm_server()


@pytest.fixture
async def other(server: TestServer) -> AsyncIterator[QrmClient]:
    """Another client of the same server: curl, a script, a colleague."""
    async with QrmClient(url_of(server)) as client:
        yield client


def url_of(server: TestServer) -> str:
    return str(server.make_url("")).rstrip("/")


def service(server: TestServer) -> QrmService:
    return server.app[SERVICE]  # type: ignore[index]


def tui(
    server: TestServer | str, api_key: str | None = None, start_mode: str | None = None
) -> QrmTuiApp:
    url = server if isinstance(server, str) else url_of(server)
    app = QrmTuiApp(
        Target(server=url, api_key=api_key),
        server_label=LABEL,
        feed_backoff=FAST_BACKOFF,
        start_mode=start_mode,
    )
    app.animation_level = "none"
    return app


async def until(
    pilot: Pilot[Any], check: Callable[[], Any], what: str = "", within: float = 5.0
) -> Any:
    """Let the app run until `check()` holds (never a fixed sleep)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        await pilot.pause(0.02)


async def until_async(
    fetch: Callable[[], Awaitable[T]],
    check: Callable[[T], Any],
    what: str = "",
    within: float = 5.0,
) -> T:
    """Ask the server until its answer passes `check` (the journal, not the screen)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = await fetch()
        if check(result):
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}: last {result!r}")
        await asyncio.sleep(0.02)


async def ready(pilot: Pilot[Any]) -> QrmTuiApp:
    app = pilot.app
    assert isinstance(app, QrmTuiApp)
    await until(pilot, lambda: app.connection == "connected" and app.loaded, "the app to connect")
    await pilot.pause()
    return app


def rows(app: QrmTuiApp) -> list[list[str]]:
    """The webhooks table as text, row by row."""
    table = app.screen_stack[0].query_one("#webhook-table", DataTable)
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


def column(app: QrmTuiApp, name: str) -> list[str]:
    """One column of the webhooks table by key (columns that do not fit are not shown)."""
    table = app.screen_stack[0].query_one("#webhook-table", DataTable)
    index = [column.key.value for column in table.ordered_columns].index(name)
    return [row[index] for row in rows(app)]


def error_under(app: QrmTuiApp, field: str) -> str:
    label = app.screen.query_one(f"#{field}-error", Label)
    return str(label.content) if label.display else ""


async def fill(pilot: Pilot[Any], selector: str, text: str) -> None:
    """Focus an input and set its text, as a paste would (typing is tested elsewhere)."""
    field = pilot.app.screen.query_one(selector, Input)
    field.focus()
    field.value = text
    await pilot.pause()


def live_rows(app: QrmTuiApp, table: str) -> list[dict[str, str]]:
    """A live table (`#delivery-table`, `#report-table`, …) as text, newest first, by column."""
    widget = app.screen.query_one(table, LiveTable)
    keys = [column.key for column in widget.columns]
    return [dict(zip(keys, widget.row_text(key), strict=True)) for key in widget.keys]


def delivery_rows(app: QrmTuiApp) -> list[dict[str, str]]:
    return live_rows(app, "#delivery-table")


def text_of(widget: Static) -> str:
    """What a Static shows, as plain text (Rich renderables included)."""
    console = Console(width=200, record=True, file=io.StringIO(), color_system=None)
    console.print(widget.content)
    return console.export_text()


def notifications(app: QrmTuiApp) -> list[str]:
    """Every notification the app raised (recorded even when tests do not display them)."""
    return [notification.message for notification in app._notifications]
