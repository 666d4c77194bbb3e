"""The records the server keeps: plain data, what the store reads and writes.

Times are epoch seconds (floats) for deliveries and attempts, epoch
milliseconds (ints) for webhooks, as their columns are. Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from mock_qrm.contract.codes import DeliveryStatus, Outcome, Trigger
from mock_qrm.contract.models import BasicAuthOut, Delivery, LastDelivery, RateLimit, Webhook
from mock_qrm.contract.timefmt import from_ms

FIRST_REPORT_ID = 12301
"""Reports are numbered from here, as the seeded ones are."""


@dataclass(frozen=True, slots=True)
class WebhookRecord:
    """A webhook as the server holds it, password included (never serialised)."""

    id: int
    name: str
    url: str
    events: tuple[str, ...]
    auth_username: str | None
    auth_password: str | None
    active: bool
    created_at: int
    updated_at: int
    deleted_at: int | None = None
    headers: tuple[tuple[str, str], ...] = ()
    """Custom headers, in the order they were given."""
    rate_limit: RateLimit | None = None

    @property
    def basic_auth(self) -> tuple[str, str] | None:
        if self.auth_username is None or self.auth_password is None:
            return None
        return self.auth_username, self.auth_password

    def public(self, last_delivery: LastDelivery | None = None) -> Webhook:
        return Webhook(
            id=self.id,
            name=self.name,
            url=self.url,
            events=list(self.events),
            basic_auth=None
            if self.auth_username is None
            else BasicAuthOut(username=self.auth_username, password_set=bool(self.auth_password)),
            active=self.active,
            headers=dict(self.headers),
            rate_limit=self.rate_limit,
            created_at=from_ms(self.created_at),
            updated_at=from_ms(self.updated_at),
            last_delivery=last_delivery,
        )


class DeliveryRecord(NamedTuple):
    """One message to one webhook, and where it stands, as last committed.

    A named tuple, not a dataclass: the engine makes several per attempt, and a
    tuple is made (and copied with changes) four to six times faster.
    """

    id: int
    message_id: str
    event_id: int
    webhook_id: int
    event_code: str
    resource_id: int
    status: DeliveryStatus
    body: bytes
    created_at: float
    attempt_count: int = 0
    """Automatic attempts that ended (the n of n/4)."""
    attempts_total: int = 0
    """Every attempt started, manual ones included: the last attempt's number."""
    next_attempt_at: float | None = None
    completed_at: float | None = None
    last_status: int | None = None
    last_error: str | None = None
    last_duration_ms: int | None = None
    last_error_detail: str | None = None

    def public(self, webhook_name: str) -> Delivery:
        # Built from typed fields on the hot path: construct without re-validating.
        return Delivery.model_construct(
            id=self.id,
            message_id=self.message_id,
            webhook_id=self.webhook_id,
            webhook_name=webhook_name,
            event_code=self.event_code,
            resource_id=self.resource_id,
            status=self.status,
            attempt_count=self.attempt_count,
            attempts_total=self.attempts_total,
            next_attempt_at=_moment(self.next_attempt_at),
            created_at=from_ms(round(self.created_at * 1000)),
            completed_at=_moment(self.completed_at),
            last_response_status=self.last_status,
            last_error=self.last_error,
            last_error_detail=self.last_error_detail,
            last_duration_ms=self.last_duration_ms,
        )

    def but(self, **changes: Any) -> DeliveryRecord:
        return self._replace(**changes)


def _moment(seconds: float | None) -> datetime | None:
    """Epoch seconds as the API's UTC time, at the store's millisecond precision."""
    return None if seconds is None else from_ms(round(seconds * 1000))


class AttemptRecord(NamedTuple):
    """One journal row. `outcome` is `None` while the request is in flight (a tuple, as above)."""

    id: int
    delivery_id: int
    number: int
    trigger: Trigger
    started_at: float
    url: str
    request_headers: dict[str, str]
    request_body: str
    duration_ms: int | None = None
    response_status: int | None = None
    response_headers: dict[str, str] | None = None
    response_body: str | None = None
    response_truncated: bool = False
    error: str | None = None
    outcome: Outcome | None = None
    error_detail: str | None = None
    """What the error class leaves out: `certificate verify failed for HOST: ...`."""

    @property
    def ended_at(self) -> float:
        return self.started_at + (self.duration_ms or 0) / 1000


@dataclass(frozen=True, slots=True)
class ScheduledEvent:
    """An event due later (`report.file_ready`), kept in the `events` table until emitted."""

    id: int
    code: str
    resource_id: int
    due_at: float


@dataclass(frozen=True, slots=True)
class GeneratedReport:
    """A report plus the fields the store indexes; `detail` is the API's `data` object."""

    id: int
    inspection_id: str
    status: str
    created_at: datetime
    updated_at: datetime
    system_updated_at: datetime
    inspection_date: datetime | None
    case_number: str
    inspection_type: str
    result: str
    detail: dict[str, Any]
