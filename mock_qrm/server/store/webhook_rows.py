"""A webhook as a row of its table: the columns, in order, and the record they make.

Apart from the registry's transactions (`webhooks`) because the journal reads
webhooks too: every attempt joins its delivery to its webhook's row.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from typing import Any

from mock_qrm.contract.models import RateLimit
from mock_qrm.server.domain.records import WebhookRecord

COLUMNS = (
    "id, name, url, events, auth_username, auth_password, active, created_at, updated_at,"
    " deleted_at, headers, rate_limit"
)


def row(webhook: WebhookRecord) -> tuple[object, ...]:
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
