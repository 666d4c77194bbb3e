"""A table for rows that change many times a second: keyed by id, newest first.

Like `DataTable` with fixed column widths, but built for a live feed: the table
holds only the keys, sorted; a row's cells are asked for (`cells(key)`) when the
row is drawn, so only the visible rows are ever formatted. Changes come in
batches (`update(changed, removed)`) that cost what changed, not what is shown.

Follow mode: while `follow` is on, the cursor stays on the newest row (the top);
moving the cursor down or scrolling pauses it (`FollowChanged`), and moving
back to the top row resumes it. While paused, rows added above keep the view
and the cursor on the same rows.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Sequence
from typing import ClassVar

from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from qrm_tui.layout import GAP, Column, fit, shorten_middle

Cells = tuple[Text, ...]

__all__ = ["Cells", "Column", "LiveTable"]


class LiveTable(ScrollView, can_focus=True):
    HELP_GROUP = "Table"
    COMPONENT_CLASSES: ClassVar[set[str]] = {"live-table--header", "live-table--cursor"}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor_up", "Up", show=False, id="table.cursor_up"),
        Binding("down", "cursor_down", "Down", show=False, id="table.cursor_down"),
        Binding("pageup", "page_up", "Page up", show=False, id="table.page_up"),
        Binding("pagedown", "page_down", "Page down", show=False, id="table.page_down"),
        Binding("home", "first", "Newest", show=False, id="table.first"),
        Binding("end", "last", "Oldest", show=False, id="table.last"),
        Binding("enter", "select", "Open", tooltip="Open the selected row", id="table.select"),
    ]
    DEFAULT_CSS = """
    LiveTable {
        background: $surface;
        color: $foreground;
        overflow-x: hidden;
        overflow-y: scroll;
        scrollbar-size-vertical: 1;
        & > .live-table--header {
            text-style: bold;
            background: $panel;
            color: $foreground;
        }
        & > .live-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
        }
        &:focus > .live-table--cursor {
            background: $block-cursor-background;
            color: $block-cursor-foreground;
            text-style: $block-cursor-text-style;
        }
    }
    """

    follow: reactive[bool] = reactive(True, init=False)
    """Keep the cursor on the newest row."""

    class _TableMessage(Message):
        def __init__(self, table: LiveTable) -> None:
            super().__init__()
            self.table = table

        @property
        def control(self) -> LiveTable:
            return self.table

    class Highlighted(_TableMessage):
        """The cursor moved to another row (`key` None: the table is empty)."""

        def __init__(self, table: LiveTable, key: int | None) -> None:
            super().__init__(table)
            self.key = key

    class Selected(_TableMessage):
        """`enter` (or a click on the cursor's row): open this row."""

        def __init__(self, table: LiveTable, key: int) -> None:
            super().__init__(table)
            self.key = key

    class FollowChanged(_TableMessage):
        def __init__(self, table: LiveTable, follow: bool) -> None:
            super().__init__(table)
            self.follow = follow

    def __init__(
        self,
        columns: Sequence[Column],
        cells: Callable[[int], Cells],
        *,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.columns = tuple(columns)
        self._cells_of = cells
        self.widths = fit(self.columns, sum(c.width + GAP for c in self.columns))
        """Each shown column's width, for the width the table has (`fit`); set on resize."""
        self._width = sum(width + GAP for width in self.widths.values())
        self._ascending: list[int] = []
        self._keys: set[int] = set()
        self._strips: LRUCache[int, Strip] = LRUCache(256)
        self._header: Strip | None = None
        self._cursor_key: int | None = None
        self._scrolling = False

    def on_mount(self) -> None:
        self.virtual_size = Size(self._width, 1)

    def on_resize(self) -> None:
        self._fit(self.scrollable_content_region.width)

    def _fit(self, available: int) -> None:
        """Widths for the room there is: fixed until the next resize, whatever rows come."""
        widths = fit(self.columns, available)
        if widths == self.widths:
            return
        self.widths = widths
        self._width = sum(width + GAP for width in widths.values())
        self.virtual_size = Size(self._width, len(self._ascending) + 1)
        self._strips.clear()
        self._header = None
        self.refresh()

    # --- reading ------------------------------------------------------------------------

    @property
    def row_count(self) -> int:
        return len(self._ascending)

    @property
    def keys(self) -> list[int]:
        """Newest first, as shown."""
        return self._ascending[::-1]

    @property
    def cursor_key(self) -> int | None:
        return self._cursor_key

    @property
    def cursor_row(self) -> int:
        """The cursor's index from the top (0: the newest row); -1 when empty."""
        return -1 if self._cursor_key is None else self._index(self._cursor_key)

    def row_text(self, key: int) -> list[str]:
        """A row's cells as plain text (what tests and people read)."""
        return [cell.plain for cell in self._cells_of(key)]

    def _index(self, key: int) -> int:
        """Position from the top of a key that is shown."""
        return len(self._ascending) - 1 - bisect.bisect_left(self._ascending, key)

    def _key_at(self, index: int) -> int | None:
        if 0 <= index < len(self._ascending):
            return self._ascending[len(self._ascending) - 1 - index]
        return None

    # --- changing -----------------------------------------------------------------------

    def update(self, changed: Iterable[int], removed: Iterable[int] = ()) -> None:
        """Apply one batch: draw `changed` rows afresh (new ones where they belong), drop `removed`.

        The view stays on the same rows: following, on the newest; paused, on
        the rows at the top of the view and under the cursor.
        """
        anchor = self._key_at(round(self.scroll_y))  # the row at the top of the view
        for key in removed:
            if key in self._keys:
                self._keys.discard(key)
                self._strips.discard(key)
                del self._ascending[bisect.bisect_left(self._ascending, key)]
        for key in changed:
            if key not in self._keys:
                self._keys.add(key)
                bisect.insort(self._ascending, key)
            self._strips.discard(key)
        self.virtual_size = Size(self._width, len(self._ascending) + 1)
        if self.follow or self._cursor_key not in self._keys:
            self._land()
        elif anchor is not None and anchor in self._keys:
            self._scroll_row(self._index(anchor))
        self.refresh()

    def refresh_rows(self, keys: Iterable[int]) -> None:
        """Draw these rows afresh where they are (a countdown moved on)."""
        stale = False
        for key in keys:
            self._strips.discard(key)
            stale = True
        if stale:
            self.refresh()

    def clear(self) -> None:
        self.update((), list(self._keys))

    def redraw(self) -> None:
        """Render every row again (the theme changed)."""
        self._strips.clear()
        self._header = None
        self.refresh()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()
        self._header = None

    def _land(self) -> None:
        """Put the cursor where it belongs after its row went away, or while following."""
        previous = self._cursor_key
        if self.follow or previous is None:
            key = self._key_at(0)
        else:  # the row under the cursor was removed: the next older one, else the newest
            older = bisect.bisect_left(self._ascending, previous) - 1
            key = self._ascending[older] if older >= 0 else self._key_at(0)
        self._cursor_key = key
        if self.follow:
            self._scroll_row(0)
        else:
            self._scroll_cursor_into_view()
        if key != previous:
            self.post_message(self.Highlighted(self, key))

    # --- the cursor and follow mode -------------------------------------------------------

    def move_cursor(self, key: int) -> None:
        """Put the cursor on `key` (if shown) and bring it into view; leaving the top pauses."""
        if key not in self._keys:
            return
        previous = self._cursor_key
        self._cursor_key = key
        self.follow = self._index(key) == 0
        self._scroll_cursor_into_view()
        self.refresh()
        if key != previous:
            self.post_message(self.Highlighted(self, key))

    def _move_by(self, rows: int) -> None:
        if not self._ascending:
            return
        index = max(0, min(len(self._ascending) - 1, self.cursor_row + rows))
        key = self._key_at(index)
        if key is not None:
            self.move_cursor(key)

    def watch_follow(self, follow: bool) -> None:
        if follow:
            self._land()
            self.refresh()
        self.post_message(self.FollowChanged(self, follow))

    @property
    def _page(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)

    def _scroll_cursor_into_view(self) -> None:
        index = self.cursor_row
        if index < 0:
            return
        top = round(self.scroll_y)
        if index < top:
            self._scroll_row(index)
        elif index >= top + self._page:
            self._scroll_row(index - self._page + 1)

    def _scroll_row(self, y: int) -> None:
        self._scrolling = True
        try:
            self.scroll_to(y=max(0, y), animate=False, immediate=True)
        finally:
            self._scrolling = False

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if not self._scrolling and self.follow and round(new_value) > 0:
            self.follow = False  # the person scrolled away from the newest rows

    def action_cursor_up(self) -> None:
        self._move_by(-1)

    def action_cursor_down(self) -> None:
        self._move_by(1)

    def action_page_up(self) -> None:
        self._move_by(-self._page)

    def action_page_down(self) -> None:
        self._move_by(self._page)

    def action_first(self) -> None:
        self._move_by(-len(self._ascending))

    def action_last(self) -> None:
        self._move_by(len(self._ascending))

    def action_select(self) -> None:
        if self._cursor_key is not None:
            self.post_message(self.Selected(self, self._cursor_key))

    async def _on_click(self, event: events.Click) -> None:
        if event.y == 0:
            return
        key = self._key_at(round(self.scroll_y) + event.y - 1)
        if key is None:
            return
        if key == self._cursor_key and event.chain > 1:
            self.post_message(self.Selected(self, key))
        else:
            self.move_cursor(key)

    # --- rendering --------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        base = self.rich_style
        if y == 0:
            header = self.get_component_rich_style("live-table--header")
            if self._header is None:
                self._header = self._render_row(tuple(Text(c.title) for c in self.columns))
            return self._header.apply_style(base + header).crop_extend(0, width, base + header)
        key = self._key_at(round(self.scroll_y) + y - 1)
        if key is None:
            return Strip.blank(width, base)
        strip = self._strips.get(key)
        if strip is None:
            strip = self._render_row(self._cells_of(key))
            self._strips.set(key, strip)
        style = base
        if key == self._cursor_key:
            style = base + self.get_component_rich_style("live-table--cursor")
        return strip.apply_style(style).crop_extend(0, width, style)

    def _render_row(self, cells: Cells) -> Strip:
        line = Text(no_wrap=True)
        for column, cell in zip(self.columns, cells, strict=False):
            width = self.widths.get(column.key)
            if width is None:
                continue
            if column.shorten == "middle" and cell.cell_len > width:
                text = Text(shorten_middle(cell.plain, width), style=cell.style)
            else:
                text = cell.copy()
                text.truncate(width, overflow="ellipsis")
            text.align(column.justify, width)
            line.append(" ")
            line.append_text(text)
            line.append(" ")
        return Strip(list(line.render(self.app.console)), self._width)
