"""The mock's reports (part 2 of the TUI; a placeholder for now)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Center
from textual.screen import Screen
from textual.widgets import Footer, Static

from qrm_tui.widgets.header import AppHeader


class ReportsScreen(Screen[None]):
    HELP_GROUP = "Reports"

    def compose(self) -> ComposeResult:
        yield AppHeader("reports")
        with Center(classes="placeholder"):
            yield Static(
                "Reports: browsing reports and simulating uploads is coming in part 2.\n"
                "Until then: `mock-qrm upload-report`.",
                markup=False,
            )
        yield Footer()
