"""An HTTPS receiver behind a certificate from a CA made in the test (`trustme`), as a
developer's receiver sits behind mkcert or a self-signed certificate (SPEC 9.7)."""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import trustme
from aiohttp import web


@contextmanager
def https_receiver(ca: trustme.CA) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """An aiohttp receiver on `https://localhost:PORT/qrm` (its own loop, in a thread),
    answering 200; and the messages it got."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
    received: list[dict[str, Any]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/qrm", hook)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()  # its own loop: usable from synchronous and async tests alike
    runner = web.AppRunner(app, access_log=None)

    async def start() -> int:
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context).start()
        port: int = runner.addresses[0][1]
        return port

    port = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    try:
        yield f"https://localhost:{port}/qrm", received
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
