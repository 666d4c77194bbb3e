"""What the live list screens (deliveries, reports) share: their inbox, drained in batches."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Generic, TypeVar

from qrm_tui.screens.base import QrmScreen

if TYPE_CHECKING:
    from mock_qrm.contract.models import Page
    from qrm_tui.live import Channel, Inbox
    from qrm_tui.widgets.live_table import LiveTable
    from qrm_tui.window import Change, Window

T = TypeVar("T")

FLUSH_INTERVAL = 0.15
"""Seconds over which feed changes are gathered into one table update."""


class LiveListScreen(QrmScreen, Generic[T]):
    """A table kept by the feed: the screen owns an inbox on `channel`, drained every
    flush (never while a page loads); a fresh feed reloads the newest page over REST."""

    window: Window[T]
    _inbox: Inbox[T] | None = None
    _loaded = False

    @property
    def channel(self) -> Channel[T]:
        raise NotImplementedError

    @property
    def table(self) -> LiveTable:
        raise NotImplementedError

    def load_newest(self) -> object:
        raise NotImplementedError

    def redraw(self) -> None:
        raise NotImplementedError

    def _draw(self, change: Change[T]) -> None:
        raise NotImplementedError

    def _flushed(self) -> None:
        """Called after a batch was drawn."""

    def on_mount(self) -> None:
        """After the subclass's own `on_mount` (Textual calls each class's, subclass first)."""
        self._inbox = self.open_inbox(self.channel, FLUSH_INTERVAL, self.flush)
        self.watch(self.qrm, "feed_generation", self._reload, init=False)
        self.watch(self.qrm, "theme", self.redraw, init=False)

    def on_screen_resume(self) -> None:
        """Shown for the first time: its rows load now, not when the app built it unseen."""
        if not self._loaded:
            self._reload()

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
        """A fresh feed: the rows again over REST, if this screen has been shown (a screen
        built unseen, soon after the start, waits until it is)."""
        if self.qrm.feed_generation and (self._loaded or self.app.screen is self):
            self.load_newest()

    async def show_newest(self, fetch: Callable[[], Awaitable[Page[T]]]) -> bool:
        """The newest page over REST in place of the rows, followed; `False` before mount.

        What waits in the inbox is older than the page: dropped.
        """
        if self._inbox is None:
            return False
        with self.fetching():
            self._inbox.discard()
            page = await fetch()
            self._loaded = True
            self._draw(self.window.replace(page.data, has_older=page.total > len(page.data)))
            self.table.follow = True
        return True
