"""The example receiver against the mock QRM, tested with the mock_qrm plugin's fixtures only.

The tests are async because the receiver runs on the test's event loop, so they
use the `a`-prefixed helpers (`await mock_qrm.aupload_report()`), which never
block that loop. No test sleeps: the manual clock moves retries
(`await mock_qrm.aadvance(61)`), waits ride on the server's live feed, and the
receiver's own pauses are events that the test sets. The one real wait is the
receiver's: half a second before it tries a failed call back again.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from receiver import WEBHOOK_PATH, Config, MemoryStore, create_app

from mock_qrm.testing import MockQrm

pytestmark = pytest.mark.asyncio

CREDENTIALS = ("qrm", "s3cret")
"""The basic auth the receiver expects, and the webhook is configured with."""

StartReceiver = Callable[..., Awaitable[str]]


@pytest_asyncio.fixture
async def start_receiver(
    mock_qrm: MockQrm, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[StartReceiver]:
    """`await start_receiver(store)` serves the receiver and returns its webhook URL.

    It is configured by environment, as in production, and pointed at the mock
    QRM; `api_key=` hands it a different key than the server's.
    """
    runners: list[web.AppRunner] = []

    async def start(store: MemoryStore, api_key: str | None = None) -> str:
        monkeypatch.setenv("QRM_API_URL", mock_qrm.api_url)
        monkeypatch.setenv("QRM_API_KEY", api_key or mock_qrm.api_key or "")
        monkeypatch.setenv("RECEIVER_USERNAME", CREDENTIALS[0])
        monkeypatch.setenv("RECEIVER_PASSWORD", CREDENTIALS[1])
        runner = web.AppRunner(create_app(Config.from_env(), store))
        await runner.setup()
        runners.append(runner)
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        port = runner.addresses[0][1]
        return f"http://127.0.0.1:{port}{WEBHOOK_PATH}"

    yield start
    for runner in runners:
        await runner.cleanup()


class FailsOnce(MemoryStore):
    """A store whose first save fails, like a database that blinks."""

    def __init__(self) -> None:
        super().__init__()
        self.failures_left = 1

    async def save(self, resource_id: int, report: dict[str, Any]) -> None:
        if self.failures_left:
            self.failures_left -= 1
            raise ConnectionError("database unavailable")
        await super().save(resource_id, report)


class Gated(MemoryStore):
    """A store that holds every save until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.saved = asyncio.Event()

    async def save(self, resource_id: int, report: dict[str, Any]) -> None:
        await self.gate.wait()
        await super().save(resource_id, report)
        self.saved.set()


async def test_an_uploaded_report_is_fetched_back_and_stored(
    mock_qrm: MockQrm, start_receiver: StartReceiver
) -> None:
    store = MemoryStore()
    url = await start_receiver(store)
    await mock_qrm.acreate_webhook(url, basic_auth=CREDENTIALS)

    report = await mock_qrm.aupload_report()
    delivery = await mock_qrm.await_for_delivery(resource_id=report.resource_id)

    assert delivery.message.payload.path == f"/reports/{report.resource_id}"
    [attempt] = delivery.attempts
    assert attempt.response_status == 200
    assert attempt.request_headers["Authorization"] == "Basic [redacted]"  # it was sent
    assert store.reports == {report.resource_id: await mock_qrm.areport(report.resource_id)}


async def test_wrong_basic_auth_is_refused_until_the_webhook_is_fixed(
    mock_qrm: MockQrm, start_receiver: StartReceiver
) -> None:
    url = await start_receiver(MemoryStore())
    hook = await mock_qrm.acreate_webhook(url, basic_auth=(CREDENTIALS[0], "wrong"))
    report = await mock_qrm.aupload_report()

    refused = await mock_qrm.await_for_delivery(status="retry_scheduled")
    assert refused.last_response_status == 401

    await mock_qrm.aupdate_webhook(hook, basic_auth=CREDENTIALS)
    await mock_qrm.aadvance(61)
    delivered = await mock_qrm.await_for_delivery(resource_id=report.resource_id, attempts=2)
    assert [a.response_status for a in delivered.attempts] == [401, 200]


