"""A private event loop in a background thread, and the twin helpers that reach it.

The kit's servers live on a loop of their own so that any caller can use them: a
synchronous test, a pytest-asyncio or pytest-aiohttp test (whose loop comes and
goes with each test), another async framework, or a plain script. The caller never
shares a loop with the server, so a blocking call cannot starve it and a test's
loop closing cannot kill it.

Every helper is written once, as a coroutine that runs on that loop
(`@on_loop async def aname`), and gets a blocking twin by one line
(`name = blocking(aname)`): one implementation, two spellings.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
from collections.abc import Awaitable, Callable, Coroutine
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, Self, TypeVar

P = ParamSpec("P")
R = TypeVar("R")
B = TypeVar("B", bound="Bridged")


class LoopThread:
    """An asyncio event loop running forever in a daemon thread until `stop`.

    Daemon, so a kit object the caller forgot to close cannot keep the
    interpreter alive at exit.
    """

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            try:
                leftovers = asyncio.all_tasks(self.loop)
                for task in leftovers:
                    task.cancel()
                if leftovers:
                    self.loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
                self.loop.run_until_complete(self.loop.shutdown_asyncgens())
                self.loop.run_until_complete(self.loop.shutdown_default_executor())
            finally:
                self.loop.close()

    def stop(self) -> None:
        """Stop the loop and wait for the thread; safe to call twice."""
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join()


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class Bridged:
    """Something whose work happens on its own `LoopThread`.

    `_hop` runs a coroutine there from any loop (or from that loop itself);
    `_block` runs it there from synchronous code and waits. Subclasses say what
    starting and stopping means (`_open`, `_shut`); the life cycle, blocking and
    async, with and without `with`, is this class's.
    """

    _thread: LoopThread | None = None
    _thread_name = "mock-qrm-kit"

    async def _open(self) -> None:
        raise NotImplementedError

    async def _shut(self) -> None:
        raise NotImplementedError

    def start(self) -> Self:
        """Start (on the object's own thread and loop); returns self."""
        __tracebackhide__ = True
        self._refuse_restart()
        self._start_thread(f"{self._thread_name}-{id(self):x}")
        try:
            self._block(self._open(), "start")
        except BaseException:
            with contextlib.suppress(Exception):
                self._block(self._shut(), "close")
            self._stop_thread()
            raise
        return self

    async def astart(self) -> Self:
        """Async twin of `start`."""
        self._refuse_restart()
        self._start_thread(f"{self._thread_name}-{id(self):x}")
        try:
            await self._hop(self._open())
        except BaseException:
            with contextlib.suppress(Exception):
                await self._hop(self._shut())
            await asyncio.to_thread(self._stop_thread)
            raise
        return self

    def close(self) -> None:
        """Stop, and stop the thread; closing twice is harmless."""
        if self._thread is None:
            return
        try:
            self._block(self._shut(), "close")
        finally:
            self._stop_thread()

    async def aclose(self) -> None:
        """Async twin of `close`."""
        if self._thread is None:
            return
        try:
            await self._hop(self._shut())
        finally:
            await asyncio.to_thread(self._stop_thread)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return await self.astart()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _refuse_restart(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"{self!r} is already running")

    def _start_thread(self, name: str) -> asyncio.AbstractEventLoop:
        if self._thread is None:
            self._thread = LoopThread(name)
            self._thread.start()
        return self._thread.loop

    def _stop_thread(self) -> None:
        if self._thread is not None:
            self._thread.stop()
            self._thread = None

    def _kit_loop(self) -> asyncio.AbstractEventLoop:
        if self._thread is None:
            raise RuntimeError(
                f"{type(self).__name__} is not running: use it as a context manager "
                "(`with`/`async with`), or call start() / await astart() first"
            )
        return self._thread.loop

    async def _hop(self, coro: Coroutine[Any, Any, R]) -> R:
        __tracebackhide__ = True
        try:
            loop = self._kit_loop()
        except RuntimeError:
            coro.close()
            raise
        if _running_loop() is loop:
            return await coro
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            return await asyncio.wrap_future(future)
        except AssertionError as exc:
            # A test failure (a wait that timed out): show the caller's line, not the kit's plumbing.
            raise exc.with_traceback(None) from None

    def _block(self, coro: Coroutine[Any, Any, R], name: str) -> R:
        __tracebackhide__ = True
        if _running_loop() is not None:
            coro.close()
            raise RuntimeError(
                f"{type(self).__name__}.{name}() blocks, and it was called from a running event "
                "loop, which it would freeze (a receiver served by that loop could not answer): "
                f"in async code, await its async twin, a{name}()"
            )
        try:
            loop = self._kit_loop()
        except RuntimeError:
            coro.close()
            raise
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            return future.result()
        except AssertionError as exc:
            raise exc.with_traceback(None) from None
        except BaseException:
            future.cancel()  # ctrl+c while waiting: stop the work on the kit's loop too
            raise


def on_loop(
    method: Callable[Concatenate[B, P], Awaitable[R]],
) -> Callable[Concatenate[B, P], Coroutine[Any, Any, R]]:
    """Make an async method run on its object's own loop, whichever loop awaits it."""

    @functools.wraps(method)
    async def hop(self: B, /, *args: P.args, **kwargs: P.kwargs) -> R:
        __tracebackhide__ = True

        async def body() -> R:
            return await method(self, *args, **kwargs)

        return await self._hop(body())

    return hop


def blocking(
    amethod: Callable[Concatenate[B, P], Coroutine[Any, Any, R]],
) -> Callable[Concatenate[B, P], R]:
    """The blocking twin of an `a`-prefixed async method: same arguments, same result."""
    name = amethod.__name__.removeprefix("a")

    @functools.wraps(amethod)
    def block(self: B, /, *args: P.args, **kwargs: P.kwargs) -> R:
        __tracebackhide__ = True
        return self._block(amethod(self, *args, **kwargs), name)

    block.__name__ = name
    block.__qualname__ = amethod.__qualname__.rsplit(".", 1)[0] + "." + name
    block.__doc__ = f"Blocking twin of `{amethod.__name__}`. " + (amethod.__doc__ or "")
    return block
