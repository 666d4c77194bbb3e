"""Webhooks' statistics in the TUI: the table's success rate and p95, `s` for one webhook's
figures and its last hour, kept current from the feed without hammering the server."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestServer
from textual.widgets import Label, Static

from mock_qrm.client import QrmClient
from mock_qrm.contract.models import WebhookStats
from mock_qrm.receiver import RunningReceiver
from qrm_tui.app import QrmTuiApp, Target
from qrm_tui.live import StatsPacer
from qrm_tui.screens.help import HelpScreen
from qrm_tui.screens.webhook_stats import WebhookStatsScreen
from qrm_tui.screens.webhooks import WebhooksScreen
from qrm_tui.widgets.throughput import Throughput
from tests.tui.conftest import SIZE, column, ready, text_of, tui, until

QUICK = 0.05
"""The pacer's rest in these tests: a read as soon as the feed tells of a change."""


def quick(app: QrmTuiApp) -> QrmTuiApp:
    app.stats_pacer.interval = QUICK
    return app


def figures(app: QrmTuiApp) -> str:
    return text_of(app.screen.query_one("#stats-figures", Static))


def spark(app: QrmTuiApp, key: str) -> tuple[float, ...]:
    return app.screen.query_one(f"#spark-{key}", Throughput).data


def label(app: QrmTuiApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Label).render())


async def test_s_shows_the_webhooks_figures_and_last_hour_and_follows_the_feed(
    server: TestServer, other: QrmClient, receiver: RunningReceiver
) -> None:
    hook = await other.create_webhook("Flaky", receiver.url + "/flaky/1", ["report.created"])
    app = quick(tui(server))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("s")
        screen = await until(
            pilot, lambda: isinstance(app.screen, WebhookStatsScreen) and app.screen
        )
        await until(pilot, lambda: "Attempts      0" in figures(app), "the figures")
        assert label(app, "#stats-title") == "Webhook #1 “Flaky”  ● active"
        assert label(app, "#stats-url") == receiver.url + "/flaky/1"
        assert "Success rate  —" in figures(app)
        assert label(app, "#peak-attempts") == "none"

        await other.upload_report()
        await until(pilot, lambda: "Attempts      1  (500: 1)" in figures(app), "a failure")
        assert "Success rate  0% answered 200" in figures(app)
        assert spark(app, "attempts")[-1] == 1 and spark(app, "failures")[-1] == 1
        assert len(spark(app, "attempts")) == 60  # the last hour, a minute a bar
        assert label(app, "#peak-failures") == "peak 1/min"

        await other.advance(61)
        await until(pilot, lambda: "(200: 1 · 500: 1)" in figures(app), "the retry's success")
        shown = figures(app)
        stats = await other.stats(hook.id)
        assert "Attempts      2" in shown and "Success rate  50% answered 200" in shown
        assert "Delivered     1" in shown and "Failed        0" in shown
        latency = stats.latency_ms
        assert f"p50 {latency.p50} ms  p95 {latency.p95} ms  p99 {latency.p99} ms" in shown
        assert screen is app.screen
        await pilot.press("escape")
        assert isinstance(app.screen, WebhooksScreen)
        assert column(app, "success") == ["50%"]


async def test_the_table_reads_stats_only_for_webhooks_the_feed_moved(
    server: TestServer, other: QrmClient, receiver: RunningReceiver
) -> None:
    """Two webhooks; a delivery to one: the other's figures are not asked for again."""
    await other.create_webhook("Busy", receiver.url + "/ok", ["report.created"])
    await other.create_webhook("Quiet", receiver.url + "/ok", ["report.file_ready"])
    app = quick(tui(server))
    asked: list[int] = []
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        original = app.client.stats

        async def counting(webhook_id: int, *args: Any, **kwargs: Any) -> WebhookStats:
            asked.append(webhook_id)
            return await original(webhook_id, *args, **kwargs)

        app.client.stats = counting  # type: ignore[method-assign]
        await until(pilot, lambda: len(app.webhook_stats) == 2, "the first figures")
        assert column(app, "success") == ["—", "—"]  # no attempt yet
        asked.clear()
        await other.upload_report()  # report.created only: the Busy webhook
        await until(pilot, lambda: column(app, "success") == ["100%", "—"], "Busy's rate")
        assert set(asked) == {1}


async def test_the_stats_key_is_in_the_footer_help_and_palette(server: TestServer) -> None:
    async with QrmClient(str(server.make_url("")).rstrip("/")) as other:
        await other.create_webhook("Orders", "http://127.0.0.1:1/o", ["report.created"])
    app = tui(server)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        footer = {
            (b.key, b.description)
            for _, b, enabled, _ in app.screen.active_bindings.values()
            if enabled and b.show
        }
        assert ("s", "Stats") in footer
        await pilot.press("question_mark")
        help_screen = await until(pilot, lambda: isinstance(app.screen, HelpScreen) and app.screen)
        listed = {(row.where, row.key, row.description) for row in help_screen.rows}
        assert ("Webhooks", "s", "Stats") in listed
        assert ("Webhook statistics", "esc", "Back") in listed
        await pilot.press("escape")
        await pilot.click("#stats")
        await until(pilot, lambda: isinstance(app.screen, WebhookStatsScreen), "the button")


async def test_a_webhook_removed_while_shown_keeps_its_figures(
    server: TestServer, other: QrmClient, receiver: RunningReceiver
) -> None:
    hook = await other.create_webhook("Gone", receiver.url + "/ok", ["report.created"])
    await other.upload_report()
    app = quick(tui(server))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("s")
        await until(pilot, lambda: "Attempts      1  (200: 1)" in figures(app), "the figures")
        await other.delete_webhook(hook.id)
        await until(
            pilot,
            lambda: label(app, "#stats-title") == "Webhook #1 (removed: its history stays)",
            "the removal",
        )
        assert "Delivered     1" in figures(app)


def test_the_pacer_reads_each_webhook_at_most_every_interval() -> None:
    now = [0.0]
    pacer = StatsPacer(interval=2.0, share=0.1, clock=lambda: now[0])
    assert pacer.take() == set()
    pacer.mark([1, 2], now=True)
    assert pacer.take() == {1, 2}
    pacer.mark([1])
    assert pacer.take() == set()  # still reading
    now[0] = 0.5  # the read took half a second: rest ten times that
    pacer.done()
    now[0] = 4.0
    assert pacer.take() == set()
    now[0] = 5.5
    assert pacer.take() == {1}
    now[0] = 5.6
    pacer.done(unread=[1])  # the server went away: 1 stays due
    now[0] = 7.0
    assert pacer.take() == set()  # resting: 2 s after the last read
    now[0] = 7.7
    assert pacer.take() == {1}
    pacer.done()
    pacer.mark([3], now=True)  # a new webhook: read at once, rested or not
    assert pacer.take() == {3}
    pacer.mark([4], now=True)  # ... even when it comes while another read runs
    pacer.done()
    assert pacer.take() == {4}


def test_no_read_is_started_while_no_screen_is_shown() -> None:
    """The pacer's timer may fire as the app starts or closes, with no screen on the stack."""
    app = QrmTuiApp(Target(server="http://127.0.0.1:9"))
    app.connection = "connected"
    app.stats_pacer.mark([1], now=True)
    app.refresh_stats()
    assert app.stats_pacer.take() == {1}  # still due, for when a screen shows it
