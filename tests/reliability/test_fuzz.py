"""Schemathesis against the server's own `/openapi.json` (SPEC.md section 3).

Every operation gets generated requests, valid and invalid: every answer must be
a status the document lists, never a 5xx, with the documented content type and
a body that fits the documented schema, and no operation may answer without the
API key. The server runs for real, with a key, on a loopback port in a thread of
its own; `benchmarks/soak.py --fuzz` runs the same with many more examples.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    response_schema_conformance,
    status_code_conformance,
)

from mock_qrm.app import create_app
from mock_qrm.delivery.sender import Sender, SendResult
from tests.api.test_errors import qrm_error
from tests.conftest import make_settings
from tests.delivery.helpers import Client

MAX_EXAMPLES = int(os.environ.get("QRM_FUZZ_EXAMPLES", "25"))
"""Per operation; `make soak ARGS=--fuzz` sets many more through the environment."""
KEY = "fuzz-key"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    ignored_auth,
]

# What the server holds at the start of every operation's run (see `reseed`).
SEED_WEBHOOKS = [
    {
        "name": "Delivered",
        "url": "http://127.0.0.1:9/ok",
        "events": ["report.created", "report.file_ready"],
        "basicAuth": {"username": "qrm", "password": "fuzz-password"},
    },
    {"name": "Retrying", "url": "http://127.0.0.1:9/refused", "events": ["report.created"]},
    {
        "name": "Inactive",
        "url": "http://127.0.0.1:9/ok",
        "events": ["report.created"],
        "active": False,
    },
]
SEED_UPLOADS = 2
KNOWN_IDS = {
    "webhook_id": ["1", "2", "3"],
    "delivery_id": ["1", "2", "3", "4", "5", "6"],
    "report_id": ["12301", "12306"],
}
"""Ids the seed creates: generated path parameters are swapped for one of them half the
time, so the fuzzer reaches real resources and not only their 404."""


class LiveServer:
    """The mock QRM on a free loopback port, served from its own thread and event loop."""

    def __init__(self, **overrides: Any) -> None:
        self._settings = make_settings(**overrides)
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.url = ""

    def __enter__(self) -> LiveServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(30)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _start(self) -> None:
        self._runner = web.AppRunner(create_app(self._settings), access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


async def _no_network(self: Sender, url: str, body: bytes, headers: dict[str, str]) -> SendResult:
    """A receiver that answers 200 on `/ok` and refuses everything else, without a socket."""
    if url.endswith("/ok"):
        return SendResult(200, {"Content-Type": "application/json"}, '{"ok":true}', False, None, 1)
    return SendResult(None, None, None, False, "connection_refused", 0)


def reseed(base: str) -> None:
    """Back to the seeded state, plus webhooks, deliveries and attempts to fuzz against."""
    with requests.Session() as session:
        session.headers["apiKey"] = KEY

        def call(method: str, path: str, status: int, body: Any = None) -> None:
            response = session.request(method, base + path, json=body, timeout=10)
            assert response.status_code == status, response.text

        call("POST", "/_mock/reset", 204)
        for webhook in SEED_WEBHOOKS:
            call("POST", "/api/v1/webhooks", 201, webhook)
        for _ in range(SEED_UPLOADS):
            call("POST", "/_mock/reports", 201, {})
        call("POST", "/_mock/clock/advance", 200, {"seconds": 5})  # report.file_ready


@pytest.fixture(scope="module")
def live_server() -> Iterator[LiveServer]:
    # Generated webhooks point at any host on the internet, and generated uploads and
    # redeliveries would send them messages: this process sends nothing anywhere.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Sender, "send", _no_network)
        with LiveServer(api_key=KEY) as server:
            yield server


@pytest.fixture(scope="module")
def api_schema(live_server: LiveServer) -> Any:
    loaded = schemathesis.openapi.from_url(f"{live_server.url}/openapi.json")  # open

    @loaded.hook
    def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any]) -> Any:
        return st.fixed_dictionaries(
            {
                name: st.one_of(st.just(value), st.sampled_from(KNOWN_IDS[name]))
                if name in KNOWN_IDS
                else st.just(value)
                for name, value in (path_parameters or {}).items()
            }
        )

    return loaded


# The feed is a WebSocket upgrade: a plain request only ever sees its 400 refusal, and
# tests/delivery/test_feed.py covers what it sends.
schema = schemathesis.pytest.from_fixture("api_schema").exclude(path="/api/v1/webhook-feed")

_seeded_for: list[str] = []


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_answers_a_documented_status_with_a_conforming_body(
    case: Any, live_server: LiveServer
) -> None:
    if _seeded_for[-1:] != [case.operation.label]:  # each operation starts from the seed
        reseed(live_server.url)
        _seeded_for.append(case.operation.label)
    case.call_and_validate(base_url=live_server.url, headers={"apiKey": KEY}, checks=CHECKS)


# --- what the fuzzer found, pinned ----------------------------------------------------


async def test_a_wrong_method_is_405_naming_the_allowed_ones(api: Client) -> None:
    """RFC 9110: a 405 carries `Allow`; the error middleware used to drop it."""
    response = await api.request("TRACE", "/api/v1/webhooks")
    await qrm_error(response, 405)
    assert set(response.headers["Allow"].split(",")) >= {"GET", "POST"}


async def test_login_documents_the_401_it_answers_a_wrong_password_with(server: Any) -> None:
    api = await server(api_key=KEY)
    response = await api.post("/api/v1/auth/login", json={"username": "u", "password": "nope"})
    await qrm_error(response, 401)
    document = await (await api.get("/openapi.json")).json()
    assert "401" in document["paths"]["/api/v1/auth/login"]["post"]["responses"]


async def test_an_upload_documents_that_it_needs_no_body(api: Client) -> None:
    assert (await api.post("/_mock/reports")).status == 201
    document = await (await api.get("/openapi.json")).json()
    assert document["paths"]["/_mock/reports"]["post"]["requestBody"]["required"] is False
