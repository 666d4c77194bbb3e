"""`qrm-tui --web --demo`: the demo's workload runs once, in the web process, for every tab."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from mock_qrm.app import create_app
from mock_qrm.client import QrmClient
from mock_qrm.server.settings import Settings
from mock_qrm.serving import Running, serve
from qrm_tui.demo import DemoOptions
from qrm_tui.web import shared_demo


@pytest.fixture
async def mock() -> AsyncIterator[Running]:
    settings = Settings(host="127.0.0.1", port=0, db=":memory:", seed_reports=2)
    running = await serve(create_app(settings), settings.host, settings.port)
    try:
        yield running
    finally:
        await running.close()


async def test_the_shared_demo_adds_its_webhooks_once_and_stops_its_receiver(
    mock: Running,
) -> None:
    options = DemoOptions(upload_every=3600)
    async with QrmClient(mock.url) as client:
        async with shared_demo(mock.url, None, options) as demo:
            names = {webhook.name for webhook in await client.webhooks()}
            assert len(names) == 4 and "Healthy receiver" in names
            assert demo.receiver is not None
        assert demo.receiver is None
        async with shared_demo(mock.url, None, options):
            assert len(await client.webhooks()) == 4, "a second start adds no duplicates"
