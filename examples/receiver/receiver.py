"""A webhook receiver for Inspectorio QRM: the shape of a real one, small enough to read.

QRM POSTs `{"messageId", "eventCode", "eventName", "payload": {"resourceId", "path"}}`
with the webhook's basic auth. This receiver:

1. refuses a request without the right basic auth (401);
2. acknowledges a messageId it has already processed with 200 and does nothing
   else, because QRM delivers at least once: it retries after any failure or
   timeout, and people redeliver by hand;
3. calls QRM back, `GET {QRM_API_URL}/reports/{resourceId}` with the `apiKey`
   header, and stores the report; a 5xx, a 429 or a broken connection is tried
   again after a short backoff (honouring `Retry-After`), because QRM's API
   blinks now and then and waiting for QRM's own retry costs a minute;
4. answers 200 only once the report is stored, so that any failure on the way
   makes QRM retry (a minute later, up to three times).

Configuration, from the environment:

    QRM_API_URL         the QRM API base, e.g. https://<qrm host>/api/v1
                        (in tests: mock_qrm.api_url)
    QRM_API_KEY         sent as the apiKey header (in tests: mock_qrm.api_key)
    RECEIVER_USERNAME   the basic auth that QRM's webhook is configured with
    RECEIVER_PASSWORD
    RECEIVER_HOST       where `python receiver.py` listens (default 127.0.0.1)
    RECEIVER_PORT       (default 8080); the webhook URL is http://host:port/webhooks/qrm
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp
from aiohttp import web

log = logging.getLogger("qrm-receiver")

WEBHOOK_PATH = "/webhooks/qrm"


@dataclass(frozen=True, slots=True)
class Config:
    api_url: str
    api_key: str | None
    username: str
    password: str
    host: str = "127.0.0.1"
    port: int = 8080
    retry_delays: tuple[float, ...] = (0.5, 1.0, 2.0)
    """Seconds before each new try of a call back that got a 5xx or 429: 4 tries in all."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Config:
        """Read the variables above; a missing mandatory one is a one-line error."""
        missing = [
            name
            for name in ("QRM_API_URL", "RECEIVER_USERNAME", "RECEIVER_PASSWORD")
            if not env.get(name)
        ]
        if missing:
            raise SystemExit(f"receiver: set {', '.join(missing)} in the environment")
        return cls(
            api_url=env["QRM_API_URL"].rstrip("/"),
            api_key=env.get("QRM_API_KEY") or None,
            username=env["RECEIVER_USERNAME"],
            password=env["RECEIVER_PASSWORD"],
            host=env.get("RECEIVER_HOST", "127.0.0.1"),
            port=int(env.get("RECEIVER_PORT", "8080")),
        )


class ReportStore(Protocol):
    """Where fetched reports go: a database in real life, a dict here."""

    async def save(self, resource_id: int, report: dict[str, Any]) -> None: ...


@dataclass
class MemoryStore:
    reports: dict[int, dict[str, Any]] = field(default_factory=dict)
    saves: int = 0

    async def save(self, resource_id: int, report: dict[str, Any]) -> None:
        self.reports[resource_id] = report
        self.saves += 1


@dataclass
class Inbox:
    """Which messages are done, and which are being worked on right now.

    In memory for the example; a real receiver keeps `done` in its database
    (a unique key on messageId), committed with the report, to survive restarts.
    """

    done: set[str] = field(default_factory=set)
    working: set[str] = field(default_factory=set)


CONFIG = web.AppKey("config", Config)
STORE = web.AppKey("store", ReportStore)
INBOX = web.AppKey("inbox", Inbox)
SESSION = web.AppKey("session", aiohttp.ClientSession)


class CallbackFailed(Exception):
    """QRM did not give us the report; the message says what it answered."""


def _authorised(request: web.Request, config: Config) -> bool:
    header = request.headers.get(aiohttp.hdrs.AUTHORIZATION, "")
    try:
        sent = aiohttp.BasicAuth.decode(header, encoding="utf-8")
    except ValueError:
        return False
    # Compare in constant time, both halves, so timing tells nothing about either.
    user_ok = hmac.compare_digest(sent.login.encode(), config.username.encode())
    password_ok = hmac.compare_digest(sent.password.encode(), config.password.encode())
    return user_ok and password_ok


