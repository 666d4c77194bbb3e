"""kill -9 and SIGTERM against a real server process: nothing lost, nothing stuck."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.e2e.processes import Process, free_port, running, wait_http

FINAL = {"delivered", "failed", "cancelled"}
# time scale 20: retries 3 s apart, a 3 s timeout, file_ready 0.25 s after upload
SCALE = ["--time-scale", "20", "--seed-reports", "3"]


async def _call(session: aiohttp.ClientSession, method: str, url: str, **kw: Any) -> Any:
    async with session.request(method, url, **kw) as response:
        assert response.status < 400, await response.text()
        return None if response.status == 204 else await response.json()


async def _all_deliveries(session: aiohttp.ClientSession, base: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    while True:
        page = await _call(
            session,
            "GET",
            f"{base}/api/v1/webhook-deliveries",
            params={"limit": 200, "offset": len(rows)},
        )
        rows.extend(page["data"])
        if len(rows) >= page["total"]:
            return rows


async def _until(check: Any, within: float, what: str) -> Any:
    deadline = asyncio.get_running_loop().time() + within
    last = None
    while asyncio.get_running_loop().time() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}; last saw {last!r}")


@pytest.fixture
def receiver_process(tmp_path: Path) -> Any:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running(["receiver", "--port", str(port)], f"{url}/_received", tmp_path / "receiver.log"):
        yield url


async def test_kill_9_loses_nothing_and_leaves_nothing_stuck(
    tmp_path: Path, receiver_process: str
) -> None:
    db = tmp_path / "qrm.sqlite3"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    args = ["serve", "--port", str(port), "--db", str(db), *SCALE]
    first = Process(args, tmp_path / "server-1.log")
    try:
        wait_http(f"{base}/healthz", first)
        async with aiohttp.ClientSession() as session:
            hooks = {"Flaky": "/flaky/1", "Slow": "/delay/1.5", "Healthy": "/ok"}
            for name, path in hooks.items():
                await _call(
                    session, "POST", f"{base}/api/v1/webhooks",
                    json={"name": name, "url": receiver_process + path,
                          "events": ["report.created", "report.file_ready"]},
                )  # fmt: skip
            for _ in range(4):
                await _call(session, "POST", f"{base}/_mock/reports", json={})

            async def mid_flight() -> bool:
                rows = await _all_deliveries(session, base)
                states = Counter(r["status"] for r in rows)
                return states["in_flight"] >= 1 and states["retry_scheduled"] >= 1

            await _until(mid_flight, 10, "attempts in flight and retries pending")
        first.kill()  # SIGKILL: no clean-up of any kind
    finally:
        first.close()

    with running(args, f"{base}/healthz", tmp_path / "server-2.log"):
        async with aiohttp.ClientSession() as session:

            async def all_final() -> list[dict[str, Any]] | None:
                rows = await _all_deliveries(session, base)
                return rows if rows and all(r["status"] in FINAL for r in rows) else None

            rows = await _until(all_final, 30, "every delivery to reach a final state")
            # Every event reached every subscribed webhook: 4 reports x 2 events x 3 webhooks.
            assert Counter((r["webhookName"], r["eventCode"]) for r in rows) == {
                (name, code): 4
                for name in ("Flaky", "Slow", "Healthy")
                for code in ("report.created", "report.file_ready")
            }
            assert {r["status"] for r in rows} == {"delivered"}
            details = [
                (await _call(session, "GET", f"{base}/api/v1/webhook-deliveries/{r['id']}"))["data"]
                for r in rows
            ]
            outcomes = Counter(a["outcome"] for d in details for a in d["attempts"])
            assert outcomes["interrupted"] >= 1, outcomes
            assert None not in outcomes
            for detail in details:
                automatic = [a for a in detail["attempts"] if a["outcome"] != "interrupted"]
                assert automatic[-1]["outcome"] == "success"
                assert detail["attemptCount"] == len(automatic)  # interrupted ones do not count
            received = await _call(session, "GET", f"{receiver_process}/_received")
            delivered_ids = {r["messageId"] for r in rows}
            seen_ids = {r["body"]["messageId"] for r in received["data"]}
            assert delivered_ids <= seen_ids
            health = await _call(session, "GET", f"{base}/healthz")
            assert health["queueDepth"] == 0
            assert health["oldestOverdueMs"] is None


async def test_sigterm_finishes_attempts_in_flight(tmp_path: Path, receiver_process: str) -> None:
    db = tmp_path / "qrm.sqlite3"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    args = ["serve", "--port", str(port), "--db", str(db), *SCALE]
    with running(args, f"{base}/healthz", tmp_path / "server-1.log") as server:
        async with aiohttp.ClientSession() as session:
            await _call(
                session, "POST", f"{base}/api/v1/webhooks",
                json={"name": "Slow", "url": receiver_process + "/delay/0.5", "events": ["report.created"]},
            )  # fmt: skip
            await _call(session, "POST", f"{base}/_mock/reports", json={})

            async def in_flight() -> bool:
                rows = await _all_deliveries(session, base)
                return bool(rows) and rows[0]["status"] == "in_flight"

            await _until(in_flight, 5, "the attempt in flight")
        assert await asyncio.to_thread(server.terminate) == 0
        assert "Traceback" not in server.output()

    with running(args, f"{base}/healthz", tmp_path / "server-2.log"):
        async with aiohttp.ClientSession() as session:
            [row] = await _all_deliveries(session, base)
            assert row["status"] == "delivered"
            detail = (await _call(session, "GET", f"{base}/api/v1/webhook-deliveries/{row['id']}"))[
                "data"
            ]
            assert [a["outcome"] for a in detail["attempts"]] == ["success"]
