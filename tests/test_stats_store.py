"""The stats' store (`store/stats.py` and the triggers of schema migration 3) against brute force.

Attempts with random starts over half an hour, ended through either statement a
writer may use (journaled then finished, or journaled already ended), some
interrupted, some still in flight; then any `since` (on a minute, a millisecond
either side of an attempt, in either half of the history) must give what
counting the attempts table by hand gives.
"""

from __future__ import annotations

import random
import sqlite3
from collections import Counter
from contextlib import closing
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from mock_qrm.contract.models import WebhookStats
from mock_qrm.contract.timefmt import from_ms, to_ms
from mock_qrm.server.store import journal
from mock_qrm.server.store.db import Database
from mock_qrm.server.store.schema import MIGRATIONS
from mock_qrm.server.store.stats import webhook_stats
from tests.api.test_stats import nearest_rank

START = 1_800_000_000_000  # ms; a minute boundary
SPAN = 30 * 60_000
RESULTS = [(200, None, "success")] * 6 + [
    (500, None, "failure"),
    (404, None, "failure"),
    (None, "timeout", "failure"),
    (None, "connection_refused", "failure"),
]


def _schema(conn: sqlite3.Connection, migrations: tuple[str, ...]) -> None:
    for number, script in enumerate(migrations, start=1):
        conn.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")


