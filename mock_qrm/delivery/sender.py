"""One HTTP POST to a receiver, and what became of it.

QRM's rule is strict: exactly 200 within the timeout is success. Everything
else is a failure, and a failure without a status gets an error class so the
journal says why: `timeout`, `connection_refused`, `connection_reset`, `tls`,
`protocol`, `dns`, `connection_error`, `invalid_url`.
"""

from __future__ import annotations

import errno
import ssl
import time
from dataclasses import dataclass

import aiohttp

RESPONSE_BODY_CAP = 16 * 1024


@dataclass(frozen=True, slots=True)
class SendResult:
    status: int | None
    headers: dict[str, str] | None
    body: str | None
    truncated: bool
    error: str | None
    duration_ms: int


def classify(exc: BaseException) -> str:
    """The error class of a failure that got no status."""
    if isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError):
        return "timeout"
    if isinstance(exc, aiohttp.InvalidURL):
        return "invalid_url"
    if isinstance(exc, aiohttp.ClientSSLError | ssl.SSLError):
        return "tls"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return "dns"
    if isinstance(exc, aiohttp.ClientConnectorError):
        if exc.os_error.errno == errno.ECONNREFUSED:
            return "connection_refused"
        if isinstance(exc.os_error, ssl.SSLError):
            return "tls"
        return "connection_error"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "connection_reset"
    if isinstance(exc, aiohttp.ClientOSError):
        if exc.errno in (errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED):
            return "connection_reset"
        return "connection_error"
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ClientResponseError):
        return "protocol"
    if isinstance(exc, ConnectionResetError | BrokenPipeError):
        return "connection_reset"
    return "connection_error"


class Sender:
    """Posts webhook messages; one connection pool for the whole server."""

    def __init__(self, timeout: float, pool_size: int) -> None:
        self.timeout = timeout
        self._pool_size = pool_size
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._pool_size, limit_per_host=0, ttl_dns_cache=60
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                auto_decompress=True,
                skip_auto_headers=("Accept-Encoding",),
                cookie_jar=aiohttp.DummyCookieJar(),
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            )
        return self._session

    async def send(self, url: str, body: bytes, headers: dict[str, str]) -> SendResult:
        started = time.perf_counter()
        try:
            # aiohttp's total timeout covers connecting, sending and reading the whole body.
            async with self._client().post(
                url, data=body, headers=headers, allow_redirects=False
            ) as response:
                raw = await _read_capped(response.content)
                truncated = len(raw) > RESPONSE_BODY_CAP
                if truncated:
                    # The rest is not ours to wait for: drop the connection instead.
                    response.close()
                merged: dict[str, str] = {}
                for key, value in response.headers.items():
                    merged[key] = f"{merged[key]}, {value}" if key in merged else value
                return SendResult(
                    status=response.status,
                    headers=merged,
                    body=raw[:RESPONSE_BODY_CAP].decode("utf-8", "replace"),
                    truncated=truncated,
                    error=None,
                    duration_ms=_elapsed(started),
                )
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
            return SendResult(None, None, None, False, classify(exc), _elapsed(started))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


async def _read_capped(stream: aiohttp.StreamReader) -> bytes:
    """The body up to one byte past the cap, so truncation is known without reading it all."""
    data = bytearray()
    while len(data) <= RESPONSE_BODY_CAP:
        chunk = await stream.read(RESPONSE_BODY_CAP + 1 - len(data))
        if not chunk:
            break
        data += chunk
    return bytes(data)


def _elapsed(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
