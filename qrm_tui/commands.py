"""The command palette's entries: every binding of the app and of each screen.

Built from the `Binding`s themselves, like the footer and the help screen, so a
new key shows up in all three at once. A screen's action switches to its screen
first.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from functools import partial
from typing import Any

from textual.binding import Binding, BindingType
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.screen import ModalScreen

from qrm_tui.screens.deliveries import DeliveriesScreen
from qrm_tui.screens.faults import FaultsScreen
from qrm_tui.screens.reports import ReportsScreen
from qrm_tui.screens.webhooks import WebhooksScreen

Command = tuple[str, str, Callable[[], Awaitable[Any]]]

SCREENS: tuple[tuple[str, str, list[BindingType]], ...] = (
    ("webhooks", "Webhooks", WebhooksScreen.BINDINGS),
    ("deliveries", "Deliveries", DeliveriesScreen.BINDINGS),
    ("reports", "Reports", ReportsScreen.BINDINGS),
    ("faults", "Faults", FaultsScreen.BINDINGS),
)
SKIPPED = {"clear_filter", "clear_filters"}
"""Actions that only make sense while looking at the screen (escape)."""


def _described(bindings: list[BindingType]) -> Iterator[Binding]:
    seen: set[str] = set()
    for binding in bindings:
        if isinstance(binding, Binding) and binding.description and binding.action not in seen:
            seen.add(binding.action)
            yield binding


class QrmCommands(Provider):
    def commands(self) -> Iterator[Command]:
        """(title, help, callback) for every action; screen actions switch to their screen."""
        if isinstance(self.screen, ModalScreen):
            return
        app = self.app
        for binding in _described(type(app).BINDINGS):
            yield (
                binding.tooltip or binding.description,
                f"key {app.get_key_display(binding)}",
                partial(app.run_action, binding.action),
            )
        for mode, title, bindings in SCREENS:
            for binding in _described(bindings):
                if binding.action in SKIPPED:
                    continue
                yield (
                    binding.tooltip or binding.description,
                    f"{title} screen, key {app.get_key_display(binding)}",
                    partial(self._on_screen, mode, binding.action),
                )

    async def _on_screen(self, mode: str, action: str) -> None:
        await self.app.run_action(f"show({mode!r})")
        await self.app.screen.run_action(action)

    async def discover(self) -> Hits:
        for title, help_text, callback in self.commands():
            yield DiscoveryHit(title, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, callback in self.commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, help=help_text)
