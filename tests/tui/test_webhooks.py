"""The Webhooks screen: the table, add/edit through the form, on/off, remove, filter,
and changes made elsewhere showing up by themselves."""

from __future__ import annotations

from aiohttp.test_utils import TestServer
from textual.widgets import Button, Checkbox, Input, Switch, TextArea

from mock_qrm.client import QrmClient
from mock_qrm.receiver import RunningReceiver
from qrm_tui.layout import shorten_middle
from qrm_tui.screens.webhooks import WebhooksScreen
from qrm_tui.widgets.confirm import ConfirmDialog
from qrm_tui.widgets.webhook_form import WebhookForm
from tests.tui.conftest import (
    SIZE,
    column,
    error_under,
    fill,
    ready,
    rows,
    service,
    tui,
    until,
)


async def test_the_table_shows_status_name_url_events_auth_and_last_delivery(
    server: TestServer, other: QrmClient, receiver: RunningReceiver
) -> None:
    await other.create_webhook("Orders", receiver.url + "/ok", ["report.created"], ("qrm", "pw"))
    await other.create_webhook(
        "Broken", receiver.url + "/status/500", ["report.created", "report.file_ready"]
    )
    paused = await other.create_webhook("Paused", "http://127.0.0.1:1/x", ["report.created"])
    await other.set_active(paused.id, False)
    app = tui(server)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        screen = app.screen
        assert isinstance(screen, WebhooksScreen)
        urls = [receiver.url + "/ok", receiver.url + "/status/500", "http://127.0.0.1:1/x"]
        no_attempt_yet = ["—", "—"]  # success rate, p95
        assert rows(app) == [
            [
                "● active",
                "Orders",
                shown_url(screen, urls[0]),
                "report.created",
                "qrm",
                "—",
                *no_attempt_yet,
            ],
            [
                "● active",
                "Broken",
                shown_url(screen, urls[1]),
                "report.created +1",
                "—",
                "—",
                *no_attempt_yet,
            ],
            ["○ inactive", "Paused", urls[2], "report.created", "—", "—", *no_attempt_yet],
        ]
        await other.upload_report()
        await until(
            pilot,
            lambda: column(app, "last") == ["✓ 200", "↻ 500", "—"],
            "the deliveries' results from the feed",
        )
        await until(
            pilot,
            lambda: column(app, "success") == ["100%", "0%", "—"],
            "the success rates, read once the feed told of the attempts",
        )
        latency = [stats.latency_ms.p95 for stats in map(app.webhook_stats.get, (1, 2))]
        assert column(app, "p95") == [f"{ms} ms" for ms in latency] + ["—"]


def shown_url(screen: WebhooksScreen, url: str) -> str:
    """A URL as its column shows it: whole if it fits, else without its middle."""
    return shorten_middle(url, screen.widths["url"])


async def test_add_a_webhook_with_the_keyboard(server: TestServer) -> None:
    app = tui(server)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        assert "No webhooks yet" in str(app.screen.query_one("#empty").render())
        await pilot.press("n")
        form = await until(pilot, lambda: isinstance(app.screen, WebhookForm) and app.screen)
        assert form.query_one("#submit", Button).label.plain == "Add webhook"
        await pilot.press(*"Orders")
        await pilot.press("tab", *"http://127.0.0.1:1/o")
        await pilot.press("tab", "space")  # the Inspection switch: every event
        assert [box.value for box in form.query(Checkbox)] == [True, True]
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, WebhooksScreen), "the form to close")
        no_attempt_yet = ["—", "—"]  # success rate, p95
        assert rows(app) == [
            [
                "● active",
                "Orders",
                "http://127.0.0.1:1/o",
                "report.created +1",
                "—",
                "—",
                *no_attempt_yet,
            ]
        ]
        [stored] = service(server).webhooks.values()
        assert (stored.name, list(stored.events), stored.active) == (
            "Orders",
            ["report.created", "report.file_ready"],
            True,
        )


