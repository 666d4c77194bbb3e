"""The live delivery feed (part 2 of the TUI; a placeholder for now)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Center
from textual.screen import Screen
from textual.widgets import Footer, Static

from qrm_tui.widgets.header import AppHeader


class DeliveriesScreen(Screen[None]):
    HELP_GROUP = "Deliveries"

    def compose(self) -> ComposeResult:
        yield AppHeader("deliveries")
        with Center(classes="placeholder"):
            yield Static(
                "Deliveries: the live feed of every attempt, retry and failure is coming in part 2.\n"
                "Until then: `mock-qrm deliveries --follow`.",
                markup=False,
            )
        yield Footer()
