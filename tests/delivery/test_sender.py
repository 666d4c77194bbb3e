"""The sender against a scripted server: what each kind of answer becomes in the journal.

The server writes exact bytes, so each test pins one thing a receiver can do
(repeat a header, compress, run on past the cap, close early, babble) and
asserts on the `SendResult` the journal is written from.
"""

from __future__ import annotations

import asyncio
import gzip
import socket
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from mock_qrm.server.delivery.sender import RESPONSE_BODY_CAP, Failure, Sender, _Connection

Answer = Callable[[bytes], bytes | None]
"""The bytes to answer a request with (`None`: say nothing), given the request's bytes."""


class Scripted:
    """A server answering every request with the script; it counts connections."""

    def __init__(self, answer: Answer, *, close_after: bool = False) -> None:
        self.answer = answer
        self.close_after = close_after
        self.connections = 0
        self.requests: list[bytes] = []
        self.url = ""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                answer = self.answer(request)
                if answer is None:
                    await asyncio.sleep(3600)
                    return
                writer.write(answer)
                await writer.drain()
                if self.close_after:
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()


@pytest.fixture
async def scripted() -> AsyncIterator[Callable[..., Awaitable[Scripted]]]:
    servers: list[asyncio.Server] = []

    async def start(answer: Answer, **options: bool) -> Scripted:
        script = Scripted(answer, **options)
        server = await asyncio.start_server(script.handle, "127.0.0.1", 0)
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        script.url = f"http://127.0.0.1:{port}/hook?x=1"
        return script

    yield start
    for server in servers:
        server.close()


