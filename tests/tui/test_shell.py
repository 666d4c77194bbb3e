"""The shell: screens as modes, the header, `?` help, the command palette, `q`."""

from __future__ import annotations

from aiohttp.test_utils import TestServer
from textual.command import CommandList, CommandPalette
from textual.widgets import Input

from mock_qrm.client import QrmClient
from qrm_tui.app import QrmTuiApp
from qrm_tui.commands import QrmCommands
from qrm_tui.screens.deliveries import DeliveriesScreen
from qrm_tui.screens.help import HelpScreen
from qrm_tui.screens.inspector import DeliveryInspector
from qrm_tui.screens.reports import ReportsScreen
from qrm_tui.screens.webhooks import WebhooksScreen
from qrm_tui.widgets.confirm import ConfirmDialog
from qrm_tui.widgets.webhook_form import WebhookForm
from tests.tui.conftest import SIZE, delivery_rows, ready, tui, until, url_of


async def test_1_2_3_switch_screens_and_the_header_follows(server: TestServer) -> None:
    app = tui(server)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("2")
        assert isinstance(app.screen, DeliveriesScreen)
        assert app.screen.query_one("#delivery-table").has_focus
        assert str(app.screen.query_one("#connection").render()) == "● connected"
        await pilot.press("3")
        assert isinstance(app.screen, ReportsScreen)
        await pilot.click(".mode-tab")  # the header's "1 Webhooks"
        assert isinstance(app.screen, WebhooksScreen)


async def test_help_lists_every_binding_with_its_description(server: TestServer) -> None:
    app = tui(server)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("question_mark")
        help_screen = await until(pilot, lambda: isinstance(app.screen, HelpScreen) and app.screen)
        listed = {(row.key, row.description) for row in help_screen.rows}
        for key, description in [
            ("n", "Add"),
            ("e", "Edit"),
            ("⏎", "Edit"),
            ("space", "On/off"),
            ("d", "Remove"),
            ("/", "Filter"),
            ("1", "Webhooks"),
            ("2", "Deliveries"),
            ("3", "Reports"),
            ("?", "Help"),
            ("q", "Quit"),
        ]:
            assert (key, description) in listed
        # Every key the footer and the rows answer to on the other screens, `enter` included.
        rows = {(row.where, row.key, row.description) for row in help_screen.rows}
        assert ("Deliveries", "⏎", "Open") in rows
        assert ("Reports", "⏎", "Open") in rows
        assert ("Deliveries", "f", "Follow") in rows
        await pilot.press("escape")
        assert isinstance(app.screen, WebhooksScreen)


async def test_a_screens_number_opens_its_list_whatever_was_open_there(
    server: TestServer, other: QrmClient
) -> None:
    """`2` after the inspector, then `3`, is the Deliveries list, not the inspector again."""
    await other.create_webhook("Hook", "http://127.0.0.1:9/x", ["report.created"])
    await other.upload_report()
    app = tui(server, start_mode="deliveries")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await until(pilot, lambda: len(delivery_rows(app)) == 1, "the delivery")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DeliveryInspector), "the inspector")
        await pilot.press("3")
        assert isinstance(app.screen, ReportsScreen)
        await pilot.press("2")
        assert isinstance(app.screen, DeliveriesScreen)
        assert len(app.screen_stack) == 1


def test_every_screen_qrm_tui_opens_on_is_a_screen_of_the_app() -> None:
    from qrm_tui.__main__ import SCREENS
    from qrm_tui.app import QrmTuiApp

    assert set(SCREENS) == set(QrmTuiApp.MODES)


async def test_the_palette_offers_every_action(server: TestServer) -> None:
    async with QrmClient(url_of(server)) as other:
        await other.create_webhook("Orders", "http://127.0.0.1:1/o", ["report.created"])
    app = tui(server)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("2", "ctrl+p")
        palette = await until(pilot, lambda: isinstance(app.screen, CommandPalette) and app.screen)
        titles = [title for title, _, _ in _qrm_commands(app)]
        assert {
            "Add a webhook",
            "Edit the selected webhook",
            "Activate or deactivate the selected webhook",
            "Remove the selected webhook (asks first)",
            "Filter webhooks by name or URL",
            "Show webhooks",
            "Show deliveries",
            "Show reports",
            "List every key",
            "Quit qrm-tui",
            "Follow the newest deliveries again",
            "Load the next page of older deliveries",
            "Redeliver every failed delivery matching the filters (asks first)",
            "Filter deliveries by webhook, event and state",
            "Simulate an inspector uploading a report",
        } <= set(titles)
        palette.query_one(Input).value = "remove the selected"
        await until(pilot, lambda: palette.query_one(CommandList).option_count, "a hit", 2)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the remove dialog")
        assert app.current_mode == "webhooks"
        await pilot.press("escape")

        await pilot.press("ctrl+p")
        palette = await until(pilot, lambda: isinstance(app.screen, CommandPalette) and app.screen)
        palette.query_one(Input).value = "add a webhook"
        await until(pilot, lambda: palette.query_one(CommandList).option_count, "a hit", 2)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, WebhookForm), "the form")
        await pilot.press("escape")

        await pilot.press("ctrl+p")  # a screen's action from anywhere: its screen first
        palette = await until(pilot, lambda: isinstance(app.screen, CommandPalette) and app.screen)
        palette.query_one(Input).value = "simulate an inspector"
        await until(pilot, lambda: palette.query_one(CommandList).option_count, "a hit", 2)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ReportsScreen), "the reports")
        await until(pilot, lambda: any(n.startswith("Report 12306 uploaded") for n in _notes(app)))


def _notes(app: QrmTuiApp) -> list[str]:
    return [notification.message for notification in app._notifications]


def _qrm_commands(app: QrmTuiApp) -> list[tuple[str, str, object]]:
    return list(QrmCommands(app.screen_stack[0]).commands())


async def test_q_quits(server: TestServer) -> None:
    app = tui(server)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("q")
        await until(pilot, lambda: not app.is_running, "the app to exit")


async def test_q_in_a_text_field_is_just_a_letter(server: TestServer) -> None:
    app = tui(server)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("n")
        form = await until(pilot, lambda: isinstance(app.screen, WebhookForm) and app.screen)
        await pilot.press("q", "2")
        assert form.query_one("#name", Input).value == "q2"
        assert app.is_running and app.screen is form


async def test_a_terminal_that_hangs_up_ends_the_app(server: TestServer) -> None:
    """`make run` in a tmux session that is killed: no SIGHUP reaches the app, only EIO."""
    import os

    app = tui(server)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        master, terminal = os.openpty()
        app._terminal = terminal
        app._exit_if_hung_up()
        assert app.return_code is None  # the terminal is still there
        os.close(master)  # the terminal goes away
        try:
            app._exit_if_hung_up()
        finally:
            os.close(terminal)
        await pilot.pause()
    assert app.return_code == 129
