"""The Deliveries screen: rows changing in place as the manual clock fires retries, follow
mode, filters, the row cap with paging, and bulk redelivery."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestServer
from textual.widgets import Label, Select

from mock_qrm.client import QrmClient
from mock_qrm.receiver import RunningReceiver
from qrm_tui.live import RateMeter
from qrm_tui.screens import deliveries
from qrm_tui.screens.deliveries import DeliveriesScreen
from qrm_tui.screens.help import HelpScreen
from qrm_tui.widgets.confirm import ConfirmDialog
from qrm_tui.widgets.live_table import LiveTable
from qrm_tui.widgets.throughput import Throughput
from tests.tui.conftest import (
    SIZE,
    delivery_rows,
    notifications,
    ready,
    tui,
    until,
    until_async,
)


async def fail_for_good(client: QrmClient, count: int) -> None:
    """Move the clock past every retry until `count` deliveries have failed for good."""
    settled = {"retry_scheduled", "failed", "delivered", "cancelled"}
    while True:
        page = await until_async(
            lambda: client.deliveries(),
            lambda page: page.total == count and all(d.status in settled for d in page.data),
            "every attempt to end",
        )
        if all(d.status == "failed" for d in page.data):
            return
        await client.advance(61)


def column(app: object, name: str) -> list[str]:
    return [row[name] for row in delivery_rows(app)]  # type: ignore[arg-type]


def screen_of(app: object) -> DeliveriesScreen:
    screen = app.screen  # type: ignore[attr-defined]
    assert isinstance(screen, DeliveriesScreen)
    return screen


def label(app: object, selector: str) -> str:
    return str(screen_of(app).query_one(selector, Label).render())


async def test_rows_appear_and_change_state_as_the_clock_advances(
    server: TestServer, other: QrmClient, receiver: RunningReceiver
) -> None:
    await other.create_webhook("Healthy", receiver.url + "/ok", ["report.created"])
    await other.create_webhook("Broken", receiver.url + "/status/500", ["report.created"])
    app = tui(server, start_mode="deliveries")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        assert "No deliveries yet" in label(app, "#table-foot")
        uploaded = await other.upload_report()
        await until(
            pilot,
            lambda: column(app, "state") == ["↻ retry in 60 s", "✓ delivered"],
            "the first attempts",
        )
        broken, healthy = delivery_rows(app)
        assert healthy["webhook"] == "Healthy" and healthy["code"] == "200"
        assert healthy["attempt"] == "1/4" and healthy["event"] == "report.created"
        assert healthy["resource"] == str(uploaded.resource_id)
        assert broken["code"] == "500" and broken["attempt"] == "1/4"
        assert broken["latency"].endswith(" ms")

        await other.advance(61)
        await until(
            pilot,
            lambda: (
                [delivery_rows(app)[0][k] for k in ("attempt", "state")]
                == ["2/4", "↻ retry in 60 s"]
            ),
            "the first retry",
        )
        await other.advance(61)
        await until(pilot, lambda: delivery_rows(app)[0]["attempt"] == "3/4", "the second retry")
        await other.advance(61)
        await until(pilot, lambda: column(app, "state") == ["✗ failed", "✓ delivered"], "failed")
        assert delivery_rows(app)[0]["attempt"] == "4/4"
        await until(
            pilot,
            lambda: label(app, "#counts") == "✓ 1 delivered ↻ 0 retrying ✗ 1 failed",
            "the counters",
        )


async def test_a_delivery_a_rate_limit_holds_back_says_when_it_is_due(
    server: TestServer, other: QrmClient, receiver: RunningReceiver
) -> None:
    await other.create_webhook(
        "Limited",
        receiver.url + "/ok",
        ["report.created"],
        rate_limit={"limit": 1, "period": "minute"},
    )
    app = tui(server, start_mode="deliveries")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await other.upload_report()
        await other.upload_report()
        await until(
            pilot,
            lambda: column(app, "state") == ["· due in 60 s", "✓ delivered"],
            "the second held back by the limit",
        )
        await other.advance(60)
        await until(
            pilot, lambda: column(app, "state") == ["✓ delivered", "✓ delivered"], "both delivered"
        )


async def test_follow_mode_pauses_when_the_cursor_leaves_the_newest_row(
    server: TestServer, other: QrmClient, receiver: RunningReceiver
) -> None:
    for name in ("A", "B", "C"):
        await other.create_webhook(name, receiver.url + "/ok", ["report.created"])
    await other.upload_report()
    app = tui(server, start_mode="deliveries")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        table = screen_of(app).query_one(LiveTable)
        await until(pilot, lambda: table.row_count == 3, "the first rows")
        assert label(app, "#follow-state") == "● following newest"
        assert table.cursor_row == 0 and table.has_focus

        await pilot.press("down")
        watched = table.cursor_key
        assert label(app, "#follow-state") == "⏸ paused — f follows"
        await other.upload_report()
        await until(pilot, lambda: table.row_count == 6, "the new rows")
        assert table.cursor_key == watched  # still on the same delivery, now lower down
        assert table.cursor_row == 4
        assert label(app, "#follow-state").startswith("⏸ paused")

        await pilot.press("f")
        assert label(app, "#follow-state") == "● following newest"
        assert table.cursor_row == 0 and table.cursor_key == max(table.keys)
        await other.upload_report()
        await until(pilot, lambda: table.row_count == 9, "more rows")
        assert table.cursor_key == max(table.keys)  # following: the newest is under the cursor

        await pilot.press("down", "up")  # back on the newest row: following again
        assert label(app, "#follow-state") == "● following newest"
        await pilot.press("down", "down", "home")  # so does home
        assert label(app, "#follow-state") == "● following newest"
        assert table.cursor_row == 0

        assert table.cursor_key is not None
        await pilot.press("c")  # copies the messageId under the cursor
        assert app.clipboard == (await other.delivery(table.cursor_key)).message_id


async def test_filters_narrow_the_rows_and_the_api_pages(
    server: TestServer, other: QrmClient, receiver: RunningReceiver
) -> None:
    ok = await other.create_webhook("Healthy", receiver.url + "/ok", ["report.created"])
    await other.create_webhook("Broken", receiver.url + "/status/500", ["report.created"])
    await other.upload_report()
    await other.upload_report()
    app = tui(server, start_mode="deliveries")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await until(pilot, lambda: len(delivery_rows(app)) == 4, "the rows")
        screen = screen_of(app)
        screen.query_one("#state-filter", Select).value = "retry_scheduled"
        await until(
            pilot,
            lambda: column(app, "webhook") == ["Broken", "Broken"],
            "only the retrying deliveries",
        )
        screen.query_one("#webhook-filter", Select).value = ok.id
        await until(pilot, lambda: "No delivery matches" in label(app, "#table-foot"), "none")

        await pilot.press("escape")  # clears every filter
        await until(pilot, lambda: len(delivery_rows(app)) == 4, "everything again")

        screen.query_one("#webhook-filter", Select).value = ok.id
        await until(pilot, lambda: column(app, "webhook") == ["Healthy", "Healthy"], "Healthy")
        await other.upload_report()  # live rows obey the filter too
        await until(pilot, lambda: len(delivery_rows(app)) == 3, "the new Healthy row")
        assert set(column(app, "webhook")) == {"Healthy"}


async def test_the_row_cap_drops_the_oldest_and_o_pages_them_back(
    server: TestServer,
    other: QrmClient,
    receiver: RunningReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(deliveries, "CAP", 6)
    monkeypatch.setattr(deliveries, "PAGE", 4)
    await other.create_webhook("Healthy", receiver.url + "/ok", ["report.created"])
    await other.create_webhook("Broken", receiver.url + "/status/500", ["report.created"])
    for _ in range(3):
        await other.upload_report()
    app = tui(server, start_mode="deliveries")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        screen = screen_of(app)
        table = screen.query_one(LiveTable)
        await until(pilot, lambda: table.keys == [6, 5, 4, 3], "the newest page")
        assert "o loads 4 more" in label(app, "#table-foot")

        for _ in range(2):
            await other.upload_report()
        await until(pilot, lambda: table.keys == [10, 9, 8, 7, 6, 5], "capped at 6, newest first")

        await pilot.press("o")
        await until(pilot, lambda: table.keys == [6, 5, 4, 3, 2, 1], "the older page")
        assert table.cursor_key == 4  # the newest of the rows just loaded
        assert label(app, "#follow-state").startswith("⏸ paused")
        foot = label(app, "#table-foot")
        assert foot.startswith("▲ newer deliveries not shown") and "start of the journal" in foot
        await pilot.press("o")
        assert "nothing older" in notifications(app)[-1]

        await pilot.press("f")
        await until(pilot, lambda: table.keys == [10, 9, 8, 7], "the newest page again")
        assert label(app, "#follow-state") == "● following newest"

        screen.query_one("#state-filter", Select).value = "retry_scheduled"  # paging obeys it
        await until(pilot, lambda: table.keys == [10, 8, 6, 4], "the newest retrying")
        await pilot.press("o")
        await until(pilot, lambda: table.keys == [10, 8, 6, 4, 2], "older retrying ones only")
        assert set(column(app, "webhook")) == {"Broken"}


async def test_bulk_redelivery_asks_first_then_redelivers_the_failed_ones_matching_the_filters(
    server: TestServer, other: QrmClient, receiver: RunningReceiver
) -> None:
    first = await other.create_webhook("First", receiver.url + "/status/500", ["report.created"])
    await other.create_webhook("Second", receiver.url + "/status/500", ["report.created"])
    await other.upload_report()
    await fail_for_good(other, 2)
    app = tui(server, start_mode="deliveries")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        screen = screen_of(app)
        await until(pilot, lambda: column(app, "state") == ["✗ failed", "✗ failed"], "the rows")
        screen.query_one("#webhook-filter", Select).value = first.id
        await until(pilot, lambda: column(app, "webhook") == ["First"], "the filter")

        await pilot.press("R")
        dialog = await until(pilot, lambda: isinstance(app.screen, ConfirmDialog) and app.screen)
        assert dialog.title_text == "Redeliver 1 failed delivery?"
        await pilot.press("escape")  # cancelling sends nothing
        await pilot.press("R")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.click("#confirm")
        await until(pilot, lambda: "Redelivering 1 failed delivery." in notifications(app))

        first_detail = await until_async(
            lambda: other.delivery(1),
            lambda detail: len(detail.attempts) == 5,
            "one manual attempt for First",
        )
        assert first_detail.webhook_name == "First"
        assert first_detail.attempts[-1].trigger == "manual"
        second_detail = await other.delivery(2)
        assert [a.trigger for a in second_detail.attempts] == ["automatic"] * 4


async def test_R_with_nothing_failed_says_so_and_help_lists_the_keys(
    server: TestServer, other: QrmClient
) -> None:
    app = tui(server, start_mode="deliveries")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("question_mark")
        help_screen = await until(pilot, lambda: isinstance(app.screen, HelpScreen) and app.screen)
        listed = {row.key for row in help_screen.rows}
        assert {"f", "o", "R", "c", "/", "⏎"} <= listed
        await pilot.press("escape")
        await pilot.press("R")
        await until(pilot, lambda: "No failed delivery matches the filters." in notifications(app))
        assert isinstance(app.screen, DeliveriesScreen)


async def test_the_sparkline_draws_only_what_happened(server: TestServer) -> None:
    """One attempt on an idle server: one bar, blanks after it, and `1/s`."""
    app = tui(server, start_mode="deliveries")
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        screen = await until(
            pilot, lambda: isinstance(app.screen, DeliveriesScreen) and app.screen, "deliveries"
        )
        assert "state" in screen.table.widths  # at 80 columns: the state stays (SPEC 8.2)
        assert "resource" not in screen.table.widths
        now = [1000.0]
        app.store.attempts = RateMeter(clock=lambda: now[0])
        now[0] = 1001.0
        app.store.attempts.add()
        now[0] = 1002.0
        screen.tick()
        await pilot.pause()
        spark = screen.query_one("#throughput", Throughput)
        assert str(spark.render()).strip() == "█"
        assert label(app, "#rate") == "1/s"  # at 80 columns: no words (the wide line says them)

        now[0] = 1006.0
        screen.tick()
        await pilot.pause()
        drawn = str(spark.render())
        assert drawn.strip() == "█" and "▁" not in drawn  # quiet seconds stay blank
        assert drawn.endswith("█    ")  # the four seconds since, newest at the right
        assert label(app, "#rate") == "0/s"


async def test_at_80_columns_the_status_line_fits_counts_in_the_thousands(
    server: TestServer,
) -> None:
    app = tui(server, start_mode="deliveries")
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        screen = screen_of(app)
        await until(pilot, lambda: screen.counts, "the first counts")
        screen.counts = {status: 12_345 for _, status, _, _ in deliveries.COUNTED}
        screen._show_counts()
        await pilot.pause()
        assert label(app, "#counts") == "✓ 12,345 ↻ 12,345 ✗ 12,345"
        line = [screen.query_one(f"#{name}", Label) for name in ("follow-state", "counts", "rate")]
        assert all(widget.region.right <= 80 for widget in line)
        shown = [str(widget.render()) for widget in line]
        assert shown[0] == "● following" and shown[2].endswith("/s")
        assert all(
            widget.content_size.width >= len(text) for widget, text in zip(line, shown, strict=True)
        )