def _response(status: str, headers: list[tuple[str, str]], body: bytes) -> bytes:
    lines = [f"HTTP/1.1 {status}", *(f"{name}: {value}" for name, value in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def ok(body: bytes = b'{"ok":true}', *more: tuple[str, str]) -> Answer:
    return lambda _: _response("200 OK", [("Content-Length", str(len(body))), *more], body)


@pytest.fixture
async def sender() -> AsyncIterator[Sender]:
    client = Sender(timeout=2.0, pool_size=8)
    yield client
    await client.close()


async def test_a_keep_alive_connection_carries_every_request(
    scripted: Callable[..., Awaitable[Scripted]], sender: Sender
) -> None:
    server = await scripted(ok())
    for _ in range(3):
        result = await sender.send(server.url, b"{}", {"Content-Type": "application/json"})
        assert (result.status, result.body, result.error) == (200, '{"ok":true}', None)
    assert server.connections == 1
    first = server.requests[0]
    assert first.startswith(b"POST /hook?x=1 HTTP/1.1\r\n")
    assert f"Host: {server.url.split('/')[2]}\r\n".encode() in first
    assert b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}" in first


async def test_headers_keep_their_case_and_repeats_are_joined(
    scripted: Callable[..., Awaitable[Scripted]], sender: Sender
) -> None:
    server = await scripted(ok(b"", ("X-Seen", "a"), ("x-other", "b"), ("X-Seen", "c")))
    result = await sender.send(server.url, b"{}", {})
    assert result.headers == {"Content-Length": "0", "X-Seen": "a, c", "x-other": "b"}


async def test_a_compressed_body_is_journaled_as_text(
    scripted: Callable[..., Awaitable[Scripted]], sender: Sender
) -> None:
    server = await scripted(ok(gzip.compress(b'{"ok":"zipped"}'), ("Content-Encoding", "gzip")))
    result = await sender.send(server.url, b"{}", {})
    assert (result.status, result.body) == (200, '{"ok":"zipped"}')


@pytest.mark.parametrize("wrapped", [True, False], ids=["zlib", "raw"])
async def test_a_deflated_body_is_journaled_as_text(
    scripted: Callable[..., Awaitable[Scripted]], sender: Sender, wrapped: bool
) -> None:
    squeezer = zlib.compressobj(wbits=zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)
    deflated = squeezer.compress(b'{"ok":"deflated"}') + squeezer.flush()
    server = await scripted(ok(deflated, ("Content-Encoding", "deflate")))
    result = await sender.send(server.url, b"{}", {})
    assert (result.status, result.body) == (200, '{"ok":"deflated"}')


async def test_a_second_response_to_one_request_is_ignored_and_ends_the_connection(
    scripted: Callable[..., Awaitable[Scripted]], sender: Sender
) -> None:
    twice = _response("200 OK", [("Content-Length", "5")], b"first") + _response(
        "200 OK", [("Content-Length", "7")], b"second!"
    )
    server = await scripted(lambda _: twice)
    result = await sender.send(server.url, b"{}", {})
    assert (result.status, result.body, result.headers) == (
        200,
        "first",
        {"Content-Length": "5"},
    )
    await sender.send(server.url, b"{}", {})
    assert server.connections == 2  # the babbling connection was not reused


async def test_a_body_that_does_not_inflate_keeps_its_status_and_comes_as_sent(
    scripted: Callable[..., Awaitable[Scripted]], sender: Sender
) -> None:
    server = await scripted(ok(b"not gzip", ("Content-Encoding", "gzip")))
    result = await sender.send(server.url, b"{}", {})
    assert (result.status, result.body, result.error) == (200, "not gzip", None)


async def test_a_body_that_inflates_past_the_cap_is_marked_truncated(
    scripted: Callable[..., Awaitable[Scripted]], sender: Sender
) -> None:
    server = await scripted(ok(gzip.compress(b"y" * 40_000), ("Content-Encoding", "gzip")))
    result = await sender.send(server.url, b"{}", {})
    assert (result.body, result.truncated) == ("y" * RESPONSE_BODY_CAP, True)


async def test_interim_responses_are_skipped_for_the_final_one(
    scripted: Callable[..., Awaitable[Scripted]], sender: Sender
) -> None:
    interim = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"
    final = _response("500 Internal Server Error", [("Content-Length", "4")], b"oops")
    server = await scripted(lambda _: interim + final)
    for _ in range(2):  # and the connection serves the next request with its own answer
        result = await sender.send(server.url, b"{}", {})
        assert (result.status, result.body, result.headers) == (
            500,
            "oops",
            {"Content-Length": "4"},
        )
    assert server.connections == 1


async def test_trailers_are_not_headers_and_a_length_less_body_ends_at_the_close(
    scripted: Callable[..., Awaitable[Scripted]], sender: Sender
) -> None:
    chunked = _response(
        "200 OK", [("Transfer-Encoding", "chunked")], b"2\r\nok\r\n0\r\nX-T: 1\r\n\r\n"
    )
    server = await scripted(lambda _: chunked)
    result = await sender.send(server.url, b"{}", {})
    assert (result.body, result.headers) == ("ok", {"Transfer-Encoding": "chunked"})
    identity = _response("200 OK", [("Transfer-Encoding", "identity")], b"to the end")
    server = await scripted(lambda _: identity, close_after=True)
    result = await sender.send(server.url, b"{}", {})
    assert (result.status, result.body, result.error) == (200, "to the end", None)


async def test_connections_receivers_closed_give_their_place_in_the_pool_back(
    scripted: Callable[..., Awaitable[Scripted]],
) -> None:
    sender = Sender(timeout=2.0, pool_size=2)
    try:
        closing = await scripted(ok(), close_after=True)
        await asyncio.gather(*(sender.send(closing.url, b"{}", {}) for _ in range(2)))
        await asyncio.sleep(0.05)  # both closes arrive: the pool is full of dead connections
        other = await scripted(ok())
        for _ in range(3):
            assert (await sender.send(other.url, b"{}", {})).status == 200
        assert other.connections == 1
    finally:
        await sender.close()


async def test_a_connection_idle_past_its_reuse_time_is_closed_not_reused(
    scripted: Callable[..., Awaitable[Scripted]],
) -> None:
    """Receivers close idle connections on their own timers; a request written as one
    does fails as connection_reset. So a connection is reused only while fresh."""
    sender = Sender(timeout=2.0, pool_size=8, idle_reuse=0.2)
    try:
        server = await scripted(ok())
        for _ in range(2):  # back to back: one connection
            assert (await sender.send(server.url, b"{}", {})).status == 200
        assert server.connections == 1
        await asyncio.sleep(0.3)
        assert (await sender.send(server.url, b"{}", {})).status == 200
        assert server.connections == 2
        assert sender._idle_count == 1  # the stale one was closed, not kept
    finally:
        await sender.close()


async def test_a_closed_sender_keeps_no_connection(
    scripted: Callable[..., Awaitable[Scripted]],
) -> None:
    sender = Sender(timeout=2.0, pool_size=2)
    server = await scripted(ok())
    await sender.close()
    assert (await sender.send(server.url, b"{}", {})).status == 200
    assert sender._idle_count == 0


async def test_a_body_past_the_cap_is_cut_and_its_connection_dropped(
    scripted: Callable[..., Awaitable[Scripted]], sender: Sender
) -> None:
    server = await scripted(ok(b"x" * (1024 * 1024)))  # read in chunks bigger than any head
    result = await sender.send(server.url, b"{}", {})
    assert (result.status, result.truncated) == (200, True)
    assert result.body == "x" * RESPONSE_BODY_CAP
    again = await sender.send(server.url, b"{}", {})
    assert again.truncated and server.connections == 2  # not reused mid-body


async def test_a_body_without_a_length_runs_to_the_close(
    scripted: Callable[..., Awaitable[Scripted]], sender: Sender
) -> None:
    answer = _response("500 Internal Server Error", [("Connection", "close")], b"gone wrong")
    server = await scripted(lambda _: answer, close_after=True)
    result = await sender.send(server.url, b"{}", {})
    assert (result.status, result.body, result.error) == (500, "gone wrong", None)


async def test_an_idle_connection_the_receiver_closed_is_not_reused(
    scripted: Callable[..., Awaitable[Scripted]], sender: Sender
) -> None:
    server = await scripted(ok(), close_after=True)
    for _ in range(2):
        result = await sender.send(server.url, b"{}", {})
        await asyncio.sleep(0.05)  # the close reaches the idle connection
        assert (result.status, result.error) == (200, None)
    assert server.connections == 2


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (lambda _: b"THIS IS NOT HTTP\r\n\r\n", "protocol"),
        (lambda _: b"", "connection_reset"),
        (lambda _: b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "connection_reset"),
        (lambda _: None, "timeout"),
        (lambda _: b"HTTP/1.1 200 OK\r\nX-Long: " + b"x" * (200 * 1024), "protocol"),
    ],
    ids=["garbage", "closed-at-once", "closed-mid-body", "silent", "endless-headers"],
)
async def test_a_failed_exchange_gets_its_error_class(
    scripted: Callable[..., Awaitable[Scripted]], answer: Answer, error: str
) -> None:
    server = await scripted(answer, close_after=True)
    sender = Sender(timeout=0.3, pool_size=8)
    try:
        result = await sender.send(server.url, b"{}", {})
    finally:
        await sender.close()
    assert (result.status, result.headers, result.body, result.error) == (None, None, None, error)


