"""Attempts per second as a sparkline that draws only what was measured.

Textual's `Sparkline` draws its lowest bar for a zero and for the minutes before
the app was watching: an idle server looks busy. Here a second with no attempt
is blank, seconds before measuring began are not drawn at all, and the bars are
scaled to the busiest second shown. The newest second is at the right edge.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

BARS = "▁▂▃▄▅▆▇█"


def sparkline(series: Sequence[float], width: int) -> str:
    """`series` (per second, oldest first) in at most `width` cells, right-aligned.

    With more seconds than cells, each cell is the mean of its seconds (the
    oldest cell may hold fewer); a cell with nothing in it stays blank.
    """
    if width <= 0 or not series:
        return ""
    per_cell = max(1, math.ceil(len(series) / width))
    cells: list[float] = []
    end = len(series)
    while end > 0 and len(cells) < width:
        start = max(0, end - per_cell)
        chunk = series[start:end]
        cells.append(sum(chunk) / per_cell)
        end = start
    cells.reverse()
    top = max(cells)
    if top <= 0:
        return " " * len(cells)
    return "".join(
        " " if value <= 0 else BARS[max(0, math.ceil(value / top * len(BARS)) - 1)]
        for value in cells
    )


def rate_label(per_second: float) -> str:
    """`0 attempts/s`, `1 attempt/s`, `2.5 attempts/s`."""
    return f"{per_second:g} attempt/s" if per_second == 1 else f"{per_second:g} attempts/s"


class Throughput(Widget):
    """A sparkline of `data`: the deliveries screen's last minute of attempts (what
    `LiveStore.attempts` measured), a webhook's last hour a minute at a time."""

    DEFAULT_CSS = """
    Throughput {
        height: 1;
        color: $accent;
    }
    """

    data: reactive[tuple[float, ...]] = reactive(tuple)

    def render(self) -> Text:
        line = sparkline(self.data, self.content_size.width)
        return Text(line.rjust(self.content_size.width), no_wrap=True)
