"""Feed continuity: a dropped socket resumes with `after_seq` and loses nothing; a restarted
server (a resync) makes the screens reload, so nothing stale stays on screen."""

from __future__ import annotations

import re
from pathlib import Path

from aiohttp.test_utils import TestServer

from mock_qrm.app import create_app
from mock_qrm.client import QrmClient
from mock_qrm.receiver import RunningReceiver
from tests.conftest import make_settings
from tests.tui.conftest import (
    SIZE,
    ServerFactory,
    delivery_rows,
    live_rows,
    ready,
    service,
    tui,
    until,
    until_async,
    url_of,
)


async def _serve(db: Path, port: int | None = None) -> TestServer:
    server = TestServer(create_app(make_settings(db=str(db))), host="127.0.0.1", port=port)
    await server.start_server(shutdown_timeout=0.2)
    return server


async def settle(client: QrmClient, attempts: list[int]) -> None:
    """Wait for the journal: every delivery waiting for a retry, after `attempts` attempts."""
    await until_async(
        client.deliveries,
        lambda page: (
            [d.attempt_count for d in page.data] == attempts
            and all(d.status == "retry_scheduled" for d in page.data)
        ),
        f"attempts {attempts}",
    )


def states(app: object) -> list[tuple[str, str, str]]:
    """Each row's webhook, attempt and state; a countdown's seconds as `N` (these tests are
    about what reloads, and a slow start-up under load may already show 59 s)."""
    return [
        (r["webhook"], r["attempt"], re.sub(r"retry in \d+ s", "retry in N s", r["state"]))
        for r in delivery_rows(app)  # type: ignore[arg-type]
    ]


async def test_a_dropped_socket_resumes_where_it_left_off(
    qrm_server: ServerFactory, receiver: RunningReceiver
) -> None:
    server = await qrm_server()
    async with QrmClient(url_of(server)) as other:
        await other.create_webhook("Broken", receiver.url + "/status/500", ["report.created"])
        app = tui(server, start_mode="deliveries")
        async with app.run_test(size=SIZE) as pilot:
            await ready(pilot)
            await other.upload_report()
            await until(pilot, lambda: states(app) == [("Broken", "1/4", "↻ retry in N s")])
            generation = app.feed_generation

            service(server).feed.close()  # the server hangs up on every feed client
            await other.upload_report()  # changes made while the app is away
            await settle(other, [1, 1])
            await other.advance(61)
            await settle(other, [2, 2])
            await until(
                pilot,
                lambda: states(app) == [("Broken", "2/4", "↻ retry in N s")] * 2,
                "the missed changes, replayed",
            )
            assert app.feed_generation == generation  # resumed, not reloaded
            assert app.connection == "connected"


async def test_a_restarted_server_makes_every_screen_reload(
    tmp_path: Path, receiver: RunningReceiver
) -> None:
    db = tmp_path / "qrm.sqlite3"
    server = await _serve(db)
    url, port = url_of(server), server.port
    async with QrmClient(url) as other:
        await other.create_webhook("Broken", receiver.url + "/status/500", ["report.created"])
        await other.upload_report()
    app = tui(server, start_mode="deliveries")
    try:
        async with app.run_test(size=SIZE) as pilot:
            await ready(pilot)
            await until(pilot, lambda: states(app) == [("Broken", "1/4", "↻ retry in N s")])
            await pilot.press("3")
            await until(pilot, lambda: len(live_rows(app, "#report-table")) == 6, "reports")
            await pilot.press("2")
            generation = app.feed_generation

            await server.close()
            await until(pilot, lambda: app.connection == "reconnecting", "the loss")
            server = await _serve(db, port)
            async with QrmClient(url) as other:
                uploaded = await other.upload_report()  # a new report, a new delivery
                await settle(other, [1, 1])
                await other.advance(61)  # and both retried: all unseen by the app
                await settle(other, [2, 2])
                await until(
                    pilot, lambda: app.connection == "connected", "the reconnection", within=10
                )
            await until(
                pilot,
                lambda: states(app) == [("Broken", "2/4", "↻ retry in N s")] * 2,
                "the deliveries reloaded",
            )
            assert app.feed_generation > generation
            await pilot.press("3")
            await until(
                pilot,
                lambda: live_rows(app, "#report-table")[0]["id"] == str(uploaded.resource_id),
                "the reports reloaded",
            )
    finally:
        await server.close()
