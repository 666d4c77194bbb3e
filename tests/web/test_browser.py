"""The app in a real browser: two tabs on one `qrm-tui --web` share one mock server.

Debian's chromium driven by PyPI playwright (never `playwright install`: no browser
download here). xterm.js paints on a canvas, so the app's text is read from the
WebSocket frames the page receives, escape sequences stripped.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest

from tests.delivery.helpers import until

playwright_api = pytest.importorskip(
    "playwright.async_api", reason="playwright is not installed: pip install -e '.[test]'"
)

CHROMIUM_PATHS = ("/usr/lib/chromium/chromium", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
PASSWORD = "demo-room"
ESCAPES = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")


def find_chromium() -> str | None:
    for path in CHROMIUM_PATHS:
        if os.access(path, os.X_OK):
            return path
    return shutil.which("chromium")


CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no chromium found: install Debian's with `apt-get install chromium` (.ci/run does)",
)


@dataclass
class WebProcess:
    process: asyncio.subprocess.Process
    url: str = ""
    server: str = ""
    output: list[str] = field(default_factory=list)


@pytest.fixture
async def web() -> AsyncIterator[WebProcess]:
    """`qrm-tui --web` on a free port with a password; the embedded server in memory."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "MOCK_QRM_DB": ":memory:"}
    for name in ("QRM_TUI_SERVER", "MOCK_QRM_SERVER", "QRM_TUI_API_KEY", "MOCK_QRM_API_KEY"):
        env.pop(name, None)
    process = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "qrm_tui", "--web", "--web-port", "0"],
        *["--web-password", PASSWORD],
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
    )
    running = WebProcess(process)
    ready = asyncio.Event()

    async def drain() -> None:
        assert process.stdout is not None
        async for raw in process.stdout:
            line = raw.decode(errors="replace").rstrip()
            running.output.append(line)
            if found := re.search(r"serving the app on (\S+)", line):
                running.url = found[1]
            if found := re.search(r"mock server (\S+)", line):
                running.server = found[1]
                ready.set()

    reader = asyncio.create_task(drain())
    try:
        await asyncio.wait_for(ready.wait(), 20)
    except TimeoutError:
        process.kill()
        await process.wait()
        pytest.fail("qrm-tui --web did not start:\n" + "\n".join(running.output))
    try:
        yield running
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 15)
            except TimeoutError:
                process.kill()
                await process.wait()
        await reader


class Tab:
    """One browser tab on the app, and every character the app has sent it."""

    def __init__(self, page: playwright_api.Page) -> None:
        self.page = page
        self.text = ""
        page.on("websocket", self._follow)

    def _follow(self, websocket: playwright_api.WebSocket) -> None:
        websocket.on("framereceived", self._frame)

    def _frame(self, payload: str | bytes) -> None:
        data = payload.decode(errors="replace") if isinstance(payload, bytes) else payload
        self.text += ESCAPES.sub("", data)

    async def wait_for_text(self, *needles: str, since: int = 0, seconds: float = 15.0) -> str:
        """Wait until any needle appears in what was sent after `since`; the one found."""
        for _ in range(int(seconds / 0.1)):
            for needle in needles:
                if needle in self.text[since:]:
                    return needle
            await self.page.wait_for_timeout(100)
        tail = self.text[since:][-2000:]
        raise AssertionError(f"none of {needles} appeared in the tab; it last showed:\n{tail}")


def sessions_on(server: str) -> list[int]:
    """The ids of the app processes (one per tab) pointed at `server`."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                argv = Path(entry.path, "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"qrm_tui" in argv and server.encode() in argv:
                found.append(int(entry.name))
    return found


async def create_webhook(server: str, name: str) -> None:
    async with aiohttp.ClientSession(server) as http:
        async with http.get("/api/v1/webhook-events") as response:
            catalog = await response.json()
        code = catalog["data"][0]["events"][0]["eventCode"]
        body = {"name": name, "url": "http://receiver.invalid/hook", "events": [code]}
        async with http.post("/api/v1/webhooks", json=body) as response:
            assert response.status == 201, await response.text()


async def test_the_browser_asks_for_the_password_first(web: WebProcess) -> None:
    async with aiohttp.ClientSession() as http:
        for path in ("/", "/ws", "/static/js/textual.js"):
            async with http.get(web.url + path) as response:
                assert response.status == 401, path
                assert response.headers["WWW-Authenticate"].startswith("Basic ")
        wrong = {"Authorization": aiohttp.encode_basic_auth("any", "wrong")}
        async with http.get(web.url + "/", headers=wrong) as response:
            assert response.status == 401


async def test_two_tabs_share_one_server_and_each_is_its_own_session(web: WebProcess) -> None:
    async with playwright_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(
                http_credentials={"username": "demo", "password": PASSWORD},
                viewport={"width": 1400, "height": 900},
            )
            hosts: set[str | None] = set()
            context.on("request", lambda request: hosts.add(urlsplit(request.url).hostname))
            tabs = [Tab(await context.new_page()) for _ in range(2)]
            for tab in tabs:
                await tab.page.goto(web.url + "/")
            for tab in tabs:
                await tab.wait_for_text("Webhooks")
            # The page, its scripts and its font come from the app: nothing leaves the machine.
            assert hosts == {"127.0.0.1"}, hosts

            await create_webhook(web.server, "Shared between tabs")
            for tab in tabs:
                await tab.wait_for_text("Shared between tabs")

            first, second = tabs
            before = [len(tab.text) for tab in tabs]
            await first.page.locator("body").click()
            await first.page.keyboard.press("2")
            await first.wait_for_text("Latency", "Follow", since=before[0])
            # The other tab is its own app: it stays on the webhooks screen.
            await second.page.wait_for_timeout(500)
            assert "Latency" not in second.text[before[1] :]

            assert len(sessions_on(web.server)) == 2, "one app process per tab"
            # Stopping the server with tabs open ends their sessions too.
            web.process.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(web.process.wait(), 15) == 0

            # Each tab's app ends when it finds its terminal hung up (checked each second).
            async def all_ended() -> bool:
                return not sessions_on(web.server)

            await until(all_ended, within=5, what="every tab's app to end")
        finally:
            await browser.close()
