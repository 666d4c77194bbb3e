"""Schemathesis against the server's own `/openapi.json` (SPEC.md section 3).

Every operation gets generated requests, valid and invalid, under every check
schemathesis has (`--checks all`): every answer must be a status the document
lists, never a 5xx, with the documented content type, headers and body; a request
the document allows must be accepted and one it forbids refused, so the document
says exactly what the server enforces; no operation may answer without the API
key; `Allow` names exactly the methods a path has. The server runs for real, with
a key, on a loopback port in a thread of its own; `benchmarks/soak.py --fuzz`
runs the same with many more examples.
"""

from __future__ import annotations

import asyncio
import os
import threading
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, settings
from schemathesis import checks
from schemathesis.checks import CHECKS as SCHEMATHESIS_CHECKS
from schemathesis.checks import load_all_checks

from mock_qrm.app import create_app
from mock_qrm.server.delivery.sender import Sender, SendResult
from tests.api.test_errors import qrm_error
from tests.conftest import make_settings
from tests.delivery.helpers import Client

MAX_EXAMPLES = int(os.environ.get("QRM_FUZZ_EXAMPLES", "25"))
"""Per operation; `make soak ARGS=--fuzz` sets many more through the environment."""
EVERY_BOUNDARY = "QRM_FUZZ_EXAMPLES" in os.environ
"""Whether to run schemathesis' coverage phase too: every boundary the document defines
(length + 1, a missing field, a wrong method, some 2,500 cases, a third of them in the
upload's `overrides`), which no example count bounds, so the soak's run, not `make test`'s."""
STATEFUL_EXAMPLES = max(2, MAX_EXAMPLES // 5)
STATEFUL_STEPS = 6
"""Sequences of calls, and calls in each: a sequence costs several calls, so fewer of them."""
KEY = "fuzz-key"


def positive_data_acceptance(ctx: Any, response: Any, case: Any) -> bool | None:
    """Schemathesis' check, less the one rule the document can only say in words: a PATCH
    that turns basic auth on needs a password when the webhook holds none (422)."""
    if (
        case.method == "PATCH"
        and response.status_code == 422
        and response.json().get("errors") == {"basicAuth.password": ["Password is required"]}
    ):
        return None
    return checks.positive_data_acceptance(ctx, response, case)


load_all_checks()
_THEIRS = {check.__name__: check for check in SCHEMATHESIS_CHECKS.get_all()}


def use_after_free(ctx: Any, response: Any, case: Any) -> bool | None:
    """Schemathesis' check, less a removed webhook's statistics: its history stays, and so do
    its stats (`"removed": true`, docs/stats.md); any other read of it must be a 404."""
    if case.path == "/api/v1/webhooks/{webhook_id}/stats":
        return None
    result: bool | None = _THEIRS["use_after_free"](ctx, response, case)
    return result


_OURS = {"positive_data_acceptance": positive_data_acceptance, "use_after_free": use_after_free}
CHECKS = [_OURS.get(name, check) for name, check in _THEIRS.items()]
"""Every check schemathesis has (`--checks all`)."""

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
    # The key is the test's to send (below), not a parameter to generate or leave out:
    # `ignored_auth` checks every operation refuses a request without it.
    loaded.config.generation.update(with_security_parameters=False)
    loaded.config.phases.coverage.enabled = EVERY_BOUNDARY

    @loaded.hook
    def map_case(context: Any, case: Any) -> Any:
        """Half the valid cases get a seeded id, so the fuzzer reaches real resources and not
        only their 404; an invalid id stays as generated, for the server to refuse, and a
        sequence of calls keeps the ids it chains from one answer to the next."""
        meta = case.meta
        if meta is None or not meta.generation.mode.is_positive or meta.phase.name == "stateful":
            return case
        for name, known in KNOWN_IDS.items():
            if name in (case.path_parameters or {}):
                pick = zlib.crc32(repr(case.path_parameters[name]).encode()) % (2 * len(known))
                if pick < len(known):
                    case.path_parameters[name] = known[pick]
        return case

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


def test_sequences_of_calls_answer_as_documented_too(
    api_schema: Any, live_server: LiveServer
) -> None:
    """The checks that need a history (`use_after_free`, `ensure_resource_availability`):
    chains of calls through the links schemathesis infers (create, then read, patch, delete)."""
    # Left out: a reset between creating a webhook and reading it back takes it away, and
    # an injected fault makes QRM's routes answer what it says, both rightly.
    control = ["/api/v1/webhook-feed", "/_mock/reset", "/_mock/faults"]
    chained = api_schema.exclude(path=control).as_state_machine()

    class Calls(chained):  # type: ignore[misc, valid-type]
        def setup(self) -> None:
            reseed(live_server.url)  # the same steps meet the same server: a replay is a replay

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"base_url": live_server.url, "headers": {"apiKey": KEY}}

        def validate_response(self, response: Any, case: Any, *_: Any, **kwargs: Any) -> None:
            case.validate_response(
                response, checks=CHECKS, transport_kwargs=kwargs, recorder=self.recorder
            )

    Calls.run(
        settings=settings(
            max_examples=STATEFUL_EXAMPLES,
            stateful_step_count=STATEFUL_STEPS,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
    )


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


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/webhook-deliveries?until=0.5",
        "/api/v1/webhook-deliveries?since=1700000000",
        "/api/v1/reports?updated_to=0.5",
        "/api/v1/reports?created_from=-1e3",
    ],
)
async def test_a_number_is_not_a_date(api: Client, path: str) -> None:
    """Pydantic would read `0.5` as Unix seconds (1970); the document says date-time."""
    error = await qrm_error(await api.get(path), 422)
    [(field, value)] = [part.split("=") for part in path.split("?")[1:]]
    assert set(error["errors"]) == {field}, value


