"""The store's writer: group commit, and one bad job never sinks the others."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Callable

import pytest

from mock_qrm.server.store import journal
from mock_qrm.server.store.db import Database


async def test_a_failing_job_fails_alone_and_its_batch_commits() -> None:
    db = await Database.open(":memory:")
    try:

        def good(n: int) -> object:
            return lambda c: (
                c.execute("INSERT INTO events VALUES (?, 'x', 1, 0, 0, NULL)", (n,)).rowcount
            )

        def bad(conn: sqlite3.Connection) -> None:
            raise ValueError("boom")

        futures = [db.writer.submit(good(1)), db.writer.submit(bad), db.writer.submit(good(2))]
        assert await futures[0] == 1
        with pytest.raises(ValueError, match="boom"):
            await futures[1]
        assert await futures[2] == 1
        rows = await db.fetchall("SELECT id FROM events ORDER BY id")
        assert [r[0] for r in rows] == [1, 2]
    finally:
        await db.close()


async def test_many_jobs_share_few_commits() -> None:
    db = await Database.open(":memory:")
    try:
        futures = [
            db.writer.submit(
                lambda c, n=n: c.execute("INSERT INTO events VALUES (?, 'x', 1, 0, 0, NULL)", (n,))
            )
            for n in range(1, 501)
        ]
        for future in futures:
            await future
        assert db.writer.jobs_done == 500
        assert db.writer.batches < 100
        assert db.writer.cpu_seconds > 0  # what `make bench` reports per delivery
        count = await db.fetchone("SELECT COUNT(*) FROM events")
        assert count is not None and count[0] == 500
    finally:
        await db.close()


async def test_a_newer_schema_is_refused(tmp_path: object) -> None:
    from pathlib import Path

    from mock_qrm.contract.errors import StorageError

    path = Path(str(tmp_path)) / "db.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 999")
    conn.close()
    with pytest.raises(StorageError, match="newer"):
        await Database.open(str(path))


async def test_a_second_server_on_the_same_database_is_refused(tmp_path: object) -> None:
    from pathlib import Path

    from mock_qrm.contract.errors import StorageError

    path = str(Path(str(tmp_path)) / "db.sqlite3")
    first = await Database.open(path)
    try:
        with pytest.raises(StorageError, match="in use by another mock-qrm"):
            await Database.open(path)
    finally:
        await first.close()
    again = await Database.open(path)  # released on close
    await again.close()


async def test_the_rate_window_forgets_starts_older_than_the_longest_period(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Pruning is housekeeping done on one start in PRUNE_ONE_IN: after an hour of
    starts, none from before it is left (a seeded draw, so the test is exact)."""
    monkeypatch.setattr(journal, "prune_draw", random.Random(7))
    hour = 3_600_000
    db = await Database.open(":memory:")
    try:

        def starts(first_ms: int, count: int) -> Callable[[sqlite3.Connection], None]:
            def job(conn: sqlite3.Connection) -> None:
                for n in range(count):
                    for webhook_id in (1, 2):
                        journal._note_start(conn, webhook_id, first_ms + n, hour)

            return job

        await db.writer.run(starts(0, 1000))
        await db.writer.run(starts(2 * hour, 1000))
        rows = await db.fetchall(
            "SELECT webhook_id, COUNT(*), MIN(started_at) FROM rate_window GROUP BY webhook_id"
        )
        assert [(r[0], r[2] >= hour) for r in rows] == [(1, True), (2, True)]
        assert all(r[1] <= 1000 for r in rows)
    finally:
        await db.close()
