"""The Reports screen: the mock's reports, newest first and live; `u` uploads; `enter`
shows the report as the API returns it and the deliveries its events caused."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestServer
from textual.widgets import Static

from mock_qrm.client import QrmClient
from mock_qrm.receiver import RunningReceiver
from qrm_tui.screens import reports
from qrm_tui.screens.inspector import DeliveryInspector
from qrm_tui.screens.reports import ReportScreen, ReportsScreen
from tests.tui.conftest import (
    SIZE,
    live_rows,
    notifications,
    ready,
    text_of,
    tui,
    until,
)


def ids(app: object) -> list[str]:
    return [row["id"] for row in live_rows(app, "#report-table")]  # type: ignore[arg-type]


async def test_the_seeded_reports_newest_first_and_an_upload_appears_at_the_top(
    server: TestServer, other: QrmClient
) -> None:
    app = tui(server, start_mode="reports")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        expected = [str(row.id) for row in (await other.report_rows()).data]
        await until(pilot, lambda: ids(app) == expected, "the seeded reports")
        await pilot.press("u")
        await until(pilot, lambda: len(ids(app)) == len(expected) + 1, "the upload")
        newest = live_rows(app, "#report-table")[0]
        assert newest["id"] == "12306" and newest["file"] == "… not yet"
        assert any(n.startswith("Report 12306 uploaded") for n in notifications(app))
        table = app.screen.query_one("#report-table")
        assert table.cursor_key is not None and table.cursor_row == 0  # type: ignore[attr-defined]
        await other.advance(5)  # file_ready_delay: the row changes in place
        await until(pilot, lambda: live_rows(app, "#report-table")[0]["file"] == "✓ ready")


async def test_enter_shows_the_document_and_the_deliveries_it_caused(
    server: TestServer, other: QrmClient, receiver: RunningReceiver
) -> None:
    await other.create_webhook(
        "Healthy", receiver.url + "/ok", ["report.created", "report.file_ready"]
    )
    uploaded = await other.upload_report()
    app = tui(server, start_mode="reports")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await until(pilot, lambda: ids(app)[:1] == [str(uploaded.resource_id)], "the report")
        await pilot.press("enter")
        screen = await until(pilot, lambda: isinstance(app.screen, ReportScreen) and app.screen)
        document = screen.query_one("#report-document", Static)
        await until(pilot, lambda: '"inspectionGeneral"' in text_of(document), "the document")
        assert uploaded.inspection_id in text_of(document)
        await until(
            pilot,
            lambda: (
                [r["event"] for r in live_rows(app, "#report-deliveries")] == ["report.created"]
            ),
            "report.created's delivery",
        )
        await other.advance(5)  # the file is ready: the second event, live
        await until(
            pilot,
            lambda: (
                [(r["event"], r["state"]) for r in live_rows(app, "#report-deliveries")]
                == [("report.file_ready", "✓ delivered"), ("report.created", "✓ delivered")]
            ),
            "both events' deliveries",
        )
        await pilot.press("enter")  # a delivery opens in the inspector
        await until(pilot, lambda: isinstance(app.screen, DeliveryInspector))
        await pilot.press("escape")
        await pilot.press("escape")
        assert isinstance(app.screen, ReportsScreen)


async def test_o_loads_older_reports(
    server: TestServer, other: QrmClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reports, "PAGE", 3)
    app = tui(server, start_mode="reports")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        all_ids = [str(row.id) for row in (await other.report_rows()).data]
        await until(pilot, lambda: ids(app) == all_ids[:3], "the first page")
        await pilot.press("o")
        await until(pilot, lambda: ids(app) == all_ids, "the rest")
        await pilot.press("o")
        assert notifications(app)[-1] == "No older reports."
