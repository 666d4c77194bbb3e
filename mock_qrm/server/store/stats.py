"""A webhook's statistics, read in one statement from what the stats triggers keep.

The triggers (schema migration 3) count every ended attempt by (outcome, result,
duration): in all (`stats_totals`), by the minute it started (`stats_minutes`),
and one row each by start (`stats_attempts`). A read never touches the journal's
million rows: without `since` it is the webhook's totals; with `since`, the
minutes from the first whole one on, plus the attempts one by one before it in
`since`'s own minute. When `since` lies in the older half of the history, the
part before it is read instead and taken from the totals. Delivery counts come
from the deliveries' index by webhook and state, with the journal list's own
filter, so they agree with it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mock_qrm.contract.codes import DeliveryStatus
from mock_qrm.contract.models import DeliveryFilter, WebhookStats
from mock_qrm.contract.timefmt import to_ms
from mock_qrm.server.domain.stats import CountedRow, DurationRow, MinuteRow, Tally, minutes
from mock_qrm.server.store.db import Database
from mock_qrm.server.store.journal import _where as delivery_conditions

MINUTE_MS = 60_000

_TOTALS = (
    "SELECT 't', outcome, result, duration_ms, attempts, last_at FROM stats_totals"
    " WHERE webhook_id = ?"
)
_COUNTED = (  # the minutes in a range, and the attempts of one partial minute, counted alike
    "SELECT 's', outcome, result, duration_ms, SUM(n), MAX(at) FROM ("
    " SELECT outcome, result, duration_ms, attempts AS n, last_at AS at FROM stats_minutes"
    "  WHERE webhook_id = ? AND minute >= ? AND minute < ?"
    " UNION ALL"
    " SELECT outcome, result, duration_ms, 1, started_at FROM stats_attempts"
    "  WHERE webhook_id = ? AND started_at >= ? AND started_at < ?"
    ") GROUP BY outcome, result, duration_ms"
)
_MINUTES = (  # each minute's attempts and failures, and how long its attempts took, by duration
    "SELECT 'm', minute, SUM(attempts), SUM(CASE outcome WHEN 'failure' THEN attempts END),"
    " NULL, NULL FROM stats_minutes WHERE webhook_id = ? AND minute >= ? AND minute <= ?"
    " GROUP BY minute"
    " UNION ALL"
    " SELECT 'p', minute, duration_ms, SUM(attempts), NULL, NULL FROM stats_minutes"
    " WHERE webhook_id = ? AND minute >= ? AND minute <= ? AND duration_ms >= 0"
    " GROUP BY minute, duration_ms"  # in the key's order: no sorting
)
_NEVER = 1 << 62
"""A minute (and a millisecond) later than any."""


async def webhook_stats(
    db: Database, webhook_id: int, since: datetime | None, now_ms: int, per_minute: int = 0
) -> WebhookStats | None:
    """The webhook's figures (`WebhookStats` says what each counts); `None` if it never existed.

    `per_minute` adds that many minutes one by one, the last the one `now_ms` is in.
    """
    parts = [
        "SELECT 'w', deleted_at IS NOT NULL, NULL, NULL, NULL, NULL FROM webhooks WHERE id = ?"
    ]
    params: list[Any] = [webhook_id]
    counts = []
    for status in (DeliveryStatus.DELIVERED, DeliveryStatus.FAILED):
        where, values = delivery_conditions(
            DeliveryFilter(webhook_id=webhook_id, status=status, since=since)
        )
        counts.append(f"(SELECT COUNT(*) FROM deliveries d{where})")
        params.extend(values)
    parts.append(f"SELECT 'd', {counts[0]}, {counts[1]}, NULL, NULL, NULL")

    since_ms = None if since is None else to_ms(since)
    before = False
    if since_ms is None:
        parts.append(_TOTALS)
        params.append(webhook_id)
    else:
        floor, ceil = since_ms // MINUTE_MS, -(-since_ms // MINUTE_MS)
        before = await _older_half(db, webhook_id, floor, ceil)
        if before:  # what came before `since`, to take from the totals
            parts.extend((_TOTALS, _COUNTED))
            params.extend((webhook_id, webhook_id, -_NEVER, floor))
            params.extend((webhook_id, floor * MINUTE_MS, since_ms))
        else:  # what came at or after `since`
            parts.append(_COUNTED)
            params.extend((webhook_id, ceil, _NEVER, webhook_id, since_ms, ceil * MINUTE_MS))
    last_minute = now_ms // MINUTE_MS
    first_minute = last_minute - per_minute + 1
    if per_minute:
        parts.append(_MINUTES)
        params.extend((webhook_id, first_minute, last_minute) * 2)

    rows = await db.fetchall(" UNION ALL ".join(parts), tuple(params))
    tagged: dict[str, list[Any]] = {"w": [], "d": [], "t": [], "s": [], "m": [], "p": []}
    for row in rows:
        tagged[row[0]].append(row[1:])
    if not tagged["w"]:
        return None
    [(removed, *_)] = tagged["w"]
    [(delivered, failed, *_)] = tagged["d"]
    counted: list[CountedRow] = tagged["s"]
    if since_ms is None:
        tally = Tally.of(tagged["t"])
    elif before:
        tally = Tally.of(tagged["t"]).without(Tally.of(counted), since_ms)
    else:
        tally = Tally.of(counted)
    by_minute: list[MinuteRow] = [row[:3] for row in tagged["m"]]
    durations: list[DurationRow] = [row[:3] for row in tagged["p"]]
    return tally.stats(
        webhook_id,
        removed=bool(removed),
        since=since,
        delivered=delivered,
        failed=failed,
        per_minute=minutes(by_minute, durations, first_minute, last_minute) if per_minute else [],
    )


async def _older_half(db: Database, webhook_id: int, floor: int, ceil: int) -> bool:
    """Whether fewer minutes of the webhook's history lie before `since` than after it.

    Two lookups on the minutes' key: the cheaper side to read, taking the
    history's minutes as evenly filled.
    """
    row = await db.fetchone(
        "SELECT (SELECT MIN(minute) FROM stats_minutes WHERE webhook_id = ?),"
        " (SELECT MAX(minute) FROM stats_minutes WHERE webhook_id = ?)",
        (webhook_id, webhook_id),
    )
    if row is None or row[0] is None:
        return False
    first, last = int(row[0]), int(row[1])
    return floor - first < last - ceil
