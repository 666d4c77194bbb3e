"""Times as the API speaks them: ISO 8601 UTC with milliseconds and `Z`.

The store keeps epoch milliseconds (integers sort and index well); the API
shows `2026-11-28T15:04:05.123Z`.
"""

from __future__ import annotations

from datetime import UTC, datetime


def to_ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def iso_z(moment: datetime) -> str:
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return moment.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"
