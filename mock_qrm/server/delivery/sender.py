"""One HTTP POST to a receiver, and what became of it.

QRM's rule is strict: exactly 200 within the timeout is success. Everything
else is a failure, and a failure without a status gets an error class so the
journal says why: `timeout`, `connection_refused`, `connection_reset`, `tls`,
`protocol`, `dns`, `connection_error`, `invalid_url`. A `tls` failure also says what
went wrong in `error_detail` (`certificate verify failed for HOST: ...`, see `tls`).

The client is small on purpose: a webhook POST needs a keep-alive pool, one
request written in one call, and a response parsed by httptools (the C parser
uvicorn uses). It costs a third of a general client's CPU per request, and the
sender is the delivery engine's hot path.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import socket
import ssl
import time
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import cast

import httptools
from yarl import URL

from mock_qrm.server.delivery.tls import TrustError, failure_detail

log = logging.getLogger(__name__)

RESPONSE_BODY_CAP = 16 * 1024
RESPONSE_HEAD_CAP = 64 * 1024
"""Bytes of status line and headers read before a response is refused as `protocol`."""
DNS_TTL = 60.0
"""Seconds a host's addresses are reused before it is resolved again."""
IDLE_REUSE = 1.0
"""Seconds an idle connection stays worth reusing. Receivers close idle connections
on timers of their own (gunicorn 2 s; Node, uvicorn and Apache 5 s, the very delay
between an upload's two events), and a request written as the receiver closes fails
as `connection_reset`; a connection whose peer vanished without a word would cost a
whole timeout. Under load connections never idle this long; a sporadic message
gets a fresh connection, as a sender without keep-alive would give it."""


@dataclass(frozen=True, slots=True)
class SendResult:
    status: int | None
    headers: dict[str, str] | None
    body: str | None
    truncated: bool
    error: str | None
    duration_ms: int
    error_detail: str | None = None
    """What the error class leaves out, where there is more to say (a TLS failure's reason)."""


class Failure(Exception):
    """A request that got no (complete) response; `kind` is its error class."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


def classify(exc: BaseException) -> str:
    """The error class of a failure that got no status."""
    if isinstance(exc, Failure):
        return exc.kind
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, ssl.SSLError | ssl.CertificateError | TrustError):
        return "tls"
    if isinstance(exc, socket.gaierror):
        return "dns"
    if isinstance(exc, ConnectionRefusedError):
        return "connection_refused"
    if isinstance(exc, ConnectionResetError | BrokenPipeError | ConnectionAbortedError):
        return "connection_reset"
    if isinstance(exc, OSError) and exc.errno in (errno.ECONNRESET, errno.EPIPE):
        return "connection_reset"
    return "connection_error"


@dataclass(frozen=True, slots=True)
class _Target:
    """Where a webhook URL's requests go, parsed once."""

    key: tuple[str, str, int]
    host: str
    port: int
    tls: bool
    head: bytes
    """The request line and Host header."""


@lru_cache(maxsize=4096)
def _target(url: str) -> _Target:
    """Raises `Failure("invalid_url")` for a URL nothing can be posted to."""
    try:
        parsed = URL(url)
        host, port = parsed.raw_host, parsed.port
    except (ValueError, TypeError, UnicodeError):
        raise Failure("invalid_url") from None
    if parsed.scheme not in ("http", "https") or not host or not port:
        raise Failure("invalid_url")
    authority = parsed.raw_authority.rpartition("@")[2]
    head = f"POST {parsed.raw_path_qs or '/'} HTTP/1.1\r\nHost: {authority}\r\n"
    return _Target((parsed.scheme, host, port), host, port, parsed.scheme == "https", head.encode())


