"""Textual's footer, rebuilt only when what it shows has changed.

A rebuild makes one widget per key (about 20 ms here), and Textual asks for one
whenever bindings *may* have changed: twice per screen switch, and on every
cursor move of a table whose row actions depend on the row. Skipping the
rebuilds that would draw the same keys keeps screen switches and a live table
well inside the 100 ms a key press may take (SPEC.md section 7).
"""

from __future__ import annotations

from typing import Any

from textual import events
from textual.screen import Screen
from textual.widgets import Footer

NARROW = 110
"""Columns below which the footer is compact (the app's `-narrow` breakpoint)."""


class KeyFooter(Footer):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._shown: tuple[tuple[str, str, str, bool, bool], ...] | None = None

    def on_resize(self, event: events.Resize) -> None:
        """Narrow terminals get the compact footer: every key still fits at 80 columns."""
        self.compact = event.size.width < NARROW

    def bindings_changed(self, screen: Screen[Any]) -> None:
        shown = tuple(
            (binding.key, binding.action, binding.description, binding.show, enabled)
            for _, binding, enabled, _ in screen.active_bindings.values()
        )
        if shown == self._shown:
            return
        if screen.app.app_focus and self.is_attached and screen is self.screen:
            self._shown = shown  # it is about to be drawn (see Footer.bindings_changed)
        super().bindings_changed(screen)
