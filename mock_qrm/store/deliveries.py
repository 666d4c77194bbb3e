"""Events, deliveries and the attempt journal: the rows and every query on them."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mock_qrm.domain.models import (
    Attempt,
    Delivery,
    DeliveryDetail,
    DeliveryFilter,
    DeliveryStatus,
    Outcome,
    Trigger,
    WebhookMessage,
)
from mock_qrm.domain.timefmt import from_ms, to_ms
from mock_qrm.store.db import Database

ACTIVE_STATUSES = (DeliveryStatus.PENDING, DeliveryStatus.RETRY_SCHEDULED, DeliveryStatus.IN_FLIGHT)


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * 1000)


@dataclass(slots=True)
class DeliveryRecord:
    """One message to one webhook, and where it stands. Times in epoch seconds."""

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
    attempts_total: int = 0
    next_attempt_at: float | None = None
    completed_at: float | None = None
    last_status: int | None = None
    last_error: str | None = None
    last_duration_ms: int | None = None

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
            next_attempt_at=_moment(self.next_attempt_at),
            created_at=from_ms(round(self.created_at * 1000)),
            completed_at=_moment(self.completed_at),
            last_response_status=self.last_status,
            last_error=self.last_error,
            last_duration_ms=self.last_duration_ms,
        )


def _moment(seconds: float | None) -> datetime | None:
    """Epoch seconds as the API's UTC time, at the store's millisecond precision."""
    return None if seconds is None else from_ms(round(seconds * 1000))


@dataclass(slots=True)
class AttemptRecord:
    """One journal row. `outcome` is `None` while the request is in flight."""

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


_DELIVERY_COLUMNS = (
    "id, message_id, event_id, webhook_id, event_code, resource_id, status, attempt_count,"
    " attempts_total, next_attempt_at, created_at, completed_at, message, last_status,"
    " last_error, last_duration_ms"
)
_ATTEMPT_COLUMNS = (
    "id, delivery_id, number, trigger, started_at, duration_ms, url, request_headers,"
    " request_body, response_status, response_headers, response_body, response_truncated,"
    " error, outcome"
)


def _delivery_row(d: DeliveryRecord) -> tuple[Any, ...]:
    return (
        d.id,
        d.message_id,
        d.event_id,
        d.webhook_id,
        d.event_code,
        d.resource_id,
        d.status.value,
        d.attempt_count,
        d.attempts_total,
        _ms(d.next_attempt_at),
        _ms(d.created_at),
        _ms(d.completed_at),
        d.body.decode(),
        d.last_status,
        d.last_error,
        d.last_duration_ms,
    )


def _attempt_row(a: AttemptRecord) -> tuple[Any, ...]:
    return (
        a.id,
        a.delivery_id,
        a.number,
        a.trigger.value,
        _ms(a.started_at),
        a.duration_ms,
        a.url,
        json.dumps(a.request_headers),
        a.request_body,
        a.response_status,
        None if a.response_headers is None else json.dumps(a.response_headers),
        a.response_body,
        int(a.response_truncated),
        a.error,
        None if a.outcome is None else a.outcome.value,
    )


# --- writes (run by the group-commit writer) ---------------------------------


def insert_event(
    conn: sqlite3.Connection,
    event_id: int,
    event_code: str,
    resource_id: int,
    created_at: float,
    due_at: float,
    emitted: bool,
) -> None:
    conn.execute(
        "INSERT INTO events (id, event_code, resource_id, created_at, due_at, emitted_at)"
        " VALUES (?,?,?,?,?,?)",
        (
            event_id,
            event_code,
            resource_id,
            _ms(created_at),
            _ms(due_at),
            _ms(created_at) if emitted else None,
        ),
    )


def mark_event_emitted(conn: sqlite3.Connection, event_id: int, at: float) -> None:
    conn.execute("UPDATE events SET emitted_at = ? WHERE id = ?", (_ms(at), event_id))


def insert_deliveries(conn: sqlite3.Connection, deliveries: list[DeliveryRecord]) -> None:
    conn.executemany(
        f"INSERT INTO deliveries ({_DELIVERY_COLUMNS}) VALUES ({','.join('?' * 16)})",
        [_delivery_row(d) for d in deliveries],
    )


def update_deliveries(conn: sqlite3.Connection, deliveries: list[DeliveryRecord]) -> None:
    """Where deliveries stand now: an UPDATE touches only the indexes of changed columns."""
    conn.executemany(
        "UPDATE deliveries SET status = ?, attempt_count = ?, attempts_total = ?,"
        " next_attempt_at = ?, completed_at = ?, last_status = ?, last_error = ?,"
        " last_duration_ms = ? WHERE id = ?",
        [
            (
                d.status.value,
                d.attempt_count,
                d.attempts_total,
                _ms(d.next_attempt_at),
                _ms(d.completed_at),
                d.last_status,
                d.last_error,
                d.last_duration_ms,
                d.id,
            )
            for d in deliveries
        ],
    )


def insert_attempt(conn: sqlite3.Connection, attempt: AttemptRecord) -> None:
    conn.execute(
        f"INSERT INTO attempts ({_ATTEMPT_COLUMNS}) VALUES ({','.join('?' * 15)})",
        _attempt_row(attempt),
    )


def finish_attempt(conn: sqlite3.Connection, attempt: AttemptRecord) -> None:
    conn.execute(
        "UPDATE attempts SET duration_ms = ?, response_status = ?, response_headers = ?,"
        " response_body = ?, response_truncated = ?, error = ?, outcome = ? WHERE id = ?",
        (
            attempt.duration_ms,
            attempt.response_status,
            None if attempt.response_headers is None else json.dumps(attempt.response_headers),
            attempt.response_body,
            int(attempt.response_truncated),
            attempt.error,
            None if attempt.outcome is None else attempt.outcome.value,
            attempt.id,
        ),
    )


def interrupt_unfinished(conn: sqlite3.Connection, now: float) -> int:
    """After a crash: journal attempts that never ended as `interrupted`, retry their deliveries now.

    An interrupted attempt does not count toward the retries.
    """
    cursor = conn.execute(
        "UPDATE attempts SET outcome = 'interrupted', error = 'interrupted' WHERE outcome IS NULL"
    )
    conn.execute(
        "UPDATE deliveries SET status = 'pending', next_attempt_at = ? WHERE status = 'in_flight'",
        (_ms(now),),
    )
    return cursor.rowcount


# --- reads --------------------------------------------------------------------


def _record(row: sqlite3.Row) -> DeliveryRecord:
    def seconds(ms: int | None) -> float | None:
        return None if ms is None else ms / 1000

    return DeliveryRecord(
        id=row["id"],
        message_id=row["message_id"],
        event_id=row["event_id"],
        webhook_id=row["webhook_id"],
        event_code=row["event_code"],
        resource_id=row["resource_id"],
        status=DeliveryStatus(row["status"]),
        body=row["message"].encode(),
        created_at=row["created_at"] / 1000,
        attempt_count=row["attempt_count"],
        attempts_total=row["attempts_total"],
        next_attempt_at=seconds(row["next_attempt_at"]),
        completed_at=seconds(row["completed_at"]),
        last_status=row["last_status"],
        last_error=row["last_error"],
        last_duration_ms=row["last_duration_ms"],
    )


async def unfinished_deliveries(db: Database) -> list[DeliveryRecord]:
    """Deliveries that still have an automatic attempt to come (recovery is this query)."""
    rows = await db.fetchall(
        f"SELECT {_DELIVERY_COLUMNS} FROM deliveries WHERE status IN ('pending', 'retry_scheduled')"
    )
    return [_record(row) for row in rows]


async def pending_events(db: Database) -> list[tuple[int, str, int, float]]:
    """Events not yet fanned out: (id, code, resource id, due at)."""
    rows = await db.fetchall(
        "SELECT id, event_code, resource_id, due_at FROM events WHERE emitted_at IS NULL ORDER BY due_at"
    )
    return [(r["id"], r["event_code"], r["resource_id"], r["due_at"] / 1000) for r in rows]


async def load_delivery(db: Database, delivery_id: int) -> DeliveryRecord | None:
    row = await db.fetchone(
        f"SELECT {_DELIVERY_COLUMNS} FROM deliveries WHERE id = ?", (delivery_id,)
    )
    return None if row is None else _record(row)


def _where(flt: DeliveryFilter, counting: bool = False) -> tuple[str, list[Any]]:
    """SQL conditions for a filter.

    A time range is turned into an id range, so every other index stays usable
    in id order (see the schema). Counting a time range alone is cheaper on the
    narrow `by_created` index than on the table, so a count keeps the times.
    """
    if counting and not flt.model_dump(exclude={"since", "until"}, exclude_none=True):
        return _time_where(flt)
    clauses: list[str] = []
    params: list[Any] = []
    if flt.webhook_id is not None:
        clauses.append("d.webhook_id = ?")
        params.append(flt.webhook_id)
    if flt.status is not None:
        clauses.append("d.status = ?")
        params.append(flt.status.value)
    if flt.event_code is not None:
        clauses.append("d.event_code = ?")
        params.append(flt.event_code)
    if flt.resource_id is not None:
        clauses.append("d.resource_id = ?")
        params.append(flt.resource_id)
    if flt.message_id is not None:
        clauses.append("d.message_id = ?")
        params.append(flt.message_id)
    if flt.since is not None:
        clauses.append(
            "d.id >= COALESCE((SELECT id FROM deliveries WHERE created_at >= ?"
            " ORDER BY created_at, id LIMIT 1), 1 << 62)"
        )
        params.append(to_ms(flt.since))
    if flt.until is not None:
        clauses.append(
            "d.id <= COALESCE((SELECT id FROM deliveries WHERE created_at <= ?"
            " ORDER BY created_at DESC, id DESC LIMIT 1), 0)"
        )
        params.append(to_ms(flt.until))
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def _time_where(flt: DeliveryFilter) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if flt.since is not None:
        clauses.append("d.created_at >= ?")
        params.append(to_ms(flt.since))
    if flt.until is not None:
        clauses.append("d.created_at <= ?")
        params.append(to_ms(flt.until))
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def _public(row: sqlite3.Row) -> Delivery:
    return _record(row).public(row["webhook_name"])


def _select_public(message: str = "'' AS message") -> str:
    """Deliveries with their webhook's name; the message body only where it is shown."""
    return (
        "SELECT d.id, d.message_id, d.event_id, d.webhook_id, d.event_code, d.resource_id,"
        " d.status, d.attempt_count, d.attempts_total, d.next_attempt_at, d.created_at,"
        f" d.completed_at, {message}, d.last_status, d.last_error, d.last_duration_ms,"
        " w.name AS webhook_name FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id"
    )