async def test_add_with_basic_auth_sends_username_and_password(server: TestServer) -> None:
    app = tui(server)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("n")
        form = await until(pilot, lambda: isinstance(app.screen, WebhookForm) and app.screen)
        assert not form.query_one("#auth-fields").display
        await fill(pilot, "#name", "Secured")
        await fill(pilot, "#url", "https://127.0.0.1:1/hook")
        await pilot.click(Checkbox)
        form.query_one("#basic-auth", Switch).value = True
        await pilot.pause()
        assert form.query_one("#auth-fields").display
        assert form.query_one("#password", Input).password  # masked
        await fill(pilot, "#username", "qrm")
        await fill(pilot, "#password", "s3cret")
        await pilot.click("#submit")
        await until(pilot, lambda: column(app, "auth") == ["qrm"], "the new row")
        [stored] = service(server).webhooks.values()
        assert stored.basic_auth == ("qrm", "s3cret")
        assert stored.events == ("report.created",)


async def test_every_rule_is_checked_inline_before_sending(server: TestServer) -> None:
    app = tui(server)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("n")
        form = await until(pilot, lambda: isinstance(app.screen, WebhookForm) and app.screen)
        await pilot.press("ctrl+s")
        assert error_under(app, "name") == "Name is required"
        assert error_under(app, "url") == "URL is required"
        assert error_under(app, "events") == "Select at least one event"
        assert app.focused is form.query_one("#name", Input)

        await fill(pilot, "#name", "x" * 101)
        await fill(pilot, "#url", "http://user:pw@example.com/hook")
        assert error_under(app, "name") == "Name must be at most 100 characters"
        assert error_under(app, "url") == (
            "URL must not contain credentials; use basic authentication"
        )
        await fill(pilot, "#url", "ftp://example.com/hook")
        assert error_under(app, "url") == "URL must start with http:// or https://"
        await fill(pilot, "#url", "http://" + "a" * 2050)
        assert error_under(app, "url") == "URL must be at most 2048 characters"

        form.query_one("#basic-auth", Switch).value = True
        await pilot.pause()
        await fill(pilot, "#username", "a:b")
        assert error_under(app, "username") == "Username must not contain ':'"
        assert error_under(app, "password") == "Password is required"

        await fill(pilot, "#name", "  Fine  ")
        await fill(pilot, "#url", "http://example.com/hook")
        await pilot.click(Checkbox)
        await fill(pilot, "#username", "ab")
        await fill(pilot, "#password", "pw")
        assert form.check() == {}
        assert service(server).webhooks == {}  # nothing was sent yet
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog), "discard changes?")
        await pilot.click("#confirm")
        await until(pilot, lambda: isinstance(app.screen, WebhooksScreen), "the form to close")
        assert service(server).webhooks == {}


async def test_the_servers_422_lands_on_its_field(server: TestServer) -> None:
    """A client whose event catalog is newer than the server's: the server has the last word."""
    app = tui(server)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        newer = app.components[0].model_copy(deep=True)
        newer.events.append(newer.events[0].model_copy(update={"event_code": "report.deleted"}))
        await app.push_screen(WebhookForm(app.client, [newer]))
        form = await until(pilot, lambda: isinstance(app.screen, WebhookForm) and app.screen)
        await fill(pilot, "#name", "Future")
        await fill(pilot, "#url", "http://127.0.0.1:1/x")
        form.query_one("#component-0", Switch).value = True
        await pilot.press("ctrl+s")
        await until(pilot, lambda: error_under(app, "events"), "the server's answer")
        assert error_under(app, "events") == (
            "Unknown event code: report.deleted; known: report.created, report.file_ready"
        )
        assert isinstance(app.screen, WebhookForm)
        assert service(server).webhooks == {}


async def test_the_component_switch_selects_all_and_shows_a_partial_choice(
    server: TestServer,
) -> None:
    app = tui(server)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("n")
        form = await until(pilot, lambda: isinstance(app.screen, WebhookForm) and app.screen)
        switch = form.query_one("#component-0", Switch)
        count = form.query_one("#component-0-count")
        boxes = list(form.query(Checkbox))
        await pilot.click(switch)
        assert [box.value for box in boxes] == [True, True]
        assert str(count.render()) == "2 of 2 selected"
        await pilot.click(boxes[1])
        assert switch.value is False  # partial: the switch is off, the count says so
        assert str(count.render()) == "1 of 2 selected"
        assert count.has_class("-partial")
        await pilot.click(switch)
        assert [box.value for box in boxes] == [True, True]
        await pilot.click(switch)
        assert [box.value for box in boxes] == [False, False]
        assert str(count.render()) == "0 of 2 selected"


