"""QRM's delivery rules as pure functions: what counts as success, when to retry."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Timeout, retries and interval, already divided by the time scale (seconds)."""

    timeout: float
    retries: int
    retry_interval: float

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
