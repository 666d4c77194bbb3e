"""What the live list screens (deliveries, reports) share: drain the inbox, draw in batches."""

from __future__ import annotations

from typing import TYPE_CHECKING, Generic, TypeVar, cast

from textual.screen import Screen

from qrm_tui.live import Inbox
from qrm_tui.window import Change, Window

if TYPE_CHECKING:
    from qrm_tui.app import QrmTuiApp
    from qrm_tui.widgets.live_table import LiveTable

T = TypeVar("T")


class LiveListScreen(Screen[None], Generic[T]):
    """A table kept by the feed: the inbox is drained every flush, never while a page loads."""

    window: Window[T]
    _inbox: Inbox[T] | None = None
    _busy = False
    """A REST page is on its way: changes wait in the inbox until it is drawn."""
    _loaded = False

    @property
    def qrm(self) -> QrmTuiApp:
        return cast("QrmTuiApp", self.app)

    @property
    def table(self) -> LiveTable:
        raise NotImplementedError

    def load_newest(self) -> object:
        raise NotImplementedError

    def _draw(self, change: Change[T]) -> None:
        raise NotImplementedError

    def _flushed(self) -> None:
        """Called after a batch was drawn."""

    def flush(self) -> None:
        """Draw what the feed brought since the last flush, in one update."""
        inbox = self._inbox
        if inbox is None or self._busy or not self._loaded:
            return
        if inbox.overflowed:
            self.load_newest()
            return
        changes = inbox.take()
        if changes:
            self._draw(self.window.apply(changes, following=self.table.follow))
            self._flushed()

    def _reload(self) -> None:
        if self.qrm.feed_generation:
            self.load_newest()
