"""`make bench`: the speed targets of SPEC.md section 7, each beside a baseline from the same run.

Prints one table and writes it as JSON (`bench-results.json`, or `--json PATH`).
Everything runs on loopback; the receiver is always a separate process, so
the mock and the receiver each have a core, as they would in real use.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import itertools
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from mock_qrm.contract.models import WebhookCreate
from mock_qrm.server.service import QrmService
from mock_qrm.server.settings import Settings
from mock_qrm.serving import settle_heap
from tests.e2e.processes import Process, free_port, wait_http

BODY = (
    b'{"messageId":"wh-638ce960-1231-11e9-a15d-d1c47c8f7593","eventCode":"report.created",'
    b'"eventName":"An Inspection report is uploaded","payload":{"resourceId":12301,"path":"/reports/12301"}}'
)


@dataclass
class Figure:
    name: str
    value: float
    unit: str
    baseline: float | None
    baseline_name: str
    target: str
    met: bool | None
    detail: dict[str, Any] = field(default_factory=dict)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


@contextlib.asynccontextmanager
async def receiver_process(folder: Path) -> AsyncIterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = Process(["receiver", "--port", str(port)], folder / "receiver.log")
    try:
        await asyncio.to_thread(wait_http, url + "/_received", process)
        yield url
    finally:
        process.close()


@contextlib.asynccontextmanager
async def service(**settings: Any) -> AsyncIterator[QrmService]:
    """The server, in this process as `mock-qrm serve` runs it in its own: its collector
    settled once it has started (`settle_heap`). The baselines, run outside this block,
    keep a plain process's collector, as a user's client would."""
    threshold = gc.get_threshold()
    qrm = await QrmService.open(
        Settings(db=":memory:", seed_reports=1, shutdown_grace=0, **settings)
    )
    settle_heap()
    try:
        yield qrm
    finally:
        await qrm.close()
        gc.unfreeze()
        gc.set_threshold(*threshold)


async def add_webhooks(qrm: QrmService, url: str, count: int) -> None:
    for n in range(count):
        spec = WebhookCreate.model_validate(
            {"name": f"bench {n}", "url": url, "events": ["report.created"]},
            context=qrm.validation_context,
        )
        await qrm.create_webhook(spec)


async def until_idle(qrm: QrmService) -> None:
    """Every delivery final: nothing moves any more (polled, cheaply: it has no event)."""
    while qrm.dispatcher.busy:  # noqa: ASYNC110
        await asyncio.sleep(0.002)


async def bare_posts(url: str, total: int, concurrency: int) -> float:
    """The baseline: a plain aiohttp client posting the same bodies; returns posts per second."""
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        gate = asyncio.Semaphore(concurrency)

        async def post() -> None:
            async with (
                gate,
                session.post(url, data=BODY, headers={"Content-Type": "application/json"}) as r,
            ):
                await r.read()
                assert r.status == 200

        started = time.perf_counter()
        await asyncio.gather(*(post() for _ in range(total)))
        return total / (time.perf_counter() - started)


# --- 1. throughput -----------------------------------------------------------------


async def throughput(folder: Path, hooks: int, deliveries: int, rounds: int = 3) -> Figure:
    """Rounds alternate mock and baseline, and each side reports its median: this
    machine's speed drifts, and alternating keeps the drift out of the ratio."""
    events = max(1, deliveries // hooks)
    ours: list[float] = []
    base: list[float] = []
    loop_cpu: list[float] = []
    writer_cpu: list[float] = []
    async with receiver_process(folder) as receiver:
        url = receiver + "/ok"
        for _ in range(rounds):
            async with service() as qrm:
                await add_webhooks(qrm, url, hooks)
                gate = asyncio.Semaphore(64)

                async def emit(qrm: QrmService = qrm, gate: asyncio.Semaphore = gate) -> None:
                    async with gate:
                        await qrm.emit_event("report.created", 12301)

                started, cpu = time.perf_counter(), time.thread_time()
                writer = qrm.db.writer.cpu_seconds
                await asyncio.gather(*(emit() for _ in range(events)))
                await until_idle(qrm)
                ours.append(events * hooks / (time.perf_counter() - started))
                # Where the time goes: the event loop's thread (this one, the load included)
                # and the writer's, in CPU microseconds per delivery.
                loop_cpu.append((time.thread_time() - cpu) / (events * hooks) * 1e6)
                writer_cpu.append((qrm.db.writer.cpu_seconds - writer) / (events * hooks) * 1e6)
                settings = qrm.settings
            concurrency = min(settings.concurrency, settings.webhook_concurrency * hooks)
            base.append(await bare_posts(url, events * hooks, concurrency))
    mine, baseline = statistics.median(ours), statistics.median(base)
    ratio = mine / baseline
    target = 0.7 if hooks == 1 else 0.8  # SPEC 7: 70 % with 1 webhook per event, 80 % with 50
    return Figure(
        f"delivery throughput, {hooks} webhook{'s' if hooks > 1 else ''}/event",
        round(mine),
        "deliveries/s",
        round(baseline),
        f"bare aiohttp, concurrency {concurrency}, median of {rounds}",
        f">= {target:.0%} of baseline",
        ratio >= target,
        {
            "ratio": round(ratio, 3),
            "deliveries": events * hooks,
            "rounds": [round(x) for x in ours],
            "baseline_rounds": [round(x) for x in base],
            "cpu_us_per_delivery": {
                "event_loop": round(statistics.median(loop_cpu)),
                "writer": round(statistics.median(writer_cpu)),
            },
        },
    )


# --- 2. event -> first byte ------------------------------------------------------------


async def first_byte(folder: Path, rate: float, seconds: float) -> Figure:
    async with receiver_process(folder) as receiver, aiohttp.ClientSession() as http:
        async with service() as qrm:
            await add_webhooks(qrm, receiver + "/ok", 1)
            await http.delete(receiver + "/_received")
            sent: dict[int, float] = {}
            count = int(rate * seconds)
            started = time.perf_counter()
            for n in range(count):
                await asyncio.sleep(max(0.0, started + n / rate - time.perf_counter()))
                resource = 12301
                emitted = time.time()
                result = await qrm.emit_event("report.created", resource)
                assert result.deliveries == 1
                sent[n] = emitted
            await until_idle(qrm)
        received = await (await http.get(receiver + "/_received")).json()
        arrivals = sorted(_epoch(r["receivedAt"]) for r in received["data"])
        ours = [(a - s) * 1000 for s, a in zip(sorted(sent.values()), arrivals, strict=False)]

        await http.delete(receiver + "/_received")
        direct: list[float] = []
        for n in range(count):
            await asyncio.sleep(max(0.0, started + n / rate - time.perf_counter()))
            moment = time.time()
            async with http.post(receiver + "/ok", data=BODY) as response:
                await response.read()
            direct.append(moment)
        received = await (await http.get(receiver + "/_received")).json()
        arrivals = sorted(_epoch(r["receivedAt"]) for r in received["data"])
        base = [(a - s) * 1000 for s, a in zip(direct, arrivals, strict=False)]
    p99 = percentile(ours, 99)
    return Figure(
        f"event -> first byte at receiver, p99 at {rate:g} events/s",
        round(p99, 1),
        "ms",
        round(percentile(base, 99), 1),
        "bare aiohttp POST, p99",
        "p99 < 50 ms",
        p99 < 50,
        {
            "p50_ms": round(percentile(ours, 50), 1),
            "baseline_p50_ms": round(percentile(base, 50), 1),
            "events": len(ours),
        },
    )


def _epoch(stamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


# --- 3. retry timing ---------------------------------------------------------------------


async def retry_timing(folder: Path, deliveries: int) -> Figure:
    scale = 300.0  # 60 s becomes 0.2 s
    async with receiver_process(folder) as receiver, service(time_scale=scale, retries=3) as qrm:
        await add_webhooks(qrm, receiver + "/status/500", 1)
        for _ in range(deliveries):
            await qrm.emit_event("report.created", 12301)
            await asyncio.sleep(0.01)
        await until_idle(qrm)
        errors: list[float] = []
        page, _ = await qrm.list_deliveries(_all(), 200, 0)
        interval = qrm.settings.retry_policy.retry_interval
        for row in page:
            attempts = (await qrm.get_delivery(row.id)).attempts
            for before, after in itertools.pairwise(attempts):
                due = before.started_at.timestamp() + (before.duration_ms or 0) / 1000 + interval
                errors.append((after.started_at.timestamp() - due) * 1000)
    overshoot: list[float] = []
    for _ in range(200):
        due = time.time() + 0.01
        await asyncio.sleep(0.01)
        overshoot.append((time.time() - due) * 1000)
    worst = max(errors)
    return Figure(
        "retry timing error (actual - due), max",
        round(worst, 1),
        "ms",
        round(max(overshoot), 1),
        "asyncio.sleep overshoot, max",
        "< 100 ms",
        worst < 100,
        {
            "p50_ms": round(percentile(errors, 50), 2),
            "p99_ms": round(percentile(errors, 99), 2),
            "retries": len(errors),
            "baseline_p50_ms": round(percentile(overshoot, 50), 2),
        },
    )


def _all() -> Any:
    from mock_qrm.contract.models import DeliveryFilter

    return DeliveryFilter()


# --- 4. a million journaled deliveries ---------------------------------------------------


def build_journal(path: Path, rows: int) -> None:
    """A realistic journal written straight into SQLite: the server's own schema, fast."""
    from mock_qrm.server.store.db import _connect, _migrate

    conn = _connect(str(path))
    _migrate(conn)
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("BEGIN")
    now = int(time.time() * 1000) - rows * 10
    for hook in range(1, 6):
        conn.execute(
            "INSERT INTO webhooks (id, name, url, events, active, created_at, updated_at)"
            " VALUES (?, ?, 'http://127.0.0.1:9/ok', '[\"report.created\"]', 1, ?, ?)",
            (hook, f"webhook {hook}", now, now),
        )
    statuses = ["delivered"] * 17 + ["failed", "cancelled", "delivered"]
    message = json.dumps({"messageId": "wh-x", "eventCode": "report.created", "eventName": "x",
                          "payload": {"resourceId": 1, "path": "/reports/1"}})  # fmt: skip
    insert = (  # columns named: later migrations add columns with defaults
        "INSERT INTO deliveries (id, message_id, event_id, webhook_id, event_code, resource_id,"
        " status, attempt_count, attempts_total, next_attempt_at, created_at, completed_at,"
        f" message, last_status, last_error, last_duration_ms) VALUES ({','.join('?' * 16)})"
    )
    batch = []
    for n in range(1, rows + 1):
        status = statuses[n % len(statuses)]
        code = "report.created" if n % 2 else "report.file_ready"
        created = now + n * 10
        batch.append((n, f"wh-bench-{n}", n // 5 + 1, n % 5 + 1, code, 12301 + n // 10, status,
                      1 if status == "delivered" else 4, 1 if status == "delivered" else 4,
                      None, created, created + 5, message, 200 if status == "delivered" else 500,
                      None, 5))  # fmt: skip
        if len(batch) == 50_000:
            conn.executemany(insert, batch)
            batch.clear()
    if batch:
        conn.executemany(insert, batch)
    conn.execute("COMMIT")
    conn.execute("PRAGMA optimize")
    conn.close()


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def big_journal(folder: Path, rows: int, calls: int) -> list[Figure]:
    db = folder / "million.sqlite3"
    started = time.perf_counter()
    await asyncio.to_thread(build_journal, db, rows)
    build_seconds = time.perf_counter() - started
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = Process(
        ["serve", "--port", str(port), "--db", str(db), "--seed-reports", "5"], folder / "big.log"
    )
    try:
        await asyncio.to_thread(wait_http, base + "/healthz", server)
        queries: dict[str, dict[str, Any]] = {
            "newest 50": {},
            "by webhook": {"webhook_id": 3},
            "by status": {"status": "failed"},
            "by event": {"event_code": "report.file_ready"},
            "webhook+status+event": {
                "webhook_id": 2,
                "status": "cancelled",
                "event_code": "report.created",
            },
            "time range": {"since": "2000-01-01T00:00:00Z", "until": "2999-01-01T00:00:00Z"},
            "deep page": {"offset": 100_000},
        }
        async with aiohttp.ClientSession() as http:
            rss_before = rss_kib(server.popen.pid)
            timings: dict[str, list[float]] = {name: [] for name in queries}
            health: list[float] = []
            for _ in range(calls):
                for name, params in queries.items():
                    moment = time.perf_counter()
                    async with http.get(base + "/api/v1/webhook-deliveries", params=params) as r:
                        body = await r.json()
                        assert r.status == 200, body
                    timings[name].append((time.perf_counter() - moment) * 1000)
                moment = time.perf_counter()
                async with http.get(base + "/healthz") as r:
                    await r.read()
                health.append((time.perf_counter() - moment) * 1000)
            rss_after = rss_kib(server.popen.pid)
    finally:
        server.close()
    worst = {name: round(percentile(values, 99), 1) for name, values in timings.items()}
    slowest = max(worst.values())
    growth = (rss_after - rss_before) / 1024
    return [
        Figure(
            f"journal list/filter at {rows:,} deliveries, p99 of slowest filter",
            slowest,
            "ms",
            round(percentile(health, 99), 1),
            "GET /healthz round trip, p99",
            "< 100 ms",
            slowest < 100,
            {"p99_ms_by_query": worst, "journal_build_s": round(build_seconds, 1)},
        ),
        Figure(
            f"server RSS with {rows:,} deliveries, after {calls * len(queries)} list calls",
            round(rss_after / 1024, 1),
            "MiB",
            round(rss_before / 1024, 1),
            "RSS before the calls",
            "flat (growth < 20 MiB)",
            growth < 20,
            {"growth_mib": round(growth, 1)},
        ),
    ]


# --- the table ------------------------------------------------------------------------------


def table(figures: list[Figure]) -> str:
    header = f"{'figure':62} {'value':>12} {'baseline':>12}  {'target':24} met"
    lines = [header, "-" * len(header)]
    for f in figures:
        value = f"{f.value:g} {f.unit}"
        base = "-" if f.baseline is None else f"{f.baseline:g}"
        met = {True: "yes", False: "NO", None: "-"}[f.met]
        lines.append(f"{f.name[:62]:62} {value:>12} {base:>12}  {f.target[:24]:24} {met}")
        lines.append(f"{'':62}   baseline: {f.baseline_name}; {json.dumps(f.detail)}")
    return "\n".join(lines)


async def main(args: argparse.Namespace) -> int:
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="qrm-bench-") as tmp:
        folder = Path(tmp)
        steps: list[tuple[str, Callable[[], Awaitable[Figure | list[Figure]]]]] = [
            ("throughput 1", lambda: throughput(folder, 1, args.deliveries)),
            ("throughput 50", lambda: throughput(folder, 50, args.deliveries)),
            ("first byte", lambda: first_byte(folder, 100.0, args.seconds)),
            ("retry timing", lambda: retry_timing(folder, args.retry_deliveries)),
            ("big journal", lambda: big_journal(folder, args.journal_rows, args.calls)),
        ]
        from benchmarks.stats import stats_figures

        steps.append(("stats", lambda: stats_figures(folder, args.journal_rows, args.calls)))
        from benchmarks.cli import cli_figures
        from benchmarks.webhooks import webhook_page

        steps.append(("webhook page", lambda: webhook_page(folder, args.webhooks, args.calls)))
        steps.append(("cli", lambda: cli_figures(folder)))
        if args.kit_tests:
            from benchmarks.kit import kit_figure

            steps.append(("kit", lambda: kit_figure(folder, args.kit_tests, args.kit_rounds)))
        if args.tui:
            from benchmarks.tui import tui_figures

            steps.append(("tui", lambda: tui_figures(folder, args.journal_rows)))
        for name, step in steps:
            if args.only and name not in args.only:
                continue
            print(f"... {name}", file=sys.stderr, flush=True)
            result = await step()
            figures.extend(result if isinstance(result, list) else [result])
    print(table(figures))
    report = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "figures": [asdict(f) for f in figures],
    }
    await asyncio.to_thread(Path(args.json).write_text, json.dumps(report, indent=2))
    print(f"\nwritten to {args.json}")
    return 0


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__)
    parser.add_argument(
        "--deliveries", type=int, default=10_000, help="deliveries per throughput run"
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="length of the 100 events/s run")
    parser.add_argument("--retry-deliveries", type=int, default=50, help="failing deliveries timed")
    parser.add_argument("--journal-rows", type=int, default=1_000_000, help="journal size")
    parser.add_argument("--calls", type=int, default=20, help="list calls per filter")
    parser.add_argument(
        "--webhooks", type=int, default=10_000, help="webhooks for the webhook-page figure"
    )
    parser.add_argument(
        "--kit-tests", type=int, default=30, help="tests of each kind per kit session (0: skip)"
    )
    parser.add_argument(
        "--kit-rounds", type=int, default=3, help="rounds of kit, kit async and bare sessions"
    )
    parser.add_argument("--no-tui", dest="tui", action="store_false", help="skip the TUI figures")
    parser.add_argument("--only", action="append", help="run only this step (repeatable)")
    parser.add_argument("--json", default="bench-results.json", help="where to write the JSON")
    return parser.parse_args()


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse())))
