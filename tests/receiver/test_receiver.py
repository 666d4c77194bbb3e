"""The fault-injecting receiver, one test per path rule of SPEC.md section 4."""

from __future__ import annotations

import asyncio
import io
import re
import time
from datetime import UTC, datetime

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from aiohttp.web import Application, Request
from pydantic import ValidationError
from pytest_aiohttp import AiohttpClient

from mock_qrm.receiver import (
    RECEIVER_STATE,
    ReceivedLog,
    ReceivedRequest,
    ReceiverSettings,
    create_receiver_app,
    start_receiver,
)

Client = TestClient[Request, Application]
MESSAGE = {
    "messageId": "wh-638ce960-1231-11e9-a15d-d1c47c8f7593",
    "eventCode": "report.created",
    "eventName": "An Inspection report is uploaded",
    "payload": {"resourceId": 12301, "path": "/reports/12301"},
}


@pytest.fixture
async def client(aiohttp_client: AiohttpClient) -> Client:
    return await aiohttp_client(create_receiver_app())


async def received(client: Client, query: str = "") -> list[dict[str, object]]:
    response = await client.get(f"/_received{query}")
    assert response.status == 200
    data = (await response.json())["data"]
    assert isinstance(data, list)
    return data


async def test_ok_answers_200(client: Client) -> None:
    response = await client.post("/ok", json=MESSAGE)
    assert response.status == 200
    assert await response.json() == {"ok": True}


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
async def test_any_method_reaches_the_behaviour(client: Client, method: str) -> None:
    response = await client.request(method, "/status/503")
    assert response.status == 503


@pytest.mark.parametrize("code", [200, 201, 302, 404, 418, 500, 599])
async def test_status_path_answers_that_status(client: Client, code: int) -> None:
    response = await client.post(f"/status/{code}", json=MESSAGE, allow_redirects=False)
    assert response.status == code
    assert await response.json() == {"status": code}


@pytest.mark.parametrize("code", [204, 304])
async def test_status_without_a_body_answers_empty(client: Client, code: int) -> None:
    response = await client.post(f"/status/{code}", json=MESSAGE)
    assert response.status == code
    assert await response.read() == b""


async def test_status_1xx_is_interim_so_the_client_keeps_waiting(client: Client) -> None:
    with pytest.raises(asyncio.TimeoutError):
        await client.post("/status/100", timeout=aiohttp.ClientTimeout(total=0.1))


@pytest.mark.parametrize("code", ["99", "600", "abc", "-1", "2e2", "+200"])
async def test_status_outside_100_to_599_is_a_400(client: Client, code: str) -> None:
    response = await client.post(f"/status/{code}")
    assert response.status == 400
    body = await response.json()
    assert body["errorCode"] == "BadRequest"
    assert repr(code) in body["message"]


async def test_delay_accepts_fractional_seconds(client: Client) -> None:
    started = time.monotonic()
    response = await client.post("/delay/0.05", json=MESSAGE)
    assert response.status == 200
    assert await response.json() == {"ok": True, "delayedSeconds": 0.05}
    assert time.monotonic() - started >= 0.05


@pytest.mark.parametrize("seconds", ["-1", "nan", "inf", "3600.5", "soon"])
async def test_delay_rejects_seconds_outside_0_to_3600(client: Client, seconds: str) -> None:
    response = await client.post(f"/delay/{seconds}")
    assert response.status == 400
    assert (await response.json())["errorCode"] == "BadRequest"


async def test_flaky_fails_first_n_attempts_per_message_id(client: Client) -> None:
    other = {**MESSAGE, "messageId": "wh-other"}
    statuses = [(await client.post("/flaky/2", json=MESSAGE)).status for _ in range(4)]
    assert statuses == [500, 500, 200, 200]
    first_of_other = await client.post("/flaky/2", json=other)
    assert first_of_other.status == 500
    assert await first_of_other.json() == {
        "errorCode": "FlakyFailure",
        "message": "attempt 1 of this message fails on purpose (the first 2 do)",
        "attempt": 1,
    }


