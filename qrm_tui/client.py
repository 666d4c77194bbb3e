"""The TUI's client of the mock QRM: `mock_qrm.client`'s, plus what a live UI needs.

There is one client for the CLI, the TUI and the kit; this module only adds a
start-up probe that explains what is wrong in words a person can act on, and
the helpers that keep the screens' copies current. The live feed that never
gives up is `mock_qrm.client.feed.FeedFollower`, shared with the CLI and the
kit. No Textual here: the app turns what this yields into messages.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import ValidationError

from mock_qrm.client.errors import QrmUnavailable
from mock_qrm.client.feed import BACKOFF, FeedConnected, FeedEvent, FeedFollower, FeedLost
from mock_qrm.client.http import QrmClient
from mock_qrm.client.settings import DEFAULT_SERVER
from mock_qrm.contract.errors import QrmApiError
from mock_qrm.contract.models import (
    ApiCall,
    Delivery,
    EventComponent,
    Health,
    LastDelivery,
    Webhook,
)

__all__ = [
    "BACKOFF",
    "DEFAULT_SERVER",
    "CallLog",
    "FeedConnected",
    "FeedEvent",
    "FeedFollower",
    "FeedLost",
    "QrmApiError",
    "QrmClient",
    "QrmUnavailable",
    "ServerInfo",
    "StartupProblem",
    "TuiClient",
    "call_backs",
    "describe_error",
    "with_delivery",
]


@dataclass(frozen=True, slots=True)
class ServerInfo:
    health: Health
    components: list[EventComponent]


class StartupProblem(Exception):
    """The server cannot be used; `message` says what is wrong and `hint` how to fix it."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(f"{message} {hint}")
        self.message = message
        self.hint = hint


class TuiClient(QrmClient):
    """The shared client, plus the start-up probe and the reconnecting feed."""

    def live_feed(self, backoff: Sequence[float] = BACKOFF) -> FeedFollower:
        return FeedFollower(self.feed, self.base_url, backoff)

    async def probe(self, *, embedded: bool = False) -> ServerInfo:
        """Check the server is a mock QRM that accepts our key; else a `StartupProblem`."""
        hint = (
            "The embedded server did not answer; see the log with `textual console`."
            if embedded
            else "Start it with `mock-qrm serve` or run `qrm-tui` with no --server to embed one."
        )
        try:
            health = await self.health()
        except QrmUnavailable as exc:
            raise StartupProblem(f"{_capital(describe_error(exc))}.", hint) from None
        except (QrmApiError, ValidationError):
            raise StartupProblem(
                f"{self.base_url} answered, but it is not a mock-qrm server.",
                "Check the --server URL: it is the address `mock-qrm serve` prints.",
            ) from None
        try:
            components = await self.event_components()
        except QrmApiError as exc:
            if exc.status != 401:
                raise StartupProblem(f"{self.base_url} answered {exc}.", hint) from None
            if self.api_key:
                raise StartupProblem(
                    "The server rejected the API key.",
                    "Pass the key it was started with: --api-key KEY (or QRM_TUI_API_KEY).",
                ) from None
            raise StartupProblem(
                "The server needs an API key.",
                "Pass the key it was started with: --api-key KEY (or QRM_TUI_API_KEY).",
            ) from None
        except QrmUnavailable as exc:
            raise StartupProblem(f"{_capital(describe_error(exc))}.", hint) from None
        return ServerInfo(health=health, components=components)


def call_back_paths(resource_id: int) -> tuple[str, str]:
    """What a receiver calls back for a report: its document, and its PDF."""
    return f"/api/v1/reports/{resource_id}", f"/files/reports/{resource_id}.pdf"


def call_backs(calls: Iterable[ApiCall], resource_id: int, since: datetime) -> list[ApiCall]:
    """The calls for report `resource_id`'s document or PDF made at `since` or later, oldest first.

    The server records no caller: every receiver's calls for that report count,
    and so do calls that answer a later delivery of the same report.
    """
    paths = call_back_paths(resource_id)
    return [
        call
        for call in calls
        if call.method == "GET" and call.at >= since and call.path.split("?", 1)[0] in paths
    ]


@dataclass
class CallLog:
    """The server's last calls to QRM's API, each numbered once, as they came.

    `GET /_mock/api-calls` answers the last 1,000, oldest first, with no id: a
    read is matched against the last one (`merge`), so only the calls that are
    new get a number, and a table updates only the rows that changed.
    """

    calls: dict[int, ApiCall] = field(default_factory=dict)
    """Each call by its number, oldest first."""
    _next: int = 1

    def merge(self, fetched: Sequence[ApiCall]) -> tuple[list[int], list[int]]:
        """Take a fresh read: the numbers of the calls added, and of those gone."""
        known = list(self.calls.values())
        keys = list(self.calls)
        start = _overlap(known, fetched)
        if start is None:  # the server was reset: everything is new
            removed, kept = keys, 0
        else:
            removed, kept = keys[:start], len(known) - start
        for key in removed:
            del self.calls[key]
        added = []
        for call in fetched[kept:]:
            self.calls[self._next] = call
            added.append(self._next)
            self._next += 1
        return added, removed


def _overlap(known: Sequence[ApiCall], fetched: Sequence[ApiCall]) -> int | None:
    """The first index of `known` from which it goes on as `fetched` begins; None if none does."""
    if not known:
        return 0
    last = known[-1]
    for end in range(min(len(known), len(fetched)) - 1, -1, -1):
        start = len(known) - 1 - end
        if fetched[end] == last and list(fetched[: end + 1]) == list(known[start:]):
            return start
    return None


def describe_error(error: BaseException) -> str:
    """One line a person can act on, for any failure talking to the server."""
    if isinstance(error, QrmApiError):
        return error.describe()
    if isinstance(error, QrmUnavailable):
        return str(error)  # "cannot reach URL: connection refused", "URL did not answer in time"
    return str(error) or type(error).__name__


def with_delivery(webhook: Webhook, delivery: Delivery) -> Webhook:
    """The webhook whose last delivery is `delivery`, unless it already shows a newer one."""
    current = webhook.last_delivery
    if current is not None and current.delivery_id > delivery.id:
        return webhook
    last = LastDelivery(
        delivery_id=delivery.id,
        status=delivery.status,
        response_status=delivery.last_response_status,
        error=delivery.last_error,
        at=delivery.completed_at or delivery.created_at,
    )
    if current == last:
        return webhook
    return webhook.model_copy(update={"last_delivery": last})


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]
