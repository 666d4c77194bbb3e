"""The delivery inspector: the message as sent and every attempt's request and response,
live while open; `r` redelivers, `c` and `p` copy."""

from __future__ import annotations

from aiohttp.test_utils import TestServer
from textual.widgets import Static

from mock_qrm.client import QrmClient
from mock_qrm.receiver import RunningReceiver
from qrm_tui.app import QrmTuiApp
from qrm_tui.screens.deliveries import DeliveriesScreen
from qrm_tui.screens.inspector import DeliveryInspector
from tests.tui.conftest import (
    SIZE,
    ServerFactory,
    delivery_rows,
    notifications,
    ready,
    text_of,
    tui,
    until,
    until_async,
    url_of,
)


def attempts(app: QrmTuiApp) -> list[tuple[str, str]]:
    """Each attempt on screen: its title and its text."""
    return [
        (str(widget.border_title), text_of(widget))
        for widget in app.screen.query(".attempt").results(Static)
    ]


async def open_first_row(app: QrmTuiApp, pilot: object) -> DeliveryInspector:
    await pilot.press("enter")  # type: ignore[attr-defined]
    return await until(pilot, lambda: isinstance(app.screen, DeliveryInspector) and app.screen)  # type: ignore[arg-type]


async def test_the_inspector_shows_the_message_and_each_attempt_and_follows_new_ones(
    server: TestServer, other: QrmClient, receiver: RunningReceiver
) -> None:
    await other.create_webhook("Broken", receiver.url + "/status/500", ["report.created"])
    uploaded = await other.upload_report()
    app = tui(server, start_mode="deliveries")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await until(pilot, lambda: delivery_rows(app) and delivery_rows(app)[0]["code"] == "500")
        inspector = await open_first_row(app, pilot)
        await until(pilot, lambda: len(attempts(app)) == 1, "the first attempt")
        title = str(inspector.query_one("#inspector-title").render())
        assert title == f"Delivery #1 · Broken · report.created · report {uploaded.resource_id}"
        assert str(inspector.query_one("#inspector-state").render()).startswith(
            "↻ retry in 60 s · attempt 1 of 4"
        )
        message = text_of(inspector.query_one("#message", Static))
        assert '"eventCode": "report.created"' in message
        assert f'"path": "/reports/{uploaded.resource_id}"' in message

        heading, body = attempts(app)[0]
        assert heading.startswith("Attempt 1 of 4 · automatic · ")
        assert "✗ failure · status 500" in body
        assert f"POST {receiver.url}/status/500" in body
        assert "Content-Type: application/json" in body  # request headers
        assert '"messageId":"wh-' in body  # the body as sent, byte for byte
        assert "Response headers (status 500)" in body
        assert "Response body (15 bytes, not truncated)" in body
        assert '"status": 500' in body

        await other.advance(61)  # the retry happens while the inspector is open
        await until(pilot, lambda: len(attempts(app)) == 2, "the second attempt, live")
        assert attempts(app)[1][0].startswith("Attempt 2 of 4 · automatic")
        await until(
            pilot,
            lambda: "attempt 2 of 4" in str(inspector.query_one("#inspector-state").render()),
        )
        await pilot.press("escape")
        assert isinstance(app.screen, DeliveriesScreen)


async def test_a_timeout_shows_the_error_class_and_no_response(
    qrm_server: ServerFactory, receiver: RunningReceiver
) -> None:
    server = await qrm_server(timeout=0.2)
    async with QrmClient(url_of(server)) as other:
        await other.create_webhook("Slow", receiver.url + "/delay/2", ["report.created"])
        await other.upload_report()
        app = tui(server, start_mode="deliveries")
        async with app.run_test(size=SIZE) as pilot:
            await ready(pilot)
            await until(
                pilot, lambda: delivery_rows(app) and delivery_rows(app)[0]["code"] == "timeout"
            )
            await open_first_row(app, pilot)
            await until(pilot, lambda: len(attempts(app)) == 1)
            _, body = attempts(app)[0]
            assert "✗ failure · error timeout (no response status)" in body
            assert "No response" in body