class _Connection(asyncio.Protocol):
    """One keep-alive connection: a request written, its response parsed as it arrives."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[None] | None = None
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = bytearray()
        self.truncated = False
        self.reusable = False
        self.idle_since = 0.0
        """Loop time its last exchange ended (while it waits in the pool)."""
        self._headers_done = False
        self._complete = False
        self._extra = False
        self._head_bytes = 0

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        if self._waiter is None or self._complete:
            self.close()  # nobody asked: a receiver talking out of turn loses the connection
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(Failure("protocol"))
            return
        except httptools.HttpParserError:
            if not self._complete:  # a truncated body stops the parser on purpose
                self._fail(Failure("protocol"))
            return
        if not self._headers_done:
            self._head_bytes += len(data)
            if self._head_bytes > RESPONSE_HEAD_CAP:
                self._fail(Failure("protocol"))  # headers without end: not ours to buffer

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._waiter is None or self._complete:
            return
        if self._headers_done and self._until_close():
            self._finish(reusable=False)  # its body ran to the end of the connection
        elif isinstance(exc, ssl.SSLError):
            self._fail(exc)
        else:
            self._fail(Failure("connection_reset"))

    # httptools callbacks

    def on_message_begin(self) -> None:
        if self._complete:  # a second response to one request: never trust this connection again
            self._extra = True
            self.reusable = False

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self._extra and not self._headers_done:  # not a chunked body's trailers
            self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        if not self._extra:
            self.status = self._parser.get_status_code()
            self._headers_done = True

    def on_body(self, body: bytes) -> None:
        if self._extra:
            return
        self.body += body
        if len(self.body) > RESPONSE_BODY_CAP:
            # The rest is not ours to wait for: drop the connection instead.
            self.truncated = True
            self._finish(reusable=False)
            raise httptools.HttpParserCallbackError("truncated")

    def on_message_complete(self) -> None:
        if self._extra:
            return
        if 100 <= self.status < 200:  # an interim response (100 Continue, 103): the answer follows
            self.status, self.headers, self.body = 0, [], bytearray()
            self._headers_done = False
            return
        self._finish(reusable=self._parser.should_keep_alive())

    # one exchange

    async def exchange(self, request: bytes, deadline: float) -> None:
        """Write the request; return once its response is complete (or raise why not).

        Past `deadline` (loop time) it raises `TimeoutError` and drops the connection:
        a timer, not `asyncio.timeout`, which costs more than the rest of the exchange.
        """
        assert self.transport is not None
        if self.closed:  # lost before anything was asked (a receiver closing at accept)
            raise Failure("connection_reset")
        self.status, self.headers, self.body = 0, [], bytearray()
        self.truncated = self._headers_done = self._complete = self.reusable = self._extra = False
        self._head_bytes = 0
        loop = asyncio.get_running_loop()
        self._waiter = loop.create_future()
        timer = loop.call_at(deadline, self._timed_out)
        self.transport.write(request)
        try:
            await self._waiter
        finally:
            timer.cancel()
            self._waiter = None

    def _until_close(self) -> bool:
        """The body has no length and is not chunked: it ends with the connection."""
        for name, value in self.headers:
            lowered = name.lower()
            if lowered == b"content-length" or (
                lowered == b"transfer-encoding" and b"chunked" in value.lower()
            ):
                return False
        return True

    def _finish(self, *, reusable: bool) -> None:
        self._complete = True
        self.reusable = reusable and not self.truncated
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _timed_out(self) -> None:
        self._fail(TimeoutError())

    def _fail(self, exc: BaseException) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(exc)
        self.close()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class Sender:
    """Posts webhook messages; one keep-alive pool for the whole server."""

    def __init__(
        self,
        timeout: float,
        pool_size: int,
        idle_reuse: float = IDLE_REUSE,
        tls: Callable[[], ssl.SSLContext] | None = None,
    ) -> None:
        """`tls` makes the context `https` webhooks are checked with (default: the system's
        CAs), once, when the first one is sent."""
        self.timeout = timeout
        self._pool_size = pool_size
        self._idle_reuse = idle_reuse
        self._idle: dict[tuple[str, str, int], deque[_Connection]] = {}
        self._idle_count = 0
        self._busy: set[_Connection] = set()
        self._addresses: dict[tuple[str, int], tuple[float, list[tuple[int, tuple[str, int]]]]] = {}
        self._make_tls = tls or ssl.create_default_context
        self._tls: ssl.SSLContext | None = None
        self._closed = False

    async def send(self, url: str, body: bytes, headers: dict[str, str]) -> SendResult:
        started = time.perf_counter()
        connection: _Connection | None = None
        target: _Target | None = None
        try:
            target = _target(url)
            request = _request(target, body, headers)
            # One deadline for connecting, sending and reading the whole (capped) body.
            deadline = asyncio.get_running_loop().time() + self.timeout
            connection = self._reuse(target.key)
            if connection is None:
                async with asyncio.timeout_at(deadline):
                    connection = await self._connect(target)
            self._busy.add(connection)
            await connection.exchange(request, deadline)
            text, truncated = _body(connection)
            return SendResult(
                status=connection.status,
                headers=_merged(connection.headers),
                body=text,
                truncated=truncated,
                error=None,
                duration_ms=_elapsed(started),
            )
        except Exception as exc:
            if not isinstance(exc, Failure | OSError | TimeoutError | ValueError):
                # A bug here must still end the attempt (as a failure, retried), never strand it.
                log.exception("sending to %s failed unexpectedly", url)
            if connection is not None:
                connection.reusable = False
            detail = None if target is None else failure_detail(exc, target.host)
            return SendResult(
                None, None, None, False, classify(exc), _elapsed(started), error_detail=detail
            )
        finally:
            if connection is not None and target is not None:
                self._busy.discard(connection)
                self._release(target.key, connection)

    def _reuse(self, key: tuple[str, str, int]) -> _Connection | None:
        """The most recently used idle connection to `key`, if it is still worth using."""
        idle = self._idle.get(key)
        if not idle:
            return None
        fresh_since = asyncio.get_running_loop().time() - self._idle_reuse
        while idle:
            connection = idle.pop()
            self._idle_count -= 1
            if not connection.closed and connection.idle_since >= fresh_since:
                return connection
            connection.close()
        return None

    def _release(self, key: tuple[str, str, int], connection: _Connection) -> None:
        if self._idle_count >= self._pool_size:
            self._prune()
        if (
            self._closed
            or not connection.reusable
            or connection.closed
            or self._idle_count >= self._pool_size
        ):
            connection.close()
            return
        connection.idle_since = asyncio.get_running_loop().time()
        self._idle.setdefault(key, deque()).append(connection)
        self._idle_count += 1

    def _prune(self) -> None:
        """Forget idle connections their receivers closed or that idled too long: they
        hold no place in the pool."""
        fresh_since = asyncio.get_running_loop().time() - self._idle_reuse
        for key, idle in tuple(self._idle.items()):
            alive: deque[_Connection] = deque()
            for connection in idle:
                if not connection.closed and connection.idle_since >= fresh_since:
                    alive.append(connection)
                else:
                    connection.close()
            self._idle_count -= len(idle) - len(alive)
            if alive:
                self._idle[key] = alive
            else:
                del self._idle[key]

    async def _connect(self, target: _Target) -> _Connection:
        """A new connection, trying each of the host's addresses in turn (the first error wins)."""
        loop = asyncio.get_running_loop()
        tls = self._tls_context() if target.tls else None
        first: OSError | None = None
        for family, address in await self._resolve(target.host, target.port):
            try:
                transport, connection = await loop.create_connection(
                    _Connection,
                    host=address[0],
                    port=address[1],
                    family=family,
                    ssl=tls,
                    server_hostname=target.host if tls else None,
                )
            except OSError as exc:
                first = first or exc
                continue
            # Some loops (uvloop) may return before `connection_made` has run.
            connection.transport = connection.transport or transport
            return connection
        assert first is not None
        raise first

    async def _resolve(self, host: str, port: int) -> list[tuple[int, tuple[str, int]]]:
        literal = _ip_family(host)
        if literal is not None:  # nothing to look up (and no trip to the resolver's thread)
            return [(literal, (host, port))]
        now = time.monotonic()
        cached = self._addresses.get((host, port))
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
            )
        except UnicodeError:  # a label too long or empty ("a..b"): no such name
            raise socket.gaierror(socket.EAI_NONAME, f"cannot look up {host!r}") from None
        addresses: list[tuple[int, tuple[str, int]]] = [
            (int(family), (str(sockaddr[0]), int(sockaddr[1]))) for family, *_, sockaddr in infos
        ]
        if not addresses:
            raise socket.gaierror(socket.EAI_NONAME, f"no address for {host}")
        self._addresses[(host, port)] = (now + DNS_TTL, addresses)
        return addresses

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = self._make_tls()
        return self._tls

    async def close(self) -> None:
        """Close every connection; a send still under way closes its own when it ends."""
        self._closed = True
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()
        self._idle_count = 0
        for connection in tuple(self._busy):
            connection.close()


