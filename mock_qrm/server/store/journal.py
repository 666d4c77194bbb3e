"""Events, deliveries and the attempt journal: named write transactions, and every query.

The journal is the truth: a delivery's state is what its last committed
transaction left, and the dispatcher's memory follows from what committed.
"""

from __future__ import annotations

import functools
import json
import random
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from mock_qrm.contract.catalog import FILE_READY
from mock_qrm.contract.codes import DeliveryStatus, Outcome, Trigger
from mock_qrm.contract.errors import Conflict, NotFound, RateLimited
from mock_qrm.contract.models import (
    Attempt,
    Delivery,
    DeliveryDetail,
    DeliveryFilter,
    ReportRow,
    WebhookMessage,
)
from mock_qrm.contract.timefmt import from_ms, to_ms
from mock_qrm.server.domain.delivery import (
    WAITING,
    cancelled,
    message_id,
    next_state,
    redact,
    started,
)
from mock_qrm.server.domain.policy import RetryPolicy, free_at
from mock_qrm.server.domain.records import (
    FIRST_REPORT_ID,
    AttemptRecord,
    DeliveryRecord,
    GeneratedReport,
    ScheduledEvent,
    WebhookRecord,
)
from mock_qrm.server.store import reports, webhook_rows
from mock_qrm.server.store.db import Database
from mock_qrm.server.store.schema import STATS_TABLES


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * 1000)


_DELIVERY_COLUMNS = (
    "id, message_id, event_id, webhook_id, event_code, resource_id, status, attempt_count,"
    " attempts_total, next_attempt_at, created_at, completed_at, message, last_status,"
    " last_error, last_duration_ms, last_error_detail"
)


def _aliased(columns: str, alias: str) -> str:
    """`a, b` as `alias.a, alias.b`, for a join."""
    return ", ".join(f"{alias}.{column.strip()}" for column in columns.split(","))


_DELIVERY_COLUMNS_D = _aliased(_DELIVERY_COLUMNS, "d")
_DELIVERY_WIDTH = len(_DELIVERY_COLUMNS.split(","))
_ATTEMPT_COLUMNS = (
    "id, delivery_id, number, trigger, started_at, duration_ms, url, request_headers,"
    " request_body, response_status, response_headers, response_body, response_truncated,"
    " error, outcome, error_detail"
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
        d.last_error_detail,
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
        a.error_detail,
    )


# --- named write transactions (each runs whole in the writer's transaction) -----
#
# Every change to deliveries and attempts is one of these. Each reads what it
# needs inside its transaction, so it acts on what is committed, never on a
# copy taken before an await; ids and attempt numbers are assigned here too.


class Named(NamedTuple):
    """A delivery as committed, with its webhook's name for the feed."""

    record: DeliveryRecord
    webhook_name: str

    def __call__(self) -> Delivery:
        """As the API and the feed show it (the feed calls this only when a client reads it)."""
        return self.record.public(self.webhook_name)


@dataclass(frozen=True, slots=True)
class Started:
    """An attempt journaled as started: the request may now go out."""

    attempt: AttemptRecord
    delivery: DeliveryRecord
    webhook: WebhookRecord
    headers: dict[str, str]
    """As sent, credentials included (the journal keeps them redacted)."""


Headers = Callable[[WebhookRecord, DeliveryRecord], dict[str, str]]
"""The request headers for an attempt, built from the webhook as committed."""


def next_id(conn: sqlite3.Connection, table: str, floor: int = 1) -> int:
    """The next free id, read in the writer's transaction (it is the only writer)."""
    (highest,) = conn.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}").fetchone()
    return max(int(highest) + 1, floor)


def insert_event(
    conn: sqlite3.Connection, code: str, resource_id: int, created_at: float, due_at: float
) -> int:
    """An event row; one due now is emitted in the same transaction, a later one stays pending.

    Numbered by SQLite, as `next_id` would (the largest id plus one), without reading it
    first; refused (`NotFound`) for a report that does not exist, in the same statement.
    """
    inserted = conn.execute(
        "INSERT INTO events (event_code, resource_id, created_at, due_at, emitted_at)"
        " SELECT ?,?,?,?,? WHERE EXISTS (SELECT 1 FROM reports WHERE id = ?)",
        (
            code,
            resource_id,
            _ms(created_at),
            _ms(due_at),
            _ms(created_at) if due_at <= created_at else None,
            resource_id,
        ),
    )
    if inserted.rowcount == 0:
        raise NotFound("Report", resource_id)
    assert inserted.lastrowid is not None
    return inserted.lastrowid


