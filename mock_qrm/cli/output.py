"""How the command line writes: tables, JSON and lines, with data never read as control.

Text that came from elsewhere (a webhook's name, a report's case number, a
receiver's answer) may hold terminal control characters: every line goes out
through `say` or `table`, which show each as an escape (`\\x1b`, see
`mock_qrm.contract.display`), so no output of ours can move the cursor, recolour
the terminal or split a table row; JSON goes out in ASCII, every control escaped.
Nothing is ever interpreted as markup.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from mock_qrm.contract.display import printable

__all__ = ["document", "local", "plural", "print_json", "printable", "say", "table"]


def say(line: str = "", *, error: bool = False) -> None:
    """One line, flushed (a pipe's reader sees it at once), and `printable`: whatever data it
    holds, it stays one line and cannot act on the terminal."""
    document(printable(line), error=error)


def document(text: str, *, error: bool = False) -> None:
    """Text we wrote whole (JSON, a completion script), as it is: its lines are its own."""
    print(text, file=sys.stderr if error else sys.stdout, flush=True)


def print_json(data: Any) -> None:
    """The API's data as one JSON document, in ASCII: every control character escaped, and
    readable whatever the terminal's encoding."""
    document(json.dumps(data, indent=2))


def local(moment: str | None) -> str:
    """An API time (`2026-11-28T15:04:05.123Z`) in local time, to the second."""
    if not moment:
        return ""
    from datetime import datetime

    return datetime.fromisoformat(moment).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def plural(count: int, word: str, many: str | None = None) -> str:
    return f"{count} {word if count == 1 else many or word + 's'}"


RIGHT = frozenset({"ID", "REPORT", "#"})
"""Columns of numbers, aligned right."""


def table(columns: Sequence[str], rows: Iterable[Sequence[object]], caption: str = "") -> None:
    """Columns padded to their widest cell, two spaces apart; on a terminal, cut to fit it.

    Piped, nothing is cut: a script reads every cell whole.
    """
    cells = [[printable("" if cell is None else cell) for cell in row] for row in rows]
    widths = [max([len(name), *(len(row[i]) for row in cells)]) for i, name in enumerate(columns)]
    if sys.stdout.isatty():
        widths = _fit(widths, [len(name) for name in columns], _terminal_width())
    for row in [list(columns), *cells]:
        say(_line(row, widths, columns))
    if caption:
        say(caption)


def _line(row: Sequence[str], widths: Sequence[int], columns: Sequence[str]) -> str:
    parts = []
    for cell, width, name in zip(row, widths, columns, strict=True):
        text = cell if len(cell) <= width else _cut(cell, width)
        parts.append(text.rjust(width) if name in RIGHT else text.ljust(width))
    return "  ".join(parts).rstrip()


def _cut(text: str, width: int) -> str:
    """Shortened in the middle (a URL keeps its host and its last path segment)."""
    if width <= 1:
        return text[:width]
    head = width // 2
    tail = width - 1 - head
    return text[:head] + "…" + (text[-tail:] if tail else "")


def _fit(widths: list[int], floors: list[int], room: int) -> list[int]:
    """Narrow the widest columns, one character at a time, until the line fits `room`."""
    widths = list(widths)
    while sum(widths) + 2 * (len(widths) - 1) > room:
        widest = max(range(len(widths)), key=lambda i: widths[i] - floors[i])
        if widths[widest] <= max(floors[widest], 4):
            break
        widths[widest] -= 1
    return widths


def _terminal_width() -> int:
    try:
        return os.get_terminal_size(sys.stdout.fileno()).columns
    except (OSError, ValueError):
        return 80


def silence_stdout() -> None:
    """What is still buffered, and every later line, goes nowhere instead of failing again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    with contextlib.suppress(OSError, ValueError):  # ValueError: stdout is not a file
        os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
