"""What a client waits for in the journal, and how a delivery reads in a message.

`DeliveryMatch` is the criteria of the kit's `wait_for_delivery`, of
`mock-qrm wait` and of `deliveries --follow`; `timeout_message` says what was
expected and what the journal holds instead, the same way for all three.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from mock_qrm.client.labels import error_label
from mock_qrm.contract.codes import DeliveryStatus
from mock_qrm.contract.models import Delivery, DeliveryFilter

StatusSpec = DeliveryStatus | str | Iterable[DeliveryStatus | str] | None
"""One state, several (any of them), or `None` for any state."""


def parse_statuses(status: StatusSpec) -> frozenset[DeliveryStatus] | None:
    """Accept `"delivered"`, `DeliveryStatus.FAILED`, a tuple of either, or `None` (any)."""
    if status is None:
        return None
    values = [status] if isinstance(status, str) else list(status)
    try:
        return frozenset(DeliveryStatus(value) for value in values)
    except ValueError:
        known = ", ".join(s.value for s in DeliveryStatus)
        raise ValueError(f"unknown delivery status in {status!r}; known: {known}") from None


@dataclass(frozen=True, slots=True)
class DeliveryMatch:
    """The criteria of a wait; `None` leaves a criterion out."""

    status: frozenset[DeliveryStatus] | None = frozenset({DeliveryStatus.DELIVERED})
    webhook_id: int | None = None
    event_code: str | None = None
    resource_id: int | None = None
    message_id: str | None = None
    delivery_id: int | None = None
    attempts: int | None = None
    """`attemptCount`: automatic attempts made so far (manual redeliveries do not count)."""

    def matches(self, delivery: Delivery) -> bool:
        shared = DeliveryFilter.model_construct(
            webhook_id=self.webhook_id,
            event_code=self.event_code,
            resource_id=self.resource_id,
            message_id=self.message_id,
            status=None,
            since=None,
            until=None,
        )
        return (
            shared.matches(delivery)
            and (self.status is None or delivery.status in self.status)
            and (self.delivery_id is None or delivery.id == self.delivery_id)
            and (self.attempts is None or delivery.attempt_count == self.attempts)
        )

    def matches_all_but_status(self, delivery: Delivery) -> bool:
        return DeliveryMatch(
            None,
            self.webhook_id,
            self.event_code,
            self.resource_id,
            self.message_id,
            self.delivery_id,
            self.attempts,
        ).matches(delivery)

    def describe(self, count: int = 1) -> str:
        """`a delivery with status delivered, event report.created, resource 12346`."""
        parts = []
        if self.delivery_id is not None:
            parts.append(f"id {self.delivery_id}")
        if self.status is not None:
            parts.append("status " + " or ".join(sorted(s.value for s in self.status)))
        if self.webhook_id is not None:
            parts.append(f"webhook {self.webhook_id}")
        if self.event_code is not None:
            parts.append(f"event {self.event_code}")
        if self.resource_id is not None:
            parts.append(f"resource {self.resource_id}")
        if self.message_id is not None:
            parts.append(f"messageId {self.message_id}")
        if self.attempts is not None:
            parts.append(f"{self.attempts} automatic attempt{'' if self.attempts == 1 else 's'}")
        what = "a delivery" if count == 1 else f"{count} deliveries"
        return what + (" with " + ", ".join(parts) if parts else "")


def describe_delivery(delivery: Delivery) -> str:
    """One journal line: id, webhook, event, resource, state, attempts, last result."""
    if delivery.last_response_status is not None:
        last = f"last answer HTTP {delivery.last_response_status}"
    elif delivery.last_error is not None:
        last = f"last error {error_label(delivery.last_error, delivery.last_error_detail)}"
    else:
        last = "no answer yet"
    line = (
        f"#{delivery.id} webhook {delivery.webhook_id} {delivery.webhook_name!r}, "
        f"{delivery.event_code}, resource {delivery.resource_id}: {delivery.status.value}, "
        f"{delivery.attempt_count} attempt{'' if delivery.attempt_count == 1 else 's'}, {last}"
    )
    if delivery.next_attempt_at is not None:
        line += f", next attempt at {delivery.next_attempt_at:%Y-%m-%dT%H:%M:%S}Z"
    return line


def KIT_ADVANCE(seconds: int) -> str:
    """How a test moves the fixture's clock."""
    return f"call mock_qrm.advance({seconds}) (or await mock_qrm.aadvance({seconds}))"


def timeout_message(
    expected: DeliveryMatch,
    count: int,
    timeout: float,
    matched: list[Delivery],
    journal: list[Delivery],
    *,
    manual_now: datetime | None,
    advance: Callable[[int], str] = KIT_ADVANCE,
) -> str:
    """What was expected, what the journal holds instead, and the likely reason.

    `manual_now` is the server's time when its clock is manual (else `None`):
    a retry waiting on a frozen clock is the commonest reason for a wait to fail,
    and `advance(seconds)` says how the user moves it (`mock_qrm.advance(61)`).
    """
    lines = [f"Expected {expected.describe(count)} within {timeout:g} s"]
    if count > 1 and matched:
        lines[0] += f"; only {len(matched)} matched: " + ", ".join(f"#{d.id}" for d in matched)
    else:
        lines[0] += ", but none matched."
    if journal:
        lines.append(
            f"The journal holds {len(journal)} deliver{'y' if len(journal) == 1 else 'ies'}:"
        )
        lines.extend("  " + describe_delivery(d) for d in sorted(journal, key=lambda d: d.id))
    else:
        lines.append(
            "The journal is empty: no event reached an active webhook subscribed to it "
            "(was the webhook created, for this event, before the report was uploaded?)."
        )
    dues = [
        d.next_attempt_at
        for d in journal
        if d.status is DeliveryStatus.RETRY_SCHEDULED
        and d.next_attempt_at is not None
        and expected.matches_all_but_status(d)
    ]
    if manual_now is not None and dues:
        wait = max(1, math.ceil((min(dues) - manual_now).total_seconds()))
        lines.append(
            "Hint: the server's clock is manual, so a retry_scheduled delivery waits until "
            f"the clock is moved; the next retry is due in {wait} s: {advance(wait)} first."
        )
    return "\n".join(lines)