@functools.lru_cache(maxsize=1024)
def _codes(events: str) -> frozenset[str]:
    """A webhook's `events` column, parsed once per distinct value (fan-out reads it per event)."""
    return frozenset(json.loads(events))


def fan_out(
    conn: sqlite3.Connection,
    event_id: int,
    code: str,
    resource_id: int,
    now: float,
    body: Callable[[str, str, int], bytes],
) -> list[Named]:
    """One new delivery per webhook active and subscribed to `code` as committed now."""
    rows = conn.execute(
        "SELECT id, name, events FROM webhooks WHERE deleted_at IS NULL AND active = 1 ORDER BY id"
    ).fetchall()
    subscribers = [(row[0], row[1]) for row in rows if code in _codes(row[2])]
    first = next_id(conn, "deliveries")
    made = []
    for offset, (webhook_id, name) in enumerate(subscribers):
        msg_id = message_id()
        record = DeliveryRecord(
            id=first + offset,
            message_id=msg_id,
            event_id=event_id,
            webhook_id=webhook_id,
            event_code=code,
            resource_id=resource_id,
            status=DeliveryStatus.PENDING,
            body=body(msg_id, code, resource_id),
            created_at=now,
            next_attempt_at=now,
        )
        made.append(Named(record, name))
    conn.executemany(
        f"INSERT INTO deliveries ({_DELIVERY_COLUMNS}) VALUES ({','.join('?' * _DELIVERY_WIDTH)})",
        [_delivery_row(named.record) for named in made],
    )
    return made


@dataclass(frozen=True, slots=True)
class Emitted:
    """An event's deliveries, and its report's row if the event changed the report."""

    deliveries: list[Named]
    report: ReportRow | None = None


def emit_event(
    conn: sqlite3.Connection,
    code: str,
    resource_id: int,
    now: float,
    body: Callable[[str, str, int], bytes],
    *,
    scheduled_id: int | None = None,
) -> Emitted:
    """An event happens now: journaled, fanned out, and the report marked if its file is ready.

    A scheduled event already emitted (or wiped by a reset) emits nothing.
    """
    if scheduled_id is None:
        event_id = insert_event(conn, code, resource_id, now, now)
    else:
        if not reports.report_exists(conn, resource_id):
            raise NotFound("Report", resource_id)
        event_id = scheduled_id
        marked = conn.execute(
            "UPDATE events SET emitted_at = ? WHERE id = ? AND emitted_at IS NULL",
            (_ms(now), event_id),
        )
        if marked.rowcount == 0:
            return Emitted([])
    deliveries = fan_out(conn, event_id, code, resource_id, now, body)
    if code != FILE_READY:
        return Emitted(deliveries)
    reports.mark_file_ready(conn, resource_id, now)
    return Emitted(deliveries, reports.report_row_in(conn, resource_id))


@dataclass(frozen=True, slots=True)
class Uploaded:
    report: GeneratedReport
    row: ReportRow
    deliveries: list[Named]
    file_ready: ScheduledEvent


def upload_report(
    conn: sqlite3.Connection,
    build: Callable[[int], GeneratedReport],
    now: float,
    file_ready_due: float,
    body: Callable[[str, str, int], bytes],
) -> Uploaded:
    """An inspector uploads a report: the report, `report.created` now, `file_ready` later."""
    report = build(next_id(conn, "reports", FIRST_REPORT_ID))
    reports.save_report(conn, report, file_ready_at=None)
    created = emit_event(conn, "report.created", report.id, now, body)
    ready_id = insert_event(conn, FILE_READY, report.id, now, file_ready_due)
    row = reports.report_row_in(conn, report.id)
    assert row is not None  # saved above, in this transaction
    return Uploaded(
        report,
        row,
        created.deliveries,
        ScheduledEvent(ready_id, FILE_READY, report.id, file_ready_due),
    )


_WITH_WEBHOOK = (
    f"SELECT {_DELIVERY_COLUMNS_D}, {_aliased(webhook_rows.COLUMNS, 'w')} FROM deliveries d"
    " LEFT JOIN webhooks w ON w.id = d.webhook_id WHERE d.id = ?"
)


def _delivery_and_webhook(
    conn: sqlite3.Connection, delivery_id: int
) -> tuple[DeliveryRecord, WebhookRecord | None] | None:
    """A delivery and its webhook (removed or not), in one statement: each attempt reads both."""
    row = conn.execute(_WITH_WEBHOOK, (delivery_id,)).fetchone()
    if row is None:
        return None
    values = tuple(row)
    webhook_part = values[_DELIVERY_WIDTH:]
    return _record(values), None if webhook_part[0] is None else webhook_rows.record(webhook_part)


