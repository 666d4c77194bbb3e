"""The start-up error screen: what is wrong and how to fix it, never a traceback."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Center, Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Label, Static

from mock_qrm.contract.display import printable
from qrm_tui.client import StartupProblem
from qrm_tui.widgets.footer import KeyFooter
from qrm_tui.widgets.header import AppHeader

if TYPE_CHECKING:
    from qrm_tui.app import QrmTuiApp

EXIT_STARTUP = 1
"""The exit status when qrm-tui is quit from its start-up error."""


class StartupErrorScreen(Screen[None]):
    HELP_GROUP = "Start-up error"
    AUTO_FOCUS = "#retry"
    BINDINGS = [
        Binding("r", "retry", "Retry", tooltip="Try to connect again", id="startup.retry"),
        Binding("q", "quit", "Quit", tooltip="Quit qrm-tui (exit status 1)", id="startup.quit"),
    ]

    def __init__(self, problem: StartupProblem) -> None:
        super().__init__()
        self.problem = problem

    def compose(self) -> ComposeResult:
        yield AppHeader("webhooks")
        with Center(), Vertical(id="startup-error", classes="dialog"):
            yield Label("qrm-tui cannot start", classes="dialog-title")
            yield Static(printable(self.problem.message, lines=True), id="problem", markup=False)
            yield Static(printable(self.problem.hint, lines=True), id="hint", markup=False)
            with Horizontal(classes="buttons"):
                yield Button("Retry", id="retry", variant="primary")
                yield Button("Quit", id="quit")
        yield KeyFooter()

    @property
    def text(self) -> str:
        """Everything the screen says, in one line (what tests and people read)."""
        return f"{self.problem.message} {self.problem.hint}"

    def action_retry(self) -> None:
        cast("QrmTuiApp", self.app).retry_start()

    @on(Button.Pressed, "#retry")
    def _retry(self) -> None:
        self.action_retry()

    def action_quit(self) -> None:
        """Quitting here means qrm-tui never started: a script sees a failure."""
        self.app.exit(return_code=EXIT_STARTUP)

    @on(Button.Pressed, "#quit")
    def _quit(self) -> None:
        self.action_quit()
