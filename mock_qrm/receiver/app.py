"""The fault-injecting webhook receiver: one path per way a real receiver can misbehave.

Demos and tests point webhooks at it. Every request to a behaviour path is recorded
before the behaviour runs, so `GET /_received` also lists the requests that were
answered with a reset or never answered at all.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import sys
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiohttp import hdrs, web
from aiohttp.web_protocol import RequestPayloadError

from mock_qrm.contract.timefmt import iso_z
from mock_qrm.receiver.settings import ReceiverSettings
from mock_qrm.serving import Running, ServeError, is_loopback, serve, settle_heap, stop_on_signals
from mock_qrm.serving import drop_connection as _drop
from mock_qrm.serving import unsendable as _unsendable

MAX_RECEIVED = 10_000
"""Requests `GET /_received` keeps, the latest: an older one is dropped (and counted)."""
MAX_RECEIVED_BYTES = 64 * 1024 * 1024
"""Bytes of bodies, headers and paths it keeps: 10,000 bodies of 1 MiB would be 10 GB."""
MAX_SECONDS = 3600.0
MAX_HUGE_KIB = 64 * 1024
MAX_FLAKY_FAILURES = 1_000_000

_MAX_FLAKY_KEYS = 100_000
_SHUTDOWN_GRACE_SECONDS = 5.0
_HUGE_CHUNK = memoryview(b"x" * 65536)
_SLOW_BODY = b'{"ok": true}'
_GARBAGE = b"\x00\xff\xfe THIS IS NOT HTTP \xfe\xff\x00\r\n\r\n"

_CATCH_ALL = "/{tail:.*}"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _message_id(body: object) -> str | None:
    message_id = body.get("messageId") if isinstance(body, dict) else None
    return message_id if isinstance(message_id, str) else None


@dataclass(frozen=True, slots=True)
class ReceivedRequest:
    """One request as it arrived, before its path's behaviour ran."""

    received_at: datetime
    method: str
    path: str
    headers: dict[str, str]
    body: object
    """The parsed JSON when the body parses, else its text; `None` when it was too large to read."""

    @property
    def message_id(self) -> str | None:
        return _message_id(self.body)

    def to_json(self) -> dict[str, object]:
        return {
            "receivedAt": iso_z(self.received_at),
            "method": self.method,
            "path": self.path,
            "headers": self.headers,
            "body": self.body,
        }


class ReceivedLog:
    """The latest requests, oldest first, that tests can await instead of polling: at most
    `maxlen` of them and `max_bytes` of what they hold; `dropped` counts those let go."""

    def __init__(self, maxlen: int = MAX_RECEIVED, max_bytes: int = MAX_RECEIVED_BYTES) -> None:
        self.maxlen = maxlen
        self.max_bytes = max_bytes
        self._entries: deque[tuple[ReceivedRequest, int]] = deque()
        self._bytes = 0
        self.dropped = 0
        self._appended = asyncio.Event()

    def append(self, entry: ReceivedRequest, size: int = 0) -> None:
        """Keep `entry` (`size`: the bytes it holds), letting the oldest go past a bound."""
        self._entries.append((entry, size))
        self._bytes += size
        while len(self._entries) > self.maxlen or (
            self._bytes > self.max_bytes and len(self._entries) > 1
        ):
            _, gone = self._entries.popleft()
            self._bytes -= gone
            self.dropped += 1
        self._appended.set()
        self._appended = asyncio.Event()

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0
        self.dropped = 0

    def entries(
        self, *, path_prefix: str | None = None, message_id: str | None = None
    ) -> list[ReceivedRequest]:
        return [
            entry
            for entry, _ in self._entries
            if (path_prefix is None or entry.path.startswith(path_prefix))
            and (message_id is None or entry.message_id == message_id)
        ]

    async def wait_for(
        self, count: int, *, path_prefix: str | None = None, message_id: str | None = None
    ) -> list[ReceivedRequest]:
        """Return the matching entries once there are `count` of them; bound it with a timeout."""
        while len(matching := self.entries(path_prefix=path_prefix, message_id=message_id)) < count:
            await self._appended.wait()
        return matching