async def test_flaky_counts_separately_for_each_n(client: Client) -> None:
    assert (await client.post("/flaky/1", json=MESSAGE)).status == 500
    assert (await client.post("/flaky/3", json=MESSAGE)).status == 500
    succeeded = await client.post("/flaky/1", json=MESSAGE)
    assert succeeded.status == 200
    assert await succeeded.json() == {"ok": True, "attempt": 2}


async def test_flaky_counts_a_body_without_message_id_by_its_content(client: Client) -> None:
    assert (await client.post("/flaky/1", data=b"not json")).status == 500
    assert (await client.post("/flaky/1", data=b"something else")).status == 500
    assert (await client.post("/flaky/1", data=b"not json")).status == 200


async def test_flaky_with_zero_failures_always_answers_200(client: Client) -> None:
    assert (await client.post("/flaky/0", json=MESSAGE)).status == 200


async def test_reset_drops_the_connection(client: Client) -> None:
    with pytest.raises((aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
        await client.post("/reset", json=MESSAGE)
    assert [entry["path"] for entry in await received(client)] == ["/reset"]


async def raw_exchange(client: Client, path: str) -> bytes:
    """Send one request on a bare socket and read until the server closes it."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    try:
        writer.write(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{{}}".encode())
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()


async def test_reset_is_a_tcp_reset_not_a_clean_close(client: Client) -> None:
    with pytest.raises(ConnectionResetError):
        await raw_exchange(client, "/reset")


async def test_hang_never_answers(client: Client) -> None:
    with pytest.raises(asyncio.TimeoutError):
        await client.post("/hang", json=MESSAGE, timeout=aiohttp.ClientTimeout(total=0.1))
    assert [entry["path"] for entry in await received(client)] == ["/hang"]


async def test_shutdown_cuts_parked_requests_at_once() -> None:
    receiver = await start_receiver(ReceiverSettings(port=0))
    parked = ["/hang", "/delay/3600", "/slow-body/3600", f"/huge/{64 * 1024}"]
    async with aiohttp.ClientSession() as session:
        requests = [asyncio.create_task(session.post(receiver.url + path)) for path in parked]
        async with asyncio.timeout(2):
            await receiver.received.wait_for(len(parked))
            await receiver.close()
            hang, delay, slow_body, huge = await asyncio.gather(*requests, return_exceptions=True)
            assert isinstance(hang, aiohttp.ServerDisconnectedError)
            assert isinstance(delay, aiohttp.ServerDisconnectedError)
            for streamed in (slow_body, huge):
                assert isinstance(streamed, aiohttp.ClientResponse)
                with pytest.raises(aiohttp.ClientPayloadError):
                    await streamed.read()


async def test_redirect_answers_302_to_ok(client: Client) -> None:
    response = await client.post("/redirect", json=MESSAGE, allow_redirects=False)
    assert response.status == 302
    assert response.headers["Location"] == "/ok"


async def test_auth_accepts_matching_credentials(client: Client) -> None:
    response = await client.post(
        "/auth/qrm/s3cret",
        json=MESSAGE,
        headers={"Authorization": aiohttp.encode_basic_auth("qrm", "s3cret")},
    )
    assert response.status == 200
    assert await response.json() == {"ok": True, "user": "qrm"}


@pytest.mark.parametrize("encoding", ["utf-8", "latin-1"])
async def test_auth_accepts_non_ascii_credentials_in_utf8_or_latin1(
    client: Client, encoding: str
) -> None:
    authorization = aiohttp.encode_basic_auth("zoë", "pässwörd", encoding=encoding)
    response = await client.post("/auth/zoë/pässwörd", headers={"Authorization": authorization})
    assert response.status == 200


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        aiohttp.encode_basic_auth("qrm", "wrong"),
        aiohttp.encode_basic_auth("other", "s3cret"),
        "Bearer s3cret",
        "Basic !!!not-base64!!!",
    ],
)
async def test_auth_rejects_wrong_credentials(client: Client, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = await client.post("/auth/qrm/s3cret", json=MESSAGE, headers=headers)
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic realm=")
    assert (await response.json())["errorCode"] == "Unauthorized"


async def test_slow_body_sends_headers_at_once_then_the_body_over_the_seconds(
    client: Client,
) -> None:
    started = time.monotonic()
    async with client.post("/slow-body/0.3") as response:
        headers_after = time.monotonic() - started
        assert response.status == 200
        assert await response.json() == {"ok": True}
        body_after = time.monotonic() - started
    assert body_after >= 0.29
    assert headers_after < body_after - 0.2


async def test_huge_answers_that_many_kib(client: Client) -> None:
    response = await client.post("/huge/100")
    assert response.status == 200
    assert await response.read() == b"x" * 100 * 1024


async def test_huge_caps_at_64_mib(client: Client) -> None:
    response = await client.post(f"/huge/{64 * 1024 + 1}")
    assert response.status == 400


async def test_head_on_a_streamed_body_sends_no_body(client: Client) -> None:
    head = await client.head("/huge/100")
    assert head.status == 200
    assert head.headers["Content-Length"] == str(100 * 1024)
    after = await client.get("/ok")
    assert await after.json() == {"ok": True}


async def test_malformed_writes_something_that_is_not_http(client: Client) -> None:
    answer = await raw_exchange(client, "/malformed")
    assert answer
    assert not answer.startswith(b"HTTP/")
    with pytest.raises((aiohttp.ClientResponseError, aiohttp.ServerDisconnectedError)):
        await client.post("/malformed", json=MESSAGE)


async def test_received_lists_requests_oldest_first_with_parsed_body(client: Client) -> None:
    await client.post("/ok", json=MESSAGE)
    await client.put("/status/500?attempt=2", data=b"plain text", headers={"X-Probe": "1"})
    await client.post("/status/204")

    first, second, third = await received(client)

    assert first["method"] == "POST"
    assert first["path"] == "/ok"
    assert first["body"] == MESSAGE
    assert isinstance(first["headers"], dict)
    assert first["headers"]["Content-Type"] == "application/json"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", str(first["receivedAt"]))
    assert second["method"] == "PUT"
    assert second["path"] == "/status/500?attempt=2"
    assert second["body"] == "plain text"
    assert isinstance(second["headers"], dict)
    assert second["headers"]["X-Probe"] == "1"
    assert third["body"] == ""
    assert str(first["receivedAt"]) <= str(second["receivedAt"]) <= str(third["receivedAt"])


async def test_a_body_over_1_mib_is_refused_but_recorded(client: Client) -> None:
    response = await client.post("/ok", data=io.BytesIO(b"x" * (1024**2 + 1)))
    assert response.status == 413
    assert (await response.json())["errorCode"] == "PayloadTooLarge"
    [entry] = await received(client)
    assert entry["path"] == "/ok"
    assert entry["body"] is None


async def test_unknown_paths_answer_404_and_are_recorded(client: Client) -> None:
    response = await client.post("/nowhere", json=MESSAGE)
    assert response.status == 404
    body = await response.json()
    assert body["errorCode"] == "NotFound"
    assert "/flaky/{n}" in body["message"]
    assert [entry["path"] for entry in await received(client)] == ["/nowhere"]


async def test_received_filters_by_path_prefix_and_message_id(client: Client) -> None:
    await client.post("/flaky/1", json=MESSAGE)
    await client.post("/flaky/1", json={**MESSAGE, "messageId": "wh-other"})
    await client.post("/ok", json=MESSAGE)

    flaky = await received(client, "?path_prefix=/flaky")
    assert [entry["path"] for entry in flaky] == ["/flaky/1", "/flaky/1"]
    mine = await received(client, f"?message_id={MESSAGE['messageId']}")
    assert [entry["path"] for entry in mine] == ["/flaky/1", "/ok"]


async def test_delete_received_clears_requests_and_flaky_counters(client: Client) -> None:
    assert (await client.post("/flaky/1", json=MESSAGE)).status == 500

    cleared = await client.delete("/_received")

    assert cleared.status == 204
    assert await received(client) == []
    assert (await client.post("/flaky/1", json=MESSAGE)).status == 500


async def test_received_refuses_other_methods(client: Client) -> None:
    response = await client.post("/_received")
    assert response.status == 405
    assert response.headers["Allow"] == "GET, HEAD, DELETE"
    assert await received(client) == []


def test_received_log_keeps_only_the_latest() -> None:
    log = ReceivedLog(maxlen=2)
    for path in ("/a", "/b", "/c"):
        log.append(ReceivedRequest(datetime.now(UTC), "POST", path, headers={}, body=""))
    assert [entry.path for entry in log.entries()] == ["/b", "/c"]


async def test_received_log_wait_for_returns_once_enough_arrived(client: Client) -> None:
    log = client.app[RECEIVER_STATE].received
    waiting = asyncio.create_task(log.wait_for(2, path_prefix="/ok"))
    await client.post("/ok")
    await client.post("/status/500")
    assert not waiting.done()
    await client.post("/ok")
    async with asyncio.timeout(1):
        assert [entry.path for entry in await waiting] == ["/ok", "/ok"]


async def test_start_receiver_binds_a_free_port_when_asked_for_0() -> None:
    receiver = await start_receiver(ReceiverSettings(port=0))
    try:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", receiver.url)
        assert not receiver.url.endswith(":0")
        async with aiohttp.ClientSession() as session, session.post(f"{receiver.url}/ok") as ok:
            assert ok.status == 200
    finally:
        await receiver.close()


def test_settings_read_mock_qrm_receiver_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOCK_QRM_RECEIVER_HOST", "0.0.0.0")
    monkeypatch.setenv("MOCK_QRM_RECEIVER_PORT", "9999")
    assert ReceiverSettings().model_dump() == {"host": "0.0.0.0", "port": 9999}


def test_settings_default_to_loopback_8766(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MOCK_QRM_RECEIVER_HOST", raising=False)
    monkeypatch.delenv("MOCK_QRM_RECEIVER_PORT", raising=False)
    assert ReceiverSettings().model_dump() == {"host": "127.0.0.1", "port": 8766}


@pytest.mark.parametrize("port", [-1, 65536])
def test_settings_refuse_ports_outside_0_to_65535(port: int) -> None:
    with pytest.raises(ValidationError):
        ReceiverSettings(port=port)


async def test_a_body_not_in_its_content_encoding_is_400_and_recorded(client: Client) -> None:
    """A webhook's custom `Content-Encoding: gzip` over a plain body was a 500."""
    response = await client.post(
        "/ok", data=b'{"a": 1}', headers={"Content-Encoding": "gzip", "Connection": "close"}
    )
    assert response.status == 400
    body = await response.json()
    assert body["errorCode"] == "BadRequest" and "gzip" in body["message"]
    [entry] = await received(client)
    assert entry["path"] == "/ok" and entry["body"] is None


def test_received_log_is_bounded_in_bytes_too() -> None:
    """10,000 bodies of 1 MiB would be 10 GB: past `max_bytes`, the oldest go (issue 28)."""
    log = ReceivedLog(maxlen=100, max_bytes=1000)
    for path in ("/a", "/b", "/c", "/d"):
        log.append(ReceivedRequest(datetime.now(UTC), "POST", path, headers={}, body=""), 400)
    assert [entry.path for entry in log.entries()] == ["/c", "/d"]
    assert log.dropped == 2
    log.append(ReceivedRequest(datetime.now(UTC), "POST", "/huge", headers={}, body=""), 5000)
    assert [entry.path for entry in log.entries()] == ["/huge"]  # the newest is always kept


async def test_received_says_its_bounds_and_what_it_dropped(client: Client) -> None:
    from mock_qrm.receiver.app import MAX_RECEIVED, MAX_RECEIVED_BYTES

    log = client.app[RECEIVER_STATE].received
    log.maxlen = 2
    for path in ("/ok", "/status/500", "/status/204"):
        await client.post(path, json=MESSAGE)
    answer = await (await client.get("/_received")).json()
    assert [entry["path"] for entry in answer["data"]] == ["/status/500", "/status/204"]
    assert (answer["dropped"], answer["maxRequests"]) == (1, 2)
    assert answer["maxBytes"] == MAX_RECEIVED_BYTES
    assert MAX_RECEIVED == 10_000
    assert (await client.delete("/_received")).status == 204
    assert (await (await client.get("/_received")).json())["dropped"] == 0