async def list_deliveries(
    db: Database, flt: DeliveryFilter, limit: int, offset: int
) -> tuple[list[Delivery], int]:
    """Newest first, with the total matching the filter."""
    where, params = _where(flt)
    rows = await db.fetchall(
        f"{_select_public()}{where} ORDER BY d.id DESC LIMIT ? OFFSET ?", (*params, limit, offset)
    )
    count_where, count_params = _where(flt, counting=True)
    count = await db.fetchone(
        f"SELECT COUNT(*) FROM deliveries d{count_where}", tuple(count_params)
    )
    return [_public(row) for row in rows], int(count[0]) if count else 0


async def matching_ids(db: Database, flt: DeliveryFilter) -> list[int]:
    where, params = _where(flt)
    rows = await db.fetchall(f"SELECT d.id FROM deliveries d{where} ORDER BY d.id", tuple(params))
    return [row[0] for row in rows]


def _attempt(row: sqlite3.Row) -> Attempt:
    return Attempt(
        number=row["number"],
        trigger=Trigger(row["trigger"]),
        started_at=from_ms(row["started_at"]),
        duration_ms=row["duration_ms"],
        url=row["url"],
        request_headers=json.loads(row["request_headers"]),
        request_body=row["request_body"],
        response_status=row["response_status"],
        response_headers=None
        if row["response_headers"] is None
        else json.loads(row["response_headers"]),
        response_body=row["response_body"],
        response_truncated=bool(row["response_truncated"]),
        error=row["error"],
        outcome=None if row["outcome"] is None else Outcome(row["outcome"]),
    )


async def delivery_detail(db: Database, delivery_id: int) -> DeliveryDetail | None:
    row = await db.fetchone(
        f"{_select_public('d.message')} WHERE d.id = ?",
        (delivery_id,),
    )
    if row is None:
        return None
    attempts = await db.fetchall(
        f"SELECT {_ATTEMPT_COLUMNS} FROM attempts WHERE delivery_id = ? ORDER BY number",
        (delivery_id,),
    )
    summary = _public(row)
    return DeliveryDetail(
        **summary.model_dump(),
        message=WebhookMessage.model_validate_json(row["message"]),
        attempts=[_attempt(a) for a in attempts],
    )