@dataclass(slots=True)
class ReceiverState:
    """Everything the receiver remembers, kept on the app under `RECEIVER_STATE`."""

    received: ReceivedLog = field(default_factory=ReceivedLog)
    flaky_attempts: OrderedDict[tuple[int, str, str], int] = field(default_factory=OrderedDict)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    """Set on shutdown, so parked requests (`/hang`, `/delay`, ...) let the server stop at once."""
    in_flight: set[asyncio.Transport] = field(default_factory=set)

    def count_flaky_attempt(self, key: tuple[int, str, str]) -> int:
        attempt = self.flaky_attempts.pop(key, 0) + 1
        self.flaky_attempts[key] = attempt
        if len(self.flaky_attempts) > _MAX_FLAKY_KEYS:
            self.flaky_attempts.popitem(last=False)
        return attempt

    def clear(self) -> None:
        self.received.clear()
        self.flaky_attempts.clear()


RECEIVER_STATE = web.AppKey("receiver_state", ReceiverState)


def _error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    return web.json_response(
        {"errorCode": code, "message": message}, status=status, headers=headers
    )


def _bad_request(message: str) -> web.Response:
    return _error(400, "BadRequest", message)


def _parse_int(raw: str, low: int, high: int) -> int | None:
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 10):
        return None
    value = int(raw)
    return value if low <= value <= high else None


def _parse_seconds(raw: str) -> float | None:
    try:
        seconds = float(raw)
    except ValueError:
        return None
    return seconds if 0 <= seconds <= MAX_SECONDS else None


def _parse_body(raw: bytes) -> object:
    if raw:
        with contextlib.suppress(ValueError, RecursionError):
            return json.loads(raw)
    return raw.decode("utf-8", errors="replace")


def _capture(request: web.Request, body: object) -> ReceivedRequest:
    headers = {name: ", ".join(request.headers.getall(name)) for name in request.headers}
    return ReceivedRequest(
        received_at=datetime.now(UTC),
        method=request.method,
        path=request.raw_path,
        headers=headers,
        body=body,
    )


def _size(entry: ReceivedRequest, raw: bytes) -> int:
    """About the bytes `entry` holds: its body as sent (parsed, it is larger still), its
    headers and its path."""
    return len(raw) + len(entry.path) + sum(len(k) + len(v) for k, v in entry.headers.items())


def _recorded(behaviour: Handler) -> Handler:
    async def record_then_behave(request: web.Request) -> web.StreamResponse:
        received = request.app[RECEIVER_STATE].received
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            received.append(entry := _capture(request, None), _size(entry, b""))
            return _error(
                413, "PayloadTooLarge", f"bodies over {request.client_max_size} bytes are refused"
            )
        except RequestPayloadError as exc:  # a Content-Encoding the body is not in
            received.append(entry := _capture(request, None), _size(entry, b""))
            coding = request.headers.get("Content-Encoding", "none")
            return _error(400, "BadRequest", f"the body is not {coding}-encoded: {exc}")
        entry = _capture(request, _parse_body(raw))
        received.append(entry, _size(entry, raw))
        transport = request.transport
        if transport is None:
            return _unsendable()
        in_flight = request.app[RECEIVER_STATE].in_flight
        in_flight.add(transport)
        try:
            return await behaviour(request)
        finally:
            in_flight.discard(transport)

    return record_then_behave


async def _pause(request: web.Request, seconds: float | None) -> bool:
    """Wait `seconds` (forever if `None`); False if the receiver began stopping meanwhile."""
    stopping = request.app[RECEIVER_STATE].stopping
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), seconds)
    return not stopping.is_set()


async def _ok(request: web.Request) -> web.StreamResponse:
    return web.json_response({"ok": True})


async def _status(request: web.Request) -> web.StreamResponse:
    """Any status; a 1xx is an interim response with nothing after it: most clients wait on."""
    raw = request.match_info["code"]
    code = _parse_int(raw, 100, 599)
    if code is None:
        return _bad_request(f"status must be an integer from 100 to 599, not {raw!r}")
    if code < 200 or code in (204, 304):
        return web.Response(status=code)
    return web.json_response({"status": code}, status=code)


async def _delay(request: web.Request) -> web.StreamResponse:
    raw = request.match_info["seconds"]
    seconds = _parse_seconds(raw)
    if seconds is None:
        return _bad_request(f"seconds must be a number from 0 to {MAX_SECONDS:g}, not {raw!r}")
    if not await _pause(request, seconds):
        _drop(request.transport)
        return _unsendable()
    return web.json_response({"ok": True, "delayedSeconds": seconds})


