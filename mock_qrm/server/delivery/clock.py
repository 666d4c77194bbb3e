"""One clock for every delay, so tests can hold time still and move it by hand."""

from __future__ import annotations

import asyncio
import contextlib
import time
from abc import ABC, abstractmethod


class Clock(ABC):
    manual: bool = False

    @abstractmethod
    def now(self) -> float:
        """Seconds since the epoch, as this clock sees them."""

    @abstractmethod
    async def wait(self, deadline: float | None, wakeup: asyncio.Event) -> None:
        """Return at `deadline` (never, if `None`), when `wakeup` is set, or when time jumps."""


class RealClock(Clock):
    def now(self) -> float:
        return time.time()

    async def wait(self, deadline: float | None, wakeup: asyncio.Event) -> None:
        timeout = None if deadline is None else max(0.0, deadline - self.now())
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel that
        # arrives as the wait ends, leaving the dispatcher running after a reset.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await wakeup.wait()


class ManualClock(Clock):
    """Frozen time that moves only when `advance` is called.

    It keeps whole milliseconds, as the journal does, so moving it 59.9 s and
    then 0.1 s lands exactly where moving it 60 s would: on a retry due then.
    """

    manual = True

    def __init__(self, start: float | None = None) -> None:
        self._now = round(time.time() if start is None else start, 3)
        self._moved = asyncio.Event()

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        self._now = round(self._now + seconds, 3)
        self._moved.set()
        self._moved = asyncio.Event()
        return self._now

    def rewind(self) -> None:
        """Back to the wall time, where a new server's clock starts (the kit's reset between tests).

        Even backwards, so only while nothing is scheduled: after the journal is wiped.
        """
        self._now = round(time.time(), 3)
        self._moved.set()
        self._moved = asyncio.Event()

    async def wait(self, deadline: float | None, wakeup: asyncio.Event) -> None:
        if deadline is not None and deadline <= self._now:
            return
        moved = asyncio.ensure_future(self._moved.wait())
        woken = asyncio.ensure_future(wakeup.wait())
        try:
            await asyncio.wait((moved, woken), return_when=asyncio.FIRST_COMPLETED)
        finally:
            moved.cancel()
            woken.cancel()
