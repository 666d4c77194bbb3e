"""Webhook rows. Removal is a soft delete: the journal keeps pointing at them."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass

from mock_qrm.domain.models import BasicAuthOut, DeliveryStatus, LastDelivery, Webhook
from mock_qrm.domain.timefmt import from_ms
from mock_qrm.store.db import Database


@dataclass(slots=True)
class StoredWebhook:
    """A webhook as the server holds it, password included (never serialised)."""

    id: int
    name: str
    url: str
    events: list[str]
    auth_username: str | None
    auth_password: str | None
    active: bool
    created_at: int
    updated_at: int
    deleted_at: int | None = None

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
            created_at=from_ms(self.created_at),
            updated_at=from_ms(self.updated_at),
            last_delivery=last_delivery,
        )


_COLUMNS = (
    "id, name, url, events, auth_username, auth_password, active, created_at, updated_at,"
    " deleted_at"
)


def _row(webhook: StoredWebhook) -> tuple[object, ...]:
    return (
        webhook.id,
        webhook.name,
        webhook.url,
        json.dumps(webhook.events),
        webhook.auth_username,
        webhook.auth_password,
        int(webhook.active),
        webhook.created_at,
        webhook.updated_at,
        webhook.deleted_at,
    )


def save_webhook(conn: sqlite3.Connection, webhook: StoredWebhook) -> None:
    conn.execute(
        f"INSERT OR REPLACE INTO webhooks ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)", _row(webhook)
    )


def _stored(row: sqlite3.Row) -> StoredWebhook:
    return StoredWebhook(
        id=row["id"],
        name=row["name"],
        url=row["url"],
        events=json.loads(row["events"]),
        auth_username=row["auth_username"],
        auth_password=row["auth_password"],
        active=bool(row["active"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        deleted_at=row["deleted_at"],
    )


async def load_webhooks(db: Database) -> list[StoredWebhook]:
    """Every webhook not removed."""
    rows = await db.fetchall(
        f"SELECT {_COLUMNS} FROM webhooks WHERE deleted_at IS NULL ORDER BY id"
    )
    return [_stored(row) for row in rows]


async def load_webhook(db: Database, webhook_id: int) -> StoredWebhook | None:
    """One webhook, removed or not (a manual redelivery may target a removed one)."""
    row = await db.fetchone(f"SELECT {_COLUMNS} FROM webhooks WHERE id = ?", (webhook_id,))
    return None if row is None else _stored(row)


async def last_delivery(db: Database, webhook_id: int) -> LastDelivery | None:
    row = await db.fetchone(
        "SELECT id, status, last_status, last_error, COALESCE(completed_at, created_at) AS at"
        " FROM deliveries WHERE webhook_id = ? ORDER BY id DESC LIMIT 1",
        (webhook_id,),
    )
    if row is None:
        return None
    return LastDelivery(
        delivery_id=row["id"],
        status=DeliveryStatus(row["status"]),
        response_status=row["last_status"],
        error=row["last_error"],
        at=from_ms(row["at"]),
    )
