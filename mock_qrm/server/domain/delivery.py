"""QRM's delivery state machine as pure functions: no clock, no I/O, no awaits.

The store runs these inside the transaction that records an attempt, on the
delivery as committed, so two attempts racing on one delivery (an automatic
retry and a manual redelivery) compose in the order they commit.
"""

from __future__ import annotations

import secrets
import threading
import time
from base64 import b64encode

from mock_qrm import __version__
from mock_qrm.contract.catalog import EventCatalog
from mock_qrm.contract.codes import DeliveryStatus, Outcome, Trigger
from mock_qrm.contract.models import MessagePayload, WebhookMessage
from mock_qrm.contract.rules import DELIVERY_MARKER
from mock_qrm.server.domain.policy import RetryPolicy
from mock_qrm.server.domain.records import AttemptRecord, DeliveryRecord, WebhookRecord

USER_AGENT = f"mock-qrm/{__version__} (Inspectorio QRM webhook simulator)"
REDACTED = "Basic [redacted]"

WAITING = frozenset({DeliveryStatus.PENDING, DeliveryStatus.RETRY_SCHEDULED})
"""States with an automatic attempt still to come."""


class _MessageIds:
    """`wh-` + a time-based (version 1) UUID, as QRM's messages carry.

    Made here rather than by `uuid.uuid1()`, which asks libuuid for a clock
    sequence on every call (7 us, fan-out's largest single cost). As RFC 4122
    allows for a host that does not give its MAC address, the node is random
    with the multicast bit set, and so is the clock sequence, once per process;
    the timestamp moves on by at least one tick per id, so ids never repeat.
    """

    _GREGORIAN = 0x01B21DD213814000
    """100 ns ticks from the UUID epoch (1582-10-15) to the Unix epoch."""

    def __init__(self) -> None:
        node = secrets.randbits(48) | 0x010000000000
        self._tail = f"{0x8000 | secrets.randbits(14):04x}-{node:012x}"
        self._last = 0
        self._lock = threading.Lock()  # one writer thread per server, and a process may run two

    def __call__(self) -> str:
        with self._lock:
            tick = self._last = max(time.time_ns() // 100 + self._GREGORIAN, self._last + 1)
        return (
            f"wh-{tick & 0xFFFFFFFF:08x}-{tick >> 32 & 0xFFFF:04x}"
            f"-{0x1000 | tick >> 48 & 0x0FFF:04x}-{self._tail}"
        )


message_id = _MessageIds()


def message_body(catalog: EventCatalog, msg_id: str, code: str, resource_id: int) -> bytes:
    event = catalog.get(code)
    message = WebhookMessage(
        message_id=msg_id,
        event_code=code,
        event_name=event.name if event else code,
        payload=MessagePayload(resource_id=resource_id, path=f"/reports/{resource_id}"),
    )
    return message.model_dump_json(by_alias=True).encode()


class MessageBodies:
    """`message_body`, with each event type's body rendered once by the model and then filled in.

    Only the message id and the resource id change from one message to the
    next; pydantic would spend 5 us per delivery on the rest. A message id is
    one of ours (hex digits and dashes), which JSON writes as it is.
    """

    _ID = "wh-00000000-0000-1000-8000-000000000000"
    _RESOURCE = 987_654_321_012_345

    def __init__(self, catalog: EventCatalog) -> None:
        self.catalog = catalog
        self._parts: dict[str, tuple[bytes, bytes, bytes, bytes] | None] = {}

    def __call__(self, msg_id: str, code: str, resource_id: int) -> bytes:
        try:
            parts = self._parts[code]
        except KeyError:
            parts = self._parts[code] = self._split(code)
        if parts is None:  # the markers were ambiguous in this event's body: render it whole
            return message_body(self.catalog, msg_id, code, resource_id)
        head, middle, path, tail = parts
        resource = str(resource_id).encode()
        return b"".join((head, msg_id.encode(), middle, resource, path, resource, tail))

    def _split(self, code: str) -> tuple[bytes, bytes, bytes, bytes] | None:
        rendered = message_body(self.catalog, self._ID, code, self._RESOURCE)
        head, *rest = rendered.split(self._ID.encode())
        if len(rest) != 1:
            return None
        pieces = rest[0].split(str(self._RESOURCE).encode())
        if len(pieces) != 3:
            return None
        middle, path, tail = pieces
        return head, middle, path, tail


def request_headers(webhook: WebhookRecord, delivery: DeliveryRecord) -> dict[str, str]:
    return headers_for(webhook, delivery.message_id)


def headers_for(webhook: WebhookRecord, msg_id: str) -> dict[str, str]:
    """The headers of a message to `webhook` (less `Host` and `Content-Length`, the sender's)."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        DELIVERY_MARKER: msg_id,
    }
    for name, value in webhook.headers:  # a custom User-Agent replaces ours
        headers.pop(next((k for k in headers if k.lower() == name.lower()), name), None)
        headers[name] = value
    if webhook.basic_auth is not None:
        user, password = webhook.basic_auth
        headers["Authorization"] = "Basic " + b64encode(f"{user}:{password}".encode()).decode()
    return headers


def redact(headers: dict[str, str]) -> dict[str, str]:
    """Headers as the journal keeps them: basic-auth credentials never leave the sender.

    A custom `Authorization` (basic auth off) is configuration the API shows anyway.
    """
    return {
        k: (REDACTED if k.lower() == "authorization" and v.startswith("Basic ") else v)
        for k, v in headers.items()
    }


def started(delivery: DeliveryRecord, trigger: Trigger) -> DeliveryRecord:
    """The delivery once an attempt has started: numbered, and in flight if automatic."""
    if trigger is Trigger.MANUAL:
        return delivery.but(attempts_total=delivery.attempts_total + 1)
    return delivery.but(
        attempts_total=delivery.attempts_total + 1,
        status=DeliveryStatus.IN_FLIGHT,
        next_attempt_at=None,
    )


def cancelled(delivery: DeliveryRecord, now: float) -> DeliveryRecord:
    return delivery.but(status=DeliveryStatus.CANCELLED, next_attempt_at=None, completed_at=now)


def next_state(
    delivery: DeliveryRecord,
    attempt: AttemptRecord,
    policy: RetryPolicy,
    *,
    webhook_active: bool,
    now: float,
) -> DeliveryRecord:
    """Where a delivery stands after `attempt` ended.

    - Exactly 200 delivers, whatever the state before (a manual success too).
    - A manual failure changes nothing but the last result; so does a late
      automatic failure on a delivery a manual attempt already delivered.
    - An automatic failure counts; the next attempt is due `retry_interval`
      after the failed one ended, unless the attempts are used up (`failed`)
      or the webhook was deactivated or removed meanwhile (`cancelled`).
    """
    result = delivery.but(
        last_status=attempt.response_status,
        last_error=attempt.error,
        last_error_detail=attempt.error_detail,
        last_duration_ms=attempt.duration_ms,
    )
    automatic = attempt.trigger is Trigger.AUTOMATIC
    counted = delivery.attempt_count + 1 if automatic else delivery.attempt_count
    if attempt.outcome is Outcome.SUCCESS:
        return result.but(
            status=DeliveryStatus.DELIVERED,
            next_attempt_at=None,
            completed_at=now,
            attempt_count=counted,
        )
    if not automatic or delivery.status is not DeliveryStatus.IN_FLIGHT:
        return result
    result = result.but(attempt_count=counted)
    due = policy.next_attempt_at(counted, attempt.ended_at)
    if not webhook_active:
        return result.but(status=DeliveryStatus.CANCELLED, completed_at=now)
    if due is None:
        return result.but(status=DeliveryStatus.FAILED, completed_at=now)
    return result.but(status=DeliveryStatus.RETRY_SCHEDULED, next_attempt_at=due)
