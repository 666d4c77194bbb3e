"""The pieces under the live screens, without a terminal: the window over the journal,
the inboxes that batch feed changes, and the per-second meter."""

from __future__ import annotations

from dataclasses import dataclass

from qrm_tui.live import Channel, RateMeter
from qrm_tui.window import Window


@dataclass(frozen=True)
class Row:
    id: int
    state: str = "pending"


def window(cap: int = 5, state: str | None = None) -> Window[Row]:
    return Window(lambda row: row.id, cap, lambda row: state is None or row.state == state)


def test_new_rows_go_on_top_and_the_oldest_fall_off_while_following() -> None:
    w = window()
    w.replace([Row(3), Row(2), Row(1)], has_older=False)
    change = w.apply([Row(4), Row(5), Row(6), Row(2, "failed")], following=True)
    assert w.keys == [6, 5, 4, 3, 2]
    assert w.has_older and not w.behind
    assert set(change.upserted) == {2, 4, 5, 6} and change.removed == {1}


def test_while_paused_the_newest_fall_off_so_the_view_stays_put() -> None:
    w = window()
    w.replace([Row(5), Row(4), Row(3), Row(2), Row(1)], has_older=False)
    change = w.apply([Row(6), Row(7)], following=False)
    assert w.keys == [5, 4, 3, 2, 1] and w.behind
    assert change.removed == {6, 7} and not change.upserted
    w.apply([Row(8), Row(3, "delivered")], following=False)  # beyond the top: ignored
    assert w.keys == [5, 4, 3, 2, 1] and w.items[3].state == "delivered"


def test_rows_beyond_the_bottom_are_left_to_paging() -> None:
    w = window()
    w.replace([Row(9), Row(8)], has_older=True)
    w.apply([Row(3, "failed"), Row(10)], following=True)
    assert w.keys == [10, 9, 8]
    change = w.extend_older([Row(8), Row(7), Row(6), Row(5)], has_older=True)
    assert w.keys == [9, 8, 7, 6, 5] and w.behind  # past the cap: the newest made room
    assert change.removed == {10}


def test_a_filtered_window_drops_rows_that_stop_matching() -> None:
    w = window(state="failed")
    w.replace([Row(2, "failed"), Row(1, "delivered")], has_older=False)
    assert w.keys == [2]
    change = w.apply([Row(2, "delivered"), Row(3, "failed"), Row(1, "failed")], following=True)
    assert w.keys == [3, 1] and change.removed == {2}


def test_an_inbox_keeps_the_latest_of_each_item_and_gives_up_past_its_limit() -> None:
    channel: Channel[Row] = Channel(lambda row: row.id, limit=3)
    inbox = channel.open()
    for state in ("pending", "in_flight", "delivered"):
        channel.publish(Row(1, state))
    channel.publish(Row(2))
    assert inbox.take() == [Row(1, "delivered"), Row(2)]
    assert inbox.take() == []
    for key in range(10):
        channel.publish(Row(key))
    assert inbox.overflowed and len(inbox) == 0  # the reader reloads instead
    inbox.discard()
    channel.close(inbox)
    channel.publish(Row(1))
    assert not inbox.overflowed and len(inbox) == 0


def test_the_meter_counts_per_second_over_the_last_minute() -> None:
    now = [100.0]
    meter = RateMeter(seconds=5, clock=lambda: now[0])
    meter.add(3)
    now[0] = 101.5
    meter.add()
    meter.add()
    now[0] = 102.2
    assert meter.series() == [3, 2]  # only what was measured: nothing before it started
    now[0] = 110.0
    assert meter.series() == [0, 0, 0, 0, 0]
