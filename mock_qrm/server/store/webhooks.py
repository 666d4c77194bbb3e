"""Webhook rows, and the registry's write transactions.

Removal is a soft delete: the journal keeps pointing at removed webhooks.
Each change reads the webhook inside its transaction, so two requests racing
on one webhook leave what one of them, in the order they committed, would
have left: a PATCH after a DELETE finds nothing to patch.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, replace

from mock_qrm.contract.codes import DeliveryStatus
from mock_qrm.contract.errors import NotFound
from mock_qrm.contract.models import LastDelivery, WebhookCreate, WebhookPatch
from mock_qrm.contract.timefmt import from_ms
from mock_qrm.server.domain.records import WebhookRecord
from mock_qrm.server.domain.webhooks import new_webhook, patched
from mock_qrm.server.store import journal
from mock_qrm.server.store.db import Database
from mock_qrm.server.store.webhook_rows import COLUMNS, record, row

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
        row(webhook),
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


async def last_deliveries(db: Database, webhook_ids: Sequence[int]) -> dict[int, LastDelivery]:
    """The most recent delivery to each of these webhooks (a page of them), in one query:
    one index seek each, however long their histories."""
    if not webhook_ids:
        return {}
    page = ",".join("(?)" for _ in webhook_ids)
    rows = await db.fetchall(
        f"WITH page(webhook_id) AS (VALUES {page})"
        " SELECT page.webhook_id, d.id, d.status, d.last_status, d.last_error,"
        " COALESCE(d.completed_at, d.created_at) AS at FROM page JOIN deliveries d ON d.id ="
        " (SELECT id FROM deliveries WHERE webhook_id = page.webhook_id ORDER BY id DESC LIMIT 1)",
        tuple(webhook_ids),
    )
    return {row["webhook_id"]: last for row in rows if (last := _last(row)) is not None}


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
