"""What the main screens look like, pinned as SVG snapshots (`--snapshot-update` to accept).

Deterministic: an embedded server on a manual clock with fixed data, a fixed header
label (no port), no animation and no cursor blink.
"""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot
from textual.widgets import Input, Switch

from qrm_tui.app import QrmTuiApp, Target
from qrm_tui.screens.webhooks import WebhooksScreen
from qrm_tui.widgets.confirm import ConfirmDialog
from qrm_tui.widgets.webhook_form import WebhookForm
from tests.conftest import make_settings
from tests.tui.conftest import LABEL, SIZE, column, ready, until


def _app() -> QrmTuiApp:
    settings = make_settings(host="127.0.0.1", port=0, time_scale=60)
    app = QrmTuiApp(Target(embedded=settings), server_label=LABEL)
    app.animation_level = "none"
    return app


async def _with_webhooks(pilot: Pilot[Any]) -> QrmTuiApp:
    app = await ready(pilot)
    client = app.client
    await client.create_webhook(
        "Orders receiver",
        "http://127.0.0.1:1/orders",
        ["report.created", "report.file_ready"],
        basic_auth=("qrm", "secret"),
    )
    await client.create_webhook(
        "Staging", "https://staging.example.com/qrm/webhook", ["report.created"], active=False
    )
    await client.create_webhook("Archive", "http://127.0.0.1:1/archive", ["report.file_ready"])
    await client.upload_report()
    await until(
        pilot,
        lambda: (
            column(app, "last") == ["⟳ connection_refused", "—", "—"]
            and column(app, "status")[1] == "○ inactive"
        ),
        "the table to settle",
    )
    screen = app.screen
    assert isinstance(screen, WebhooksScreen)
    screen.redraw()  # the same strips whatever order the feed's updates came in
    await pilot.pause()
    return app


def _no_blink(app: QrmTuiApp) -> None:
    for field in app.screen.query(Input):
        field.cursor_blink = False


def test_webhooks_screen(snap_compare: Any) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await _with_webhooks(pilot)

    assert snap_compare(_app(), terminal_size=SIZE, run_before=run_before)


def test_form_with_validation_errors(snap_compare: Any) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        app = await _with_webhooks(pilot)
        await pilot.press("n")
        form = await until(pilot, lambda: isinstance(app.screen, WebhookForm) and app.screen)
        _no_blink(app)
        form.query_one("#name", Input).value = "Orders"
        form.query_one("#url", Input).value = "ftp://example.com/hook"
        form.query_one("#basic-auth", Switch).value = True
        await pilot.pause()
        form.query_one("#username", Input).value = "a:b"
        await pilot.press("ctrl+s")
        await pilot.pause()

    assert snap_compare(_app(), terminal_size=SIZE, run_before=run_before)


def test_remove_dialog(snap_compare: Any) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        app = await _with_webhooks(pilot)
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))

    assert snap_compare(_app(), terminal_size=SIZE, run_before=run_before)
