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
import json
import os
import socket
import threading
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import checks
from schemathesis.checks import CHECKS as SCHEMATHESIS_CHECKS
from schemathesis.checks import load_all_checks

from mock_qrm.app import Running, create_app, serve
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
    """Schemathesis' check, less the rules the document can only say in words: a PATCH
    that turns basic auth on needs a password when the webhook holds none, and a webhook's
    request head must fit what receivers read (16 KiB; 8,190 bytes a line) (422)."""
    errors = response.json().get("errors") if response.status_code == 422 else None
    if case.method == "PATCH" and errors == {"basicAuth.password": ["Password is required"]}:
        return None
    if errors and all(
        field.startswith("headers") and "receivers read at most" in " ".join(messages)
        for field, messages in errors.items()
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
    """The mock QRM on a free loopback port, served from its own thread and event loop, as
    `mock-qrm serve` serves it (`serve`: the HTTP server's own refusals in QRM's shape)."""

    def __init__(self, **overrides: Any) -> None:
        self._settings = make_settings(**overrides)
        self._loop = asyncio.new_event_loop()
        self._running: Running | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.url = ""
        self.port = 0

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
        self._running = await serve(create_app(self._settings), "127.0.0.1", 0)
        self.url, self.port = self._running.url, self._running.port

    async def _stop(self) -> None:
        if self._running is not None:
            await self._running.close()


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


# --- hostile values (SPEC 9.2, issue 28): in every field of every body, and raw header bytes ---

CONTROL_TEXT = ["a\x00b", "a\x07b", "a\x1b[2Jb", "a\x7fb", "a\x9bb", "a\nb", "a\u2028b"]
MARKUP_TEXT = ["[/]", "[bold red]x[/bold red]", "[link=http://e.com]x[/link]"]
HUGE = "HUGE-NUMBER"
"""Stands for a 5,001-digit number, written into the raw JSON in its place."""
VALID_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/api/v1/webhooks"): {
        "name": "n",
        "url": "http://127.0.0.1:9/ok",
        "events": ["report.created"],
        "basicAuth": {"username": "u", "password": "p"},
        "headers": {"X-A": "v"},
        "rateLimit": {"limit": 2, "period": "minute"},
    },
    ("PATCH", "/api/v1/webhooks/{webhook_id}"): {
        "name": "n",
        "basicAuth": {"username": "u", "password": "p"},
    },
    ("POST", "/api/v1/auth/login"): {"username": "u", "password": "p"},
    ("POST", "/api/v1/webhook-deliveries/redeliver"): {
        "messageId": "m",
        "eventCode": "report.created",
        "status": "failed",
        "webhookId": 1,
        "since": "2026-01-01T00:00:00Z",
    },
    ("POST", "/_mock/reports"): {
        "overrides": {"caseNumber": "c", "factory": {"name": "f", "notes": "x"}, "tags": ["t"]}
    },
    ("POST", "/_mock/events"): {"eventCode": "report.created", "resourceId": 12301},
    ("POST", "/_mock/faults"): {"route": "GET /api/v1/reports", "status": 503, "times": 1},
    ("POST", "/_mock/clock/advance"): {"seconds": 1},
    ("POST", "/_mock/config"): {
        "webhooks": [
            {
                "name": "Declared",
                "url": "http://127.0.0.1:1/hook",
                "events": ["report.created"],
                "headers": {"X-Tenant": "acme"},
            }
        ],
        "faults": [{"route": "GET /api/v1/reports", "status": 503, "times": 1}],
    },
}


def test_every_body_route_has_a_valid_body_to_make_hostile() -> None:
    from mock_qrm.server.api.context import api as routes

    documented = {(doc.method, doc.path) for doc in routes.docs if doc.body is not None}
    assert documented == set(VALID_BODIES)


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Where `value` holds a string or a number: the paths a hostile value goes into."""
    if isinstance(value, dict):
        return [leaf for key, item in value.items() for leaf in _leaves(item, (*path, key))]
    if isinstance(value, list):
        return [leaf for n, item in enumerate(value) for leaf in _leaves(item, (*path, n))]
    return [path] if isinstance(value, str | int | float) and not isinstance(value, bool) else []


def _with(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, *rest = path
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[head] = _with(value[head], tuple(rest), new)
    return copy


def _raw(body: Any) -> bytes:
    return json.dumps(body).replace(f'"{HUGE}"', "1" + "0" * 5000).encode()


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for key, item in value.items() for text in (key, *_strings(item))]
    if isinstance(value, list):
        return [text for item in value for text in _strings(item)]
    return []


@pytest.mark.parametrize(("method", "path"), list(VALID_BODIES), ids=lambda x: str(x))
async def test_hostile_values_in_every_field_are_refused_or_harmless_never_a_500(
    api: Client, method: str, path: str
) -> None:
    """A control character anywhere is a 4xx; markup is just text; a number too long to read
    is a 400. Whatever the answer, it is QRM's shape, and nothing stored holds a control."""
    from mock_qrm.contract.rules import has_control

    created = await api.post("/api/v1/webhooks", json=VALID_BODIES[("POST", "/api/v1/webhooks")])
    assert created.status == 201, await created.text()
    target = path.replace("{webhook_id}", str((await created.json())["data"]["id"]))
    valid = VALID_BODIES[(method, path)]
    for leaf in _leaves(valid):
        for hostile in [*CONTROL_TEXT, *MARKUP_TEXT, HUGE]:
            raw = _raw(_with(valid, leaf, hostile))
            response = await api.request(
                method, target, data=raw, headers={"Content-Type": "application/json"}
            )
            where = f"{method} {path} {'.'.join(map(str, leaf))} = {hostile!r}"
            assert response.status < 500, where
            if response.status >= 400:
                await qrm_error(response, response.status)
            if hostile in CONTROL_TEXT:
                assert 400 <= response.status < 500, where
            if hostile == HUGE:
                assert response.status == 400, where
    held = [
        await (await api.get(route)).json()
        for route in ("/api/v1/webhooks", "/_mock/reports", "/_mock/faults")
    ]
    assert [text for text in _strings(held) if has_control(text)] == []


