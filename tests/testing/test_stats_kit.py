"""The kit's side of per-webhook statistics (SPEC 9.6): `mock_qrm.stats(webhook, since=None)`."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mock_qrm.testing import MockQrm, MockReceiver, QrmApiError, WebhookStats


def test_stats_say_what_the_journal_says(mock_qrm: MockQrm, qrm_receiver: MockReceiver) -> None:
    began = mock_qrm.clock().now
    hook = mock_qrm.create_webhook(qrm_receiver.url + "/flaky/1")
    report = mock_qrm.upload_report()
    mock_qrm.wait_for_delivery(resource_id=report.resource_id, status="retry_scheduled")
    mock_qrm.advance(61)
    delivered = mock_qrm.wait_for_delivery(resource_id=report.resource_id)
    failure, success = delivered.attempts

    stats = mock_qrm.stats(hook)
    assert isinstance(stats, WebhookStats)
    assert (stats.attempts, stats.by_status, stats.success_rate) == (2, {"200": 1, "500": 1}, 0.5)
    assert (stats.delivered, stats.failed) == (1, 0)
    assert (stats.last_failure_at, stats.last_success_at) == (
        failure.started_at,
        success.started_at,
    )
    assert stats.latency_ms.p99 == max(failure.duration_ms or 0, success.duration_ms or 0)

    later = mock_qrm.stats(hook.id, since=success.started_at)
    assert (later.attempts, later.by_status, later.delivered) == (1, {"200": 1}, 0)
    assert mock_qrm.stats(hook, began.isoformat()).attempts == 2  # ISO 8601 text too
    assert mock_qrm.stats(hook, success.started_at + timedelta(milliseconds=1)).attempts == 0


async def test_the_async_spelling_and_a_removed_webhook(
    mock_qrm: MockQrm, qrm_receiver: MockReceiver
) -> None:
    hook = await mock_qrm.acreate_webhook(qrm_receiver.url + "/ok")
    await mock_qrm.aupload_report()
    await mock_qrm.await_for_delivery(webhook=hook)
    await mock_qrm.adelete_webhook(hook)
    stats = await mock_qrm.astats(hook, per_minute=1)
    assert (stats.removed, stats.attempts, stats.delivered) == (True, 1, 1)
    assert [minute.attempts for minute in stats.per_minute] == [1]
    with pytest.raises(QrmApiError) as refused:
        await mock_qrm.astats(hook.id + 1)
    assert refused.value.status == 404