async def test_a_silent_answer_on_a_reused_connection_times_out_and_ends_it(
    scripted: Callable[..., Awaitable[Scripted]],
) -> None:
    answers = iter([ok()(b""), None, ok()(b"")])
    server = await scripted(lambda _: next(answers))
    sender = Sender(timeout=0.3, pool_size=8)
    try:
        first = await sender.send(server.url, b"{}", {})
        started = asyncio.get_running_loop().time()
        silent = await sender.send(server.url, b"{}", {})
        waited = asyncio.get_running_loop().time() - started
        after = await sender.send(server.url, b"{}", {})
    finally:
        await sender.close()
    assert (first.status, silent.status, silent.error, after.status) == (200, None, "timeout", 200)
    assert 0.25 <= waited < 2
    assert server.connections == 2  # the silent one was not used again


async def test_refused_on_every_address_of_a_name_is_connection_refused(sender: Sender) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = await sender.send(f"http://localhost:{port}/ok", b"{}", {})
    assert result.error == "connection_refused"


@pytest.mark.parametrize(
    ("url", "headers", "error"),
    [
        ("ftp://example.com/x", {}, "invalid_url"),
        ("http:///nohost", {}, "invalid_url"),
        ("http://127.0.0.1:0/ok", {}, "invalid_url"),
        ("http://a..b/ok", {}, "dns"),
        ("http://127.0.0.1:1/ok", {"X-Bad": "a\r\nInjected: yes"}, "connection_error"),
    ],
    ids=["scheme", "no-host", "port-0", "empty-label", "line-break-in-header"],
)
async def test_a_request_that_cannot_be_sent_says_why(
    sender: Sender, url: str, headers: dict[str, str], error: str
) -> None:
    result = await sender.send(url, b"{}", headers)
    assert (result.status, result.error) == (None, error)


async def test_a_bug_in_the_exchange_ends_the_attempt_as_a_failure(
    scripted: Callable[..., Awaitable[Scripted]],
    sender: Sender,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = await scripted(ok())

    async def broken(self: object, request: bytes) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr("mock_qrm.server.delivery.sender._Connection.exchange", broken)
    result = await sender.send(server.url, b"{}", {})
    assert (result.status, result.error) == (None, "connection_error")
    assert "failed unexpectedly" in caplog.text


@pytest.mark.parametrize(
    ("host", "family"), [("127.0.0.1", socket.AF_INET), ("::1", socket.AF_INET6)]
)
async def test_an_ip_literal_needs_no_lookup(
    sender: Sender, monkeypatch: pytest.MonkeyPatch, host: str, family: int
) -> None:
    async def no_lookup(*args: object, **kwargs: object) -> None:
        raise AssertionError("looked up an IP literal")

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", no_lookup)
    assert await sender._resolve(host, 8080) == [(family, (host, 8080))]


async def test_a_connection_lost_before_its_request_fails_at_once() -> None:
    """Closed between connecting and writing (the loop saw the close first): no wait for
    an answer that cannot come, which would read as a timeout a minute later."""

    class Transport:
        def write(self, data: bytes) -> None:
            pass

        def close(self) -> None:
            pass

    connection = _Connection()
    connection.connection_made(Transport())  # type: ignore[arg-type]
    connection.connection_lost(None)
    with pytest.raises(Failure) as failure:
        deadline = asyncio.get_running_loop().time() + 1
        await connection.exchange(b"POST / HTTP/1.1\r\n\r\n", deadline)
    assert failure.value.kind == "connection_reset"
