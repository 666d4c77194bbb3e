"""Open one app session on a `qrm-tui --web` (as a browser tab would) and wait for a text.

    python scripts/web_session.py URL PASSWORD TEXT...

Exits 0 once every TEXT has appeared in what the app drew (escape sequences
stripped), 1 after 60 s with the last screenful. Used by scripts/docker-test.
"""

from __future__ import annotations

import asyncio
import re
import sys

import aiohttp

ESCAPES = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")


async def session(url: str, password: str, needles: list[str]) -> int:
    headers = {"Authorization": aiohttp.encode_basic_auth("docker-test", password)}
    text = ""
    async with (
        aiohttp.ClientSession(headers=headers) as http,
        http.ws_connect(f"{url}/ws?width=120&height=30") as ws,
    ):
        try:
            async with asyncio.timeout(60):
                async for message in ws:
                    if message.type == aiohttp.WSMsgType.BINARY:
                        text += ESCAPES.sub("", message.data.decode(errors="replace"))
                    if all(needle in text for needle in needles):
                        return 0
        except TimeoutError:
            pass
    print(f"not all of {needles} appeared; the session showed:\n{text[-2000:]}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    url, password, *needles = sys.argv[1:]
    sys.exit(asyncio.run(session(url.rstrip("/"), password, needles)))
