"""The webhook-page row of `make bench`: a page of webhooks costs what a page costs.

10,000 webhooks, each with a delivery (so each has a `lastDelivery` to read), are
written straight into the server's own schema; a real `mock-qrm serve` then answers
`GET /api/v1/webhooks` for the first webhook, a page of 50 and a page deep in the
list, beside a `/healthz` round trip. Target (issue 28): at most 50 ms a page.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.__main__ import Figure, percentile
from tests.e2e.processes import Process, free_port, wait_http

TARGET_MS = 50.0


def build_registry(path: Path, webhooks: int) -> None:
    """`webhooks` webhooks with one delivery each, in the server's schema."""
    from mock_qrm.server.store.db import _connect, _migrate

    conn = _connect(str(path))
    _migrate(conn)
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("BEGIN")
    now = int(time.time() * 1000) - webhooks * 10
    conn.executemany(
        "INSERT INTO webhooks (id, name, url, events, active, created_at, updated_at)"
        " VALUES (?, ?, 'http://127.0.0.1:9/ok', '[\"report.created\"]', 1, ?, ?)",
        [(n, f"webhook {n}", now + n, now + n) for n in range(1, webhooks + 1)],
    )
    message = json.dumps({"messageId": "wh-x", "eventCode": "report.created", "eventName": "x",
                          "payload": {"resourceId": 1, "path": "/reports/1"}})  # fmt: skip
    rows = [
        (n, f"wh-page-{n}", n, n, "report.created", 12301, "delivered", 1, 1, None,
         now + n, now + n + 5, message, 200, None, 5)
        for n in range(1, webhooks + 1)
    ]  # fmt: skip
    conn.executemany(
        "INSERT INTO deliveries (id, message_id, event_id, webhook_id, event_code, resource_id,"
        " status, attempt_count, attempts_total, next_attempt_at, created_at, completed_at,"
        f" message, last_status, last_error, last_duration_ms) VALUES ({','.join('?' * 16)})",
        rows,
    )
    conn.execute("COMMIT")
    conn.close()


async def webhook_page(folder: Path, webhooks: int = 10_000, calls: int = 20) -> Figure:
    db = folder / "registry.sqlite3"
    await asyncio.to_thread(build_registry, db, webhooks)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = Process(
        ["serve", "--port", str(port), "--db", str(db), "--seed-reports", "1"], folder / "page.log"
    )
    pages: dict[str, dict[str, Any]] = {
        "limit=1": {"limit": 1},
        "limit=50": {"limit": 50},
        "limit=50 offset=5000": {"limit": 50, "offset": 5000},
    }
    timings: dict[str, list[float]] = {name: [] for name in pages}
    health: list[float] = []
    try:
        await asyncio.to_thread(wait_http, base + "/healthz", server)
        async with aiohttp.ClientSession() as http:
            for _ in range(calls):
                for name, params in pages.items():
                    moment = time.perf_counter()
                    async with http.get(base + "/api/v1/webhooks", params=params) as r:
                        body = await r.json()
                        assert r.status == 200 and body["total"] == webhooks, body
                    timings[name].append((time.perf_counter() - moment) * 1000)
                moment = time.perf_counter()
                async with http.get(base + "/healthz") as r:
                    await r.read()
                health.append((time.perf_counter() - moment) * 1000)
    finally:
        server.close()
    worst = {name: round(percentile(values, 99), 1) for name, values in timings.items()}
    slowest = max(worst.values())
    return Figure(
        f"a page of webhooks at {webhooks:,} webhooks, p99 of slowest page",
        slowest,
        "ms",
        round(percentile(health, 99), 1),
        "GET /healthz round trip, p99",
        f"<= {TARGET_MS:g} ms",
        slowest <= TARGET_MS,
        {"p99_ms_by_page": worst},
    )


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory(prefix="qrm-bench-") as tmp:
        figure = asyncio.run(webhook_page(Path(tmp)))
    print(f"{figure.name}: {figure.value} ms (healthz {figure.baseline} ms); {figure.detail}")
