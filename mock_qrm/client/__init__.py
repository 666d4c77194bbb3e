"""The mock QRM's clients, and what every client of it needs.

- `calls`: every route as data (method, path, query, body), the auth header, the error shape
- `http.QrmClient`: the async client over aiohttp, answers parsed into the contract's models
- `blocking.BlockingClient`: one call at a time over the standard library (the command line)
- `feed.FeedFollower`: the live feed with its one resume loop
- `mirror.FeedMirror`, `matching.DeliveryMatch`: a live copy of the journal, and what to wait for
- `settings.ClientSettings`: where the server is, and its key

Names are imported on first use: `from mock_qrm.client import QrmClient` loads aiohttp,
the blocking client does not.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mock_qrm.client.errors import QrmUnavailable
    from mock_qrm.client.feed import FeedConnected, FeedFollower, FeedLost
    from mock_qrm.client.http import QrmClient
    from mock_qrm.client.settings import DEFAULT_SERVER, ClientSettings
    from mock_qrm.contract.errors import QrmApiError

_HOMES = {
    "QrmClient": "mock_qrm.client.http",
    "QrmUnavailable": "mock_qrm.client.errors",
    "QrmApiError": "mock_qrm.contract.errors",
    "FeedFollower": "mock_qrm.client.feed",
    "FeedConnected": "mock_qrm.client.feed",
    "FeedLost": "mock_qrm.client.feed",
    "ClientSettings": "mock_qrm.client.settings",
    "DEFAULT_SERVER": "mock_qrm.client.settings",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)


__all__ = [
    "DEFAULT_SERVER",
    "ClientSettings",
    "FeedConnected",
    "FeedFollower",
    "FeedLost",
    "QrmApiError",
    "QrmClient",
    "QrmUnavailable",
]
