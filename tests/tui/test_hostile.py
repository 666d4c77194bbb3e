"""Data is shown as it is, never acted on (SPEC.md section 9.2): names, bodies and report
fields full of terminal control characters and markup reach the screen as escapes.

The server refuses such text now; what it holds from before the rule, and what a
receiver answers, still arrives. Each test asserts on what the terminal would be sent:
every line of the screen as rendered, with no control character in it.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer
from textual.widgets import Input, Select, Static

from mock_qrm.client import QrmClient
from mock_qrm.contract.models import BasicAuthIn, WebhookCreate
from mock_qrm.contract.timefmt import from_ms
from qrm_tui.app import QrmTuiApp
from qrm_tui.screens.deliveries import DeliveriesScreen
from qrm_tui.screens.inspector import DeliveryInspector
from qrm_tui.screens.reports import ReportScreen
from qrm_tui.screens.webhooks import WebhooksScreen
from qrm_tui.widgets.confirm import ConfirmDialog
from qrm_tui.widgets.webhook_form import WebhookForm
from tests.tui.conftest import (
    SIZE,
    column,
    delivery_rows,
    live_rows,
    notifications,
    ready,
    service,
    text_of,
    tui,
    until,
)

NAME = "a\x1b[31mb\x07 [/] [b]c[/b]\x9b"
"""ESC starting a colour, BEL, C1 CSI, and markup that would crash Rich (`[/]`) or bold."""
SHOWN = "a\\x1b[31mb\\x07 [/] [b]c[/b]\\x9b"
BODY = "boom\x1b[2J\x00 [red]x[/red]\x9b\nsecond line"


def screen_lines(app: QrmTuiApp) -> list[str]:
    """The screen as the terminal would be sent it: each line's text, as rendered."""
    return [strip.text for strip in app.screen._compositor.render_strips()]


def raw_controls(app: QrmTuiApp) -> list[str]:
    return [
        repr(ch)
        for line in screen_lines(app)
        for ch in line
        if ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F or ch in "\u2028\u2029"
    ]


async def stored_before_the_rule(
    server: TestServer, name: str, url: str, username: str | None = None
) -> int:
    """A webhook the server holds from before the text rule: made without its checks."""
    spec = WebhookCreate.model_construct(
        name=name,
        url=url,
        events=["report.created"],
        basic_auth=None
        if username is None
        else BasicAuthIn.model_construct(username=username, password="p"),
        active=True,
        headers={},
        rate_limit=None,
    )
    return (await service(server).create_webhook(spec)).id


async def hostile_receiver(aiohttp_server: Any) -> str:
    async def answer(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=500, text=BODY)

    app = web.Application()
    app.router.add_post("/hook", answer)
    receiver: TestServer = await aiohttp_server(app)
    return str(receiver.make_url("/hook"))


async def test_a_hostile_webhook_name_is_escaped_in_the_table_dialogs_and_notices(
    server: TestServer,
) -> None:
    await stored_before_the_rule(server, NAME, "http://127.0.0.1:1/ok", username=NAME)
    app = tui(server)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await until(pilot, lambda: column(app, "name") == [SHOWN], "the escaped name")
        assert column(app, "auth")[0].startswith("a\\x1b[31mb")
        assert raw_controls(app) == []
        assert any(SHOWN[:12] in line for line in screen_lines(app))  # markup as written, cut

        await pilot.press("e")  # the edit form: the name as it is, to see and fix
        form = await until(pilot, lambda: isinstance(app.screen, WebhookForm) and app.screen)
        assert form.query_one("#name", Input).value == SHOWN
        assert form.query_one("#username", Input).value == SHOWN
        assert raw_controls(app) == []
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, WebhooksScreen))

        await pilot.press("d")
        dialog = await until(pilot, lambda: isinstance(app.screen, ConfirmDialog) and app.screen)
        assert SHOWN in str(dialog.query_one("#confirm-message", Static).render())
        assert raw_controls(app) == []
        await pilot.click("#confirm")
        await until(pilot, lambda: column(app, "name") == [], "the row to go")
        assert f"Removed webhook “{SHOWN}”." in notifications(app)


async def test_a_hostile_name_and_answer_are_escaped_in_the_deliveries_and_the_inspector(
    server: TestServer, other: QrmClient, aiohttp_server: Any
) -> None:
    url = await hostile_receiver(aiohttp_server)
    await stored_before_the_rule(server, NAME, url)
    await other.upload_report()
    app = tui(server, start_mode="deliveries")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await until(pilot, lambda: delivery_rows(app) and delivery_rows(app)[0]["code"] == "500")
        assert delivery_rows(app)[0]["webhook"] == SHOWN
        select = app.screen.query_one("#webhook-filter", Select)
        assert [str(prompt) for prompt, _ in select._options[1:]] == [SHOWN]
        await pilot.click("#webhook-filter")  # the list of names opens: markup stays text
        await until(pilot, lambda: sum(SHOWN[:12] in line for line in screen_lines(app)) >= 2)
        assert raw_controls(app) == []
        await pilot.press("escape")
        assert isinstance(app.screen, DeliveriesScreen)
        app.screen.query_one("#delivery-table").focus()
        await pilot.press("enter")
        inspector = await until(
            pilot, lambda: isinstance(app.screen, DeliveryInspector) and app.screen
        )
        await until(pilot, lambda: list(inspector.query(".attempt")), "the attempt")
        title = str(inspector.query_one("#inspector-title").render())
        assert title.startswith(f"Delivery #1 · {SHOWN} · report.created")
        [attempt] = inspector.query(".attempt").results(Static)
        shown = "\n".join(line.rstrip() for line in text_of(attempt).splitlines())
        assert "boom\\x1b[2J\\x00 [red]x[/red]\\x9b\nsecond line" in shown  # its lines kept
        await pilot.pause()
        assert raw_controls(app) == []


async def test_a_hostile_report_field_is_escaped_in_the_list_and_the_document(
    server: TestServer,
) -> None:
    from mock_qrm.server.reports.overrides import CheckedOverrides

    qrm = service(server)
    created_at = from_ms(round(qrm.clock.now() * 1000))
    report = await qrm.dispatcher.upload(  # made without the override rules
        lambda report_id: qrm.generator.generate(
            report_id, created_at, CheckedOverrides({"caseNumber": NAME})
        )
    )
    app = tui(server, start_mode="reports")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await until(pilot, lambda: live_rows(app, "#report-table"), "the reports")
        newest = live_rows(app, "#report-table")[0]
        assert (newest["id"], newest["case"]) == (str(report.id), SHOWN)
        assert raw_controls(app) == []
        await pilot.press("enter")
        screen = await until(pilot, lambda: isinstance(app.screen, ReportScreen) and app.screen)
        document = screen.query_one("#report-document", Static)
        await until(pilot, lambda: '"inspectionGeneral"' in text_of(document), "the document")
        assert '"caseNumber": "a\\u001b[31mb\\u0007 [/] [b]c[/b]\\u009b"' in text_of(document)
        assert f"case {SHOWN}" in str(screen.query_one("#report-title").render())
        await pilot.pause()
        assert raw_controls(app) == []


async def test_every_notification_shows_its_text_as_it_is(server: TestServer) -> None:
    """The one place notices are made: a server's message or a name never acts on the
    terminal, and markup is never read (`[/]` used to raise)."""
    app = tui(server)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        app.notify(NAME, title=NAME)
        app.connection_notice(NAME, title="Server unreachable")
        await pilot.pause()
        assert notifications(app)[-2:] == [SHOWN, SHOWN]
        assert raw_controls(app) == []