async def test_a_500_is_retried_a_minute_later(
    mock_qrm: MockQrm, start_receiver: StartReceiver
) -> None:
    store = FailsOnce()
    url = await start_receiver(store)
    await mock_qrm.acreate_webhook(url, basic_auth=CREDENTIALS)
    report = await mock_qrm.aupload_report()

    failed = await mock_qrm.await_for_delivery(status="retry_scheduled")
    assert failed.last_response_status == 500

    await mock_qrm.aadvance(59)  # not yet: the retry is due 60 s after the failed attempt
    assert (await mock_qrm.adelivery(failed)).status == "retry_scheduled"
    await mock_qrm.aadvance(2)
    delivered = await mock_qrm.await_for_delivery(resource_id=report.resource_id)
    assert [a.response_status for a in delivered.attempts] == [500, 200]
    assert delivered.attempts[0].request_body == delivered.attempts[1].request_body
    assert store.reports.keys() == {report.resource_id}


async def test_a_failed_call_back_to_qrm_is_not_acknowledged(
    mock_qrm: MockQrm, start_receiver: StartReceiver
) -> None:
    url = await start_receiver(MemoryStore(), api_key="not-the-key")
    await mock_qrm.acreate_webhook(url, basic_auth=CREDENTIALS)
    await mock_qrm.aupload_report()

    failed = await mock_qrm.await_for_delivery(status="retry_scheduled")
    assert failed.last_response_status == 502
    assert "answered 401" in (failed.attempts[0].response_body or "")


@pytest.mark.mock_qrm(timeout=0.3)
async def test_a_receiver_slower_than_the_timeout_is_retried_and_not_processed_twice(
    mock_qrm: MockQrm, start_receiver: StartReceiver
) -> None:
    store = Gated()
    url = await start_receiver(store)
    await mock_qrm.acreate_webhook(url, basic_auth=CREDENTIALS)
    report = await mock_qrm.aupload_report()

    timed_out = await mock_qrm.await_for_delivery(status="retry_scheduled")
    assert timed_out.attempts[0].error == "timeout"

    # QRM gave up after 0.3 s, but the receiver's handler goes on and finishes the work.
    store.gate.set()
    await asyncio.wait_for(store.saved.wait(), 5)
    await mock_qrm.aadvance(61)
    delivered = await mock_qrm.await_for_delivery(resource_id=report.resource_id, attempts=2)
    assert '"duplicate": true' in (delivered.attempts[1].response_body or "")
    assert store.saves == 1


async def test_a_manual_redelivery_is_acknowledged_and_not_processed_twice(
    mock_qrm: MockQrm, start_receiver: StartReceiver
) -> None:
    store = MemoryStore()
    url = await start_receiver(store)
    await mock_qrm.acreate_webhook(url, basic_auth=CREDENTIALS)
    await mock_qrm.aupload_report()
    delivery = await mock_qrm.await_for_delivery()

    again = await mock_qrm.aredeliver(delivery)

    assert again.trigger == "manual"
    assert again.response_status == 200
    assert again.request_body == delivery.attempts[0].request_body  # the same messageId
    assert '"duplicate": true' in (again.response_body or "")
    assert store.saves == 1


async def test_a_503_on_the_call_back_is_tried_again(
    mock_qrm: MockQrm, start_receiver: StartReceiver
) -> None:
    store = MemoryStore()
    url = await start_receiver(store)
    await mock_qrm.acreate_webhook(url, basic_auth=CREDENTIALS)
    await mock_qrm.aadd_fault(status=503, times=1)  # QRM's API blinks once

    report = await mock_qrm.aupload_report()
    delivery = await mock_qrm.await_for_delivery(resource_id=report.resource_id)

    assert delivery.attempt_count == 1  # no minute lost waiting for QRM's own retry
    path = f"/api/v1/reports/{report.resource_id}"
    calls = [c for c in await mock_qrm.aapi_calls() if c.path == path]
    assert [c.status for c in calls] == [503, 200]
    assert store.reports.keys() == {report.resource_id}
