"""Hostile input never reaches a 500 (SPEC.md section 9.2, issue 28): what a client sees.

Numbers too long for Python's int parser, control characters in free text, an
`apiKey` header that is not UTF-8, and the bounds on what the server keeps.
The HTTP server's own refusals (a header line over the limit, ...) are in
tests/test_serving.py, which speaks raw bytes to a real socket.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from mock_qrm.server.api.context import api as routes
from tests.api.test_errors import qrm_error
from tests.conftest import WEBHOOK

Client = TestClient[Any, Any]
JSON = {"Content-Type": "application/json"}
KEY = "k"
HUGE = "1" + "0" * 5000
"""A JSON number of 5,001 digits: past Python's int-string limit (4,300)."""


async def _webhook(api: Client, headers: dict[str, str] | None = None) -> int:
    response = await api.post("/api/v1/webhooks", json=WEBHOOK, headers=headers)
    assert response.status == 201, await response.text()
    webhook_id: int = (await response.json())["data"]["id"]
    return webhook_id


async def names(api: Client, headers: dict[str, str] | None = None) -> list[str]:
    response = await api.get("/api/v1/webhooks", headers=headers)
    assert response.status == 200, await response.text()
    return [w["name"] for w in (await response.json())["data"]]


# -- a number too long to read is 400 on every route that reads a JSON body

BODY_ROUTES = sorted(
    {(doc.method, doc.path) for doc in routes.docs if doc.body is not None}
    | {("POST", "/_mock/reset")}  # no documented body, but one sent must be JSON
)


@pytest.mark.parametrize(("method", "path"), BODY_ROUTES, ids=[f"{m} {p}" for m, p in BODY_ROUTES])
async def test_a_number_too_long_to_read_is_400_on_every_json_body(
    server: Any, method: str, path: str
) -> None:
    api = await server(api_key=KEY)
    webhook_id = await _webhook(api, {"apiKey": KEY})
    for raw in (f'{{"name": {HUGE}}}', f'{{"overrides": {{"a": [{HUGE}]}}}}'):  # top, nested
        response = await api.request(
            method,
            path.replace("{webhook_id}", str(webhook_id)),
            data=raw,
            headers={**JSON, "apiKey": KEY},
        )
        error = await qrm_error(response, 400)
        assert error["message"] == (
            "Request body is not valid JSON: a number has more than 4,300 digits"
        )
    assert await names(api, {"apiKey": KEY}) == [WEBHOOK["name"]]


async def test_a_long_number_the_parser_reads_is_a_field_error_not_a_crash(api: Client) -> None:
    """4,300 digits parse: the field's own rule refuses the value (422), nothing breaks."""
    raw = '{"webhookId": 1' + "0" * 4299 + "}"
    response = await api.post("/api/v1/webhook-deliveries/redeliver", data=raw, headers=JSON)
    error = await qrm_error(response, 422)
    assert set(error["errors"]) == {"webhookId"}


# -- free text holds no control character: 422 on the field, nothing stored

CONTROLS = ["\x00", "\x07", "\x1b", "\x7f", "\x9b", "\n", "\u2028"]
AUTH = {"username": "qrm", "password": "s3cret"}


