"""The command palette's entries: every binding of the app and of the webhooks screen.

Built from the `Binding`s themselves, like the footer and the help screen, so a
new key shows up in all three at once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from functools import partial
from typing import Any

from textual.binding import Binding, BindingType
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.screen import ModalScreen

from qrm_tui.screens.webhooks import WebhooksScreen

Command = tuple[str, str, Callable[[], Awaitable[Any]]]


def _described(bindings: list[BindingType]) -> Iterator[Binding]:
    for binding in bindings:
        if isinstance(binding, Binding) and binding.description:
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
        for binding in _described(WebhooksScreen.BINDINGS):
            if binding.action == "clear_filter":
                continue
            yield (
                binding.tooltip or binding.description,
                f"Webhooks screen, key {app.get_key_display(binding)}",
                partial(self._on_webhooks, binding.action),
            )

    async def _on_webhooks(self, action: str) -> None:
        await self.app.switch_mode("webhooks")
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