class TryAgain(CallbackFailed):
    """A failure worth another try: a 5xx, a 429, a broken connection."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


MAX_RETRY_AFTER = 10.0
"""A longer `Retry-After` is not waited for: QRM's own retry (a minute later) is as good."""


async def fetch_report(request: web.Request, resource_id: int) -> dict[str, Any]:
    """`GET /reports/{id}` on the QRM API, tried again after a 5xx or 429 (see `Config.retry_delays`).

    The URL is built from the id, not taken from the request.
    """
    delays = request.app[CONFIG].retry_delays
    for delay in (*delays, None):
        try:
            return await _get_report(request, resource_id)
        except TryAgain as exc:
            if delay is None or (exc.retry_after or 0) > MAX_RETRY_AFTER:
                raise
            wait = max(delay, exc.retry_after or 0)
            log.info("%s; trying again in %g s", exc, wait)
            await asyncio.sleep(wait)
    raise AssertionError("unreachable")  # the last round either returns or raises


async def _get_report(request: web.Request, resource_id: int) -> dict[str, Any]:
    config = request.app[CONFIG]
    headers = {"apiKey": config.api_key} if config.api_key else {}
    url = f"{config.api_url}/reports/{resource_id}"
    try:
        async with request.app[SESSION].get(url, headers=headers) as response:
            if response.status == 429 or response.status >= 500:
                raise TryAgain(
                    f"GET {url} answered {response.status}",
                    _seconds(response.headers.get(aiohttp.hdrs.RETRY_AFTER)),
                )
            if response.status != 200:
                raise CallbackFailed(f"GET {url} answered {response.status}")
            body = await response.json()
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise TryAgain(f"GET {url} failed: {type(exc).__name__} {exc}") from None
    report: dict[str, Any] = body["data"]
    return report


def _seconds(retry_after: str | None) -> float | None:
    """`Retry-After` in seconds (its HTTP-date form is not worth the code here)."""
    try:
        return None if retry_after is None else max(0.0, float(retry_after))
    except ValueError:
        return None


async def receive(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    if not _authorised(request, config):
        return web.json_response(
            {"error": "unauthorised"},
            status=401,
            headers={aiohttp.hdrs.WWW_AUTHENTICATE: 'Basic realm="qrm-webhooks"'},
        )
    try:
        message = await request.json()
        message_id = str(message["messageId"])
        resource_id = int(message["payload"]["resourceId"])
    except (ValueError, KeyError, TypeError):
        return web.json_response({"error": "not a QRM webhook message"}, status=400)

    inbox = request.app[INBOX]
    if message_id in inbox.done:
        return web.json_response({"ok": True, "duplicate": True})
    if message_id in inbox.working:
        # The same message again while the first is still running: not done yet, so
        # no 200; QRM will try again later, by which time the first has finished.
        return web.json_response({"error": "already in progress"}, status=409)
    inbox.working.add(message_id)
    try:
        report = await fetch_report(request, resource_id)
        await request.app[STORE].save(resource_id, report)
    except CallbackFailed as exc:
        log.warning("message %s: %s", message_id, exc)
        return web.json_response({"error": str(exc)}, status=502)
    except Exception:
        log.exception("message %s: could not store report %s", message_id, resource_id)
        return web.json_response({"error": "could not store the report"}, status=500)
    finally:
        inbox.working.discard(message_id)
    inbox.done.add(message_id)
    return web.json_response({"ok": True})


def create_app(config: Config, store: ReportStore | None = None) -> web.Application:
    """The receiver as an aiohttp app; pass a `store` to see (or break) what it saves."""
    app = web.Application()
    app[CONFIG] = config
    app[STORE] = store if store is not None else MemoryStore()
    app[INBOX] = Inbox()

    async def client_session(app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            app[SESSION] = session
            yield

    app.cleanup_ctx.append(client_session)
    app.router.add_post(WEBHOOK_PATH, receive)
    return app


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    config = Config.from_env()
    web.run_app(create_app(config), host=config.host, port=config.port)


if __name__ == "__main__":
    main()
