"""Small steps the delivery tests share: make a webhook, upload, await a state."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp.test_utils import TestClient

Client = TestClient[Any, Any]


async def add_webhook(client: Client, url: str, **extra: Any) -> dict[str, Any]:
    body = {
        "name": extra.pop("name", "Receiver"),
        "url": url,
        "events": ["report.created"],
        **extra,
    }
    response = await client.post("/api/v1/webhooks", json=body)
    assert response.status == 201, await response.text()
    webhook: dict[str, Any] = (await response.json())["data"]
    return webhook


async def upload(client: Client) -> int:
    response = await client.post("/_mock/reports", json={})
    assert response.status == 201, await response.text()
    resource_id: int = (await response.json())["data"]["resourceId"]
    return resource_id


async def deliveries(client: Client, **params: Any) -> list[dict[str, Any]]:
    response = await client.get("/api/v1/webhook-deliveries", params={"limit": 200, **params})
    assert response.status == 200
    rows: list[dict[str, Any]] = (await response.json())["data"]
    return rows


async def delivery(client: Client, delivery_id: int) -> dict[str, Any]:
    response = await client.get(f"/api/v1/webhook-deliveries/{delivery_id}")
    assert response.status == 200
    detail: dict[str, Any] = (await response.json())["data"]
    return detail


async def until(check: Callable[[], Awaitable[Any]], within: float = 5.0, what: str = "") -> Any:
    """Await a condition on what the server shows (never a fixed sleep)."""
    deadline = asyncio.get_running_loop().time() + within
    last: Any = None
    while asyncio.get_running_loop().time() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what or check}; last saw {last!r}")


async def only_delivery(
    client: Client, status: str | tuple[str, ...], within: float = 5.0
) -> dict[str, Any]:
    """The single delivery in the journal, once it is in `status`."""
    wanted = (status,) if isinstance(status, str) else status

    seen: list[dict[str, Any]] = []

    async def check() -> dict[str, Any] | None:
        seen[:] = await deliveries(client)
        return seen[0] if len(seen) == 1 and seen[0]["status"] in wanted else None

    try:
        found: dict[str, Any] = await until(check, within, f"a delivery in {wanted}")
    except AssertionError:
        raise AssertionError(
            f"expected one delivery in {wanted}; the journal holds {seen}"
        ) from None
    return found


async def advance(client: Client, seconds: float) -> None:
    response = await client.post("/_mock/clock/advance", json={"seconds": seconds})
    assert response.status == 200, await response.text()