def _update(conn: sqlite3.Connection, deliveries: list[DeliveryRecord]) -> None:
    """Where deliveries stand now: an UPDATE touches only the indexes of changed columns."""
    conn.executemany(
        "UPDATE deliveries SET status = ?, attempt_count = ?, attempts_total = ?,"
        " next_attempt_at = ?, completed_at = ?, last_status = ?, last_error = ?,"
        " last_duration_ms = ?, last_error_detail = ? WHERE id = ?",
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
                d.last_error_detail,
                d.id,
            )
            for d in deliveries
        ],
    )


def start_attempt(
    conn: sqlite3.Connection,
    delivery_id: int,
    trigger: Trigger,
    now: float,
    headers: Headers,
    policy: RetryPolicy,
) -> Started | Named | None:
    """Journal an attempt as started, numbered after every attempt committed before it.

    Automatic: `None` if the delivery no longer waits (delivered by hand,
    cancelled); its cancellation (`Named`) if its webhook was deactivated or
    removed meanwhile; the delivery with a later due time (`Named`) if the
    webhook's rate limit has no room now. Manual: refused for an unknown
    delivery or a removed webhook (`NotFound`), an inactive one (`Conflict`)
    and a full rate limit (`RateLimited`).
    """
    found = _delivery_and_webhook(conn, delivery_id)
    if found is None:
        if trigger is Trigger.MANUAL:
            raise NotFound("Delivery", delivery_id)
        return None
    delivery, webhook = found
    live = webhook is not None and webhook.deleted_at is None
    if trigger is Trigger.AUTOMATIC:
        if delivery.status not in WAITING:
            return None
        if webhook is None or not live or not webhook.active:
            gone = cancelled(delivery, now)
            _update(conn, [gone])
            return Named(gone, webhook.name if webhook else "")
    elif webhook is None or not live:
        raise NotFound(
            "Webhook",
            delivery.webhook_id,
            "was removed: a removed webhook receives nothing, redeliveries included",
        )
    elif not webhook.active:
        raise Conflict(f"Webhook {webhook.id} is inactive: activate it before redelivering to it")
    now_ms = round(now * 1000)
    if webhook.rate_limit is not None:
        free = _rate_limited(conn, webhook, policy, now_ms)
        if free is not None:  # waiting is not an attempt: only the due time moves
            if trigger is Trigger.MANUAL:
                raise RateLimited(webhook.id, str(webhook.rate_limit), free, now)
            waiting = delivery.but(next_attempt_at=free)
            _update(conn, [waiting])
            return Named(waiting, webhook.name)
    _note_start(conn, webhook.id, now_ms, policy.window_ms("hour"))
    delivery = started(delivery, trigger)
    sent = headers(webhook, delivery)
    attempt = AttemptRecord(
        id=0,  # numbered by SQLite, as `next_id` would (the largest id plus one)
        delivery_id=delivery.id,
        number=delivery.attempts_total,
        trigger=trigger,
        started_at=now,
        url=webhook.url,
        request_headers=redact(sent),
        request_body=delivery.body.decode(),
    )
    inserted = conn.execute(
        f"INSERT INTO attempts ({_ATTEMPT_COLUMNS}) VALUES (NULL,{','.join('?' * 15)})",
        _attempt_row(attempt)[1:],
    )
    assert inserted.lastrowid is not None
    attempt = attempt._replace(id=inserted.lastrowid)
    _update(conn, [delivery])
    return Started(attempt, delivery, webhook, sent)


def _rate_limited(
    conn: sqlite3.Connection, webhook: WebhookRecord, policy: RetryPolicy, now_ms: int
) -> float | None:
    """When an attempt starting now fits the webhook's limit: `None` if it fits now.

    Every attempt's start is in `rate_window` for the longest period, limited
    webhook or not, so a limit set (or changed) just now counts what came before it.
    """
    assert webhook.rate_limit is not None
    window = policy.window_ms(webhook.rate_limit.period)
    starts = [
        row[0]
        for row in conn.execute(
            "SELECT started_at FROM rate_window WHERE webhook_id = ? AND started_at > ?"
            " ORDER BY started_at",
            (webhook.id, now_ms - window),
        )
    ]
    free = free_at(starts, webhook.rate_limit.limit, window)
    return None if free is None else free / 1000


PRUNE_ONE_IN = 64
"""How often a start also forgets its webhook's starts older than the longest window."""
prune_draw = random.Random()
"""Its own generator: the global one belongs to whoever embeds the server (a seeded test)."""


