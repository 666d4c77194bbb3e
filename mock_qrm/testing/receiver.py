"""`MockReceiver`: the fault-injecting receiver on its own loop, for any kind of test.

Point a webhook at `receiver.url + "/ok"`, `"/status/500"`, `"/flaky/2"`,
`"/delay/0.5"`, `"/hang"`, `"/reset"`, `"/redirect"` or `"/auth/{user}/{password}"`
(SPEC.md section 4), then read what arrived with `received()` or wait for it
with `wait_for_requests()`. Same two spellings as `MockQrm`: `name()` blocks,
`await aname()` does not.
"""

from __future__ import annotations

import asyncio
import contextlib

from mock_qrm.receiver import (
    ReceivedRequest,
    ReceiverSettings,
    RunningReceiver,
    start_receiver,
)
from mock_qrm.testing._bridge import Bridged, blocking, on_loop

DEFAULT_WAIT_TIMEOUT = 5.0


class ReceiverWaitTimeout(AssertionError):
    """Fewer requests than expected arrived in time; the message lists those that did."""


ReceiverWaitTimeout.__module__ = "mock_qrm.testing"  # how test reports name it: its public home


def _describe(request: ReceivedRequest) -> str:
    body = request.body
    message_id = request.message_id
    what = f"messageId {message_id}" if message_id else f"body {str(body)[:80]!r}"
    return f"{request.received_at:%H:%M:%S.%f} {request.method} {request.path} ({what})"


class MockReceiver(Bridged):
    """The fault-injecting webhook receiver on a free loopback port.

    `with MockReceiver() as receiver:` / `async with`, or `start()` / `await astart()`.
    """

    _thread_name = "mock-qrm-receiver"

    def __init__(
        self, *, host: str = "127.0.0.1", wait_timeout: float = DEFAULT_WAIT_TIMEOUT
    ) -> None:
        self.wait_timeout = wait_timeout
        self._settings = ReceiverSettings(host=host, port=0)
        self._running: RunningReceiver | None = None

    def __repr__(self) -> str:
        where = self._running.url if self._running else "not started"
        return f"<MockReceiver {where}>"

    @property
    def url(self) -> str:
        """The receiver's root, e.g. `http://127.0.0.1:54322`; append a behaviour path."""
        return self._live.url

    @property
    def _live(self) -> RunningReceiver:
        if self._running is None:
            raise RuntimeError("MockReceiver is not running: start it first")
        return self._running

    # --- life cycle --------------------------------------------------------------------

    async def _open(self) -> None:
        self._running = await start_receiver(self._settings)

    async def _shut(self) -> None:
        if self._running is not None:
            with contextlib.suppress(Exception):
                await self._running.close()

    # --- what arrived -------------------------------------------------------------------

    @on_loop
    async def areceived(
        self, *, path_prefix: str | None = None, message_id: str | None = None
    ) -> list[ReceivedRequest]:
        """The requests received so far, oldest first: method, path, headers, parsed body."""
        return self._live.received.entries(path_prefix=path_prefix, message_id=message_id)

    received = blocking(areceived)

    @on_loop
    async def await_for_requests(
        self,
        count: int = 1,
        *,
        path_prefix: str | None = None,
        message_id: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109  (the blocking twin shares this signature)
    ) -> list[ReceivedRequest]:
        """The matching requests once at least `count` have arrived (woken by each arrival).

        Raises `ReceiverWaitTimeout`, an `AssertionError` listing what did arrive.
        """
        log = self._live.received
        limit = self.wait_timeout if timeout is None else timeout
        try:
            return await asyncio.wait_for(
                log.wait_for(count, path_prefix=path_prefix, message_id=message_id), limit
            )
        except TimeoutError:
            pass
        wanted = [f"{count} request{'' if count == 1 else 's'}"]
        if path_prefix is not None:
            wanted.append(f"under {path_prefix}")
        if message_id is not None:
            wanted.append(f"with messageId {message_id}")
        everything = log.entries()
        lines = [f"Expected {' '.join(wanted)} at {self.url} within {limit:g} s."]
        if everything:
            lines.append(f"It received {len(everything)}:")
            lines.extend("  " + _describe(request) for request in everything)
        else:
            lines.append("It received nothing.")
        raise ReceiverWaitTimeout("\n".join(lines))

    wait_for_requests = blocking(await_for_requests)

    @on_loop
    async def aclear(self) -> None:
        """Forget what was received, and the `/flaky` attempt counts."""
        self._live.clear()

    clear = blocking(aclear)

    def _renew(self) -> None:
        """As good as new for the next test: exchanges still open are cut, then `clear`.

        Cut first, so that nothing a previous test sent is recorded after the clear.
        The pytest plugin's pool calls it between tests.
        """
        self._block(self._renewed(), "renew")

    async def _renewed(self) -> None:
        self._live.renew()