# Hypothesis on the live server: any text in the free-text fields, any bytes in a header.


@settings(max_examples=MAX_EXAMPLES * 2, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=st.text(max_size=120), field=st.sampled_from(["name", "username", "password"]))
def test_any_text_in_a_webhooks_free_text_is_stored_plain_or_refused(
    live_server: LiveServer, text: str, field: str
) -> None:
    from mock_qrm.contract.rules import has_control

    body: dict[str, Any] = {
        "name": "n",
        "url": "http://127.0.0.1:9/ok",
        "events": ["report.created"],
        "basicAuth": {"username": "u", "password": "p"},
    }
    if field == "name":
        body["name"] = text
    else:
        body["basicAuth"][field] = text
    response = requests.post(
        live_server.url + "/api/v1/webhooks", json=body, headers={"apiKey": KEY}, timeout=10
    )
    assert response.status_code in (201, 422), response.text
    if response.status_code == 201:
        webhook = response.json()["data"]
        assert not has_control(webhook["name"]) and not has_control(
            webhook["basicAuth"]["username"]
        )
        requests.delete(
            f"{live_server.url}/api/v1/webhooks/{webhook['id']}",
            headers={"apiKey": KEY},
            timeout=10,
        )
    else:
        error = response.json()
        assert error["errorCode"] == "ValidationError" and error["errors"]


def _exchange(port: int, request: bytes) -> tuple[int, str, bytes]:
    """Send raw bytes; the first answer's status, content type and body."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while b"\r\n\r\n" not in answer or len(answer) < _length(answer):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
    length = int(headers.get("content-length", len(body)))
    return int(lines[0].split()[1]), headers.get("content-type", ""), body[:length]


def _length(answer: bytes) -> int:
    head, _, _ = answer.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(head) + 4 + int(line.split(b":")[1])
    return 0


@settings(max_examples=MAX_EXAMPLES * 2, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    name=st.one_of(
        st.sampled_from([b"apiKey", b"token", b"X-Fuzz"]), st.binary(min_size=1, max_size=20)
    ),
    value=st.binary(max_size=60),
)
def test_any_header_bytes_get_an_answer_in_qrms_shape(
    live_server: LiveServer, name: bytes, value: bytes
) -> None:
    """Raw bytes in a header's name or value, on a protected route: 401 for a wrong key or
    token, 400 for what HTTP cannot carry, 200 when the bytes are some other header. Never a
    500, never plain text."""
    name = name.replace(b"\r", b"").replace(b"\n", b"") or b"X"
    value = value.replace(b"\r", b"").replace(b"\n", b"")
    request = (
        b"GET /api/v1/webhook-events HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        + name
        + b": "
        + value
        + b"\r\n\r\n"
    )
    status, content_type, body = _exchange(live_server.port, request)
    assert status in (200, 400, 401), body
    assert content_type.startswith("application/json"), body
    if status >= 400:
        error = json.loads(body)
        assert set(error) == {"errorCode", "message"}
        assert error["message"].isprintable()


@pytest.mark.parametrize(
    "header",
    [b"apiKey: \xff\xfe", b"apiKey: k\x80", b"token: \xc3\x28", b"X-A: a\x00b", b"X-A: a\x1bb"],
)
def test_raw_header_bytes_that_are_not_utf8_are_401_or_400(
    live_server: LiveServer, header: bytes
) -> None:
    request = b"GET /api/v1/webhooks HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + header
    status, content_type, body = _exchange(live_server.port, request + b"\r\n\r\n")
    assert status in (400, 401), body
    assert content_type.startswith("application/json")