def _note_start(conn: sqlite3.Connection, webhook_id: int, now_ms: int, keep_ms: int) -> None:
    """An attempt started now.

    Starts older than the longest window never count (`_rate_limited` reads
    past them); forgetting them is housekeeping, done on one start in
    `PRUNE_ONE_IN` (a statement fewer on the others), at random, so that no
    webhook is always the one skipped.
    """
    if prune_draw.randrange(PRUNE_ONE_IN) == 0:
        conn.execute(
            "DELETE FROM rate_window WHERE webhook_id = ? AND started_at <= ?",
            (webhook_id, now_ms - keep_ms),
        )
    conn.execute(
        "INSERT INTO rate_window (webhook_id, started_at) VALUES (?, ?)", (webhook_id, now_ms)
    )


def finish_attempt(
    conn: sqlite3.Connection,
    started: Started,
    ended: AttemptRecord,
    policy: RetryPolicy,
    now: float,
) -> Named | None:
    """Journal how an attempt ended and move its delivery on (`next_state`).

    `None` if the attempt is no longer in the journal (a reset wiped it): the
    delivery is matched by its messageId, which no other delivery ever has.
    """
    found = _delivery_and_webhook(conn, ended.delivery_id)
    if found is None or found[0].message_id != started.delivery.message_id:
        return None
    delivery, webhook = found
    finished = conn.execute(
        "UPDATE attempts SET duration_ms = ?, response_status = ?, response_headers = ?,"
        " response_body = ?, response_truncated = ?, error = ?, outcome = ?, error_detail = ?"
        " WHERE id = ? AND delivery_id = ? AND outcome IS NULL",
        (
            ended.duration_ms,
            ended.response_status,
            None if ended.response_headers is None else json.dumps(ended.response_headers),
            ended.response_body,
            int(ended.response_truncated),
            ended.error,
            None if ended.outcome is None else ended.outcome.value,
            ended.error_detail,
            ended.id,
            ended.delivery_id,
        ),
    )
    if finished.rowcount == 0:
        return None
    active = webhook is not None and webhook.active and webhook.deleted_at is None
    after = next_state(delivery, ended, policy, webhook_active=active, now=now)
    _update(conn, [after])
    return Named(after, "" if webhook is None else webhook.name)


def cancel_waiting(
    conn: sqlite3.Connection, webhook_id: int, webhook_name: str, now: float
) -> list[Named]:
    """A webhook deactivated or removed: its waiting deliveries are cancelled.

    Attempts in flight end as they end (`finish_attempt` cancels a failure).
    """
    rows = conn.execute(
        f"SELECT {_DELIVERY_COLUMNS} FROM deliveries"
        " WHERE webhook_id = ? AND status IN ('pending', 'retry_scheduled')",
        (webhook_id,),
    ).fetchall()
    gone = [cancelled(_record(row), now) for row in rows]
    _update(conn, gone)
    return [Named(record, webhook_name) for record in gone]


def retime_waiting(
    conn: sqlite3.Connection, webhook_id: int, webhook_name: str, now: float, retry_interval: float
) -> list[Named]:
    """A webhook's rate limit changed: its waiting deliveries are due when they would have been.

    A rate limit only ever moves a due time later, so each goes back to its own:
    a pending delivery now, a retry `retry_interval` after its last automatic
    attempt ended. `start_attempt` then applies the new limit.
    """
    rows = conn.execute(
        f"SELECT {_DELIVERY_COLUMNS} FROM deliveries"
        " WHERE webhook_id = ? AND status IN ('pending', 'retry_scheduled')",
        (webhook_id,),
    ).fetchall()
    moved = []
    for row in rows:
        delivery = _record(row)
        due = now
        if delivery.status is DeliveryStatus.RETRY_SCHEDULED:
            last = conn.execute(
                "SELECT started_at + COALESCE(duration_ms, 0) FROM attempts"
                " WHERE delivery_id = ? AND trigger = 'automatic' ORDER BY number DESC LIMIT 1",
                (delivery.id,),
            ).fetchone()
            if last is not None:
                due = max(now, last[0] / 1000 + retry_interval)
        if delivery.next_attempt_at is not None and due < delivery.next_attempt_at:
            moved.append(delivery.but(next_attempt_at=due))
    _update(conn, moved)
    return [Named(record, webhook_name) for record in moved]


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


@dataclass(frozen=True, slots=True)
class Recovered:
    """What is still moving, as committed: the dispatcher's memory is rebuilt from this."""

    interrupted: int
    waiting: list[Named]
    events: list[ScheduledEvent]