def _with(char: str) -> list[tuple[str, str, Any, str]]:
    """(method, path, body or query, field) for every free-text field a client sends."""
    text = f"a{char}b"
    return [
        ("POST", "/api/v1/webhooks", {**WEBHOOK, "name": text}, "name"),
        ("PATCH", "/api/v1/webhooks/{id}", {"name": text}, "name"),
        (
            "POST",
            "/api/v1/webhooks",
            {**WEBHOOK, "basicAuth": {**AUTH, "username": text}},
            "basicAuth.username",
        ),
        (
            "POST",
            "/api/v1/webhooks",
            {**WEBHOOK, "basicAuth": {**AUTH, "password": text}},
            "basicAuth.password",
        ),
        (
            "PATCH",
            "/api/v1/webhooks/{id}",
            {"basicAuth": {**AUTH, "username": text}},
            "basicAuth.username",
        ),
        (
            "PATCH",
            "/api/v1/webhooks/{id}",
            {"basicAuth": {**AUTH, "password": text}},
            "basicAuth.password",
        ),
        ("POST", "/api/v1/webhooks", {**WEBHOOK, "headers": {"X-A": text}}, "headers.X-A"),
        ("POST", "/api/v1/auth/login", {"username": text, "password": "p"}, "username"),
        ("POST", "/api/v1/auth/login", {"username": "u", "password": text}, "password"),
        ("POST", "/api/v1/webhook-deliveries/redeliver", {"messageId": text}, "messageId"),
        ("GET", "/api/v1/webhook-deliveries", {"message_id": text}, "message_id"),
        ("GET", "/api/v1/reports", {"style_id": text}, "style_id"),
        ("GET", "/api/v1/reports", {"capa_status": text}, "capa_status"),
        ("POST", "/_mock/reports", {"overrides": {"caseNumber": text}}, "overrides.caseNumber"),
        (
            "POST",
            "/_mock/reports",
            {"overrides": {"factory": {"name": "F", "notes": text}}},
            "overrides.factory",
        ),
        (
            "POST",
            "/_mock/reports",
            {"overrides": {"factory": {"name": "F", text: 1}}},
            "overrides.factory",
        ),
    ]


FIELD_IDS = [
    "create-name",
    "patch-name",
    "create-username",
    "create-password",
    "patch-username",
    "patch-password",
    "header-value",
    "login-username",
    "login-password",
    "bulk-message-id",
    "list-message-id",
    "report-style-id",
    "report-capa-status",
    "override-case-number",
    "override-open-field",
    "override-open-field-name",
]


@pytest.mark.parametrize("index", range(len(FIELD_IDS)), ids=FIELD_IDS)
async def test_a_control_character_in_free_text_is_422_on_its_field(
    api: Client, index: int
) -> None:
    webhook_id = await _webhook(api)
    for char in CONTROLS:
        method, path, given, field = _with(char)[index]
        path = path.replace("{id}", str(webhook_id))
        if method == "GET":
            response = await api.get(path, params=given)
        else:
            response = await api.request(method, path, json=given)
        error = await qrm_error(response, 422)
        assert set(error["errors"]) == {field}, repr(char)
        assert "control characters" in error["errors"][field][0], repr(char)
    held = await (await api.get("/api/v1/webhooks")).json()
    assert [(w["name"], w["basicAuth"], w["headers"]) for w in held["data"]] == [
        (WEBHOOK["name"], None, {})
    ]
    reports = await (await api.get("/_mock/reports")).json()
    assert reports["total"] == 5  # the seeded ones: no upload made


async def test_space_around_a_name_is_trimmed_but_a_control_inside_it_is_refused(
    api: Client,
) -> None:
    trimmed = await api.post("/api/v1/webhooks", json={**WEBHOOK, "name": " \tOrders\n "})
    assert trimmed.status == 201, await trimmed.text()
    assert (await trimmed.json())["data"]["name"] == "Orders"
    inside = await api.post("/api/v1/webhooks", json={**WEBHOOK, "name": "Or\tders"})
    assert set((await qrm_error(inside, 422))["errors"]) == {"name"}


async def test_the_document_says_which_fields_refuse_control_characters(api: Client) -> None:
    import re

    document = await (await api.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]
    patterns = {
        "name": schemas["WebhookCreate"]["properties"]["name"]["pattern"],
        "username": schemas["BasicAuthIn"]["properties"]["username"]["pattern"],
        "password": schemas["BasicAuthIn"]["properties"]["password"]["pattern"],
        "login": schemas["LoginForm"]["properties"]["username"]["pattern"],
    }
    for where, pattern in patterns.items():
        assert re.search(pattern, "plain text"), where
        for char in CONTROLS:
            assert not re.search(pattern, f"a{char}b"), (where, char)