def _journal(conn: sqlite3.Connection, seed: int, attempts: int) -> None:
    """Two webhooks' deliveries and attempts, written as the journal's own statements would."""
    rng = random.Random(seed)
    for hook in (1, 2):
        conn.execute(
            "INSERT INTO webhooks (id, name, url, events, active, created_at, updated_at)"
            " VALUES (?, ?, 'http://x/', '[]', 1, 0, 0)",
            (hook, f"hook {hook}"),
        )
    created_at = sorted(START + rng.randrange(SPAN) for _ in range(attempts // 3))
    webhook_of = {}
    for number, created in enumerate(created_at, start=1):  # ids grow with time, as the engine's
        status = rng.choice(["delivered", "failed", "retry_scheduled", "cancelled"])
        webhook_of[number] = rng.choice((1, 1, 2))
        conn.execute(
            "INSERT INTO deliveries (id, message_id, event_id, webhook_id, event_code,"
            " resource_id, status, created_at, message) VALUES (?, ?, 1, ?, 'report.created',"
            " 1, ?, ?, '{}')",
            (number, f"wh-{number}", webhook_of[number], status, created),
        )
    for number in range(1, attempts + 1):
        delivery = rng.randrange(1, attempts // 3 + 1)
        started = START + rng.randrange(SPAN)
        if rng.random() < 0.3:  # near a minute boundary, either side
            started = started - started % 60_000 + rng.choice((-1, 0, 1))
        status, error, outcome = rng.choice(RESULTS)
        if webhook_of[delivery] == 2 and started > START + SPAN // 3:
            status, error, outcome = 200, None, "success"  # webhook 2 failed early on only
        duration: int | None = rng.choice((0, 1, 2, 3, 5, 8, 13, 40, 250, 2500))
        if rng.random() < 0.05:
            status, error, outcome, duration = None, "interrupted", "interrupted", None
        in_flight = rng.random() < 0.05
        at_once = rng.random() < 0.3 and not in_flight
        conn.execute(
            "INSERT INTO attempts (id, delivery_id, number, trigger, started_at, duration_ms,"
            " url, request_headers, request_body, response_status, error, outcome)"
            " VALUES (?, ?, 1, 'automatic', ?, ?, 'http://x/', '{}', '', ?, ?, ?)",
            (number, delivery, started, *((duration, status, error, outcome) if at_once else
                                          (None, None, None, None))),
        )  # fmt: skip
        if not (at_once or in_flight):
            conn.execute(
                "UPDATE attempts SET duration_ms = ?, response_status = ?, error = ?, outcome = ?"
                " WHERE id = ? AND outcome IS NULL",
                (duration, status, error, outcome, number),
            )


def brute_force(conn: sqlite3.Connection, webhook_id: int, since_ms: int | None) -> dict[str, Any]:
    """The figures, counted from the journal's own tables, one row at a time."""
    low = -1 if since_ms is None else since_ms
    rows = conn.execute(
        "SELECT a.started_at, a.duration_ms, a.response_status, a.error, a.outcome"
        " FROM attempts a JOIN deliveries d ON d.id = a.delivery_id"
        " WHERE d.webhook_id = ? AND a.outcome IS NOT NULL AND a.started_at >= ?",
        (webhook_id, low),
    ).fetchall()
    outcomes = Counter(row[4] for row in rows)
    answered = outcomes["success"] + outcomes["failure"]
    timed = [row[1] for row in rows if row[4] in ("success", "failure") and row[1] is not None]

    def last(outcome: str) -> datetime | None:
        starts = [row[0] for row in rows if row[4] == outcome]
        return from_ms(max(starts)) if starts else None

    delivered, failed = (
        conn.execute(
            "SELECT COUNT(*) FROM deliveries WHERE webhook_id = ? AND status = ?"
            " AND created_at >= ?",
            (webhook_id, status, low),
        ).fetchone()[0]
        for status in ("delivered", "failed")
    )
    return {
        "attempts": len(rows),
        "delivered": delivered,
        "failed": failed,
        "success_rate": outcomes["success"] / answered if answered else None,
        "latency": [nearest_rank(timed, p) for p in (50, 95, 99)],
        "by_status": dict(Counter(str(row[2]) if row[2] is not None else row[3] for row in rows)),
        "last_success_at": last("success"),
        "last_failure_at": last("failure"),
    }


def figures(stats: WebhookStats) -> dict[str, Any]:
    latency = stats.latency_ms
    return {
        "attempts": stats.attempts,
        "delivered": stats.delivered,
        "failed": stats.failed,
        "success_rate": stats.success_rate,
        "latency": [latency.p50, latency.p95, latency.p99],
        "by_status": stats.by_status,
        "last_success_at": stats.last_success_at,
        "last_failure_at": stats.last_failure_at,
    }


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_any_since_agrees_with_counting_the_journal_by_hand(
    tmp_path: Path, seed: int
) -> None:
    path = tmp_path / "journal.sqlite3"
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        _schema(conn, MIGRATIONS)
        conn.execute("BEGIN")
        _journal(conn, seed, 600)
        conn.execute("COMMIT")
        starts = [row[0] for row in conn.execute("SELECT started_at FROM attempts")]
        rng = random.Random(seed)
        sinces: list[int | None] = [None, START - 1, START + SPAN + 60_000]
        sinces += [START + minute * 60_000 for minute in range(0, 31, 3)]
        sinces += [s + d for s in rng.sample(starts, 40) for d in (-1, 0, 1)]
        expected = {
            (hook, since): brute_force(conn, hook, since) for hook in (1, 2) for since in sinces
        }

    db = await Database.open(str(path))
    try:
        for (hook, since), wanted in expected.items():
            moment = None if since is None else from_ms(since)
            got = await webhook_stats(db, hook, moment, START + SPAN)
            assert got is not None
            assert figures(got) == wanted, (hook, since)
            assert since is None or to_ms(got.since or datetime.min) == since
    finally:
        await db.close()


async def test_attempts_journaled_before_the_stats_existed_are_counted(tmp_path: Path) -> None:
    """A database from before schema 3: the migration counts what its journal already holds."""
    path = tmp_path / "old.sqlite3"
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        _schema(conn, MIGRATIONS[:2])
        conn.execute("BEGIN")
        _journal(conn, 7, 120)
        conn.execute("COMMIT")
    db = await Database.open(str(path))  # migrates
    await db.close()
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        wanted = {hook: brute_force(conn, hook, None) for hook in (1, 2)}
    db = await Database.open(str(path))
    try:
        for hook in (1, 2):
            got = await webhook_stats(db, hook, None, START)
            assert got is not None and figures(got) == wanted[hook]
            assert got.attempts > 0
    finally:
        await db.close()


async def test_an_interrupted_attempt_counts_as_attempted_but_not_in_the_success_rate(
    tmp_path: Path,
) -> None:
    """After a crash the attempt cut short is journaled `interrupted` (`journal.recover`)."""
    path = tmp_path / "crashed.sqlite3"
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        _schema(conn, MIGRATIONS)
        conn.execute(
            "INSERT INTO webhooks (id, name, url, events, active, created_at, updated_at)"
            " VALUES (1, 'hook', 'http://x/', '[]', 1, 0, 0)"
        )
        conn.execute(
            "INSERT INTO deliveries (id, message_id, event_id, webhook_id, event_code,"
            " resource_id, status, created_at, message)"
            " VALUES (1, 'wh-1', 1, 1, 'report.created', 1, 'in_flight', ?, '{}')",
            (START,),
        )
        conn.execute(
            "INSERT INTO attempts (delivery_id, number, trigger, started_at, url,"
            " request_headers, request_body) VALUES (1, 1, 'automatic', ?, 'http://x/', '{}', '')",
            (START,),
        )
    db = await Database.open(str(path))
    try:
        assert await db.writer.run(lambda conn: journal.interrupt_unfinished(conn, START / 1000))
        got = await webhook_stats(db, 1, None, START)
        assert got is not None
        assert (got.attempts, got.by_status, got.success_rate) == (1, {"interrupted": 1}, None)
        assert got.latency_ms.p50 is None and got.last_failure_at is None
    finally:
        await db.close()