def recover(conn: sqlite3.Connection, now: float) -> Recovered:
    """At start (and after a reset): attempts cut short are `interrupted`, and what still waits.

    Crash recovery is this one transaction, not a special case.
    """
    interrupted = interrupt_unfinished(conn, now)
    rows = conn.execute(
        f"SELECT {_DELIVERY_COLUMNS_D}, w.name AS webhook_name FROM deliveries d"
        " JOIN webhooks w ON w.id = d.webhook_id"
        " WHERE d.status IN ('pending', 'retry_scheduled')"
    ).fetchall()
    events = conn.execute(
        "SELECT id, event_code, resource_id, due_at FROM events WHERE emitted_at IS NULL"
    ).fetchall()
    return Recovered(
        interrupted,
        [Named(_record(row), row["webhook_name"]) for row in rows],
        [
            ScheduledEvent(e["id"], e["event_code"], e["resource_id"], e["due_at"] / 1000)
            for e in events
        ],
    )


def wipe(conn: sqlite3.Connection, *, keep_reports_below: int = 0) -> None:
    """Every webhook, report, event, delivery and attempt gone (for `POST /_mock/reset`).

    `keep_reports_below` keeps the reports with lower ids (the seeded ones).
    """
    for table in ("attempts", "deliveries", "events", "webhooks", "rate_window", *STATS_TABLES):
        conn.execute(f"DELETE FROM {table}")
    conn.execute("DELETE FROM reports WHERE id >= ?", (keep_reports_below,))


# --- reads --------------------------------------------------------------------


_STATUS = {status.value: status for status in DeliveryStatus}


def _record(row: sqlite3.Row | tuple[Any, ...]) -> DeliveryRecord:
    """A row that starts with `_DELIVERY_COLUMNS`, in that order, as a record.

    By position, not by name: each attempt reads two, and a read by name takes 2.5 times as long.
    """
    (
        id_,
        msg_id,
        event_id,
        webhook_id,
        code,
        resource_id,
        status,
        attempt_count,
        attempts_total,
        next_attempt_at,
        created_at,
        completed_at,
        message,
        last_status,
        last_error,
        last_duration_ms,
        last_error_detail,
    ) = row[:_DELIVERY_WIDTH]
    return DeliveryRecord(
        id=id_,
        message_id=msg_id,
        event_id=event_id,
        webhook_id=webhook_id,
        event_code=code,
        resource_id=resource_id,
        status=_STATUS[status],
        body=message.encode(),
        created_at=created_at / 1000,
        attempt_count=attempt_count,
        attempts_total=attempts_total,
        next_attempt_at=None if next_attempt_at is None else next_attempt_at / 1000,
        completed_at=None if completed_at is None else completed_at / 1000,
        last_status=last_status,
        last_error=last_error,
        last_duration_ms=last_duration_ms,
        last_error_detail=last_error_detail,
    )


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


def _select_public(message: str = "'' AS message", more: str = "") -> str:
    """Deliveries with their webhook's name; the message body only where it is shown.

    The columns are `_DELIVERY_COLUMNS`, in their order (`_record` reads them by position).
    """
    columns = _DELIVERY_COLUMNS_D.replace("d.message,", f"{message},")
    return (
        f"SELECT {columns}, w.name AS webhook_name{more}"
        " FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id"
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


async def redeliverable_ids(db: Database, flt: DeliveryFilter) -> list[int]:
    """Deliveries matching the filter whose webhook is still there and active."""
    where, params = _where(flt)
    rows = await db.fetchall(
        "SELECT d.id FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id"
        f" AND w.deleted_at IS NULL AND w.active = 1{where} ORDER BY d.id",
        tuple(params),
    )
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
        error_detail=row["error_detail"],
        outcome=None if row["outcome"] is None else Outcome(row["outcome"]),
    )


_DETAIL_ATTEMPT_COLUMNS = ", ".join(
    "a." + c.strip() for c in _ATTEMPT_COLUMNS.split(",") if c.strip() != "id"
)
"""An attempt's columns beside its delivery's: all but `id`, the one name they share."""


async def delivery_detail(db: Database, delivery_id: int) -> DeliveryDetail | None:
    """The delivery and its attempts, read in one query (one row per attempt, or one without)."""
    rows = await db.fetchall(
        f"{_select_public('d.message', ', ' + _DETAIL_ATTEMPT_COLUMNS)}"
        " LEFT JOIN attempts a ON a.delivery_id = d.id WHERE d.id = ? ORDER BY a.number",
        (delivery_id,),
    )
    if not rows:
        return None
    summary = _public(rows[0])
    return DeliveryDetail(
        **summary.model_dump(),
        message=WebhookMessage.model_validate_json(rows[0]["message"]),
        attempts=[_attempt(row) for row in rows if row["number"] is not None],
    )
