"""A webhook's statistics at a million journal rows (SPEC.md section 9.6), and what keeping
them costs the writer.

(a) `GET /api/v1/webhooks/{id}/stats` against a real `mock-qrm serve` on the
    benchmark's million-delivery journal, with an attempt for every try each
    delivery records (1.3 million): the whole journal, `since` the middle of the
    history (the most the store has to read) and `since` an hour ago; then what
    the TUI's stats screen asks, the whole journal and the last hour a minute at a
    time (`per_minute=60`). Beside them, the plain list call for the same webhook,
    in the same run.
(b) The triggers that count each ended attempt run in the writer's transaction:
    the journal's own finishing UPDATE, timed per attempt with them and without.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import sqlite3
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.__main__ import Figure, build_journal, percentile, rss_kib
from tests.e2e.processes import Process, free_port, wait_http

WEBHOOK = 3
"""The webhook asked about: a fifth of the journal is its."""
HOUR_MS = 3_600_000
TUI = "whole journal + last hour by the minute"
RESULTS = [(500, None)] * 6 + [(None, "timeout"), (None, "connection_refused")]
"""What a failed attempt got: mostly a 500, sometimes no answer at all."""


def _duration(rng: random.Random, error: str | None) -> int:
    """Milliseconds, as a local receiver answers: mostly a few, a tail into seconds."""
    if error == "timeout":
        return 60_000
    if error is not None:
        return rng.randrange(0, 3)
    if rng.random() < 0.05:
        return int(rng.lognormvariate(6.5, 0.8))
    return int(rng.lognormvariate(2.3, 0.7))


def add_attempts(path: Path) -> int:
    """An attempt for every try each delivery of `build_journal` records, ended, as the engine
    journals them (failures a retry interval apart, the last one the delivery's answer); the
    stats triggers count each as it is written. Returns how many."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    rng = random.Random(9)
    insert = (
        "INSERT INTO attempts (delivery_id, number, trigger, started_at, duration_ms, url,"
        " request_headers, request_body, response_status, error, outcome)"
        " VALUES (?, ?, 'automatic', ?, ?, 'http://127.0.0.1:9/ok', '{}', '', ?, ?, ?)"
    )
    conn.execute("BEGIN")
    batch: list[tuple[Any, ...]] = []
    count = 0
    rows = conn.execute("SELECT id, status, attempts_total, created_at FROM deliveries ORDER BY id")
    for delivery_id, status, tries, created in rows:
        started = created
        for number in range(1, tries + 1):
            last = number == tries
            answer, error = (200, None) if last and status == "delivered" else rng.choice(RESULTS)
            took = _duration(rng, error)
            outcome = "success" if answer == 200 else "failure"
            batch.append((delivery_id, number, started, took, answer, error, outcome))
            started += took + 60_000
        if len(batch) >= 50_000:
            conn.executemany(insert, batch)
            count += len(batch)
            batch.clear()
    conn.executemany(insert, batch)
    count += len(batch)
    conn.execute("COMMIT")
    conn.execute("PRAGMA optimize")
    conn.close()
    return count


def _iso(ms: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _peak_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


async def stats_figures(folder: Path, rows: int, calls: int) -> list[Figure]:
    db = folder / "stats.sqlite3"
    began = time.perf_counter()
    await asyncio.to_thread(build_journal, db, rows)
    attempts = await asyncio.to_thread(add_attempts, db)
    build_seconds = time.perf_counter() - began
    with sqlite3.connect(db) as conn:
        first, last, mine = conn.execute(
            "SELECT MIN(started_at), MAX(started_at), COUNT(*) FROM stats_attempts"
            " WHERE webhook_id = ?",
            (WEBHOOK,),
        ).fetchone()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = Process(
        ["serve", "--port", str(port), "--db", str(db), "--seed-reports", "5"], folder / "stats.log"
    )
    asked: dict[str, tuple[str, dict[str, Any]]] = {
        "list (baseline)": ("/api/v1/webhook-deliveries", {"webhook_id": WEBHOOK}),
        "whole journal": (f"/api/v1/webhooks/{WEBHOOK}/stats", {}),
        "since the middle": (
            f"/api/v1/webhooks/{WEBHOOK}/stats",
            {"since": _iso((first + last) // 2 + 12_345)},
        ),
        "since an hour ago": (f"/api/v1/webhooks/{WEBHOOK}/stats", {"since": _iso(last - HOUR_MS)}),
        TUI: (f"/api/v1/webhooks/{WEBHOOK}/stats", {"per_minute": 60}),
    }
    timings: dict[str, list[float]] = {name: [] for name in asked}
    try:
        await asyncio.to_thread(wait_http, base + "/healthz", server)
        async with aiohttp.ClientSession() as http:
            rss_before = rss_kib(server.popen.pid)
            for _ in range(calls):
                for name, (path, params) in asked.items():
                    moment = time.perf_counter()
                    async with http.get(base + path, params=params) as response:
                        body = await response.json()
                        assert response.status == 200, body
                    timings[name].append((time.perf_counter() - moment) * 1000)
            rss_after = rss_kib(server.popen.pid)
            peak = _peak_kib(server.popen.pid)
            async with http.get(base + asked["whole journal"][0]) as response:
                whole = await response.json()
    finally:
        server.close()
    p99 = {name: round(percentile(values, 99), 1) for name, values in timings.items()}
    p50 = {name: round(percentile(values, 50), 1) for name, values in timings.items()}
    baseline = p99["list (baseline)"]
    slowest = max(p99[name] for name in asked if name not in ("list (baseline)", TUI))
    listing = f"GET /webhook-deliveries?webhook_id={WEBHOOK}, p99"
    return [
        Figure(
            f"webhook stats at {rows:,} deliveries, p99, slowest since",
            slowest,
            "ms",
            baseline,
            listing,
            "< 100 ms",
            slowest < 100,
            {
                "p99_ms": p99,
                "p50_ms": p50,
                "calls_each": calls,
                "journal_attempts": attempts,
                "webhook_attempts": mine,
                "journal_build_s": round(build_seconds, 1),
                "attempts_counted": whole["data"]["attempts"],
                "server_rss_mib": [round(rss_before / 1024, 1), round(rss_after / 1024, 1)],
                "server_peak_rss_mib": round(peak / 1024, 1),
            },
        ),
        Figure(
            f"webhook stats + last hour by the minute (TUI), p99, {rows:,}",
            p99[TUI],
            "ms",
            baseline,
            listing,
            "< 100 ms",
            p99[TUI] < 100,
            {"p50_ms": p50[TUI]},
        ),
        await asyncio.to_thread(writer_cost, folder),
    ]


# --- (b) the writer's cost --------------------------------------------------------------


FINISH = (  # the journal's own statement (store/journal.py finish_attempt)
    "UPDATE attempts SET duration_ms = ?, response_status = ?, response_headers = ?,"
    " response_body = ?, response_truncated = ?, error = ?, outcome = ?"
    " WHERE id = ? AND delivery_id = ? AND outcome IS NULL"
)
TRIGGERS = ("stats_attempt_ended", "stats_attempt_ended_at_once", "stats_attempt_counted")


def _finish_us(path: Path, batches: int, per_batch: int, seed: int) -> float:
    """Median µs per attempt of finishing `per_batch` attempts in one transaction, as the
    writer's group commit does: each attempt journaled as started, then ended."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    rng = random.Random(seed)
    (deliveries,) = conn.execute("SELECT MAX(id) FROM deliveries").fetchone()
    now = int(time.time() * 1000)
    per_attempt = []
    for _ in range(batches):
        started = []
        conn.execute("BEGIN IMMEDIATE")
        for _ in range(per_batch):
            delivery = deliveries - rng.randrange(200)  # recent deliveries, as under load
            now += 3
            cursor = conn.execute(
                "INSERT INTO attempts (delivery_id, number, trigger, started_at, url,"
                " request_headers, request_body) VALUES (?, 9, 'automatic', ?, 'http://x/',"
                " '{}', '')",
                (delivery, now),
            )
            started.append((cursor.lastrowid, delivery))
        conn.execute("COMMIT")
        moment = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        for attempt, delivery in started:
            took = rng.randrange(1, 40)
            conn.execute(FINISH, (took, 200, "{}", "ok", 0, None, "success", attempt, delivery))
        conn.execute("COMMIT")
        per_attempt.append((time.perf_counter() - moment) / per_batch * 1e6)
    conn.close()
    return statistics.median(per_attempt)


def writer_cost(folder: Path, rounds: int = 5) -> Figure:
    """Alternating rounds with and without the triggers, on copies of one small journal."""
    source = folder / "writer.sqlite3"
    build_journal(source, 20_000)
    add_attempts(source)
    counted, plain = folder / "writer-counted.sqlite3", folder / "writer-plain.sqlite3"
    shutil.copy(source, counted)
    shutil.copy(source, plain)
    with sqlite3.connect(plain) as conn:
        for trigger in TRIGGERS:
            conn.execute(f"DROP TRIGGER {trigger}")
    ours: list[float] = []
    base: list[float] = []
    for n in range(rounds):
        ours.append(_finish_us(counted, 8, 500, n))
        base.append(_finish_us(plain, 8, 500, n))
    mine, baseline = statistics.median(ours), statistics.median(base)
    return Figure(
        "writer: finishing an attempt, with the stats triggers",
        round(mine, 1),
        "us/attempt",
        round(baseline, 1),
        "the same UPDATE without the triggers",
        "- (informative)",
        None,
        {
            "added_us": round(mine - baseline, 1),
            "rounds": [round(x, 1) for x in ours],
            "baseline_rounds": [round(x, 1) for x in base],
        },
    )
