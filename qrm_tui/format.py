"""How deliveries, attempts and reports read on screen: labels and their tones. No Textual.

A tone is a theme variable's name (`text-success`, `text-error`, `text-warning`)
or `muted`; `Tones` turns it into a Rich style from the running theme.

Data is shown as it is, never acted on: every text from the server or a receiver
goes on screen as a `Text` (never markup) made by `plain` or `block`, which escape
control characters as the command line does (`mock_qrm.contract.display`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.highlighter import JSONHighlighter
from rich.padding import Padding
from rich.text import Text

from mock_qrm.client import labels
from mock_qrm.contract.codes import DeliveryStatus
from mock_qrm.contract.display import json_text, printable
from mock_qrm.contract.models import Delivery

Tone = str

SHORT_ERRORS = {
    "connection_refused": "refused",
    "connection_reset": "reset",
    "connection_error": "conn. error",
    "invalid_url": "bad URL",
}
"""Error classes shortened to fit a table cell (the inspector shows them whole)."""

# Glyphs that Chromium's default monospace font (DejaVu Sans Mono) has, as terminals do:
# `qrm-tui --web` draws in a browser, where a missing glyph is an empty box.
STATE_NAMES = {
    DeliveryStatus.PENDING: "· pending",
    DeliveryStatus.IN_FLIGHT: "→ in flight",
    DeliveryStatus.DELIVERED: "✓ delivered",
    DeliveryStatus.RETRY_SCHEDULED: "↻ retrying",
    DeliveryStatus.FAILED: "✗ failed",
    DeliveryStatus.CANCELLED: "⊘ cancelled",
}

STATE_TONES: dict[DeliveryStatus, Tone] = {
    DeliveryStatus.PENDING: "muted",
    DeliveryStatus.IN_FLIGHT: "text-accent",
    DeliveryStatus.DELIVERED: "text-success",
    DeliveryStatus.RETRY_SCHEDULED: "text-warning",
    DeliveryStatus.FAILED: "text-error",
    DeliveryStatus.CANCELLED: "muted",
}


def plain(text: object, style: str = "") -> Text:
    """One line of data as it is: never markup, every control character escaped (`\x1b`)."""
    return Text(printable(text), style=style)


def block(text: object, style: str = "") -> Text:
    """Lines of data (a body, a document) as they are: newlines kept, any other control escaped."""
    return Text(printable(text, lines=True), style=style)


class Tones:
    """Rich text in the theme's colours; built again when the theme changes."""

    def __init__(self, variables: Mapping[str, str]) -> None:
        self._styles: dict[str, str] = {"muted": "dim", "": "", **variables}

    def text(self, text: str, tone: Tone = "") -> Text:
        """One line in `tone`, shown as it is (`plain`), cut with an ellipsis where it must."""
        return Text(
            printable(text), style=self._styles.get(tone, ""), no_wrap=True, overflow="ellipsis"
        )


def clock_time(moment: datetime) -> str:
    """`15:04:05` in local time, as `mock-qrm deliveries` shows it."""
    return moment.astimezone().strftime("%H:%M:%S")


def full_time(moment: datetime) -> str:
    """`2026-11-28 15:04:05.123` in local time."""
    local = moment.astimezone()
    return local.strftime("%Y-%m-%d %H:%M:%S.") + f"{local.microsecond // 1000:03d}"


def countdown(seconds: float) -> str:
    """`42 s`, `3 min 20 s`, `2 h 5 min`: how long until a retry."""
    whole = max(0, round(seconds))
    if whole < 100:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def state_label(delivery: Delivery, now: float) -> tuple[str, Tone]:
    """`✓ delivered`, `↻ retry in 42 s`, `✗ failed`, … (`now`: the server's clock, epoch s).

    A pending delivery due later is one its webhook's rate limit holds back: `· due in 20 s`.
    """
    status = delivery.status
    left = None if delivery.next_attempt_at is None else delivery.next_attempt_at.timestamp() - now
    if status is DeliveryStatus.RETRY_SCHEDULED and left is not None:
        text = f"↻ retry in {countdown(left)}" if left > 0.5 else "↻ retry due"
        return text, STATE_TONES[status]
    if status is DeliveryStatus.PENDING and left is not None and left > 0.5:
        return f"· due in {countdown(left)}", STATE_TONES[status]
    return STATE_NAMES[status], STATE_TONES[status]