async def test_edit_prefills_everything_but_the_password_and_blank_keeps_it(
    server: TestServer, other: QrmClient
) -> None:
    webhook = await other.create_webhook(
        "Orders", "http://127.0.0.1:1/orders", ["report.created"], ("qrm", "stored-pw")
    )
    app = tui(server)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("e")
        form = await until(pilot, lambda: isinstance(app.screen, WebhookForm) and app.screen)
        assert form.query_one("#submit", Button).label.plain == "Save changes"
        assert form.query_one("#name", Input).value == "Orders"
        assert form.query_one("#url", Input).value == "http://127.0.0.1:1/orders"
        assert [box.value for box in form.query(Checkbox)] == [True, False]
        assert form.query_one("#basic-auth", Switch).value
        assert form.query_one("#username", Input).value == "qrm"
        assert form.query_one("#password", Input).value == ""
        await fill(pilot, "#name", "Orders v2")
        await pilot.press("enter")
        await until(pilot, lambda: column(app, "name") == ["Orders v2"], "the edited row")
        stored = service(server).webhooks[webhook.id]
        assert (stored.name, stored.basic_auth) == ("Orders v2", ("qrm", "stored-pw"))


async def test_edit_can_change_the_password_or_turn_basic_auth_off(
    server: TestServer, other: QrmClient
) -> None:
    webhook = await other.create_webhook(
        "Orders", "http://127.0.0.1:1/orders", ["report.created"], ("qrm", "old")
    )
    app = tui(server)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, WebhookForm))
        await fill(pilot, "#password", "new")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, WebhooksScreen))
        assert service(server).webhooks[webhook.id].basic_auth == ("qrm", "new")

        await pilot.press("e")
        form = await until(pilot, lambda: isinstance(app.screen, WebhookForm) and app.screen)
        form.query_one("#basic-auth", Switch).value = False
        await pilot.press("ctrl+s")
        await until(pilot, lambda: column(app, "auth") == ["—"], "auth off in the table")
        assert service(server).webhooks[webhook.id].basic_auth is None


async def test_turning_basic_auth_on_in_edit_needs_a_password(
    server: TestServer, other: QrmClient
) -> None:
    await other.create_webhook("Open", "http://127.0.0.1:1/x", ["report.created"])
    app = tui(server)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("e")
        form = await until(pilot, lambda: isinstance(app.screen, WebhookForm) and app.screen)
        form.query_one("#basic-auth", Switch).value = True
        await fill(pilot, "#username", "qrm")
        await pilot.press("ctrl+s")
        assert error_under(app, "password") == "Password is required"
        assert isinstance(app.screen, WebhookForm)


async def test_space_deactivates_and_activates(server: TestServer, other: QrmClient) -> None:
    webhook = await other.create_webhook("Orders", "http://127.0.0.1:1/x", ["report.created"])
    app = tui(server)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("space")
        await until(pilot, lambda: column(app, "status") == ["○ inactive"], "inactive")
        assert service(server).webhooks[webhook.id].active is False
        assert app.screen.query_one("#toggle_active", Button).label.plain == "Activate"
        await pilot.press("space")
        await until(pilot, lambda: column(app, "status") == ["● active"], "active again")
        assert service(server).webhooks[webhook.id].active is True


async def test_remove_asks_first_and_escape_cancels(server: TestServer, other: QrmClient) -> None:
    await other.create_webhook("Keep me", "http://127.0.0.1:1/keep", ["report.created"])
    gone = await other.create_webhook("Remove me", "http://127.0.0.1:1/gone", ["report.created"])
    app = tui(server)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("down", "d")
        dialog = await until(pilot, lambda: isinstance(app.screen, ConfirmDialog) and app.screen)
        assert dialog.query_one("#confirm", Button).label.plain == "Remove webhook"
        assert app.focused is dialog.query_one("#cancel", Button)
        await pilot.press("enter")  # on Cancel
        await until(pilot, lambda: isinstance(app.screen, WebhooksScreen))
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, WebhooksScreen))
        assert column(app, "name") == ["Keep me", "Remove me"]
        assert gone.id in service(server).webhooks

        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.click("#confirm")
        await until(pilot, lambda: column(app, "name") == ["Keep me"], "the row to go")
        assert gone.id not in service(server).webhooks


