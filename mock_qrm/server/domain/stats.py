"""A webhook's statistics from its counted answers: what each figure is, no SQL, no clock.

The store counts the attempts (by outcome and answer, and the percentiles of
their durations, nearest rank); this module turns those counts into the figures
`WebhookStats` documents.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime

from mock_qrm.contract.codes import Outcome
from mock_qrm.contract.models import LatencyMs, StatsMinute, WebhookStats
from mock_qrm.contract.timefmt import from_ms, to_ms

SUCCESS = Outcome.SUCCESS.value
FAILURE = Outcome.FAILURE.value

AnswerRow = tuple[str, str, int, int | None]
"""(outcome, result, attempts, latest start in ms or `None`): the attempts that got one answer
(an HTTP status as text, else an error class)."""
MinuteRow = tuple[int, int, int | None, int | None]
"""(minute, attempts, failures or `None` for none, p95 in ms or `None`): one minute's attempts."""


def webhook_stats(
    webhook_id: int,
    *,
    removed: bool,
    since: datetime | None,
    delivered: int,
    failed: int,
    answers: Iterable[AnswerRow],
    percentiles: Sequence[int | None],
    per_minute: list[StatsMinute],
) -> WebhookStats:
    """The figures. A latest start before `since` is not in the window (the store may have
    read the whole history's latest)."""
    since_ms = None if since is None else to_ms(since)
    by_outcome: Counter[str] = Counter()
    by_status: Counter[str] = Counter()
    latest: dict[str, int] = {}
    for outcome, result, count, last_at in answers:
        by_outcome[outcome] += count
        by_status[result] += count
        if last_at is not None and (since_ms is None or last_at >= since_ms):
            latest[outcome] = max(last_at, latest.get(outcome, last_at))
    answered = by_outcome[SUCCESS] + by_outcome[FAILURE]
    p50, p95, p99 = percentiles
    return WebhookStats(
        webhook_id=webhook_id,
        removed=removed,
        since=since,
        attempts=sum(by_outcome.values()),
        delivered=delivered,
        failed=failed,
        success_rate=by_outcome[SUCCESS] / answered if answered else None,
        latency_ms=LatencyMs(p50=p50, p95=p95, p99=p99),
        by_status=dict(sorted(by_status.items(), key=lambda item: _status_order(item[0]))),
        last_success_at=_at(latest.get(SUCCESS)),
        last_failure_at=_at(latest.get(FAILURE)),
        per_minute=per_minute,
    )


def minutes(rows: Iterable[MinuteRow], first: int, last: int) -> list[StatsMinute]:
    """One entry per minute from `first` to `last` (minutes since the epoch), quiet ones too."""
    by_minute = {row[0]: row for row in rows}
    shown = []
    for minute in range(first, last + 1):
        _, attempts, failures, p95 = by_minute.get(minute, (minute, 0, 0, None))
        shown.append(
            StatsMinute(
                at=from_ms(minute * 60_000), attempts=attempts, failures=failures or 0, p95=p95
            )
        )
    return shown


def _status_order(result: str) -> tuple[int, int, str]:
    """HTTP statuses first, in numeric order, then error classes by name."""
    return (0, int(result), "") if result.isdigit() else (1, 0, result)


def _at(ms: int | None) -> datetime | None:
    return None if ms is None else from_ms(ms)
