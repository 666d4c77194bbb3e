"""What every screen looks like, pinned as SVG snapshots (`--snapshot-update` to accept).

Each at 80x24 (the smallest terminal people work in: every screen must do its main
job there, SPEC 8.2) and at 160x45. Deterministic: an embedded server on a manual
clock with fixed data, a fixed header label (no port), no animation, no cursor blink.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Switch, TextArea

from mock_qrm.contract.codes import DeliveryStatus
from mock_qrm.contract.models import (
    ApiCall,
    Delivery,
    DeliveryDetail,
    LatencyMs,
    ReportRow,
    StatsMinute,
    WebhookStats,
)
from qrm_tui.app import QrmTuiApp, Target
from qrm_tui.live import RateMeter
from qrm_tui.screens.deliveries import DeliveriesScreen
from qrm_tui.screens.faults import FaultsScreen
from qrm_tui.screens.help import HelpScreen
from qrm_tui.screens.inspector import DeliveryInspector
from qrm_tui.screens.reports import ReportsScreen
from qrm_tui.screens.webhook_stats import WebhookStatsScreen
from qrm_tui.screens.webhooks import WebhooksScreen
from qrm_tui.widgets.confirm import ConfirmDialog
from qrm_tui.widgets.fault_form import FaultForm
from qrm_tui.widgets.webhook_form import WebhookForm
from tests.conftest import make_settings
from tests.tui.conftest import LABEL, column, ready, until

SIZES = pytest.mark.parametrize("size", [(80, 24), (160, 45)], ids=["80x24", "160x45"])


def _app(start_mode: str | None = None) -> QrmTuiApp:
    settings = make_settings(host="127.0.0.1", port=0, time_scale=60, seed_reports=0)
    app = QrmTuiApp(Target(embedded=settings), server_label=LABEL, start_mode=start_mode)
    app.animation_level = "none"
    return app


def _fixed_stats(webhook_id: int, per_minute: int = 0) -> WebhookStats:
    """What the webhooks of `_with_webhooks` have been through, with fixed latencies (a real
    refused connection takes 0 or 1 ms) and a last hour with a shape to it."""
    shapes = [0, 0, 2, 4, 8, 3, 1, 0, 6, 9, 4, 2]
    minutes = [
        StatsMinute(
            at=CREATED - timedelta(minutes=per_minute - 1 - n),
            attempts=shapes[n % 12],
            failures=shapes[n % 12] // 3,
            p95=None if not shapes[n % 12] else 40 + 30 * shapes[(n + 5) % 12],
        )
        for n in range(per_minute)
    ]
    if webhook_id != 1:
        return WebhookStats(
            webhook_id=webhook_id, removed=False, since=None, attempts=0, delivered=0, failed=0,
            success_rate=None, latency_ms=LatencyMs(), by_status={}, last_success_at=None,
            last_failure_at=None, per_minute=minutes,
        )  # fmt: skip
    return WebhookStats(
        webhook_id=1, removed=False, since=None, attempts=1248, delivered=402, failed=3,
        success_rate=1201 / 1240, latency_ms=LatencyMs(p50=12, p95=148, p99=2140),
        by_status={"200": 1201, "500": 27, "timeout": 12, "connection_refused": 8},
        last_success_at=CREATED, last_failure_at=CREATED - timedelta(minutes=3),
        per_minute=minutes,
    )  # fmt: skip


def _fix_stats(app: QrmTuiApp) -> None:
    async def stats(webhook_id: int, since: Any = None, per_minute: int = 0) -> WebhookStats:
        return _fixed_stats(webhook_id, per_minute)

    app.client.stats = stats  # type: ignore[method-assign]


async def _with_webhooks(pilot: Pilot[Any]) -> QrmTuiApp:
    app = await ready(pilot)
    _fix_stats(app)
    client = app.client
    await client.create_webhook(
        "Orders receiver",
        "http://127.0.0.1:1/orders",
        ["report.created", "report.file_ready"],
        basic_auth=("qrm", "secret"),
    )
    await client.create_webhook(
        "Staging receiver for the partner team",
        "https://staging.example.com/qrm/partners/webhooks/inspectorio/receiver",
        ["report.created"],
        active=False,
    )
    await client.create_webhook("Archive", "http://127.0.0.1:1/archive", ["report.file_ready"])
    await client.upload_report()
    await until(
        pilot,
        lambda: (
            column(app, "last")[:1] in (["↻ refused"], ["↻ connection_refused"])
            and column(app, "last")[1:] == ["—", "—"]
            and column(app, "status")[1] == "○ inactive"
            and column(app, "success") == ["96.8%", "—", "—"]
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


@SIZES
def test_webhooks_screen(snap_compare: Any, size: tuple[int, int]) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await _with_webhooks(pilot)

    assert snap_compare(_app(), terminal_size=size, run_before=run_before)


@SIZES
def test_webhook_stats_screen(snap_compare: Any, utc: None, size: tuple[int, int]) -> None:
    """`s` on a busy webhook: its figures and its last hour (fixed, as the server would say)."""

    async def run_before(pilot: Pilot[Any]) -> None:
        app = await _with_webhooks(pilot)
        await pilot.press("s")
        await until(
            pilot,
            lambda: isinstance(app.screen, WebhookStatsScreen) and app.screen.stats is not None,
            "the figures",
        )
        await pilot.pause()

    assert snap_compare(_app(), terminal_size=size, run_before=run_before)


@SIZES
def test_help(snap_compare: Any, size: tuple[int, int]) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        app = await _with_webhooks(pilot)
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.pause()

    assert snap_compare(_app(), terminal_size=size, run_before=run_before)


@SIZES
def test_form_with_validation_errors(snap_compare: Any, size: tuple[int, int]) -> None:
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
        form.query_one("#headers", TextArea).text = "X-Tenant: acme"
        form.query_one("#rate-limit", Input).value = "2/day"
        await pilot.press("ctrl+s")
        await pilot.pause()

    assert snap_compare(_app(), terminal_size=size, run_before=run_before)


@SIZES
def test_remove_dialog(snap_compare: Any, size: tuple[int, int]) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        app = await _with_webhooks(pilot)
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))

    assert snap_compare(_app(), terminal_size=size, run_before=run_before)


@pytest.fixture
def utc() -> Iterator[None]:
    """Times on screen are local: pin the zone so the snapshot is the same everywhere."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TZ", "UTC")
        time.tzset()
        yield
    time.tzset()


