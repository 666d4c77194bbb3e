"""The benchmark's own fixtures: `make bench` is not in the suite, so its journal builder is.

The big-journal and TUI figures run against a journal written straight into
SQLite; when the schema grows, that journal must still be one the server reads.
"""

from __future__ import annotations

import itertools
from pathlib import Path

from benchmarks.__main__ import build_journal
from benchmarks.stats import add_attempts
from mock_qrm.contract.codes import DeliveryStatus, Outcome
from mock_qrm.contract.models import DeliveryFilter, StatsQuery
from mock_qrm.server.service import QrmService
from mock_qrm.server.settings import Settings


async def test_the_benchmark_journal_is_one_the_server_reads(tmp_path: Path) -> None:
    db = tmp_path / "journal.sqlite3"
    build_journal(db, 200)

    qrm = await QrmService.open(Settings(db=str(db), seed_reports=0, shutdown_grace=0))
    try:
        hooks, _ = await qrm.list_webhooks()
        newest, total = await qrm.list_deliveries(DeliveryFilter(), 5, 0)
        failed, failed_total = await qrm.list_deliveries(
            DeliveryFilter(status=DeliveryStatus.FAILED), 100, 0
        )
    finally:
        await qrm.close()

    assert [h.name for h in hooks] == [f"webhook {n}" for n in range(1, 6)]
    assert all(h.headers == {} and h.rate_limit is None for h in hooks)
    assert total == 200
    assert [d.id for d in newest] == [200, 199, 198, 197, 196]
    assert failed_total == 10  # one in twenty
    assert {d.status for d in failed} == {DeliveryStatus.FAILED}


async def test_the_benchmark_registry_is_one_the_server_reads_a_page_of(tmp_path: Path) -> None:
    """The webhook-page figure's registry; and a page carries each of its webhooks' own last
    delivery, read for the page only."""
    from benchmarks.webhooks import build_registry

    db = tmp_path / "registry.sqlite3"
    build_registry(db, 300)

    qrm = await QrmService.open(Settings(db=str(db), seed_reports=0, shutdown_grace=0))
    try:
        first, total = await qrm.list_webhooks(limit=1)
        deep, _ = await qrm.list_webhooks(limit=50, offset=250)
        past, _ = await qrm.list_webhooks(limit=50, offset=300)
    finally:
        await qrm.close()

    assert total == 300
    assert [(w.id, w.last_delivery and w.last_delivery.delivery_id) for w in first] == [(1, 1)]
    assert [w.id for w in deep] == list(range(251, 301))
    assert all(w.last_delivery and w.last_delivery.delivery_id == w.id for w in deep)
    assert past == []


async def test_the_stats_benchmark_journal_has_an_ended_attempt_for_every_try(
    tmp_path: Path,
) -> None:
    db = tmp_path / "journal.sqlite3"
    build_journal(db, 200)
    made = add_attempts(db)

    qrm = await QrmService.open(Settings(db=str(db), seed_reports=0, shutdown_grace=0))
    try:
        stats = [await qrm.webhook_stats(hook, StatsQuery()) for hook in range(1, 6)]
        detail = await qrm.get_delivery(17)  # failed: four tries a retry interval apart
    finally:
        await qrm.close()

    assert made == 180 + 20 * 4  # delivered at once; failed and cancelled after four tries
    assert sum(s.attempts for s in stats) == made
    assert sum(s.delivered for s in stats) == 180 and sum(s.failed for s in stats) == 10
    assert all(s.latency_ms.p50 is not None for s in stats)
    assert [a.outcome for a in detail.attempts] == [Outcome.FAILURE] * 4
    gaps = [b.started_at - a.started_at for a, b in itertools.pairwise(detail.attempts)]
    assert all(gap.total_seconds() >= 60 for gap in gaps)