async def _flaky(request: web.Request) -> web.StreamResponse:
    """500 for the first n attempts of each message; a body without `messageId` counts by hash."""
    raw_n = request.match_info["n"]
    n = _parse_int(raw_n, 0, MAX_FLAKY_FAILURES)
    if n is None:
        return _bad_request(f"n must be an integer from 0 to {MAX_FLAKY_FAILURES}, not {raw_n!r}")
    body = await request.read()
    message_id = _message_id(_parse_body(body))
    key = (
        (n, "messageId", message_id)
        if message_id is not None
        else (n, "bodySha256", hashlib.sha256(body).hexdigest())
    )
    attempt = request.app[RECEIVER_STATE].count_flaky_attempt(key)
    if attempt <= n:
        return web.json_response(
            {
                "errorCode": "FlakyFailure",
                "message": f"attempt {attempt} of this message fails on purpose (the first {n} do)",
                "attempt": attempt,
            },
            status=500,
        )
    return web.json_response({"ok": True, "attempt": attempt})


async def _reset(request: web.Request) -> web.StreamResponse:
    _drop(request.transport, reset=True)
    return _unsendable()


async def _hang(request: web.Request) -> web.StreamResponse:
    """Park until the client leaves (the runner cancels the handler) or the receiver stops."""
    await _pause(request, None)
    _drop(request.transport)
    return _unsendable()


async def _redirect(request: web.Request) -> web.StreamResponse:
    return web.Response(status=302, headers={hdrs.LOCATION: "/ok"})


def _basic_auth_matches(header: str | None, user: str, password: str) -> bool:
    """Accept UTF-8 (RFC 7617) or Latin-1 credentials: senders differ, old aiohttp used Latin-1."""
    scheme, _, token = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        sent = base64.b64decode(token.strip(), validate=True)
    except ValueError:
        return False
    expected = f"{user}:{password}"
    accepted = {expected.encode("utf-8")}
    with contextlib.suppress(UnicodeEncodeError):
        accepted.add(expected.encode("latin-1"))
    return sent in accepted


async def _auth(request: web.Request) -> web.StreamResponse:
    user = request.match_info["user"]
    if _basic_auth_matches(
        request.headers.get(hdrs.AUTHORIZATION), user, request.match_info["password"]
    ):
        return web.json_response({"ok": True, "user": user})
    return _error(
        401,
        "Unauthorized",
        "basic auth does not match the user and password in the path",
        headers={hdrs.WWW_AUTHENTICATE: 'Basic realm="mock-qrm receiver", charset="UTF-8"'},
    )


async def _slow_body(request: web.Request) -> web.StreamResponse:
    """Benchmark fault: headers at once, then `{"ok": true}` a byte at a time over the seconds."""
    raw = request.match_info["seconds"]
    seconds = _parse_seconds(raw)
    if seconds is None:
        return _bad_request(f"seconds must be a number from 0 to {MAX_SECONDS:g}, not {raw!r}")
    response = web.StreamResponse(headers={hdrs.CONTENT_TYPE: "application/json"})
    response.content_length = len(_SLOW_BODY)
    await response.prepare(request)
    if request.method == hdrs.METH_HEAD:
        return response
    with contextlib.suppress(ConnectionResetError):
        for index in range(len(_SLOW_BODY)):
            if not await _pause(request, seconds / len(_SLOW_BODY)):
                _drop(request.transport)
                break
            await response.write(_SLOW_BODY[index : index + 1])
    return response


async def _huge(request: web.Request) -> web.StreamResponse:
    """Benchmark fault: a 200 with a body of `kib` KiB, streamed so it costs no memory."""
    raw = request.match_info["kib"]
    kib = _parse_int(raw, 0, MAX_HUGE_KIB)
    if kib is None:
        return _bad_request(f"kib must be an integer from 0 to {MAX_HUGE_KIB}, not {raw!r}")
    response = web.StreamResponse(headers={hdrs.CONTENT_TYPE: "text/plain"})
    response.content_length = remaining = kib * 1024
    await response.prepare(request)
    if request.method == hdrs.METH_HEAD:
        return response
    with contextlib.suppress(ConnectionResetError):
        while remaining:
            chunk = _HUGE_CHUNK[: min(remaining, len(_HUGE_CHUNK))]
            await response.write(chunk)
            remaining -= len(chunk)
    return response


async def _malformed(request: web.Request) -> web.StreamResponse:
    """Benchmark fault: bytes that are not an HTTP response, then a close."""
    _drop(request.transport, garbage=_GARBAGE)
    return _unsendable()