def attempt_number(delivery: Delivery) -> int:
    """The automatic attempt under way, or the last one made."""
    return labels.attempt_number(
        delivery.attempt_count, delivery.status is DeliveryStatus.IN_FLIGHT
    )


def manual_attempts(delivery: Delivery) -> int:
    """Manual redeliveries made (`attemptsTotal` counts them; `attemptCount` does not)."""
    in_flight = delivery.status is DeliveryStatus.IN_FLIGHT
    return labels.manual_attempts(delivery.attempt_count, delivery.attempts_total, in_flight)


def attempt_label(delivery: Delivery, max_attempts: int) -> str:
    """`3/4`, `—` before the first attempt, and `3/4 +1` after one manual redelivery (SPEC 8.1)."""
    in_flight = delivery.status is DeliveryStatus.IN_FLIGHT
    return labels.attempts_label(
        delivery.attempt_count, delivery.attempts_total, in_flight, max_attempts
    )


def answer_label(
    status: int | None, error: str | None, detail: str | None = None
) -> tuple[str, Tone]:
    """A response status (`200`, `500`) or the error class of a failure that got none;
    `tls: cert` for a receiver's certificate the server does not trust."""
    if status is not None:
        return str(status), "text-success" if status == 200 else "text-error"
    if labels.is_certificate_failure(error, detail):
        return labels.CERTIFICATE_SHORT, "text-error"
    if error:
        return SHORT_ERRORS.get(error, error), "text-error"
    return "—", "muted"


def latency_label(duration_ms: int | None) -> str:
    if duration_ms is None:
        return "—"
    if duration_ms < 1000:
        return f"{duration_ms} ms"
    return f"{duration_ms / 1000:.1f} s"


def success_label(rate: float | None) -> tuple[str, Tone]:
    """`100%`, `99.5%` (rounded down: never `100%` with a failure), `—` before any attempt."""
    if rate is None:
        return "—", "muted"
    shown = math.floor(rate * 1000) / 10
    text = f"{shown:g}%"
    if rate >= 1:
        return text, "text-success"
    return text, "text-warning" if rate >= 0.9 else "text-error"


def size_label(size: int) -> str:
    return "1 byte" if size == 1 else f"{size:,} bytes"


def pretty_json(body: str | None) -> str:
    """A JSON body indented for reading; anything else as it is, lines kept. Either way with
    every control character escaped (JSON's own escapes in JSON), ready for the screen."""
    if body is None:
        return ""
    try:
        return json_text(json.loads(body), indent=2)
    except (ValueError, RecursionError):
        return printable(body, lines=True)


_JSON_COLOURS = JSONHighlighter()


def indented(text: str, base: int = 0, *, highlight: bool = False) -> RenderableType:
    """`text`, each line's wrapped rest kept under its own indentation (a JSON body, a long
    header), `base` columns in: a wrapped line never runs back to the left edge. With
    `highlight`, JSON is coloured as Rich colours it."""
    lines = []
    for line in text.split("\n"):
        body = plain(line.lstrip(" "))  # data: every control character escaped
        if highlight:
            _JSON_COLOURS.highlight(body)
        lines.append(Padding(body, (0, 0, 0, base + len(line) - len(body.plain))))
    return Group(*lines)


def dump_json(value: Any) -> str:
    """`value` as indented JSON for the screen: every control character escaped."""
    return json_text(value, indent=2)
