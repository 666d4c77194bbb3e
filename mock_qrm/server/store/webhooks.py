"""Webhook rows, and the registry's write transactions.

Removal is a soft delete: the journal keeps pointing at removed webhooks.
Each change reads the webhook inside its transaction, so two requests racing
on one webhook leave what one of them, in the order they committed, would
have left: a PATCH after a DELETE finds nothing to patch.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from dataclasses import dataclass, replace
from typing import Any

from mock_qrm.contract.codes import DeliveryStatus
from mock_qrm.contract.errors import NotFound
from mock_qrm.contract.models import LastDelivery, RateLimit, WebhookCreate, WebhookPatch
from mock_qrm.contract.timefmt import from_ms
from mock_qrm.server.domain.records import WebhookRecord
from mock_qrm.server.domain.webhooks import new_webhook, patched
from mock_qrm.server.store import journal
from mock_qrm.server.store.db import Database

COLUMNS = (
    "id, name, url, events, auth_username, auth_password, active, created_at, updated_at,"
    " deleted_at, headers, rate_limit"
)


def _row(webhook: WebhookRecord) -> tuple[object, ...]:
    return (
        webhook.id,
        webhook.name,
        webhook.url,
        json.dumps(list(webhook.events)),
        webhook.auth_username,
        webhook.auth_password,
        int(webhook.active),
        webhook.created_at,
        webhook.updated_at,
        webhook.deleted_at,
        json.dumps(webhook.headers),
        None if webhook.rate_limit is None else webhook.rate_limit.model_dump_json(),
    )


def record(row: sqlite3.Row | tuple[object, ...]) -> WebhookRecord:
    """A row of `COLUMNS` (in that order) as a record."""
    return _parsed(tuple(row))


@functools.lru_cache(maxsize=256)
def _parsed(row: tuple[Any, ...]) -> WebhookRecord:
    """A row as a record, parsed once per distinct row: every attempt reads its webhook."""
    (
        id_,
        name,
        url,
        events,
        username,
        password,
        active,
        created,
        updated,
        deleted,
        headers,
        limit,
    ) = row
    return WebhookRecord(
        id=int(id_),
        name=str(name),
        url=str(url),
        events=tuple(json.loads(str(events))),
        auth_username=None if username is None else str(username),
        auth_password=None if password is None else str(password),
        active=bool(active),
        created_at=int(created),
        updated_at=int(updated),
        deleted_at=None if deleted is None else int(deleted),
        headers=tuple((str(name), str(value)) for name, value in json.loads(str(headers))),
        rate_limit=None if limit is None else RateLimit.model_validate_json(str(limit)),
    )


# --- write transactions -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Changed:
    """A webhook as committed, and the deliveries its change cancelled or re-timed."""

    webhook: WebhookRecord
    deliveries: list[journal.Named]
    last: LastDelivery | None


def webhook_row(conn: sqlite3.Connection, webhook_id: int) -> WebhookRecord | None:
    """One webhook, removed or not, as the writer's transaction sees it."""
    row = conn.execute(f"SELECT {COLUMNS} FROM webhooks WHERE id = ?", (webhook_id,)).fetchone()
    return None if row is None else record(row)


def _live(conn: sqlite3.Connection, webhook_id: int) -> WebhookRecord:
    webhook = webhook_row(conn, webhook_id)
    if webhook is None or webhook.deleted_at is not None:
        raise NotFound("Webhook", webhook_id)
    return webhook


def _save(conn: sqlite3.Connection, webhook: WebhookRecord) -> None:
    conn.execute(
        f"INSERT OR REPLACE INTO webhooks ({COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        _row(webhook),
    )


def create(conn: sqlite3.Connection, spec: WebhookCreate, now_ms: int) -> WebhookRecord:
    webhook = new_webhook(spec, journal.next_id(conn, "webhooks"), now_ms)
    _save(conn, webhook)
    return webhook


def update(
    conn: sqlite3.Connection,
    webhook_id: int,
    patch: WebhookPatch,
    now_ms: int,
    retry_interval: float,
) -> Changed:
    """Apply a patch to the webhook as committed.

    Deactivating cancels its waiting deliveries; a new rate limit re-times
    those the old one held back (the new one applies when they start).
    """
    current = _live(conn, webhook_id)
    updated = patched(current, patch, now_ms)
    _save(conn, updated)
    moved: list[journal.Named] = []
    if current.active and not updated.active:
        moved = journal.cancel_waiting(conn, webhook_id, updated.name, now_ms / 1000)
    elif updated.active and updated.rate_limit != current.rate_limit:
        moved = journal.retime_waiting(
            conn, webhook_id, updated.name, now_ms / 1000, retry_interval
        )
    return Changed(updated, moved, _last(conn.execute(_LAST, (webhook_id,)).fetchone()))


def delete(conn: sqlite3.Connection, webhook_id: int, now_ms: int) -> Changed:
    """Remove a webhook (its history stays) and cancel its waiting deliveries."""
    removed = replace(_live(conn, webhook_id), deleted_at=now_ms, updated_at=now_ms)
    _save(conn, removed)
    gone = journal.cancel_waiting(conn, webhook_id, removed.name, now_ms / 1000)
    return Changed(removed, gone, _last(conn.execute(_LAST, (webhook_id,)).fetchone()))


# --- reads ----------------------------------------------------------------------------


async def load_webhooks(db: Database) -> list[WebhookRecord]:
    """Every webhook not removed."""
    rows = await db.fetchall(f"SELECT {COLUMNS} FROM webhooks WHERE deleted_at IS NULL ORDER BY id")
    return [record(row) for row in rows]


_LAST = (
    "SELECT id, status, last_status, last_error, COALESCE(completed_at, created_at) AS at"
    " FROM deliveries WHERE webhook_id = ? ORDER BY id DESC LIMIT 1"
)


async def last_delivery(db: Database, webhook_id: int) -> LastDelivery | None:
    """The most recent delivery to a webhook, for the Webhooks table."""
    return _last(await db.fetchone(_LAST, (webhook_id,)))


def _last(row: sqlite3.Row | None) -> LastDelivery | None:
    if row is None:
        return None
    return LastDelivery(
        delivery_id=row["id"],
        status=DeliveryStatus(row["status"]),
        response_status=row["last_status"],
        error=row["last_error"],
        at=from_ms(row["at"]),
    )
