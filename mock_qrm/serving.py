"""One way to start an aiohttp app on a socket: `serve(app, host, port) -> Running`.

The server, the receiver, the testing kit and the TUI's embedded server all
start this way, so each reports a bind failure in the same words, knows the
port it got when it asked for 0, and refuses a request its HTTP parser cannot
read (a header line over 8,190 bytes, too many headers, a bad `Content-Length`,
an unknown method) in QRM's error shape, as every other refusal, instead of
aiohttp's plain text that echoes the request back.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import ipaddress
import json
import logging
import os
import re
import signal
import socket
import struct
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from mock_qrm.contract.display import printable
from mock_qrm.contract.errors import error_code

log = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    """Whether `host` names this machine only (what may listen without an API key)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return all(
                ipaddress.ip_address(info[4][0]).is_loopback
                for info in socket.getaddrinfo(host, None)
            )
        except (OSError, ValueError):
            return False


class ServeError(Exception):
    """The app could not listen: one line, `cannot listen on HOST:PORT: reason`."""


@dataclass(frozen=True, slots=True)
class Running:
    """An app serving on a real socket; `port` is the bound one, even when 0 was asked."""

    runner: web.AppRunner
    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def app(self) -> web.Application:
        return self.runner.app

    async def close(self) -> None:
        await self.runner.cleanup()


async def listen(host: str, port: int) -> list[socket.socket]:
    """Sockets listening on host:port, or `ServeError` in one line (`cannot listen on ...`)."""
    try:
        return await asyncio.get_running_loop().run_in_executor(None, _listen, host, port)
    except OSError as exc:
        # getaddrinfo's errno is negative; bind's strerror is enough on its own.
        reason = os.strerror(exc.errno) if exc.errno and exc.errno > 0 else exc.strerror or exc
        raise ServeError(f"cannot listen on {host}:{port}: {str(reason).lower()}") from None


async def serve(
    app: web.Application,
    host: str,
    port: int,
    *,
    sockets: list[socket.socket] | None = None,
    **runner_args: Any,
) -> Running:
    """Listen on host:port (or on `sockets` from `listen`), then set the app up (its
    start-up errors propagate as they are).

    The socket comes first: a port in use fails before the app has opened (and
    written) anything, such as the server's database.
    """
    if sockets is None:
        sockets = await listen(host, port)
    runner = _Runner(app, handle_signals=False, access_log=None, **runner_args)
    try:
        await runner.setup()
        for sock in sockets:
            await web.SockSite(runner, sock).start()
    except BaseException:
        await runner.cleanup()
        for sock in sockets:
            sock.close()
        raise
    return Running(runner, host, int(sockets[0].getsockname()[1]))


def _listen(host: str, port: int) -> list[socket.socket]:
    """Listening sockets on every address `host` names (as asyncio's `create_server` binds);
    with port 0, the first gets a free port and the others the same one."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            if os.name == "posix":  # a restarted server rebinds while old connections linger
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if len(sockets) > 1 and port == 0:
                address = (address[0], sockets[0].getsockname()[1], *address[2:])
            sock.bind(address)
            sock.listen(1024)
            sock.setblocking(False)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


# --- what the HTTP server itself refuses -----------------------------------------------------


def refusal(status: int, message: str) -> web.Response:
    """QRM's error shape, `{"errorCode", "message"}`, for a request no handler saw."""
    body = json.dumps({"errorCode": error_code(status), "message": message})
    response = web.Response(status=status, text=body, content_type="application/json")
    response.force_close()  # the parser may be anywhere in the stream: nothing more is read
    return response


_ECHO = re.compile(r":\s|:$| b'| bytearray\(| '|\.$")
"""Where aiohttp's message starts quoting the request back (`...: b'Content-Length: abc'`)."""


def protocol_message(status: int, exc: BaseException | None, message: str | None) -> str:
    """What went wrong, in words that quote nothing the client sent."""
    if status >= 500:
        return "The request timed out" if status == 504 else "Internal server error"
    said = (message or getattr(exc, "message", "") or "").strip().splitlines()
    summary = _ECHO.split(said[0], maxsplit=1)[0].strip() if said else ""
    reason = printable(summary)[:200] or "it could not be parsed"
    return f"Malformed HTTP request: {reason}"


class _ShapedErrors(RequestHandler):
    """aiohttp's connection handler, but its own refusals answer in QRM's shape.

    `handle_error` is what aiohttp calls when its parser refuses a request (400) or a
    handler fails outside the app's middleware (500, 504): the one place those answers
    are made. A 4xx is the client's mistake: logged in a line, without a traceback.
    """

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if status >= 500:
            self.log_exception("Error handling request from %s", request.remote, exc_info=exc)
        else:
            said = printable(exc or message or "")[:300]  # the parser's words quote the request
            log.info("refused a malformed request from %s: %s", request.remote, said)
        if request.writer.output_size > 0:  # an answer has begun: the connection is broken
            raise ConnectionError("Response is sent already, cannot send an error response")
        return refusal(status, protocol_message(status, exc, message))


class _ShapedServer(web.Server):
    """aiohttp's `Server`, making a `_ShapedErrors` for each connection."""

    def __call__(self) -> RequestHandler:
        return _ShapedErrors(self, loop=self._loop, **self._kwargs)


class _Runner(web.AppRunner):
    """An `AppRunner` whose connections are `_ShapedErrors`: aiohttp builds its server in
    `_make_server`, the runner's extension point, and makes a handler per connection."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = _ShapedServer
        return server


YOUNG_OBJECTS = 10_000
"""New objects the collector lets pile up before a young pass (Python's default is 700)."""


def settle_heap() -> None:
    """Tune the garbage collector for a process that serves, once it has started.

    What start-up made (modules, schemas, the catalog: some 50,000 objects)
    lives as long as the process: frozen, a full pass no longer walks it (it
    walked it in 40 ms). And a young pass waits for `YOUNG_OBJECTS` new objects
    instead of 700: an attempt's task, futures and records mostly die before
    then, where the default pass ran every few deliveries and promoted those in
    flight, to be walked again by the older passes. The collector's share of a
    delivery's CPU went from about 37 us to 6 (timed by `gc.callbacks` over the
    benchmark's 1-webhook throughput run).

    For `mock-qrm serve`, `mock-qrm receiver` and `qrm-tui`, which own their
    process (and the benchmark's server rounds, standing in for them); never for
    the testing kit, which lives in the user's.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_OBJECTS)


def drop_connection(
    transport: asyncio.Transport | None, *, reset: bool = False, garbage: bytes = b""
) -> None:
    """Close the connection under aiohttp's feet: at once, with a RST, or after some garbage.

    Abort, not close: close() waits to flush what is buffered, forever if the peer
    stopped reading. SO_LINGER 0 makes the kernel answer close() with RST instead of
    FIN, so the sender sees "connection reset by peer", not a clean end of stream.
    """
    if transport is None:
        return
    if garbage and not transport.is_closing():
        transport.write(garbage)
        transport.close()
        return
    if reset:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def unsendable() -> web.Response:
    """The response a handler returns after `drop_connection`: aiohttp fails to write it and moves on.

    aiohttp treats that failed write as a client disconnect, quietly; raising from the
    handler instead would be logged as an unhandled error. 444 is nginx's "no response".
    """
    return web.Response(status=444, reason="No Response")


def stop_on_signals() -> asyncio.Event:
    """An event that SIGINT or SIGTERM sets: a served app runs until it is set."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    return stop
