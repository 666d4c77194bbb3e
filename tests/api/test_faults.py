"""Faults on QRM's own routes, and the record of the calls receivers made (SPEC 8.4)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest

from tests.api.test_errors import qrm_error
from tests.delivery.helpers import Client, until

REPORT = "GET /api/v1/reports/{id}"


async def add_fault(api: Client, **spec: Any) -> dict[str, Any]:
    response = await api.post("/_mock/faults", json=spec)
    assert response.status == 201, await response.text()
    fault: dict[str, Any] = (await response.json())["data"]
    return fault


async def calls(api: Client) -> list[dict[str, Any]]:
    body = await (await api.get("/_mock/api-calls")).json()
    found: list[dict[str, Any]] = body["data"]
    return found


async def test_a_status_fault_answers_in_qrms_shape_for_its_times_then_stops(api: Client) -> None:
    fault = await add_fault(api, route=REPORT, status=503, times=2, retryAfter=7)
    assert (fault["remaining"], fault["status"], fault["retryAfter"]) == (2, 503, 7)
    answers = [await api.get("/api/v1/reports/12301") for _ in range(3)]
    assert [a.status for a in answers] == [503, 503, 200]
    body = await answers[0].json()
    assert body["errorCode"] == "Unavailable" and "Injected fault" in body["message"]
    assert answers[0].headers["Retry-After"] == "7"
    assert (await (await api.get("/_mock/faults")).json())["data"] == []  # used up
    seen = await calls(api)
    assert [(c["method"], c["path"], c["status"]) for c in seen] == [
        ("GET", "/api/v1/reports/12301", 503),
        ("GET", "/api/v1/reports/12301", 503),
        ("GET", "/api/v1/reports/12301", 200),
    ]
    assert [c["faultId"] for c in seen] == [fault["id"], fault["id"], None]


async def test_a_429_with_retry_after(api: Client) -> None:
    await add_fault(api, route="GET /api/v1/reports", status=429, retryAfter=30, times=1)
    answer = await api.get("/api/v1/reports")
    assert answer.status == 429
    assert answer.headers["Retry-After"] == "30"
    assert (await answer.json())["errorCode"] == "TooManyRequests"


async def test_a_delay_alone_gives_the_normal_answer_late(api: Client) -> None:
    await add_fault(api, route=REPORT, delayMs=300, times=1)
    started = time.perf_counter()
    answer = await api.get("/api/v1/reports/12301")
    assert answer.status == 200
    assert time.perf_counter() - started >= 0.3
    assert (await answer.json())["data"]["inspectionGeneral"]["id"] == 12301


async def test_a_reset_drops_the_connection(api: Client) -> None:
    await add_fault(api, route=REPORT, reset=True, times=1)
    with pytest.raises(aiohttp.ClientError):
        await api.get("/api/v1/reports/12301")
    assert (await api.get("/api/v1/reports/12301")).status == 200
    assert [c["status"] for c in await calls(api)] == [None, 200]


async def test_faults_apply_in_order_and_only_to_their_route(api: Client) -> None:
    first = await add_fault(api, route=REPORT, status=500, times=1)
    await add_fault(api, route=REPORT, status=502)  # until removed
    assert (await api.get("/api/v1/reports")).status == 200  # another route
    assert [(await api.get("/api/v1/reports/12301")).status for _ in range(3)] == [500, 502, 502]
    listed = (await (await api.get("/_mock/faults")).json())["data"]
    assert [f["status"] for f in listed] == [502] and listed[0]["remaining"] is None
    assert first["id"] not in [f["id"] for f in listed]
    assert (await api.delete(f"/_mock/faults/{listed[0]['id']}")).status == 204
    assert (await api.delete(f"/_mock/faults/{listed[0]['id']}")).status == 404
    assert (await api.get("/api/v1/reports/12301")).status == 200


async def test_clearing_and_reset_remove_faults(api: Client) -> None:
    await add_fault(api, route="POST /api/v1/auth/login", status=503)
    await add_fault(api, route="GET /files/reports/{id}.pdf", status=404)
    assert (await api.delete("/_mock/faults")).status == 204
    assert (await (await api.get("/_mock/faults")).json())["data"] == []
    await add_fault(api, route=REPORT, status=503)
    await api.get("/api/v1/reports/12301")
    assert (await api.post("/_mock/reset")).status == 204
    assert (await (await api.get("/_mock/faults")).json())["data"] == []
    assert await calls(api) == []


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"route": "GET /api/v1/webhooks", "status": 503}, "route"),
        ({"route": REPORT, "status": 200}, "status"),
        ({"route": REPORT}, "body"),
        ({"route": REPORT, "status": 503, "times": 0}, "times"),
        ({"route": REPORT, "status": 503, "reset": True}, "reset"),
    ],
)
async def test_a_bad_fault_is_422(api: Client, spec: dict[str, Any], field: str) -> None:
    answer = await api.post("/_mock/faults", json=spec)
    assert answer.status == 422
    assert field in (await answer.json())["errors"]


async def test_only_qrm_routes_are_recorded(api: Client) -> None:
    await api.get("/api/v1/webhooks")
    await api.post("/api/v1/auth/login", json={"username": "a", "password": "b"})
    await asyncio.gather(api.get("/api/v1/reports/99999"), api.get("/healthz"))
    assert [(c["path"], c["status"]) for c in await calls(api)] == [
        ("/api/v1/auth/login", 200),
        ("/api/v1/reports/99999", 404),
    ]


@pytest.mark.parametrize(
    ("lift", "path"),
    [("DELETE", "/_mock/faults/1"), ("DELETE", "/_mock/faults"), ("POST", "/_mock/reset")],
)
async def test_removing_a_fault_ends_the_delay_it_is_holding(
    api: Client, lift: str, path: str
) -> None:
    """A 10-minute delay used to hold its call (and a server's shutdown) to the end."""
    await add_fault(api, route="GET /api/v1/reports/{id}", delayMs=600_000, times=5)
    held = asyncio.create_task(api.get("/api/v1/reports/12301"))

    async def taken() -> bool:
        body = await (await api.get("/_mock/faults")).json()
        return bool(body["data"][0]["remaining"] == 4)

    await until(taken, what="the call inside its delay")
    assert not held.done()
    started = time.monotonic()
    response = await api.request(lift, path)
    assert response.status in (200, 204), await response.text()
    answered = await asyncio.wait_for(held, 5)
    assert answered.status == 200
    assert time.monotonic() - started < 2


async def test_the_faults_kept_at_once_are_bounded_and_the_next_is_409(api: Client) -> None:
    """Each call to a QRM route looks through them: past the bound, the add is refused."""
    from mock_qrm.server.domain.faults import MAX_FAULTS

    spec = {"route": "GET /api/v1/reports", "status": 503}
    for _ in range(MAX_FAULTS):
        assert (await api.post("/_mock/faults", json=spec)).status == 201
    refused = await api.post("/_mock/faults", json=spec)
    error = await qrm_error(refused, 409)
    assert f"{MAX_FAULTS:,} faults already" in error["message"]
    assert (await api.delete("/_mock/faults")).status == 204
    assert (await api.post("/_mock/faults", json=spec)).status == 201
