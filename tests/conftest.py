"""Shared fixtures: a server on a manual clock with a throw-away database, and a receiver."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from mock_qrm.app import create_app
from mock_qrm.receiver import ReceiverSettings, RunningReceiver, start_receiver
from mock_qrm.server.api.context import SERVICE
from mock_qrm.server.service import QrmService
from mock_qrm.server.settings import Settings

ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "db": ":memory:",
        "manual_clock": True,
        "seed_reports": 5,
        "timeout": 2.0,
        "file_ready_delay": 5.0,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def server(aiohttp_client: ClientFactory) -> Callable[..., Awaitable[TestClient[Any, Any]]]:
    """A factory: `await server(retries=1)` gives a client of a fresh mock QRM."""

    async def start(**overrides: Any) -> TestClient[Any, Any]:
        return await aiohttp_client(create_app(make_settings(**overrides)))

    return start


@pytest.fixture
async def api(server: Callable[..., Awaitable[TestClient[Any, Any]]]) -> TestClient[Any, Any]:
    """A client of a fresh mock QRM with default test settings (manual clock)."""
    return await server()


def service_of(client: TestClient[Any, Any]) -> QrmService:
    return client.app[SERVICE]  # type: ignore[index]


@pytest.fixture
async def receiver() -> AsyncIterator[RunningReceiver]:
    running = await start_receiver(ReceiverSettings(port=0))
    yield running
    await running.close()


WEBHOOK = {"name": "Receiver", "url": "http://127.0.0.1:1/ok", "events": ["report.created"]}