async def test_slash_filters_by_name_or_url_and_escape_clears(
    server: TestServer, other: QrmClient
) -> None:
    await other.create_webhook("Orders", "http://127.0.0.1:1/orders", ["report.created"])
    await other.create_webhook("Billing", "http://127.0.0.1:1/invoices", ["report.created"])
    await other.create_webhook("Audit", "http://127.0.0.1:1/audit", ["report.created"])
    app = tui(server)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("slash")
        assert app.focused is app.screen.query_one("#filter", Input)
        await pilot.press(*"ORD")
        assert column(app, "name") == ["Orders"]
        await pilot.press("backspace", "backspace", "backspace", *"inv")
        assert column(app, "name") == ["Billing"]  # matched on the URL
        await pilot.press(*"zzz")
        assert column(app, "name") == []
        assert "No webhook matches" in str(app.screen.query_one("#empty").render())
        await pilot.press("escape")
        assert column(app, "name") == ["Orders", "Billing", "Audit"]
        assert not app.screen.query_one("#filter-bar").display


async def test_changes_made_elsewhere_appear_without_a_refresh(
    server: TestServer, other: QrmClient
) -> None:
    app = tui(server)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        webhook = await other.create_webhook(
            "From curl", "http://127.0.0.1:1/a", ["report.created"]
        )
        await until(pilot, lambda: column(app, "name") == ["From curl"], "created elsewhere")
        await other.update_webhook(webhook.id, {"name": "Renamed", "url": "http://127.0.0.1:1/b"})
        await until(pilot, lambda: column(app, "name") == ["Renamed"], "updated elsewhere")
        assert column(app, "url") == ["http://127.0.0.1:1/b"]
        await other.set_active(webhook.id, False)
        await until(pilot, lambda: column(app, "status") == ["○ inactive"], "deactivated")
        await other.delete_webhook(webhook.id)
        await until(pilot, lambda: rows(app) == [], "deleted elsewhere")


async def test_a_resync_reloads_over_rest(server: TestServer, other: QrmClient) -> None:
    await other.create_webhook("Before reset", "http://127.0.0.1:1/a", ["report.created"])
    app = tui(server)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        assert column(app, "name") == ["Before reset"]
        await other.reset()  # the server publishes `resync`
        await until(pilot, lambda: rows(app) == [], "the reload")


async def test_the_mouse_selects_a_row_and_edits_it(server: TestServer, other: QrmClient) -> None:
    await other.create_webhook("First", "http://127.0.0.1:1/1", ["report.created"])
    await other.create_webhook("Second", "http://127.0.0.1:1/2", ["report.created"])
    app = tui(server)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        screen = app.screen
        assert isinstance(screen, WebhooksScreen)
        await pilot.click("#webhook-table", offset=(20, 2))  # the second row
        assert screen.selected is not None and screen.selected.name == "Second"
        await pilot.click("#edit")
        form = await until(pilot, lambda: isinstance(app.screen, WebhookForm) and app.screen)
        assert form.query_one("#name", Input).value == "Second"
        await pilot.click("#cancel")
        await until(pilot, lambda: app.screen is screen)
        await pilot.click("#add")
        await until(pilot, lambda: isinstance(app.screen, WebhookForm))


async def test_row_actions_are_disabled_without_a_row(server: TestServer) -> None:
    app = tui(server)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        assert app.screen.query_one("#edit", Button).disabled
        await pilot.press("e", "space", "d")
        assert isinstance(app.screen, WebhooksScreen)


async def test_errors_wait_until_a_field_is_touched(server: TestServer) -> None:
    app = tui(server)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("n")
        form = await until(pilot, lambda: isinstance(app.screen, WebhookForm) and app.screen)
        form.query_one("#basic-auth", Switch).value = True
        await pilot.pause()
        assert [error_under(app, f) for f in ("name", "url", "username", "password")] == [""] * 4
        await fill(pilot, "#url", "ftp://example.com/hook")
        assert error_under(app, "url") == ""  # still typing
        await pilot.press("tab")  # left the field: now it is checked
        assert error_under(app, "url") == "URL must start with http:// or https://"
        assert error_under(app, "name") == ""  # never touched