async def test_r_redelivers_and_shows_the_manual_attempt(
    server: TestServer, other: QrmClient, receiver: RunningReceiver
) -> None:
    await other.create_webhook("Flaky", receiver.url + "/flaky/1", ["report.created"])
    await other.upload_report()
    app = tui(server, start_mode="deliveries")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await until(pilot, lambda: delivery_rows(app) and delivery_rows(app)[0]["code"] == "500")
        await open_first_row(app, pilot)
        await until(pilot, lambda: len(attempts(app)) == 1)
        await pilot.press("r")
        await until(pilot, lambda: len(attempts(app)) == 2, "the manual attempt")
        heading, body = attempts(app)[1]
        assert heading.startswith("Attempt 2 · manual redelivery")
        assert "✓ success · status 200" in body
        assert any(n.startswith("Attempt 2 delivered: 200 in ") for n in notifications(app))
        detail = await until_async(
            lambda: other.delivery(1), lambda d: d.status == "delivered", "the journal"
        )
        assert [a.trigger for a in detail.attempts] == ["automatic", "manual"]
        await until(
            pilot, lambda: "✓ delivered" in str(app.screen.query_one("#inspector-state").render())
        )
        state = str(app.screen.query_one("#inspector-state").render())
        assert "attempt 1 of 4 + 1 manual" in state
        await pilot.press("escape")  # the row says it too, never as another 2/4 (SPEC 8.1)
        await until(pilot, lambda: delivery_rows(app)[0]["attempt"] == "1/4 +1", "the row's +1")


async def test_c_and_p_copy_the_message_id_and_the_body_as_sent(
    server: TestServer, other: QrmClient, receiver: RunningReceiver
) -> None:
    await other.create_webhook("Healthy", receiver.url + "/ok", ["report.created"])
    await other.upload_report()
    app = tui(server, start_mode="deliveries")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await until(pilot, lambda: delivery_rows(app) and delivery_rows(app)[0]["code"] == "200")
        await open_first_row(app, pilot)
        await until(pilot, lambda: len(attempts(app)) == 1)
        detail = await other.delivery(1)
        await pilot.press("c")
        assert app.clipboard == detail.message_id
        assert f"Copied {detail.message_id}" in notifications(app)
        await pilot.press("p")
        assert app.clipboard == detail.attempts[0].request_body
        assert app.clipboard.startswith('{"messageId":"wh-')


async def test_a_redelivery_that_fails_says_so_and_the_calls_list_claims_no_caller(
    server: TestServer, other: QrmClient, receiver: RunningReceiver
) -> None:
    await other.create_webhook("Broken", receiver.url + "/status/500", ["report.created"])
    await other.upload_report()
    app = tui(server, start_mode="deliveries")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await until(pilot, lambda: delivery_rows(app) and delivery_rows(app)[0]["code"] == "500")
        await open_first_row(app, pilot)
        await until(pilot, lambda: len(attempts(app)) == 1)
        titles = [str(label.render()) for label in app.screen.query(".section-title")]
        # QRM's API records no caller: the list says it is every client's, not the receiver's.
        assert "Calls to QRM's API for this report, from any client" in titles
        await pilot.press("r")
        await until(pilot, lambda: len(attempts(app)) == 2, "the manual attempt")
        said = [(n.title, n.message) for n in app._notifications]
        assert any(
            title == "Redelivery failed" and message.startswith("Attempt 2 failed: 500 in ")
            for title, message in said
        ), said
        assert not any(title == "Redelivered" for title, _ in said)


def test_a_wrapped_body_line_keeps_its_indentation() -> None:
    """A long JSON line wraps under its own indentation, never back at the left edge."""
    import io

    from rich.console import Console

    from qrm_tui.format import indented, pretty_json

    body = pretty_json('{"payload": {"note": "' + "word " * 12 + '"}}')
    console = Console(file=io.StringIO(), width=30, color_system=None)
    console.print(indented(body, 2))
    lines = console.file.getvalue().splitlines()  # type: ignore[attr-defined]
    note = next(i for i, line in enumerate(lines) if '"note"' in line)
    assert lines[note].startswith('      "note"')  # 2 + 4 columns in
    assert lines[note + 1].startswith("      ") and lines[note + 1].strip()  # wrapped, indented
