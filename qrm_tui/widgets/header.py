"""The header every screen shows: the screens, the server, its time scale, the connection."""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Label

MODES = (
    ("1", "webhooks", "Webhooks"),
    ("2", "deliveries", "Deliveries"),
    ("3", "reports", "Reports"),
)

CONNECTION = {
    "starting": ("◌ connecting…", "-starting"),
    "connected": ("● connected", "-connected"),
    "reconnecting": ("○ reconnecting…", "-reconnecting"),
    "failed": ("○ not connected", "-failed"),
}


class ModeTab(Label):
    """One screen's name; clicking it switches to that screen."""

    def __init__(self, key: str, mode: str, title: str, *, active: bool) -> None:
        super().__init__(f"{key} {title}", classes="mode-tab -active" if active else "mode-tab")
        self.mode = mode

    async def on_click(self, event: events.Click) -> None:
        await self.app.run_action(f"switch_mode({self.mode!r})")


class AppHeader(Horizontal):
    """Reads the app's `server_label`, `time_scale` and `connection` reactives."""

    def __init__(self, mode: str) -> None:
        super().__init__(id="app-header")
        self.mode = mode

    def compose(self) -> ComposeResult:
        yield Label("qrm-tui", id="app-name")
        for key, mode, title in MODES:
            yield ModeTab(key, mode, title, active=mode == self.mode)
        yield Label(id="server", markup=False)
        yield Label(id="time-scale")
        yield Label(id="connection")

    def on_mount(self) -> None:
        self.watch(self.app, "server_label", self._show_server)
        self.watch(self.app, "time_scale", self._show_time_scale)
        self.watch(self.app, "connection", self._show_connection)

    def _show_server(self, label: str) -> None:
        self.query_one("#server", Label).update(label)

    def _show_time_scale(self, scale: float) -> None:
        widget = self.query_one("#time-scale", Label)
        widget.update(f"×{scale:g} time")  # noqa: RUF001
        widget.display = scale != 1

    def _show_connection(self, state: str) -> None:
        text, state_class = CONNECTION.get(state, (state, ""))
        widget = self.query_one("#connection", Label)
        widget.update(text)
        widget.set_classes(state_class)
