"""Connection loss (only possible with --server): the header says so, the table keeps its
rows, actions say why they cannot run, and the app reconnects and reloads by itself."""

from __future__ import annotations

from pathlib import Path

from aiohttp.test_utils import TestServer

from mock_qrm.app import create_app
from mock_qrm.client import QrmClient
from qrm_tui.screens.webhooks import WebhooksScreen
from tests.conftest import make_settings
from tests.tui.conftest import SIZE, column, notifications, ready, tui, until, url_of


async def _serve(db: Path, port: int | None = None) -> TestServer:
    server = TestServer(create_app(make_settings(db=str(db))), host="127.0.0.1", port=port)
    await server.start_server(shutdown_timeout=0.2)
    return server


async def test_losing_the_server_keeps_the_table_and_reconnects_by_itself(
    tmp_path: Path,
) -> None:
    db = tmp_path / "qrm.sqlite3"
    server = await _serve(db)
    url, port = url_of(server), server.port
    assert port is not None
    async with QrmClient(url) as other:
        await other.create_webhook("Orders", "http://127.0.0.1:1/o", ["report.created"])
    app = tui(server)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await ready(pilot)
            header = app.screen.query_one("#connection")
            assert str(header.render()) == "● connected"

            await server.close()
            await until(pilot, lambda: app.connection == "reconnecting", "the loss")
            assert str(header.render()) == "○ reconnecting…"
            assert column(app, "name") == ["Orders"]  # the data stays
            assert any(n.startswith("Lost the server: ") for n in notifications(app))

            await until(
                pilot,
                lambda: app.connection_detail.startswith("cannot reach"),
                "a reconnection attempt",
            )
            await pilot.press("space")
            await pilot.press("space")  # twice: still one notice, naming the action
            unreachable = [n for n in notifications(app) if "cannot reach" in n]
            assert unreachable == [
                f"Could not deactivate webhook “Orders”: cannot reach {url}: "
                "connection refused. Retrying the connection."
            ]
            await pilot.press("3", "u")  # another action: its notice replaces the last one
            await until(pilot, lambda: any("upload a report" in n for n in notifications(app)))
            assert [n for n in notifications(app) if "cannot reach" in n] == [
                f"Could not upload a report: cannot reach {url}: "
                "connection refused. Retrying the connection."
            ]
            await pilot.press("1")
            await pilot.press("n")  # the form opens; saving would say the same
            assert not isinstance(app.screen, WebhooksScreen)
            await pilot.press("escape")

            server = await _serve(db, port)
            async with QrmClient(url) as other:
                await other.create_webhook(
                    "Made while away", "http://127.0.0.1:1/m", ["report.created"]
                )
            await until(pilot, lambda: app.connection == "connected", "the reconnection", 10)
            await until(
                pilot,
                lambda: column(app, "name") == ["Orders", "Made while away"],
                "the reload after the restart",
            )
            assert str(header.render()) == "● connected"
            assert f"Reconnected to {app.server_label}." in notifications(app)
    finally:
        await server.close()


async def test_actions_fail_as_a_notification_not_a_crash(tmp_path: Path) -> None:
    """A call that fails after the check (the server died a moment ago) is reported once."""
    server = await _serve(tmp_path / "qrm.sqlite3")
    async with QrmClient(url_of(server)) as other:
        await other.create_webhook("Orders", "http://127.0.0.1:1/o", ["report.created"])
    app = tui(server)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        screen = app.screen
        assert isinstance(screen, WebhooksScreen)
        app.client.base_url = "http://127.0.0.1:9"  # calls now go nowhere; the feed still runs
        await pilot.press("space")
        await until(
            pilot,
            lambda: any(
                n.startswith("Could not activate or deactivate the webhook: cannot reach")
                for n in notifications(app)
            ),
        )
        assert column(app, "status") == ["● active"]
    await server.close()
