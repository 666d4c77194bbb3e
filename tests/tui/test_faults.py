"""Faults on QRM's API (SPEC 8.4) in the TUI: `4` lists them and the calls made to QRM's
API, `n` adds one, `d` and `D` remove them; the inspector shows a delivery's call-backs."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestServer
from textual.widgets import Static, Switch

from mock_qrm.client import QrmApiError, QrmClient
from mock_qrm.client.calls import Call
from mock_qrm.receiver import RunningReceiver
from qrm_tui.app import QrmTuiApp
from qrm_tui.client import CallLog
from qrm_tui.commands import QrmCommands
from qrm_tui.screens.faults import FaultsScreen
from qrm_tui.screens.help import HelpScreen
from qrm_tui.screens.inspector import DeliveryInspector
from qrm_tui.widgets.confirm import ConfirmDialog
from qrm_tui.widgets.fault_form import FaultForm
from tests.tui.conftest import (
    SIZE,
    ServerFactory,
    delivery_rows,
    fill,
    live_rows,
    notifications,
    ready,
    text_of,
    tui,
    until,
    until_async,
    url_of,
)

REPORT = "GET /api/v1/reports/{id}"


def fault_rows(app: QrmTuiApp) -> list[dict[str, str]]:
    return live_rows(app, "#fault-table")


def call_rows(app: QrmTuiApp) -> list[dict[str, str]]:
    return live_rows(app, "#call-table")


def error_of(app: QrmTuiApp, field: str) -> str:
    label = app.screen.query_one(f"#fault-{field}-error")
    return str(label.render()) if label.display else ""


async def faults_screen(app: QrmTuiApp, pilot: object) -> FaultsScreen:
    await ready(pilot)  # type: ignore[arg-type]
    await pilot.press("4")  # type: ignore[attr-defined]
    return await until(pilot, lambda: isinstance(app.screen, FaultsScreen) and app.screen)  # type: ignore[arg-type]


async def test_a_fault_added_through_the_api_appears_with_what_it_does(
    server: TestServer, other: QrmClient
) -> None:
    await other.add_fault(REPORT, status=503, times=2, retry_after=30)
    await other.add_fault("GET /files/reports/{id}.pdf", delay_ms=1500)
    app = tui(server)
    async with app.run_test(size=SIZE) as pilot:
        screen = await faults_screen(app, pilot)
        await until(pilot, lambda: len(fault_rows(app)) == 2, "the faults")
        assert fault_rows(app) == [
            {"id": "1", "route": REPORT, "does": "503 · Retry-After 30 s", "left": "2 of 2"},
            {
                "id": "2",
                "route": "GET /files/reports/{id}.pdf",
                "does": "wait 1.5 s · as usual",
                "left": "until removed",
            },
        ]
        await other.add_fault("POST /api/v1/auth/login", reset=True, times=1)
        await until(pilot, lambda: len(fault_rows(app)) == 3, "a new fault, by the poll")
        assert fault_rows(app)[2]["does"] == "drop the connection"

        with pytest.raises(QrmApiError):  # a receiver's call-back meets the fault
            await other.report(12301)
        await until(pilot, lambda: fault_rows(app)[0]["left"] == "1 of 2", "the count going down")
        await until(pilot, lambda: call_rows(app), "the call")
        assert call_rows(app)[0] | {"time": ""} == {
            "time": "",
            "method": "GET",
            "path": "/api/v1/reports/12301",
            "status": "503",
            "fault": "#1",
        }
        assert "1 call " in str(screen.query_one("#calls-foot").render())


async def test_the_calls_come_newest_first_and_a_503_then_a_200(
    server: TestServer, other: QrmClient
) -> None:
    await other.add_fault(REPORT, status=503, times=1)
    app = tui(server)
    async with app.run_test(size=SIZE) as pilot:
        await faults_screen(app, pilot)
        await until(pilot, lambda: fault_rows(app), "the fault")
        with pytest.raises(QrmApiError):
            await other.report(12302)
        await other.report(12302)
        await pilot.press("r")
        await until(pilot, lambda: len(call_rows(app)) == 2, "both calls")
        assert [(row["status"], row["fault"]) for row in call_rows(app)] == [
            ("200", "—"),
            ("503", "#1"),
        ]
        assert not fault_rows(app)  # used up: gone from the server, gone from the screen
        empty = app.screen.query_one("#faults-empty", Static)
        assert empty.display and "None: QRM's API answers as usual" in text_of(empty)


async def test_d_removes_the_selected_fault_on_the_server_after_asking(
    server: TestServer, other: QrmClient
) -> None:
    first = await other.add_fault(REPORT, status=503)
    second = await other.add_fault(REPORT, status=429, retry_after=5)
    app = tui(server)
    async with app.run_test(size=SIZE) as pilot:
        await faults_screen(app, pilot)
        await until(pilot, lambda: len(fault_rows(app)) == 2, "the faults")
        await pilot.press("down", "d")
        dialog = await until(pilot, lambda: isinstance(app.screen, ConfirmDialog) and app.screen)
        assert "Fault 2 on GET /api/v1/reports/{id}" in text_of(
            dialog.query_one("#confirm-message", Static)
        )
        await pilot.press("escape")  # cancelled: nothing changes
        assert [f.id for f in await other.faults()] == [first.id, second.id]

        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.click("#confirm")
        await until_async(other.faults, lambda faults: [f.id for f in faults] == [first.id])
        await until(pilot, lambda: [row["id"] for row in fault_rows(app)] == ["1"], "the row")
        assert "Removed fault 2." in notifications(app)


async def test_shift_d_clears_every_fault_after_asking(
    server: TestServer, other: QrmClient
) -> None:
    await other.add_fault(REPORT, status=503)
    await other.add_fault("GET /api/v1/reports", status=500)
    app = tui(server)
    async with app.run_test(size=SIZE) as pilot:
        await faults_screen(app, pilot)
        await until(pilot, lambda: len(fault_rows(app)) == 2, "the faults")
        await pilot.press("D")
        dialog = await until(pilot, lambda: isinstance(app.screen, ConfirmDialog) and app.screen)
        assert "All 2 faults will go" in text_of(dialog.query_one("#confirm-message", Static))
        await pilot.click("#confirm")
        await until_async(other.faults, lambda faults: faults == [], "no faults on the server")
        await until(pilot, lambda: not fault_rows(app), "no rows")
        await pilot.press("D", "d")  # nothing left to remove: no dialog
        assert isinstance(app.screen, FaultsScreen)


async def test_n_adds_a_fault_through_the_form_checked_before_sending(
    server: TestServer, other: QrmClient
) -> None:
    app = tui(server)
    async with app.run_test(size=SIZE) as pilot:
        await faults_screen(app, pilot)
        await pilot.press("n")
        form = await until(pilot, lambda: isinstance(app.screen, FaultForm) and app.screen)
        await pilot.press("ctrl+s")  # nothing filled in: a fault must do something
        assert "a fault needs a status, a delayMs or reset: true" in error_of(app, "body")
        await fill(pilot, "#fault-status", "200")
        await pilot.press("ctrl+s")
        assert error_of(app, "status") == "Must be at least 400"
        assert error_of(app, "body") == ""
        form.query_one("#fault-reset", Switch).value = True
        await pilot.pause()
        await fill(pilot, "#fault-status", "503")
        assert "cannot also answer a status" in error_of(app, "reset")  # follows each change
        form.query_one("#fault-reset", Switch).value = False
        await fill(pilot, "#fault-times", "2")
        await fill(pilot, "#fault-retryAfter", "30")
        assert await other.faults() == []  # nothing was sent while it was not valid
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, FaultsScreen), "the form to close")
        faults = await other.faults()
        assert [(f.route, f.status, f.times, f.retry_after) for f in faults] == [
            (REPORT, 503, 2, 30)
        ]
        await until(pilot, lambda: fault_rows(app), "the new row")
        assert fault_rows(app)[0]["does"] == "503 · Retry-After 30 s"


async def test_the_servers_422_lands_under_its_field(server: TestServer) -> None:
    app = tui(server)
    async with app.run_test(size=SIZE) as pilot:
        await faults_screen(app, pilot)
        await pilot.press("n")
        form = await until(pilot, lambda: isinstance(app.screen, FaultForm) and app.screen)
        form.check = dict  # type: ignore[method-assign]  # the server's word only
        await fill(pilot, "#fault-status", "503")
        await fill(pilot, "#fault-delayMs", "9999999")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: error_of(app, "delayMs"), "the server's message")
        assert error_of(app, "delayMs") == "Must be at most 600000"
        assert isinstance(app.screen, FaultForm)


async def test_the_inspector_shows_the_receivers_call_backs_for_its_report(
    qrm_server: ServerFactory, receiver: RunningReceiver
) -> None:
    server = await qrm_server(api_key="secret")
    async with QrmClient(url_of(server), api_key="secret") as qrm:
        await qrm.create_webhook("Orders", receiver.url + "/ok", ["report.created"])
        await qrm.add_fault(REPORT, status=503, times=1)
        uploaded = await qrm.upload_report()
        report = uploaded.resource_id
        await until_async(
            lambda: qrm.deliveries(status="delivered"), lambda page: page.data, "the delivery"
        )
        # The receiver calls back with the API key: the fault answers first, then QRM does.
        with pytest.raises(QrmApiError):
            await qrm.report(report)
        await qrm.report(report)
        await qrm.report(12301)  # another report's: not this delivery's call-back
        app = tui(server, api_key="secret", start_mode="deliveries")
        async with app.run_test(size=SIZE) as pilot:
            await ready(pilot)
            await until(pilot, lambda: delivery_rows(app), "the delivery row")
            await pilot.press("enter")
            inspector = await until(
                pilot, lambda: isinstance(app.screen, DeliveryInspector) and app.screen
            )
            panel = inspector.query_one("#callbacks", Static)
            await until(pilot, lambda: "2 calls" in text_of(panel), "the call-backs")
            lines = text_of(panel).splitlines()
            assert lines[0].startswith(f"2 calls for report {report} since the first attempt")
            assert lines[1].split()[1:] == [
                "GET",
                f"/api/v1/reports/{report}",
                "503",
                "fault",
                "#1",
            ]
            assert lines[2].split()[1:] == ["GET", f"/api/v1/reports/{report}", "200"]
            assert "12301" not in text_of(panel)

            with pytest.raises(QrmApiError):  # while it is open; the file is not ready yet
                await qrm.send(Call("GET", f"/files/reports/{report}.pdf"))
            await until(pilot, lambda: "3 calls" in text_of(panel), "the new call, by the poll")
            assert text_of(panel).splitlines()[3].split()[1:] == [
                "GET",
                f"/files/reports/{report}.pdf",
                "404",
            ]


async def test_help_and_the_palette_know_the_faults_screen(server: TestServer) -> None:
    app = tui(server)
    async with app.run_test(size=SIZE) as pilot:
        await faults_screen(app, pilot)
        await pilot.press("question_mark")
        help_screen = await until(pilot, lambda: isinstance(app.screen, HelpScreen) and app.screen)
        listed = {(row.where, row.key, row.description) for row in help_screen.rows}
        assert {
            ("Faults", "n", "Add fault"),
            ("Faults", "d", "Remove"),
            ("Faults", "D", "Clear all"),
            ("Faults", "r", "Refresh"),
            ("Everywhere", "4", "Faults"),
        } <= listed
        assert not any(row.key == "⏎" and row.where == "Faults" for row in help_screen.rows)
        await pilot.press("escape")
        titles = {title for title, _, _ in QrmCommands(app.screen).commands()}
        assert {
            "Show faults on QRM's API and the calls made to it",
            "Make one of QRM's routes fail, slow down or drop the connection",
            "Remove every fault (asks first)",
        } <= titles


async def test_an_unreachable_server_is_said_once_naming_the_action(
    server: TestServer,
) -> None:
    url = url_of(server)
    app = tui(server)
    async with app.run_test(size=SIZE) as pilot:
        await faults_screen(app, pilot)
        await server.close()
        await until(pilot, lambda: app.connection == "reconnecting", "the loss")
        await pilot.press("r")
        await pilot.press("n")
        assert not isinstance(app.screen, FaultForm)
        unreachable = [n for n in notifications(app) if n.startswith("Could not")]
        assert len(unreachable) == 1
        assert unreachable == [
            f"Could not add a fault: {app.connection_detail}. Retrying the connection."
        ]
        assert url in app.connection_detail


def test_the_call_log_numbers_each_call_once() -> None:
    """The server answers its last 1,000 calls with no id: each read adds only what is new."""
    from datetime import UTC, datetime

    from mock_qrm.contract.models import ApiCall

    def call(n: int) -> ApiCall:
        at = datetime(2026, 12, 1, 10, 0, n, tzinfo=UTC)
        return ApiCall(at=at, method="GET", path=f"/api/v1/reports/{n}", status=200)

    log = CallLog()
    assert log.merge([call(1), call(2)]) == ([1, 2], [])
    assert log.merge([call(1), call(2)]) == ([], [])
    assert log.merge([call(2), call(3), call(4)]) == ([3, 4], [1])  # the oldest fell off
    assert log.merge([call(9)]) == ([5], [2, 3, 4])  # a reset: all new
    assert log.merge([]) == ([], [5])
    assert list(log.calls) == []