async def test_a_date_in_a_bulk_redelivery_body_is_still_a_date(api: Client) -> None:
    for until, status in (("2026-11-28T15:04:05Z", 200), ("0.5", 422)):
        response = await api.post("/api/v1/webhook-deliveries/redeliver", json={"until": until})
        assert response.status == status, await response.text()


@pytest.mark.parametrize(
    ("webhook_id", "status"), [(10666.0, 200), (1e3, 200), (10666.5, 422), ("10666", 422)]
)
async def test_an_integral_float_is_an_integer_in_a_body(
    api: Client, webhook_id: Any, status: int
) -> None:
    """JSON Schema's `integer` includes 10666.0 (a JavaScript client cannot send anything else);
    a fraction, or a number in a string, is still refused."""
    response = await api.post(
        "/api/v1/webhook-deliveries/redeliver", json={"webhookId": webhook_id, "status": "failed"}
    )
    if status == 200:
        assert response.status == 200, await response.text()
        assert (await response.json())["data"] == {"count": 0}
    else:
        assert set((await qrm_error(response, status))["errors"]) == {"webhookId"}


@pytest.mark.parametrize("method", ["OPTIONS", "GET", "PUT"])
async def test_a_route_beside_an_id_route_allows_only_its_own_methods(
    api: Client, method: str
) -> None:
    """`/webhook-deliveries/redeliver` once matched `/{delivery_id}` too, so `Allow` named a GET."""
    response = await api.request(method, "/api/v1/webhook-deliveries/redeliver")
    await qrm_error(response, 405)
    assert response.headers["Allow"] == "POST"


async def test_an_override_of_an_empty_inspection_type_is_422_not_a_crash(api: Client) -> None:
    response = await api.post("/_mock/reports", json={"overrides": {"type": {}}})
    error = await qrm_error(response, 422)
    assert set(error["errors"]) == {"overrides.type.typeOfInspection"}


async def test_an_override_date_is_in_range_by_the_year_it_is_written_in(api: Client) -> None:
    """The document can state a year range only as written: 1900 at +01:00 is 1899 in UTC."""
    early = {"overrides": {"inspectionDate": "1900-01-01T00:00:00+01:00"}}
    assert (await api.post("/_mock/reports", json=early)).status == 201
    late = {"overrides": {"inspectionDate": "9999-01-01T00:00:00+01:00"}}
    await qrm_error(await api.post("/_mock/reports", json=late), 422)


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/reports?limit=1.0",
        "/api/v1/reports?offset=5_0",
        "/api/v1/webhook-deliveries?webhook_id=1.0",
        "/_mock/reports?limit=%205",
    ],
)
async def test_an_integer_in_a_query_is_digits(api: Client, path: str) -> None:
    """The document types these `integer`: pydantic alone took `1.0`, ` 5` and `5_0` too."""
    error = await qrm_error(await api.get(path), 422)
    assert set(error["errors"]) == {path.split("?")[1].split("=")[0]}
    assert (await api.get(path.split("=")[0] + "=5")).status == 200