async def test_escape_on_a_changed_form_asks_first(server: TestServer) -> None:
    app = tui(server)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("n")
        form = await until(pilot, lambda: isinstance(app.screen, WebhookForm) and app.screen)
        await fill(pilot, "#name", "Half typed")
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the question")
        await pilot.press("escape")  # no: back to the form, as it was
        await until(pilot, lambda: app.screen is form, "the form again")
        assert form.query_one("#name", Input).value == "Half typed"
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the question")
        await pilot.click("#confirm")
        await until(pilot, lambda: isinstance(app.screen, WebhooksScreen), "the form to close")

        await pilot.press("n")  # unchanged: esc just closes
        await until(pilot, lambda: isinstance(app.screen, WebhookForm))
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, WebhooksScreen), "the form to close")


async def test_headers_and_a_rate_limit_in_the_form(server: TestServer, other: QrmClient) -> None:
    """SPEC 8.7: `Name: value` lines and `N/minute`, checked before sending and by the server."""
    app = tui(server)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("n")
        form = await until(pilot, lambda: isinstance(app.screen, WebhookForm) and app.screen)
        await fill(pilot, "#name", "Tenant")
        await fill(pilot, "#url", "http://127.0.0.1:1/t")
        await pilot.click(Checkbox)
        headers = form.query_one("#headers", TextArea)
        headers.focus()
        headers.text = "X-Tenant acme"
        await fill(pilot, "#rate-limit", "2/day")  # leaving the headers touches them
        await pilot.press("ctrl+s")
        assert error_under(app, "headers") == "Line 1: write each header as Name: value"
        assert "N/minute or N/hour" in error_under(app, "rate-limit")
        assert service(server).webhooks == {}

        headers.text = "X-Tenant: acme\nContent-Type: text/plain"
        await fill(pilot, "#rate-limit", "0/minute")
        await pilot.press("ctrl+s")  # every error at once, the server's header rules included
        assert error_under(app, "headers") == "Content-Type is set by the request itself"
        assert error_under(app, "rate-limit") == "Must be at least 1"
        assert service(server).webhooks == {}
        await fill(pilot, "#rate-limit", "2/minute")

        headers.text = "X-Tenant: acme"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, WebhooksScreen), "the form to close")
        [stored] = service(server).webhooks.values()
        assert stored.headers == (("X-Tenant", "acme"),)
        assert str(stored.rate_limit) == "2/minute"

        await pilot.press("e")
        form = await until(pilot, lambda: isinstance(app.screen, WebhookForm) and app.screen)
        assert form.query_one("#headers", TextArea).text == "X-Tenant: acme"
        assert form.query_one("#rate-limit", Input).value == "2/minute"
        await fill(pilot, "#rate-limit", "")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, WebhooksScreen), "the form to close")
        [stored] = service(server).webhooks.values()
        assert stored.rate_limit is None and stored.headers == (("X-Tenant", "acme"),)


async def test_an_error_under_the_last_field_is_scrolled_into_view_at_80x24(
    server: TestServer, other: QrmClient
) -> None:
    await other.create_webhook("Orders", "http://127.0.0.1:1/orders", ["report.created"])
    app = tui(server)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("e")
        form = await until(pilot, lambda: isinstance(app.screen, WebhookForm) and app.screen)
        await fill(pilot, "#rate-limit", "0/minute")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: error_under(app, "rate-limit"), "the error")
        await pilot.pause()
        body = form.query_one("#form-body")
        label = form.query_one("#rate-limit-error")
        assert body.region.contains_region(label.region), (body.region, label.region)


async def test_a_long_error_wraps_under_its_field_at_80x24(server: TestServer) -> None:
    """The server's loop-guard message is longer than the form is wide: all of it shows."""
    app = tui(server)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("n")
        form = await until(pilot, lambda: isinstance(app.screen, WebhookForm) and app.screen)
        await fill(pilot, "#name", "Loop")
        await fill(pilot, "#url", str(server.make_url("/hook")))  # the mock itself
        await pilot.click(Checkbox)
        await pilot.press("ctrl+s")
        await until(pilot, lambda: error_under(app, "url"), "the server's 422")
        await pilot.pause()
        assert error_under(app, "url").endswith("(a delivery to the mock's own API would loop)")
        body = form.query_one("#form-body")
        label = form.query_one("#url-error")
        assert label.region.height >= 2  # wrapped, not cut at the form's edge
        assert label.region.right <= body.region.right, (body.region, label.region)
