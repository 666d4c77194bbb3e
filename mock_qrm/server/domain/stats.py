"""A webhook's statistics from counted attempts: pure arithmetic, no SQL, no clock.

The store hands over attempts already counted by (outcome, result, duration),
which is all the figures need: counts add and subtract, so a window of time is
the whole less what came before it, and percentiles over whole milliseconds are
exact when read off the counts of each duration.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from mock_qrm.contract.codes import Outcome
from mock_qrm.contract.models import STATS_PERCENTILES, LatencyMs, StatsMinute, WebhookStats
from mock_qrm.contract.timefmt import from_ms

SUCCESS = Outcome.SUCCESS.value
FAILURE = Outcome.FAILURE.value
NO_DURATION = -1
"""The duration the store counts an attempt without one under (an interrupted attempt)."""

Key = tuple[str, str, int]
"""(outcome, result, duration_ms): what attempts are counted by."""
CountedRow = tuple[str, str, int, int, int]
"""(outcome, result, duration_ms, attempts, latest start in ms), as the store reads them."""


def percentile(durations: Sequence[tuple[int, int]], p: int) -> int | None:
    """The nearest-rank `p`th percentile of `(duration, how many)` pairs in ascending order:
    the smallest duration at least `p` % of the attempts took no longer than."""
    total = sum(count for _, count in durations)
    if total == 0:
        return None
    rank = (p * total + 99) // 100  # ceil(p / 100 * total), in integers
    seen = 0
    for duration, count in durations:
        seen += count
        if seen >= rank:
            return duration
    return durations[-1][0]


def latency(counts: Iterable[tuple[int, int]]) -> LatencyMs:
    """Percentiles of `(duration, how many)` pairs, in any order, durations repeated or not."""
    merged: Counter[int] = Counter()
    for duration, count in counts:
        if duration != NO_DURATION and count > 0:
            merged[duration] += count
    ordered = sorted(merged.items())
    p50, p95, p99 = (percentile(ordered, p) for p in STATS_PERCENTILES)
    return LatencyMs(p50=p50, p95=p95, p99=p99)


@dataclass
class Tally:
    """Ended attempts, counted by (outcome, result, duration), and each outcome's latest start."""

    counts: Counter[Key] = field(default_factory=Counter)
    latest: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, rows: Iterable[CountedRow]) -> Tally:
        tally = cls()
        for outcome, result, duration, attempts, last_at in rows:
            tally.counts[outcome, result, duration] += attempts
            if last_at > tally.latest.get(outcome, -1):
                tally.latest[outcome] = last_at
        return tally

    def without(self, earlier: Tally, since_ms: int) -> Tally:
        """What started at or after `since_ms`, given this (the whole) and what started before.

        A latest start survives only if it is in the window: the whole's latest
        is the window's latest, or the window has none.
        """
        remaining = Counter(self.counts)
        remaining.subtract(earlier.counts)
        return Tally(
            +remaining,
            {outcome: at for outcome, at in self.latest.items() if at >= since_ms},
        )

    def stats(
        self,
        webhook_id: int,
        *,
        removed: bool,
        since: datetime | None,
        delivered: int,
        failed: int,
        per_minute: list[StatsMinute],
    ) -> WebhookStats:
        by_outcome: Counter[str] = Counter()
        by_status: Counter[str] = Counter()
        for (outcome, result, _), count in self.counts.items():
            by_outcome[outcome] += count
            by_status[result] += count
        answered = by_outcome[SUCCESS] + by_outcome[FAILURE]
        return WebhookStats(
            webhook_id=webhook_id,
            removed=removed,
            since=since,
            attempts=sum(by_outcome.values()),
            delivered=delivered,
            failed=failed,
            success_rate=by_outcome[SUCCESS] / answered if answered else None,
            latency_ms=latency(
                (duration, count)
                for (outcome, _, duration), count in self.counts.items()
                if outcome in (SUCCESS, FAILURE)
            ),
            by_status=dict(sorted(by_status.items(), key=lambda item: _status_order(item[0]))),
            last_success_at=_at(self.latest.get(SUCCESS)),
            last_failure_at=_at(self.latest.get(FAILURE)),
            per_minute=per_minute,
        )


def _status_order(result: str) -> tuple[int, int, str]:
    """HTTP statuses first, in numeric order, then error classes by name."""
    return (0, int(result), "") if result.isdigit() else (1, 0, result)


def _at(ms: int | None) -> datetime | None:
    return None if ms is None else from_ms(ms)


MinuteRow = tuple[int, int, int | None]
"""(minute, attempts, failures or `None` for none): one minute's attempts, as the store reads them."""
DurationRow = tuple[int, int, int]
"""(minute, duration_ms, attempts): how long a minute's attempts that succeeded or failed took,
in order of minute and duration."""


def minutes(
    counts: Iterable[MinuteRow], durations: Iterable[DurationRow], first: int, last: int
) -> list[StatsMinute]:
    """One entry per minute from `first` to `last` (minutes since the epoch), quiet ones too."""
    by_minute = {minute: (attempts, failures or 0) for minute, attempts, failures in counts}
    timed: dict[int, list[tuple[int, int]]] = {}
    for minute, duration, count in durations:
        timed.setdefault(minute, []).append((duration, count))
    return [
        StatsMinute(
            at=from_ms(minute * 60_000),
            attempts=by_minute.get(minute, (0, 0))[0],
            failures=by_minute.get(minute, (0, 0))[1],
            p95=percentile(timed.get(minute, []), 95),
        )
        for minute in range(first, last + 1)
    ]