def _ip_family(host: str) -> int | None:
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    return socket.AF_INET6 if address.version == 6 else socket.AF_INET


def _request(target: _Target, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [target.head]
    for name, value in headers.items():
        if "\r" in name or "\n" in name or "\r" in value or "\n" in value:
            raise ValueError(f"header {name!r} holds a line break")
        lines.append(f"{name}: {value}\r\n".encode())
    lines.append(b"Content-Length: %d\r\n\r\n" % len(body))
    lines.append(body)
    return b"".join(lines)


def _merged(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """Response headers by name as sent; a repeated header's values joined with ", "."""
    merged: dict[str, str] = {}
    for name, value in raw:
        key, text = name.decode("latin-1"), value.decode("utf-8", "replace")
        merged[key] = f"{merged[key]}, {text}" if key in merged else text
    return merged


def _body(connection: _Connection) -> tuple[str, bool]:
    """The body as text, decompressed if the receiver compressed it, up to the cap; and
    whether the cap cut it. A body that does not inflate is kept as it came: QRM
    judges the status, and the journal shows what was sent."""
    raw = bytes(connection.body)
    coding = next(
        (v.strip().lower() for n, v in connection.headers if n.lower() == b"content-encoding"),
        b"",
    )
    # gzip, or deflate with its zlib header or (as some servers send it) without.
    # A truncated stream inflates as far as it goes.
    for window in _WINDOWS.get(coding, ()):
        try:
            raw = zlib.decompressobj(window).decompress(raw, RESPONSE_BODY_CAP + 1)
        except zlib.error:
            continue
        break
    truncated = connection.truncated or len(raw) > RESPONSE_BODY_CAP
    return raw[:RESPONSE_BODY_CAP].decode("utf-8", "replace"), truncated


_WINDOWS = {b"gzip": (16 + zlib.MAX_WBITS,), b"deflate": (zlib.MAX_WBITS, -zlib.MAX_WBITS)}


def _elapsed(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
