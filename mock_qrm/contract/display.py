"""How every face shows data: as text a terminal prints as it is, never as control or markup.

Data comes from elsewhere: a webhook's name stored before the text rule, a
receiver's answer, a fault's message, a report's field. Any of it may hold
terminal control characters (ESC starts a colour or moves the cursor, BEL rings,
a newline splits a table row). The command line and the terminal app show data
only through these functions, which write each such character as an escape
(`\\x1b`); and neither ever reads data as markup (the CLI writes plain text, the
TUI builds `Text` or passes `markup=False`). Standard library only: the command
line imports this at start.
"""

from __future__ import annotations

import json
from typing import Any

from mock_qrm.contract.rules import CONTROL

_ESCAPES = {code: f"\\x{code:02x}" for code in CONTROL if code < 0x100}
_ESCAPES.update({ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"})
_ESCAPES.update({0x2028: "\\u2028", 0x2029: "\\u2029"})
_ESCAPES_KEEPING_LINES = {code: text for code, text in _ESCAPES.items() if code != ord("\n")}
_JSON_ESCAPES = {code: f"\\u{code:04x}" for code in CONTROL if code >= 0x7F}
"""JSON escapes C0 controls itself; these are the rest of `CONTROL` (DEL, C1, U+2028/9)."""


def printable(value: object, *, lines: bool = False) -> str:
    """`value` as text a terminal shows as it is: C0, DEL, C1 and the line separators escaped.

    With `lines`, a newline stays one (a body shown on several lines); a CR before it goes.
    """
    text = str(value)
    if lines:
        return text.replace("\r\n", "\n").translate(_ESCAPES_KEEPING_LINES)
    return text.translate(_ESCAPES)


def json_text(value: Any, indent: int | None = None) -> str:
    """`value` as JSON that reads as it is: non-ASCII kept, every control character escaped.

    `json.dumps` escapes C0 itself; DEL, C1 and U+2028/9 can only stand inside a
    string there, where `\\u0085` means the same character: still valid JSON, same value.
    """
    return json.dumps(value, indent=indent, ensure_ascii=False).translate(_JSON_ESCAPES)
