"""`?`: every key that applies where help was asked, built from the bindings themselves."""

from __future__ import annotations

from typing import Any, NamedTuple

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Label

from qrm_tui.widgets.footer import KeyFooter


class HelpRow(NamedTuple):
    where: str
    key: str
    description: str
    detail: str


def help_rows(screen: Screen[Any]) -> list[HelpRow]:
    """The bindings active on `screen` (focused widget, screen, app), those with a description."""
    app = screen.app
    ranked: list[tuple[int, HelpRow]] = []
    for active in screen.active_bindings.values():
        binding, node = active.binding, active.node
        if not binding.description:
            continue
        # The screen's own keys first, then the focused widget's, then the global ones.
        rank = 0 if isinstance(node, Screen) else 2 if isinstance(node, App) else 1
        where = "Everywhere" if rank == 2 else getattr(node, "HELP_GROUP", type(node).__name__)
        row = HelpRow(where, app.get_key_display(binding), binding.description, binding.tooltip)
        ranked.append((rank, row))
    return [row for _, row in sorted(ranked, key=lambda item: item[0])]


class HelpScreen(ModalScreen[None]):
    HELP_GROUP = "Help"
    BINDINGS = [
        Binding("escape", "dismiss", "Close", tooltip="Close the help"),
        Binding("question_mark", "dismiss", "Close", key_display="?", show=False),
        Binding("q", "dismiss", "Close", show=False),
    ]

    def __init__(self, rows: list[HelpRow]) -> None:
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        with Vertical(id="help-dialog", classes="dialog"):
            yield Label("Keys", classes="dialog-title")
            yield DataTable(id="help-table", cursor_type="row", zebra_stripes=True)
            yield Label("Every action is also in the command palette (ctrl+p).", classes="hint")
        yield KeyFooter()

    def on_mount(self) -> None:
        table = self.query_one("#help-table", DataTable)
        table.add_columns("Where", "Key", "Action", "What it does")
        for row in self.rows:
            table.add_row(*(Text(cell) for cell in row))
