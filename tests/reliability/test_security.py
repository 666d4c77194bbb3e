"""Security rules (SPEC.md sections 2 and 3): secrets stay secret, the key guards every
route, the server will not face the network open, and no body is over 1 MiB.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from mock_qrm.receiver import RunningReceiver
from mock_qrm.server.settings import Settings
from tests.api.test_errors import qrm_error
from tests.delivery.helpers import Client, advance, only_delivery, until
from tests.test_cli import clean_env, free_port, one_clear_line, run

USER = "qrm-integration"
PASSWORDS = ("Pa55-Zq9-first-secret", "Pa55-Xw4-second-secret")
"""Distinctive enough that finding one anywhere can only be a leak."""

SECRETS = [
    *PASSWORDS,
    *(base64.b64encode(f"{USER}:{p}".encode()).decode() for p in PASSWORDS),
]
"""The passwords, and the `Authorization` values that carry them."""

KEY = "the-api-key"
ONE_MIB = 1024 * 1024
HTTP_METHODS = {"get", "put", "post", "delete", "patch"}


def leaks(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret in text]


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    ]


def fill(path: str, value: str = "1") -> str:
    return re.sub(r"\{[^}]+\}", value, path)


# --- the password leaks nowhere --------------------------------------------------------


@dataclass
class Scenario:
    """Everything a user could see of a run with basic-auth webhooks, good and bad."""

    api: Client
    db: Path
    responses: list[tuple[str, str]] = field(default_factory=list)
    """(what was asked, the body as text) of every API call the scenario made."""
    frames: list[str] = field(default_factory=list)
    log: list[str] = field(default_factory=list)

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self.api.request(method, path, **kwargs)
        raw = await response.read()
        self.responses.append((f"{method} {path} -> {response.status}", raw.decode("latin-1")))
        if response.content_type == "application/json" and raw:
            return json.loads(raw)
        return None


class _Collect(logging.Handler):
    def __init__(self, lines: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.lines = lines
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))  # with any traceback


@pytest.fixture
async def scenario(
    server: Any, receiver: RunningReceiver, tmp_path: Path
) -> AsyncIterator[Scenario]:
    """Webhooks with basic auth that succeed, fail, retry, are edited, redelivered, removed."""
    lines: list[str] = []
    handler = _Collect(lines)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        db = tmp_path / "qrm.sqlite3"
        run = Scenario(await server(db=str(db), timeout=0.5), db, log=lines)
        await _play(run, receiver)
        yield run
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


async def _play(run: Scenario, receiver: RunningReceiver) -> None:
    live = await run.api.ws_connect("/api/v1/webhook-feed")
    events = ["report.created", "report.file_ready"]
    auth = {"username": USER, "password": PASSWORDS[0]}
    ok = await run.call(
        "POST", "/api/v1/webhooks",
        json={"name": "Delivered", "url": receiver.url + "/ok", "events": events, "basicAuth": auth},
    )  # fmt: skip
    bad = await run.call(
        "POST", "/api/v1/webhooks",
        json={"name": "Failing", "url": receiver.url + "/status/500", "events": events, "basicAuth": auth},
    )  # fmt: skip
    # Refused requests that carry a password: the 422 and the 400 must not echo it.
    refused = {"name": "x", "url": "not a url", "events": events, "basicAuth": auth}
    for body in (
        refused,
        {**refused, "url": receiver.url, "events": ["report.nope"]},
        {**refused, "url": receiver.url, "basicAuth": {**auth, "username": "a:b"}},
        {**refused, "url": receiver.url, "basicAuth": {**auth, "username": 7}},
    ):
        await run.call("POST", "/api/v1/webhooks", json=body)
        assert run.responses[-1][0].endswith("422"), run.responses[-1]
    await run.call(
        "POST", "/api/v1/webhooks",
        data=json.dumps(refused)[:-1],
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    assert run.responses[-1][0].endswith("400"), run.responses[-1]
    new_password = {"username": USER, "password": PASSWORDS[1]}
    await run.call(
        "PATCH", f"/api/v1/webhooks/{bad['data']['id']}", json={"basicAuth": new_password}
    )
    await run.call("PATCH", f"/api/v1/webhooks/{ok['data']['id']}", json={"name": "Delivered!"})
    await run.call(
        "PATCH", f"/api/v1/webhooks/{ok['data']['id']}", json={"basicAuth": {"username": USER}}
    )  # an omitted password keeps the stored one

    for _ in range(2):
        await run.call("POST", "/_mock/reports", json={})
    await advance(run.api, 61)  # file_ready, and every failed attempt's first retry

    async def settled() -> bool:
        page = await run.call("GET", "/api/v1/webhook-deliveries", params={"limit": 200})
        return len(page["data"]) == 8 and all(
            d["status"] in ("delivered", "retry_scheduled") for d in page["data"]
        )

    await until(settled, what="every delivery delivered or retrying")
    failing = await run.call(
        "GET", "/api/v1/webhook-deliveries", params={"webhook_id": bad["data"]["id"]}
    )
    await run.call("POST", f"/api/v1/webhook-deliveries/{failing['data'][0]['id']}/redeliver")
    await run.call("POST", "/api/v1/webhook-deliveries/redeliver", json={"status": "delivered"})
    await run.call("POST", f"/api/v1/webhooks/{ok['data']['id']}/deactivate")
    await run.call("POST", f"/api/v1/webhooks/{ok['data']['id']}/activate")
    await run.call("DELETE", f"/api/v1/webhooks/{bad['data']['id']}")

    # The passwords really were in play: the receiver got both, as basic auth.
    sent = {r.headers.get("Authorization") for r in receiver.received.entries()}
    assert {f"Basic {s}" for s in SECRETS[2:]} <= sent

    document = await run.call("GET", "/openapi.json")
    await _get_everything(run, document, removed=bad["data"]["id"])

    async def idle() -> bool:  # the bulk redelivery's attempts run in the background
        health = await run.call("GET", "/healthz")
        return bool(health["inFlight"] == 0 and health["status"] == "ok")

    await until(idle, what="no attempt in flight")
    # Every frame: what the live connection got, and what a reconnecting client replays.
    replay = await run.api.ws_connect("/api/v1/webhook-feed", params={"after_seq": "0"})
    for ws in (live, replay):
        hello = json.loads(await ws.receive_str(timeout=5))
        assert hello["type"] == "hello"
        run.frames.append(json.dumps(hello))
    seq = hello["seq"]
    for ws in (live, replay):
        while True:
            frame = await ws.receive_str(timeout=5)
            run.frames.append(frame)
            if json.loads(frame).get("seq") == seq:
                break
        await ws.close()
    assert len(run.frames) > 20


async def _get_everything(run: Scenario, document: dict[str, Any], removed: int) -> None:
    """Every GET route of the document, for every id the scenario made."""
    webhooks = (await run.call("GET", "/api/v1/webhooks"))["data"]
    deliveries = (await run.call("GET", "/api/v1/webhook-deliveries", params={"limit": 200}))[
        "data"
    ]
    reports = (await run.call("GET", "/api/v1/reports", params={"limit": 200}))["data"]
    ids = {
        "webhook_id": [str(w["id"]) for w in webhooks] + [str(removed)],
        "delivery_id": [str(d["id"]) for d in deliveries],
        "report_id": [str(r["id"]) for r in reports],
    }
    gets = [path for method, path, _ in operations(document) if method == "GET"]
    assert len(gets) >= 12, gets
    for path in gets:
        if path == "/api/v1/webhook-feed":
            continue  # a WebSocket: its frames are read whole below
        names = re.findall(r"\{([^}]+)\}", path)
        assert len(names) <= 1, path
        values = ids[names[0]] if names else [""]
        for value in values:
            await run.call("GET", fill(path, value), params={"limit": 200} if not names else None)


@pytest.mark.parametrize("where", ["response", "frame"])
async def test_a_basic_auth_password_is_in_no_api_response_and_no_feed_frame(
    scenario: Scenario, where: str
) -> None:
    seen = scenario.responses if where == "response" else [("frame", f) for f in scenario.frames]
    assert len(seen) > 20
    found = [(what, leaks(text)) for what, text in seen if leaks(text)]
    assert not found, found


async def test_a_basic_auth_password_is_in_no_log_line(scenario: Scenario) -> None:
    assert scenario.log, "nothing was logged: the capture is not working"
    found = [line for line in scenario.log if leaks(line)]
    assert not found, found


async def test_a_basic_auth_password_is_stored_only_where_the_sender_needs_it(
    scenario: Scenario,
) -> None:
    """Every text of every table of the database file, read directly: the journal holds
    the redacted headers; only the registry's password column holds the password, as the
    server must send it again after a restart."""
    found = []
    with sqlite3.connect(f"file:{scenario.db}?mode=ro", uri=True) as conn:
        tables = [
            name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        ]
        assert {"webhooks", "deliveries", "attempts", "events"} <= set(tables)
        for table in tables:
            cursor = conn.execute(f'SELECT * FROM "{table}"')
            columns = [d[0] for d in cursor.description]
            for row in cursor:
                for column, value in zip(columns, row, strict=True):
                    text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
                    if leaks(text):
                        found.append((table, column, leaks(text)))
        journaled = conn.execute("SELECT request_headers FROM attempts").fetchall()
    assert {(t, c) for t, c, _ in found} == {("webhooks", "auth_password")}, found
    assert journaled and all(
        json.loads(h)["Authorization"] == "Basic [redacted]" for (h,) in journaled
    )


async def test_the_database_holding_passwords_is_readable_by_its_owner_only(
    scenario: Scenario,
) -> None:
    for path in scenario.db.parent.glob(scenario.db.name + "*"):  # with -wal and -shm
        assert path.stat().st_mode & 0o077 == 0, f"{path.name} is {oct(path.stat().st_mode)}"


# --- the API key guards every route ------------------------------------------------------


async def test_with_a_key_every_api_and_mock_route_in_the_document_needs_it(server: Any) -> None:
    api = await server(api_key=KEY)
    document = await (await api.get("/openapi.json")).json()  # open: it is how clients start
    login = await api.post("/api/v1/auth/login", json={"username": "dev", "password": KEY})
    token = (await login.json())["data"]["token"]
    guarded = [
        (method, path, operation)
        for method, path, operation in operations(document)
        if path.startswith(("/api/v1/", "/_mock/")) and path != "/api/v1/auth/login"
    ]
    assert len(guarded) >= 20, guarded
    wrong: list[tuple[object, ...]] = []
    for method, path, operation in guarded:
        if operation.get("security") == []:
            wrong.append((method, path, "documented as open"))
        url = fill(path)
        for headers in ({}, {"apiKey": "wrong"}, {"token": "wrong"}, {"apiKey": KEY.upper()}):
            response = await api.request(method, url, headers=headers)
            if response.status != 401:
                wrong.append((method, path, headers, response.status))
            else:
                await qrm_error(response, 401)
        for headers in ({"apiKey": KEY}, {"token": token}):
            response = await api.request(method, url, headers=headers)
            if response.status == 401:
                wrong.append((method, path, headers, 401))
    assert not wrong, wrong


async def test_only_login_health_the_document_and_report_files_are_open(server: Any) -> None:
    api = await server(api_key=KEY)
    document = await (await api.get("/openapi.json")).json()
    open_routes = {
        (method, path)
        for method, path, operation in operations(document)
        if operation.get("security") == []
    }
    assert open_routes == {
        ("POST", "/api/v1/auth/login"),
        ("GET", "/healthz"),
        ("GET", "/openapi.json"),
        ("GET", "/files/reports/{report_id}.pdf"),
    }
    for method, path in open_routes - {("POST", "/api/v1/auth/login")}:
        assert (await api.request(method, fill(path, "12301"))).status == 200, path


# --- no open server on the network --------------------------------------------------------

NOT_LOOPBACK = ["0.0.0.0", "::", "192.0.2.10", "", "::ffff:0.0.0.0"]


@pytest.mark.parametrize("host", NOT_LOOPBACK)
def test_settings_refuse_a_non_loopback_host_without_a_key(host: str) -> None:
    with pytest.raises(ValidationError, match="without an API key"):
        Settings(host=host, db=":memory:")
    assert Settings(host=host, db=":memory:", api_key=KEY).host == host


def test_settings_refuse_a_non_loopback_host_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MOCK_QRM_HOST", "0.0.0.0")
    with pytest.raises(ValidationError, match="without an API key"):
        Settings(db=":memory:")
    monkeypatch.setenv("MOCK_QRM_API_KEY", KEY)
    assert Settings(db=":memory:").host == "0.0.0.0"


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_serve_refuses_a_non_loopback_host_without_a_key(how: str, tmp_path: Path) -> None:
    port = free_port()
    db = str(tmp_path / "qrm.sqlite3")
    if how == "flag":
        result = run("serve", "--db", db, "--port", str(port), "--host", "0.0.0.0")
    else:
        env = clean_env(MOCK_QRM_HOST="0.0.0.0", MOCK_QRM_PORT=str(port), MOCK_QRM_DB=db)
        result = run("serve", env=env)
    line = one_clear_line(result)
    assert "0.0.0.0" in line and "API key" in line, line
    assert not Path(db).exists()  # refused before it opened anything


# --- size limits ---------------------------------------------------------------------------


async def test_a_body_over_one_mib_is_413_on_every_post_and_patch_route(
    server: Any, receiver: RunningReceiver
) -> None:
    api = await server()
    webhook = {"name": "Hook", "url": receiver.url + "/ok", "events": ["report.created"]}
    assert (await api.post("/api/v1/webhooks", json=webhook)).status == 201
    assert (await api.post("/_mock/reports", json={})).status == 201
    await only_delivery(api, "delivered")
    before = await (await api.get("/api/v1/webhooks/1")).text()
    document = await (await api.get("/openapi.json")).json()
    writes = [(m, p, op) for m, p, op in operations(document) if m in ("POST", "PATCH")]
    assert len(writes) >= 10, writes
    padding = ONE_MIB + 1 - len(b'{"x":""}')
    body = b'{"x":"' + b"a" * padding + b'"}'
    assert len(body) == ONE_MIB + 1

    async def chunked() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    wrong: list[tuple[object, ...]] = []
    for method, path, operation in writes:
        if "413" not in operation["responses"]:
            wrong.append((method, path, "413 not documented"))
        for data in (body, chunked()):
            response = await api.request(
                method, fill(path), data=data, headers={"Content-Type": "application/json"}
            )
            if response.status != 413:
                wrong.append((method, path, type(data).__name__, response.status))
            else:
                await qrm_error(response, 413)
    assert not wrong, wrong
    # Nothing acted on a refused body: no redelivery, no state change, no new report.
    assert await (await api.get("/api/v1/webhooks/1")).text() == before
    deliveries = await (await api.get("/api/v1/webhook-deliveries/1")).json()
    assert len(deliveries["data"]["attempts"]) == 1
    assert (await (await api.get("/api/v1/reports")).json())["total"] == 6


async def test_a_body_over_one_mib_is_refused_without_reading_it_all(server: Any) -> None:
    """A declared length over the limit is refused at once, the rest never sent."""
    api = await server()
    reader, writer = await asyncio.open_connection(api.host, api.port)
    try:
        writer.write(
            b"POST /api/v1/webhooks/1/activate HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\n"
            + f"Content-Length: {100 * ONE_MIB}\r\n\r\n".encode()
        )
        await writer.drain()
        status = await asyncio.wait_for(reader.readline(), 5)
        assert status.startswith(b"HTTP/1.1 413"), status
    finally:
        writer.close()
