"""SPEC 8.2 in numbers: which columns shrink or go at 80 columns, URLs lose their middle,
and the sparkline draws only what was measured."""

from __future__ import annotations

from qrm_tui.layout import Column, fit, shorten_middle
from qrm_tui.screens.deliveries import COLUMNS as DELIVERY_COLUMNS
from qrm_tui.widgets.header import server_label
from qrm_tui.widgets.throughput import rate_label, sparkline


def test_at_80_columns_the_state_stays_and_time_latency_and_resource_go() -> None:
    widths = fit(DELIVERY_COLUMNS, 77)  # 80 less the margins and the scrollbar
    assert list(widths) == ["webhook", "event", "attempt", "code", "state"]
    assert widths["state"] >= len("↻ retry in 42 s")
    assert widths["event"] >= len("report.file_ready")
    assert sum(w + 2 for w in widths.values()) <= 77


def test_with_room_to_spare_every_column_shows_and_the_main_ones_grow() -> None:
    widths = fit(DELIVERY_COLUMNS, 157)
    assert len(widths) == len(DELIVERY_COLUMNS)
    assert widths["webhook"] > 27


def test_a_column_that_may_not_go_never_goes() -> None:
    columns = [Column("a", "A", 10, drop_at=0), Column("b", "B", 10, least=4, give_up=1)]
    assert fit(columns, 6) == {"b": 4}


def test_long_urls_lose_their_middle_not_their_end() -> None:
    url = "http://127.0.0.1:41935/status/500"
    assert shorten_middle(url, len(url)) == url
    short = shorten_middle(url, 24)
    assert len(short) == 24
    assert short.startswith("http://127.0") and short.endswith("/status/500")
    assert "…" in short


def test_the_sparkline_leaves_quiet_seconds_blank() -> None:
    assert sparkline([1.0, 0.0, 0.0, 0.0], 10) == "█   "
    assert sparkline([0.0, 0.0], 10) == "  "
    assert sparkline([], 10) == ""
    assert "▁" not in sparkline([4.0, 0.0, 2.0], 3)


def test_the_rate_has_the_right_plural() -> None:
    assert rate_label(1) == "1 attempt/s"
    assert rate_label(0) == "0 attempts/s"
    assert rate_label(2.5) == "2.5 attempts/s"


def test_the_header_keeps_the_servers_port_longest() -> None:
    label = "http://127.0.0.1:41935 (embedded)"
    assert server_label(label, 40) == label
    assert server_label(label, 22) == "http://127.0.0.1:41935"
    assert server_label(label, 19) == "127.0.0.1:41935"
    assert server_label(label, 9).endswith("935")


def test_the_code_column_fits_timeout_at_every_width() -> None:
    from qrm_tui.screens.reports import DELIVERY_COLUMNS as REPORT_DELIVERY_COLUMNS

    for columns in (DELIVERY_COLUMNS, REPORT_DELIVERY_COLUMNS):
        for width in range(76, 201):
            assert fit(columns, width)["code"] >= len("timeout"), width
