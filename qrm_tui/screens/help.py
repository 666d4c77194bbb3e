"""`?`: this app's keys where help was asked, by screen, built from the bindings themselves.

Only the keys this app declares: the framework's own (focus cycling, text
selection, `ctrl+q`, the table's sideways cursor) work as everywhere in Textual
and would bury the ones that matter here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from rich.table import Table
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.dom import DOMNode
from textual.screen import ModalScreen, Screen
from textual.widgets import Label, Static

from qrm_tui.widgets.footer import KeyFooter

OWN = "qrm_tui."
"""Bindings declared by classes in this package are listed; the framework's are not."""


class HelpRow(NamedTuple):
    where: str
    key: str
    description: str
    detail: str


def own_bindings(node: DOMNode) -> set[tuple[str, str]]:
    """(key, action) of what this app's own classes bind on `node`, not what Textual adds."""
    own: set[tuple[str, str]] = set()
    for cls in type(node).__mro__:
        if cls.__module__.startswith(OWN):
            for binding in Binding.make_bindings(cls.__dict__.get("BINDINGS", ())):
                own.add((binding.key, binding.action))
    return own


def help_rows(screen: Screen[Any]) -> list[HelpRow]:
    """The app's bindings active on `screen`: the screen's and its widgets', then everywhere."""
    app = screen.app
    ranked: list[tuple[int, HelpRow]] = []
    seen: set[tuple[str, str]] = set()
    own: dict[int, set[tuple[str, str]]] = {}
    for active in screen.active_bindings.values():
        binding, node = active.binding, active.node
        if not binding.description:
            continue
        if (binding.key, binding.action) not in own.setdefault(id(node), own_bindings(node)):
            continue
        key = app.get_key_display(binding)
        if (key, binding.description) in seen:
            continue
        seen.add((key, binding.description))
        rank = 2 if isinstance(node, App) else 0
        where = "Everywhere" if rank == 2 else getattr(screen, "HELP_GROUP", type(screen).__name__)
        ranked.append((rank, HelpRow(where, key, binding.description, binding.tooltip)))
    return [row for _, row in sorted(ranked, key=lambda item: item[0])]


def screen_rows(app: App[Any], screens: Sequence[type[Screen[Any]]]) -> list[HelpRow]:
    """The keys of other screens, as declared: the screen's, then those of the widgets it
    names in `HELP_WIDGETS` (its table's `enter`), as `help_rows` finds them where help was
    asked."""
    rows: list[HelpRow] = []
    for screen in screens:
        where = getattr(screen, "HELP_GROUP", screen.__name__)
        seen: set[tuple[str, str]] = set()
        bindings = [*screen.BINDINGS]
        for widget in getattr(screen, "HELP_WIDGETS", ()):
            bindings.extend(widget.BINDINGS)
        for binding in Binding.make_bindings(bindings):
            key = app.get_key_display(binding)
            if binding.description and (key, binding.description) not in seen:
                seen.add((key, binding.description))
                rows.append(HelpRow(where, key, binding.description, binding.tooltip))
    return rows


def help_table(rows: list[HelpRow]) -> Table:
    """A heading per place, then its keys; the explanation wraps in the room there is."""
    table = Table(box=None, expand=True, show_header=False, padding=(0, 1), pad_edge=False)
    table.add_column("Key", no_wrap=True, style="bold")
    table.add_column("Action", no_wrap=True)
    table.add_column("What it does", ratio=1, overflow="fold")
    where = None
    for row in rows:
        if row.where != where:
            if where is not None:
                table.add_row()
            where = row.where
            table.add_row(Text(row.where, style="bold underline"), "", "")
        table.add_row(row.key, row.description, Text(row.detail, style="dim"))
    return table


class HelpScreen(ModalScreen[None]):
    HELP_GROUP = "Help"
    BINDINGS = [
        Binding("escape", "dismiss", "Close", tooltip="Close the help", id="help.close"),
        Binding(
            "question_mark",
            "dismiss",
            "Close",
            key_display="?",
            show=False,
            id="help.close_question_mark",
        ),
        Binding("q", "dismiss", "Close", show=False, id="help.close_q"),
    ]

    def __init__(self, rows: list[HelpRow]) -> None:
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        with Vertical(id="help-dialog", classes="dialog"):
            yield Label("Keys", classes="dialog-title")
            with VerticalScroll(id="help-body"):
                yield Static(help_table(self.rows), id="help-table")
            yield Label("Every action is also in the command palette (ctrl+p).", classes="hint")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one("#help-body").focus()
