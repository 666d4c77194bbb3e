"""QRM's delivery rules as pure functions: what counts as success, when to retry."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

PERIOD_SECONDS = {"minute": 60, "hour": 3600}
"""A rate limit's window, in QRM's seconds (divided by the time scale, like every delay)."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Timeout, retries and interval, already divided by the time scale (seconds)."""

    timeout: float
    retries: int
    retry_interval: float
    time_scale: float = 1.0

    def window_ms(self, period: str) -> int:
        """A rate limit's sliding window, scaled, in milliseconds."""
        return max(1, round(PERIOD_SECONDS[period] * 1000 / self.time_scale))

    @property
    def max_attempts(self) -> int:
        return 1 + self.retries

    def next_attempt_at(self, automatic_failures: int, attempt_ended_at: float) -> float | None:
        """When the next automatic attempt is due, or `None` when the delivery has failed.

        The interval counts from the end of the failed attempt (start + duration),
        not from when the result was written.
        """
        if automatic_failures >= self.max_attempts:
            return None
        return attempt_ended_at + self.retry_interval


def is_success(status: int | None) -> bool:
    """Only exactly 200 acknowledges a webhook; 201, 204 and redirects are failures."""
    return status == 200


def free_at(starts_ms: Sequence[int], limit: int, window_ms: int) -> int | None:
    """When one more attempt fits a limit, or `None` if it fits now.

    `starts_ms` are the starts still inside the window, oldest first: at most
    `limit` may be, so the next one waits until enough of them have left it.
    """
    if len(starts_ms) < limit:
        return None
    return starts_ms[len(starts_ms) - limit] + window_ms