# -- what the server keeps has a bound, and a webhook whose request could not be read is refused


@pytest.mark.parametrize(
    ("credentials", "field", "message"),
    [
        ({"username": "u" * 257, "password": "p"}, "basicAuth.username", "at most 256"),
        ({"username": "u", "password": "p" * 1025}, "basicAuth.password", "at most 1024"),
        ({"username": "u", "password": "p" * 9000}, "basicAuth.password", "at most 1024"),
    ],
    ids=["username-257", "password-1025", "password-9000"],
)
async def test_basic_auth_credentials_have_a_length_bound(
    api: Client, credentials: dict[str, str], field: str, message: str
) -> None:
    response = await api.post("/api/v1/webhooks", json={**WEBHOOK, "basicAuth": credentials})
    error = await qrm_error(response, 422)
    assert set(error["errors"]) == {field}
    assert message in error["errors"][field][0]
    longest = {"username": "u" * 256, "password": "\U0001f511" * 1024}  # 4 bytes a character
    accepted = await api.post("/api/v1/webhooks", json={**WEBHOOK, "basicAuth": longest})
    assert accepted.status == 201, await accepted.text()


async def test_a_webhook_whose_request_head_receivers_could_not_read_is_refused(
    api: Client,
) -> None:
    """20 headers of 4,096 characters each pass their own rules; together, 80 KB of head."""
    many = {f"X-H{i}": "v" * 4096 for i in range(20)}
    created = await api.post("/api/v1/webhooks", json={**WEBHOOK, "headers": many})
    error = await qrm_error(created, 422)
    assert list(error["errors"]) == ["headers"]
    assert "receivers read at most 16,384" in error["errors"]["headers"][0]
    # One line over what a receiver reads of one header: 4,096 characters of 3 bytes each.
    wide = await api.post("/api/v1/webhooks", json={**WEBHOOK, "headers": {"X-W": "€" * 4096}})
    error = await qrm_error(wide, 422)
    assert list(error["errors"]) == ["headers.X-W"]
    assert "at most 8,190 of one header line" in error["errors"]["headers.X-W"][0]
    # A patch is held to the same, with what the webhook already has.
    webhook_id = await _webhook(api)
    three = {f"X-H{i}": "v" * 4096 for i in range(3)}
    assert (
        await api.patch(f"/api/v1/webhooks/{webhook_id}", json={"headers": three})
    ).status == 200
    more = {f"X-H{i}": "v" * 4096 for i in range(4)}
    patched = await api.patch(f"/api/v1/webhooks/{webhook_id}", json={"headers": more})
    assert list((await qrm_error(patched, 422))["errors"]) == ["headers"]
    held = await (await api.get(f"/api/v1/webhooks/{webhook_id}")).json()
    assert sorted(held["data"]["headers"]) == sorted(three)


# -- an apiKey header that is not UTF-8 is a wrong key: 401, not a 500


async def _raw_status(api: Client, request: bytes) -> tuple[int, dict[str, Any]]:
    """Send `request` as bytes (a client library would not send these headers) and read the
    answer: its status and its JSON body."""
    import asyncio
    import json

    reader, writer = await asyncio.open_connection("127.0.0.1", api.port)
    try:
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = int(
            next(
                line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
            ).split(b":")[1]
        )
        body = json.loads(await reader.readexactly(length))
    finally:
        writer.close()
    return status, body


@pytest.mark.parametrize(
    "value", [b"\xff\xfe", b"k\x80", b"\xed\xa0\x80"], ids=["ff-fe", "k-80", "utf8-surrogate"]
)
@pytest.mark.parametrize("header", [b"apiKey", b"token"])
async def test_a_key_or_token_that_is_not_utf8_is_401(
    server: Any, header: bytes, value: bytes
) -> None:
    api = await server(api_key=KEY)
    request = b"GET /api/v1/webhooks HTTP/1.1\r\nHost: x\r\n" + header + b": " + value
    status, body = await _raw_status(api, request + b"\r\nConnection: close\r\n\r\n")
    assert status == 401
    assert body == {
        "errorCode": "Unauthenticated",
        "message": "Missing or wrong API key: send the apiKey header or a login token",
    }
    good = b"GET /api/v1/webhooks HTTP/1.1\r\nHost: x\r\napiKey: k\r\nConnection: close\r\n\r\n"
    assert (await _raw_status(api, good))[0] == 200