CREATED = datetime(2026, 11, 28, 15, 4, 5, 123000, tzinfo=UTC)
WEBHOOKS = {
    1: "Healthy receiver",
    2: "Flaky receiver: fails twice",
    3: "Slow receiver: times out",
    4: "Broken receiver: always 500",
}


def _fixed_deliveries(now: datetime) -> list[Delivery]:
    """Every state a row can show, with fixed ids, times and latencies."""
    rows: list[dict[str, Any]] = [
        {"webhook_id": 1, "status": "delivered", "attempt_count": 1, "status_code": 200, "ms": 4},
        {"webhook_id": 2, "status": "delivered", "attempt_count": 3, "status_code": 200, "ms": 6},
        {"webhook_id": 3, "status": "failed", "attempt_count": 4, "error": "timeout", "ms": 3001},
        {"webhook_id": 4, "status": "failed", "attempt_count": 4, "status_code": 500, "ms": 2},
        {"webhook_id": 1, "status": "delivered", "attempt_count": 1, "status_code": 200, "ms": 3},
        {"webhook_id": 2, "status": "retry_scheduled", "attempt_count": 2, "status_code": 500,
         "ms": 5, "retry_in": 42},
        {"webhook_id": 3, "status": "in_flight", "attempt_count": 1, "error": "timeout", "ms": 3000},
        {"webhook_id": 4, "status": "retry_scheduled", "attempt_count": 1, "status_code": 500,
         "ms": 2, "retry_in": 58},
        {"webhook_id": 1, "status": "cancelled", "attempt_count": 0},
        {"webhook_id": 2, "status": "pending", "attempt_count": 0},
        {"webhook_id": 3, "status": "in_flight", "attempt_count": 0},
        {"webhook_id": 4, "status": "failed", "attempt_count": 4, "error": "connection_refused",
         "ms": 1},
    ]  # fmt: skip
    deliveries = []
    for number, row in enumerate(rows, start=1):
        retry_in = row.get("retry_in")
        deliveries.append(
            Delivery(
                id=number,
                message_id=f"wh-00000000-0000-11f1-0000-{number:012d}",
                webhook_id=row["webhook_id"],
                webhook_name=WEBHOOKS[row["webhook_id"]],
                event_code="report.created" if number % 2 else "report.file_ready",
                resource_id=12306 + (number - 1) // 4,
                status=DeliveryStatus(row["status"]),
                attempt_count=row["attempt_count"],
                next_attempt_at=None if retry_in is None else now + timedelta(seconds=retry_in),
                created_at=CREATED + timedelta(seconds=4 * ((number - 1) // 4)),
                last_response_status=row.get("status_code"),
                last_error=row.get("error"),
                last_duration_ms=row.get("ms"),
            )
        )
    return deliveries


@SIZES
def test_deliveries_screen(snap_compare: Any, utc: None, size: tuple[int, int]) -> None:
    """The live table with fixed rows fed through the app's store, as the feed would."""

    async def run_before(pilot: Pilot[Any]) -> None:
        app = await ready(pilot)
        screen = await until(
            pilot,
            lambda: isinstance(app.screen, DeliveriesScreen) and app.screen._loaded and app.screen,
        )
        clock = [0.0]
        app.store.attempts = RateMeter(clock=lambda: clock[0])
        for second, count in enumerate([0, 0, 2, 4, 8, 3, 1, 0, 6, 9, 4, 2] * 5):
            clock[0] = float(second)
            app.store.attempts.add(count)
        clock[0] = 60.0
        # A manual clock stands still: the countdowns are measured from its moment, which
        # the app reads once started (until then it counts from the wall clock, which a
        # loaded machine moves on by a second or more).
        await until(pilot, lambda: app._manual_now is not None, "the manual clock read")
        now = datetime.fromtimestamp(app.server_now(), tz=UTC)
        for delivery in _fixed_deliveries(now):
            app.store.delivery_changed(delivery)
        await until(pilot, lambda: screen.table.row_count == 12, "the rows")
        screen.counts = {
            DeliveryStatus.DELIVERED: 3,
            DeliveryStatus.RETRY_SCHEDULED: 2,
            DeliveryStatus.FAILED: 3,
        }
        screen._counts_stale = False  # these rows are not in the server's journal
        screen._show_counts()
        screen.tick()
        await pilot.pause()

    assert snap_compare(_app("deliveries"), terminal_size=size, run_before=run_before)


REPORTS = [
    ("PO-2026-000123-VN / Factory Binh Duong 3 / Final Random Inspection", "pass", True),
    ("PO-2026-000124-CN", "fail", False),
    ("PO-2026-000125-BD / Lot 7 of 12", "pending", True),
]


@SIZES
def test_reports_screen(snap_compare: Any, utc: None, size: tuple[int, int]) -> None:
    """Fixed reports through the app's store; a case number as long as QRM's shows whole."""

    async def run_before(pilot: Pilot[Any]) -> None:
        app = await ready(pilot)
        await pilot.press("3")
        screen = await until(
            pilot,
            lambda: isinstance(app.screen, ReportsScreen) and app.screen._loaded and app.screen,
        )
        for number, (case, result, ready_) in enumerate(REPORTS, start=1):
            app.store.report_changed(
                ReportRow(
                    id=number,
                    inspection_id=f"insp-{number}",
                    case_number=case,
                    inspection_type="FRI",
                    result=result,
                    status="submitted",
                    created_at=CREATED + timedelta(minutes=number),
                    file_ready=ready_,
                )
            )
        await until(pilot, lambda: screen.table.row_count == len(REPORTS), "the reports")
        await pilot.pause()

    assert snap_compare(_app(), terminal_size=size, run_before=run_before)


def _fixed_detail() -> DeliveryDetail:
    """Three automatic attempts and a manual redelivery: `3/4 +1`, the last one `manual`."""
    attempts = []
    for number in range(1, 5):
        manual = number == 4
        attempts.append(
            {
                "number": number,
                "trigger": "manual" if manual else "automatic",
                "startedAt": (CREATED + timedelta(minutes=number)).isoformat(),
                "durationMs": 4,
                "url": "http://127.0.0.1:41935/status/500",
                "requestHeaders": {"Content-Type": "application/json"},
                "requestBody": '{"messageId":"wh-1"}',
                "responseStatus": 200 if manual else 500,
                "responseHeaders": {"Content-Length": "2"},
                "responseBody": "ok" if manual else "no",
                "outcome": "success" if manual else "failure",
            }
        )
    return DeliveryDetail.model_validate(
        {
            "id": 7,
            "messageId": "wh-00000000-0000-11f1-0000-000000000007",
            "webhookId": 4,
            "webhookName": WEBHOOKS[4],
            "eventCode": "report.created",
            "resourceId": 12306,
            "status": "delivered",
            "attemptCount": 3,
            "attemptsTotal": 4,
            "createdAt": CREATED.isoformat(),
            "completedAt": (CREATED + timedelta(minutes=4)).isoformat(),
            "lastResponseStatus": 200,
            "lastDurationMs": 4,
            "message": {
                "messageId": "wh-00000000-0000-11f1-0000-000000000007",
                "eventCode": "report.created",
                "eventName": "An Inspection report is uploaded",
                "payload": {"resourceId": 12306, "path": "/api/v1/reports/12306"},
            },
            "attempts": attempts,
        }
    )


@SIZES
def test_delivery_inspector(snap_compare: Any, utc: None, size: tuple[int, int]) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        app = await ready(pilot)
        detail = _fixed_detail()

        async def delivery(delivery_id: int) -> DeliveryDetail:
            return detail

        async def api_calls() -> list[ApiCall]:
            return _fixed_calls()

        app.client.delivery = delivery  # type: ignore[method-assign]
        app.client.api_calls = api_calls  # type: ignore[method-assign]
        await app.push_screen(DeliveryInspector(detail.id))
        await until(pilot, lambda: len(app.screen.query(".attempt")) == 4, "the attempts")
        await until(pilot, lambda: app.screen.call_backs, "the call-backs")
        await pilot.pause()

    assert snap_compare(_app(), terminal_size=size, run_before=run_before)


def _fixed_calls() -> list[ApiCall]:
    """A receiver's call-backs for two reports: 503 twice (fault 1), then 200; a dropped PDF."""
    rows = [
        ("/api/v1/reports/12306", 503, 1),
        ("/api/v1/reports/12306", 503, 1),
        ("/api/v1/reports/12306", 200, None),
        ("/files/reports/12306.pdf", None, 3),
        ("/files/reports/12306.pdf", 200, None),
        ("/api/v1/reports?limit=50&offset=0&status=submitted&inspectionType=FRI", 200, None),
        ("/api/v1/reports/12307", 200, None),
    ]
    return [
        ApiCall(
            at=CREATED + timedelta(minutes=1, seconds=number, milliseconds=7 * number),
            method="GET",
            path=path,
            status=status,
            fault_id=fault,
        )
        for number, (path, status, fault) in enumerate(rows)
    ]


@SIZES
def test_faults_screen(snap_compare: Any, utc: None, size: tuple[int, int]) -> None:
    """Faults of every kind, and the calls they answered (fixed, as the server would list them)."""

    async def run_before(pilot: Pilot[Any]) -> None:
        app = await ready(pilot)
        calls = _fixed_calls()

        async def api_calls() -> list[ApiCall]:
            return calls

        app.client.api_calls = api_calls  # type: ignore[method-assign]
        client = app.client
        await client.add_fault("GET /api/v1/reports/{id}", status=503, times=3, retry_after=30)
        await client.add_fault("GET /api/v1/reports", delay_ms=2500)
        await client.add_fault("GET /files/reports/{id}.pdf", reset=True, times=1)
        await client.add_fault("POST /api/v1/auth/login", status=429, retry_after=60)
        await pilot.press("4")
        screen = await until(pilot, lambda: isinstance(app.screen, FaultsScreen) and app.screen)
        await until(
            pilot,
            lambda: screen.fault_table.row_count == 4 and screen.call_table.row_count == 7,
            "the faults and calls",
        )
        await pilot.pause()

    assert snap_compare(_app(), terminal_size=size, run_before=run_before)


@SIZES
def test_fault_form_with_errors(snap_compare: Any, size: tuple[int, int]) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        app = await ready(pilot)
        await pilot.press("4")
        await until(pilot, lambda: isinstance(app.screen, FaultsScreen))
        await pilot.press("n")
        form = await until(pilot, lambda: isinstance(app.screen, FaultForm) and app.screen)
        _no_blink(app)
        form.query_one("#fault-status", Input).value = "200"
        form.query_one("#fault-times", Input).value = "0"
        await pilot.press("ctrl+s")
        await pilot.pause()

    assert snap_compare(_app(), terminal_size=size, run_before=run_before)
