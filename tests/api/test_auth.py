"""The API key and login tokens (SPEC.md section 3 "Authentication" and "Details" 4)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pydantic import ValidationError

from mock_qrm.server.settings import Settings
from tests.api.test_errors import qrm_error
from tests.conftest import WEBHOOK, make_settings

Client = TestClient[Any, Any]
Server = Callable[..., Awaitable[Client]]

KEY = "k"
DAY = 24 * 3600

# Every /api/v1 and /_mock route, with a body good enough to pass validation.
PROTECTED_ROUTES: list[tuple[str, str, Any]] = [
    ("POST", "/api/v1/auth/refresh", None),  # not a route: still 401, never a hint of 404
    ("GET", "/api/v1/reports", None),
    ("GET", "/api/v1/reports/12301", None),
    ("GET", "/api/v1/webhook-events", None),
    ("GET", "/api/v1/webhooks", None),
    ("POST", "/api/v1/webhooks", WEBHOOK),
    ("GET", "/api/v1/webhooks/1", None),
    ("PATCH", "/api/v1/webhooks/1", {"name": "Renamed"}),
    ("DELETE", "/api/v1/webhooks/1", None),
    ("POST", "/api/v1/webhooks/1/activate", None),
    ("POST", "/api/v1/webhooks/1/deactivate", None),
    ("GET", "/api/v1/webhook-deliveries", None),
    ("GET", "/api/v1/webhook-deliveries/1", None),
    ("POST", "/api/v1/webhook-deliveries/1/redeliver", None),
    ("POST", "/api/v1/webhook-deliveries/redeliver", {}),
    ("GET", "/api/v1/webhook-feed", None),
    ("POST", "/_mock/reports", {}),
    ("GET", "/_mock/reports", None),
    ("POST", "/_mock/events", {"eventCode": "report.created", "resourceId": 12301}),
    ("GET", "/_mock/clock", None),
    ("POST", "/_mock/clock/advance", {"seconds": 1}),
    ("POST", "/_mock/reset", None),
]
ROUTE_IDS = [f"{method} {path}" for method, path, _ in PROTECTED_ROUTES]


@pytest.fixture
async def keyed(server: Server) -> Client:
    return await server(api_key=KEY)


async def login(api: Client, username: str = "dev", password: str = KEY) -> str:
    response = await api.post(
        "/api/v1/auth/login", json={"username": username, "password": password}
    )
    assert response.status == 200, await response.text()
    token: str = (await response.json())["data"]["token"]
    return token


async def webhooks_held(api: Client) -> list[dict[str, Any]]:
    response = await api.get("/api/v1/webhooks", headers={"apiKey": KEY})
    assert response.status == 200
    data: list[dict[str, Any]] = (await response.json())["data"]
    return data


# -- open by default on loopback


async def test_open_by_default_on_loopback(api: Client) -> None:
    assert make_settings().host == "127.0.0.1"
    assert (await api.get("/api/v1/reports")).status == 200
    assert (await api.post("/api/v1/webhooks", json=WEBHOOK)).status == 201
    assert (await api.get("/_mock/clock")).status == 200


# -- with a key: every API route needs it


@pytest.mark.parametrize(("method", "path", "body"), PROTECTED_ROUTES, ids=ROUTE_IDS)
async def test_with_a_key_every_route_needs_it(
    keyed: Client, method: str, path: str, body: Any
) -> None:
    response = await keyed.request(method, path, json=body)
    await qrm_error(response, 401)


@pytest.mark.parametrize("header", ["apiKey", "token"])
@pytest.mark.parametrize("value", ["wrong", "", "K", "kk", "k\tk"])
async def test_with_a_key_a_wrong_credential_is_401(keyed: Client, header: str, value: str) -> None:
    response = await keyed.get("/api/v1/reports", headers={header: value})
    await qrm_error(response, 401)


async def test_a_non_ascii_token_is_401_not_a_crash(keyed: Client) -> None:
    await login(keyed)  # the server now holds a token to compare against
    response = await keyed.get("/api/v1/reports", headers={"token": "tökén"})
    await qrm_error(response, 401)


async def test_a_non_ascii_api_key_is_401(keyed: Client) -> None:
    response = await keyed.get("/api/v1/reports", headers={"apiKey": "ké"})
    await qrm_error(response, 401)


async def test_a_refused_write_writes_nothing(keyed: Client) -> None:
    await qrm_error(await keyed.post("/api/v1/webhooks", json=WEBHOOK), 401)
    await qrm_error(await keyed.post("/_mock/reports", json={}), 401)
    assert await webhooks_held(keyed) == []
    reports = await keyed.get("/api/v1/reports", headers={"apiKey": KEY})
    assert (await reports.json())["total"] == 5


async def test_with_a_key_the_api_key_header_opens_every_route(keyed: Client) -> None:
    headers = {"apiKey": KEY}
    assert (await keyed.get("/api/v1/reports", headers=headers)).status == 200
    assert (await keyed.get("/api/v1/reports/12301", headers=headers)).status == 200
    assert (await keyed.post("/api/v1/webhooks", json=WEBHOOK, headers=headers)).status == 201
    assert (await keyed.get("/api/v1/webhooks/1", headers=headers)).status == 200
    assert (await keyed.get("/api/v1/webhook-deliveries", headers=headers)).status == 200
    assert (await keyed.post("/_mock/reports", json={}, headers=headers)).status == 201
    assert (await keyed.get("/_mock/clock", headers=headers)).status == 200


async def test_a_login_token_opens_every_route(keyed: Client) -> None:
    headers = {"token": await login(keyed)}
    assert (await keyed.get("/api/v1/reports", headers=headers)).status == 200
    assert (await keyed.post("/api/v1/webhooks", json=WEBHOOK, headers=headers)).status == 201
    assert (await keyed.post("/_mock/reports", json={}, headers=headers)).status == 201
    assert (await keyed.get("/_mock/clock", headers=headers)).status == 200


async def test_a_token_lasts_24_hours(keyed: Client) -> None:
    token = await login(keyed)
    advance = await keyed.post(
        "/_mock/clock/advance", json={"seconds": DAY - 1}, headers={"apiKey": KEY}
    )
    assert advance.status == 200
    assert (await keyed.get("/api/v1/reports", headers={"token": token})).status == 200
    advance = await keyed.post("/_mock/clock/advance", json={"seconds": 1}, headers={"apiKey": KEY})
    assert advance.status == 200
    await qrm_error(await keyed.get("/api/v1/reports", headers={"token": token}), 401)


@pytest.mark.parametrize(
    "target",
    [
        "/%61pi/v1/webhooks",
        "/api/v1/%77ebhooks",
        "/api/v1/./webhooks",
        "/api/v1/auth/login/../../v1/webhooks",
        "/api/v1/auth/login/..%2F..%2Fwebhooks",
        "//api/v1/webhooks",
        "/api//v1/webhooks",
        "/API/v1/webhooks",
        "http://elsewhere/api/v1/webhooks",
        "/_mock/../_mock/clock",
    ],
)
async def test_the_key_cannot_be_bypassed_by_spelling_the_path_differently(
    keyed: Client, target: str
) -> None:
    """Sent byte for byte (a client library would normalise these paths first)."""
    reader, writer = await asyncio.open_connection(keyed.host, keyed.port)
    writer.write(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    await writer.wait_closed()
    status_line, _, rest = answer.partition(b"\r\n")
    status = int(status_line.split()[1])
    assert status in (401, 404), answer[:300]
    assert b'"data"' not in rest


# -- login


async def test_login_needs_no_key(keyed: Client) -> None:
    response = await keyed.post("/api/v1/auth/login", json={"username": "dev", "password": KEY})
    assert response.status == 200
    data = (await response.json())["data"]
    assert set(data) >= {"token", "refreshToken", "username", "orgName", "avatarUrl"}
    assert data["username"] == "dev"
    assert data["token"]
    assert data["refreshToken"] != data["token"]


async def test_with_a_key_login_password_must_equal_the_key(keyed: Client) -> None:
    for password in ("wrong", "k ", "K", "kk"):
        response = await keyed.post(
            "/api/v1/auth/login", json={"username": "dev", "password": password}
        )
        await qrm_error(response, 401)


async def test_without_a_key_any_non_empty_credentials_get_a_token(api: Client) -> None:
    first = await login(api, "anyone", "anything")
    second = await login(api, "someone-else", "x")
    assert first and second and first != second


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"username": "", "password": "x"}, {"username"}),
        ({"username": "dev", "password": ""}, {"password"}),
        ({"username": "dev"}, {"password"}),
        ({}, {"username", "password"}),
    ],
    ids=["empty-username", "empty-password", "no-password", "nothing"],
)
async def test_login_needs_a_username_and_a_password(
    api: Client, body: dict[str, str], fields: set[str]
) -> None:
    response = await api.post("/api/v1/auth/login", json=body)
    error = await qrm_error(response, 422)
    assert set(error["errors"]) == fields


# -- never behind the key


@pytest.mark.parametrize("path", ["/healthz", "/openapi.json"])
async def test_health_and_openapi_are_never_behind_the_key(keyed: Client, path: str) -> None:
    response = await keyed.get(path)
    assert response.status == 200
    assert response.content_type == "application/json"


# -- binding


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10"])
def test_non_loopback_without_a_key_is_refused(host: str) -> None:
    with pytest.raises(ValidationError, match="API key"):
        Settings(host=host, db=":memory:")


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_non_loopback_with_a_key_is_accepted(host: str) -> None:
    settings = Settings(host=host, api_key=KEY, db=":memory:")
    assert settings.api_key_value == KEY


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.0.0.2"])
def test_loopback_without_a_key_is_accepted(host: str) -> None:
    assert Settings(host=host, db=":memory:").api_key_value is None


def test_an_empty_key_is_refused() -> None:
    with pytest.raises(ValidationError, match="must not be empty"):
        Settings(api_key="", db=":memory:")
