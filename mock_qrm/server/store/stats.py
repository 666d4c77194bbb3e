"""A webhook's statistics, read in one statement from what the stats triggers keep.

The triggers (schema migration 3) count every ended attempt by (outcome, result,
duration): in all (`stats_totals`), by the minute it started (`stats_minutes`),
and one row each by start (`stats_attempts`). A read never touches the journal's
million rows. Without `since` it counts the webhook's totals; with `since`, the
minutes from the first whole one on, plus the attempts one by one before it in
`since`'s own minute; when `since` lies in the older half of the history, the
part before it is read instead and taken from the totals. SQLite does the
counting, and the percentiles too (nearest rank over the counts of each whole
millisecond, so they are exact), so a read hands Python a few rows whatever the
journal's size. Delivery counts come from the deliveries' index by webhook and
state, with the journal list's own filter, so they agree with its totals.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mock_qrm.contract.codes import DeliveryStatus
from mock_qrm.contract.models import STATS_PERCENTILES, DeliveryFilter, WebhookStats
from mock_qrm.contract.timefmt import to_ms
from mock_qrm.server.domain.stats import AnswerRow, MinuteRow, minutes
from mock_qrm.server.domain.stats import webhook_stats as figures
from mock_qrm.server.store.db import Database
from mock_qrm.server.store.journal import _where as delivery_conditions

MINUTE_MS = 60_000
_NEVER = 1 << 62
"""A minute (and a millisecond) later than any."""

# What a read counts, as rows of (outcome, result, duration_ms, n, at): `n` attempts, the
# latest of them started at `at`. What came before `since` counts negatively.
_TOTALS = (
    "SELECT outcome, result, duration_ms, attempts, last_at FROM stats_totals WHERE webhook_id = ?"
)
_AFTER = (  # the minutes from `ceil` on, and the attempts from `since` to `ceil`
    "SELECT outcome, result, duration_ms, attempts, last_at FROM stats_minutes"
    " WHERE webhook_id = ? AND minute >= ?"
    " UNION ALL SELECT outcome, result, duration_ms, 1, started_at FROM stats_attempts"
    " WHERE webhook_id = ? AND started_at >= ? AND started_at < ?"
)
_BEFORE = (  # the minutes before `floor`, and the attempts from `floor` to `since`: less
    " UNION ALL SELECT outcome, result, duration_ms, -attempts, NULL FROM stats_minutes"
    " WHERE webhook_id = ? AND minute < ?"
    " UNION ALL SELECT outcome, result, duration_ms, -1, NULL FROM stats_attempts"
    " WHERE webhook_id = ? AND started_at >= ? AND started_at < ?"
)


def _nearest_rank(p: int) -> str:
    """SQL for the `p`th percentile of `durations`: the smallest duration whose attempts and
    the shorter ones' reach p % of them (`cum >= p / 100 * total`, in integers)."""
    return f"MIN(CASE WHEN cum * 100 >= {p} * total THEN d END)"


_COUNTED = (
    # by answer: the attempts, and the latest start
    " UNION ALL SELECT 'a', outcome, result, SUM(n), MAX(at) FROM counted"
    " GROUP BY outcome, result HAVING SUM(n) > 0"
    # the latency percentiles, over attempts that succeeded or failed
    " UNION ALL SELECT 'p', "
    + ", ".join(_nearest_rank(p) for p in STATS_PERCENTILES)
    + ", NULL FROM (SELECT duration_ms AS d,"
    " SUM(SUM(n)) OVER (ORDER BY duration_ms) AS cum, SUM(SUM(n)) OVER () AS total"
    " FROM counted WHERE duration_ms >= 0 AND outcome != 'interrupted'"
    " GROUP BY duration_ms HAVING SUM(n) > 0)"
)
_MINUTES = (  # each minute's attempts and failures, and its p95 (the key is in this order)
    " UNION ALL SELECT 'm', minute, SUM(attempts),"
    " SUM(CASE outcome WHEN 'failure' THEN attempts END), NULL FROM stats_minutes"
    " WHERE webhook_id = ? AND minute >= ? AND minute <= ? GROUP BY minute"
    " UNION ALL SELECT 'q', minute, " + _nearest_rank(95) + ", NULL, NULL FROM ("
    " SELECT minute, duration_ms AS d,"
    " SUM(SUM(attempts)) OVER (PARTITION BY minute ORDER BY duration_ms) AS cum,"
    " SUM(SUM(attempts)) OVER (PARTITION BY minute) AS total FROM stats_minutes"
    " WHERE webhook_id = ? AND minute >= ? AND minute <= ?"
    " AND duration_ms >= 0 AND outcome != 'interrupted'"
    " GROUP BY minute, duration_ms) GROUP BY minute"
)


async def webhook_stats(
    db: Database, webhook_id: int, since: datetime | None, now_ms: int, per_minute: int = 0
) -> WebhookStats | None:
    """The webhook's figures (`WebhookStats` says what each counts); `None` if it never existed.

    `per_minute` adds that many minutes one by one, the last the one `now_ms` is in.
    """
    since_ms = None if since is None else to_ms(since)
    if since_ms is None:
        counted, params = _TOTALS, [webhook_id]
    else:
        floor, ceil = since_ms // MINUTE_MS, -(-since_ms // MINUTE_MS)
        if await _older_half(db, webhook_id, floor, ceil):
            counted = _TOTALS + _BEFORE
            params = [webhook_id, webhook_id, floor, webhook_id, floor * MINUTE_MS, since_ms]
        else:
            counted = _AFTER
            params = [webhook_id, ceil, webhook_id, since_ms, ceil * MINUTE_MS]

    deliveries = []
    for status in (DeliveryStatus.DELIVERED, DeliveryStatus.FAILED):
        where, values = delivery_conditions(
            DeliveryFilter(webhook_id=webhook_id, status=status, since=since)
        )
        deliveries.append(f"(SELECT COUNT(*) FROM deliveries d{where})")
        params.extend(values)
    sql = (
        f"WITH counted(outcome, result, duration_ms, n, at) AS ({counted})"
        f" SELECT 'd', {deliveries[0]}, {deliveries[1]}, NULL, NULL"
        " UNION ALL SELECT 'w', deleted_at IS NOT NULL, NULL, NULL, NULL FROM webhooks"
        " WHERE id = ?" + _COUNTED
    )
    params.append(webhook_id)
    last_minute = now_ms // MINUTE_MS
    first_minute = last_minute - per_minute + 1
    if per_minute:
        sql += _MINUTES
        params.extend((webhook_id, first_minute, last_minute) * 2)

    tagged: dict[str, list[Any]] = {tag: [] for tag in "dwapmq"}
    for row in await db.fetchall(sql, tuple(params)):
        tagged[row[0]].append(row[1:])
    if not tagged["w"]:
        return None
    [(removed, *_)] = tagged["w"]
    [(delivered, failed, *_)] = tagged["d"]
    [percentiles] = tagged["p"] or [(None, None, None)]
    answers: list[AnswerRow] = tagged["a"]
    p95 = {minute: p for minute, p, *_ in tagged["q"]}
    by_minute: list[MinuteRow] = [
        (minute, attempts, failures, p95.get(minute))
        for minute, attempts, failures, _ in tagged["m"]
    ]
    return figures(
        webhook_id,
        removed=bool(removed),
        since=since,
        delivered=delivered,
        failed=failed,
        answers=answers,
        percentiles=percentiles[:3],
        per_minute=minutes(by_minute, first_minute, last_minute) if per_minute else [],
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
