"""What every screen of the app shares: the app, its theme's tones, the inboxes it reads,
and the one place a failed worker becomes a notice."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar, cast

from textual.screen import Screen
from textual.worker import Worker

from qrm_tui.failures import report_worker_failure
from qrm_tui.format import Tones
from qrm_tui.live import Channel, Inbox

if TYPE_CHECKING:
    from qrm_tui.app import QrmTuiApp

T = TypeVar("T")


class WorkerErrors:
    """Screens and dialogs whose workers may fail: one handler says so (`failures.py`).

    `Worker.StateChanged` goes to the node that started the worker and does not bubble.
    (A plain method, not `@on`: Textual finds it by name along the MRO, mixin included.)
    """

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        report_worker_failure(cast("Screen[Any]", self), event)


class QrmScreen(WorkerErrors, Screen[None]):
    """A screen of the app: `qrm` is the app, `tones` its theme's styles (rebuilt when the
    theme changes), and `open_inbox` reads a feed channel until the screen goes away."""

    _tones: Tones | None = None
    _inboxes: list[tuple[Channel[Any], Inbox[Any]]]
    _busy = False
    """A REST page is on its way: changes wait in the inboxes until it is drawn."""

    @property
    def qrm(self) -> QrmTuiApp:
        return cast("QrmTuiApp", self.app)

    @property
    def tones(self) -> Tones:
        if self._tones is None:
            self._tones = Tones(self.app.get_css_variables())
        return self._tones

    def forget_tones(self) -> None:
        """The theme changed: styles are read again at the next draw."""
        self._tones = None

    def open_inbox(self, channel: Channel[T], every: float, flush: Callable[[], None]) -> Inbox[T]:
        """An inbox on `channel`, emptied by `flush` every `every` seconds, closed on unmount."""
        inbox = channel.open()
        if not hasattr(self, "_inboxes"):
            self._inboxes = []
        self._inboxes.append((channel, inbox))
        self.set_interval(every, flush)
        return inbox

    @contextlib.contextmanager
    def fetching(self) -> Iterator[None]:
        """While a REST page loads (`_busy`): a flush leaves the inbox alone until it is drawn."""
        self._busy = True
        try:
            yield
        finally:
            self._busy = False

    def _on_unmount(self) -> None:
        """Textual calls this besides any subclass's `on_unmount` (handlers go by class)."""
        for channel, inbox in getattr(self, "_inboxes", ()):
            channel.close(inbox)