async def _not_found(request: web.Request) -> web.StreamResponse:
    known = ", ".join(path for path, _ in _BEHAVIOURS if path != _CATCH_ALL)
    return _error(404, "NotFound", f"no behaviour at {request.path}; known paths: {known}")


async def _received(request: web.Request) -> web.StreamResponse:
    state = request.app[RECEIVER_STATE]
    if request.method in (hdrs.METH_GET, hdrs.METH_HEAD):
        entries = state.received.entries(
            path_prefix=request.query.get("path_prefix"),
            message_id=request.query.get("message_id"),
        )
        log = state.received
        return web.json_response(
            {
                "data": [entry.to_json() for entry in entries],
                "dropped": log.dropped,
                "maxRequests": log.maxlen,
                "maxBytes": log.max_bytes,
            }
        )
    if request.method == hdrs.METH_DELETE:
        state.clear()
        return web.Response(status=204)
    return _error(
        405,
        "MethodNotAllowed",
        f"{request.method} is not allowed on /_received; use GET or DELETE",
        headers={hdrs.ALLOW: "GET, HEAD, DELETE"},
    )


_BEHAVIOURS: tuple[tuple[str, Handler], ...] = (
    ("/ok", _ok),
    ("/status/{code}", _status),
    ("/delay/{seconds}", _delay),
    ("/flaky/{n}", _flaky),
    ("/reset", _reset),
    ("/hang", _hang),
    ("/redirect", _redirect),
    ("/auth/{user}/{password}", _auth),
    ("/slow-body/{seconds}", _slow_body),
    ("/huge/{kib}", _huge),
    ("/malformed", _malformed),
    (_CATCH_ALL, _not_found),
)


async def _release_in_flight(app: web.Application) -> None:
    """Cut every unfinished exchange, so a hung or slow reader cannot hold shutdown up."""
    state = app[RECEIVER_STATE]
    state.stopping.set()
    for transport in list(state.in_flight):
        _drop(transport)


def create_receiver_app() -> web.Application:
    """The receiver as an aiohttp app, for `aiohttp_client` or any runner.

    Run it with `handler_cancellation=True` (as `start_receiver` does) so a `/hang`
    whose client has gone away stops waiting then, not at shutdown.
    """
    app = web.Application()
    app[RECEIVER_STATE] = ReceiverState()
    app.on_shutdown.append(_release_in_flight)
    app.router.add_route("*", "/_received", _received)
    for path, behaviour in _BEHAVIOURS:
        app.router.add_route("*", path, _recorded(behaviour))
    return app


class RunningReceiver(Running):
    """A receiver serving on a real socket; `url` has the bound port, even when 0 was asked."""

    @property
    def received(self) -> ReceivedLog:
        return self.runner.app[RECEIVER_STATE].received

    def clear(self) -> None:
        """Forget what was received, and the `/flaky` attempt counts."""
        self.runner.app[RECEIVER_STATE].clear()

    def renew(self) -> None:
        """As good as new: exchanges still open are cut, then `clear`.

        Cut first, so that nothing sent before is recorded after the clear.
        """
        state = self.runner.app[RECEIVER_STATE]
        for transport in list(state.in_flight):
            _drop(transport)
        state.clear()


async def start_receiver(settings: ReceiverSettings) -> RunningReceiver:
    """Serve the receiver on the settings' host and port; with port 0, `url` tells the real one."""
    running = await serve(
        create_receiver_app(),
        settings.host,
        settings.port,
        handler_cancellation=True,
        shutdown_timeout=_SHUTDOWN_GRACE_SECONDS,
    )
    return RunningReceiver(running.runner, running.host, running.port)


async def _serve_until_signalled(settings: ReceiverSettings) -> None:
    if not is_loopback(settings.host):
        print(
            f"warning: {settings.host} is not a loopback address; anyone who can reach the "
            "receiver can read GET /_received, request headers (Authorization) included",
            file=sys.stderr,
        )
    try:
        receiver = await start_receiver(settings)
    except ServeError as exc:
        raise SystemExit(f"mock-qrm receiver: {exc}") from None
    settle_heap()
    stop = stop_on_signals()
    try:
        print(f"receiver listening on {receiver.url}", flush=True)
        await stop.wait()
    finally:
        await receiver.close()


def run_receiver(settings: ReceiverSettings) -> None:
    """Serve until SIGINT or SIGTERM: `mock-qrm receiver`. Exits with one line if it cannot bind."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_until_signalled(settings))
