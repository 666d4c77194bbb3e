"""Column widths for the width there is: the screen's main job gets the room first. No Textual.

Each column says how wide it would like to be, how narrow it may get, when it
may go altogether, and how much wider it may grow when there is room to spare.
`fit` takes the steps in order (`give_up`: shrink to `least`; `drop_at`: go),
lowest rank first, only as far as needed for the row to fit; then room left
over widens the columns that shrank back, then the growing ones up to `most`,
the most important (`importance`, else the highest `give_up`) first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

GAP = 2
"""Blank cells around every column (one either side)."""


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    title: str
    width: int
    """What the column usually needs."""
    justify: Literal["left", "right"] = "left"
    least: int | None = None
    """The narrowest it may get (None: never narrower than `width`)."""
    most: int | None = None
    """The widest it may grow with room to spare (None: never wider than `width`)."""
    give_up: int = 0
    """When it shrinks toward `least`: the lowest rank first; the main job's columns are high."""
    drop_at: int | None = None
    """When it goes altogether, on the same scale (None: never)."""
    importance: int | None = None
    """Who gets spare room back first, highest first (None: as `give_up`)."""
    shorten: Literal["end", "middle"] = "end"
    """Where a text too long for the column loses characters (URLs: the middle)."""


def fit(columns: Sequence[Column], available: int) -> dict[str, int]:
    """The width of each column shown, by key, in the columns' order; absent: it had to go."""
    widths = {column.key: column.width for column in columns}

    def excess() -> int:
        return sum(width + GAP for width in widths.values()) - available

    steps = [(c.give_up, 0, c) for c in columns if c.least is not None and c.least < c.width]
    steps += [(c.drop_at, 1, c) for c in columns if c.drop_at is not None]
    for _, drop, column in sorted(steps, key=lambda step: (step[0], step[1])):
        over = excess()
        if over <= 0:
            break
        if column.key not in widths:
            continue
        if drop:
            del widths[column.key]
        else:
            widths[column.key] = max(column.least or 0, widths[column.key] - over)
    spare = -excess()
    by_importance = sorted(
        columns, key=lambda c: -(c.give_up if c.importance is None else c.importance)
    )
    for grow in (False, True):
        for column in by_importance:
            if spare <= 0:
                break
            limit = max(column.width, column.most or 0) if grow else column.width
            if column.key in widths and limit > widths[column.key]:
                more = min(spare, limit - widths[column.key])
                widths[column.key] += more
                spare -= more
    return widths


def shorten_middle(text: str, width: int) -> str:
    """`http://127.0.0.1:41…/status/500`: both ends kept, the middle given up."""
    if len(text) <= width:
        return text
    if width <= 1:
        return "…"[:width]
    tail = (width - 1) // 2
    head = width - 1 - tail
    return f"{text[:head]}…{text[len(text) - tail :] if tail else ''}"


def shorten_end(text: str, width: int) -> str:
    if len(text) <= width:
        return text
    return text[: max(0, width - 1)] + "…" if width > 0 else ""
