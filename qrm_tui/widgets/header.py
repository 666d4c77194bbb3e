"""The header every screen shows: the screens, the server, its time scale, whether it checks
receivers' certificates, the connection."""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.reactive import reactive
from textual.widgets import Label

from qrm_tui.layout import shorten_middle

MODES = (
    ("1", "webhooks", "Webhooks"),
    ("2", "deliveries", "Deliveries"),
    ("3", "reports", "Reports"),
    ("4", "faults", "Faults"),
)

INSECURE_TLS = "⚠ TLS unchecked"
"""Shown while the server takes any certificate from `https` webhooks (`--insecure-receivers`)."""

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
        await self.app.run_action(f"show({self.mode!r})")


def server_label(label: str, width: int) -> str:
    """`http://127.0.0.1:8765 (embedded)` in `width` cells: the note goes, then the
    scheme, then the middle; the port, which tells two servers apart, stays longest."""
    forms = [label, label.removesuffix(" (embedded)")]
    forms.append(forms[-1].removeprefix("http://").removeprefix("https://"))
    for form in forms:
        if len(form) <= width:
            return form
    return shorten_middle(forms[-1], width)


class ServerLabel(Label):
    """The server's address in the room it gets (`server_label`)."""

    text = reactive("")

    def render(self) -> Text:
        return Text(server_label(self.text, self.content_size.width), no_wrap=True)


class AppHeader(Horizontal):
    """Reads the app's `server_label`, `time_scale`, `insecure_receivers` and `connection`."""

    def __init__(self, mode: str) -> None:
        super().__init__(id="app-header")
        self.mode = mode

    def compose(self) -> ComposeResult:
        yield Label("qrm-tui", id="app-name")
        for key, mode, title in MODES:
            yield ModeTab(key, mode, title, active=mode == self.mode)
        yield ServerLabel(id="server", markup=False)
        yield Label(id="time-scale")
        yield Label(INSECURE_TLS, id="insecure-tls")
        yield Label(id="connection")

    def on_mount(self) -> None:
        self.watch(self.app, "server_label", self._show_server)
        self.watch(self.app, "time_scale", self._show_time_scale)
        self.watch(self.app, "insecure_receivers", self._show_insecure)
        self.watch(self.app, "connection", self._show_connection)

    # The app's reactives may change while this header is being taken down (a screen
    # closing as the start-up fails): then there is nothing to show them on.

    def _show_server(self, label: str) -> None:
        for widget in self.query("#server").results(ServerLabel):
            widget.text = label

    def _show_time_scale(self, scale: float) -> None:
        for widget in self.query("#time-scale").results(Label):
            widget.update(f"×{scale:g} time")  # noqa: RUF001
            widget.display = scale != 1

    def _show_insecure(self, insecure: bool) -> None:
        for widget in self.query("#insecure-tls").results(Label):
            widget.display = insecure

    def _show_connection(self, state: str) -> None:
        text, state_class = CONNECTION.get(state, (state, ""))
        for widget in self.query("#connection").results(Label):
            widget.update(text)
            widget.set_classes(state_class)