async def test_a_utf8_key_that_is_wrong_is_401(server: Any) -> None:
    api = await server(api_key=KEY)
    response = await api.get("/api/v1/webhooks", headers={"apiKey": "clé"})
    await qrm_error(response, 401)


# -- login tokens: a bound per user (the oldest forgotten) and one in all


async def _login(api: Client, username: str) -> str:
    response = await api.post("/api/v1/auth/login", json={"username": username, "password": KEY})
    assert response.status == 200, await response.text()
    token: str = (await response.json())["data"]["token"]
    return token


async def _status_with(api: Client, token: str) -> int:
    return (await api.get("/api/v1/webhooks", headers={"token": token})).status


async def test_a_users_101st_login_forgets_their_oldest_token(server: Any) -> None:
    from mock_qrm.server.service import MAX_TOKENS_PER_USER

    api = await server(api_key=KEY)
    tokens = [await _login(api, "dev") for _ in range(MAX_TOKENS_PER_USER)]
    other = await _login(api, "ops")
    assert [await _status_with(api, t) for t in (tokens[0], tokens[-1], other)] == [200] * 3
    newest = await _login(api, "dev")
    assert await _status_with(api, tokens[0]) == 401  # the oldest of dev's, and only it
    assert [await _status_with(api, t) for t in (tokens[1], newest, other)] == [200] * 3


async def test_past_the_bound_in_all_the_oldest_token_of_anyone_is_forgotten(server: Any) -> None:
    from mock_qrm.contract.models import LoginForm
    from mock_qrm.server.service import MAX_TOKENS
    from tests.conftest import service_of

    api = await server(api_key=KEY)
    first = await _login(api, "first")
    qrm = service_of(api)
    for n in range(MAX_TOKENS - 1):  # as many users as tokens: no per-user bound applies
        assert qrm.login(LoginForm(username=f"user{n}", password=KEY)) is not None
    assert await _status_with(api, first) == 200
    last = await _login(api, "last")
    assert await _status_with(api, first) == 401
    assert await _status_with(api, last) == 200
    assert len(qrm._tokens) == MAX_TOKENS


async def test_expired_tokens_are_dropped_at_the_next_login(server: Any) -> None:
    from tests.conftest import service_of

    api = await server(api_key=KEY)
    old = await _login(api, "dev")
    advanced = await api.post(
        "/_mock/clock/advance", json={"seconds": 24 * 3600 + 1}, headers={"apiKey": KEY}
    )
    assert advanced.status == 200
    assert await _status_with(api, old) == 401
    await _login(api, "dev")
    assert len(service_of(api)._tokens) == 1


async def test_a_client_that_leaves_mid_body_is_no_unhandled_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """It was logged as a server bug, traceback and all, and answered 500 to nobody."""
    import asyncio
    import logging

    from mock_qrm.app import create_app, serve
    from tests.conftest import make_settings
    from tests.delivery.helpers import until

    caplog.set_level(logging.INFO, logger="mock_qrm")
    running = await serve(create_app(make_settings()), "127.0.0.1", 0)
    try:
        _reader, writer = await asyncio.open_connection("127.0.0.1", running.port)
        head = b"POST /api/v1/webhooks HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
        writer.write(head + b"{}")
        await writer.drain()
        writer.write_eof()  # the rest of the body never comes

        async def noted() -> bool:
            return any(
                "closed the connection mid-request" in r.getMessage() for r in caplog.records
            )

        await until(noted, what="the server to note the client left")
        writer.close()
    finally:
        await running.close()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
