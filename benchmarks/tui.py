"""The TUI's targets (SPEC.md section 7), headless with `App.run_test`, against real processes.

(a) A key press answered within 100 ms while the feed brings 500 updates a second:
    a real `mock-qrm serve` delivers to a real receiver, fed by a separate emitter
    process, so the frames the app handles are the real thing. The time is from
    the key event to the first screen update after the state changed.
(b) Start-up under 2 s against a million journaled deliveries: from creating the
    app to the first screen update showing rows, plus a cold import of the app.

`python -m benchmarks.tui emit URL EVENTS_PER_SECOND SECONDS` is the emitter.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
from textual import events

from benchmarks.__main__ import Figure, build_journal, percentile, receiver_process
from mock_qrm.client import QrmClient
from mock_qrm.contract.models import Delivery
from qrm_tui.app import QrmTuiApp, Target
from qrm_tui.screens.deliveries import DeliveriesScreen
from qrm_tui.widgets.live_table import LiveTable
from tests.e2e.processes import Process, free_port, wait_http

SIZE = (120, 36)
UPDATES_PER_SECOND = 500
WEBHOOKS = 5
FRAMES_PER_DELIVERY = 3
"""pending, in flight, delivered: what one delivery to a healthy receiver puts on the feed."""
PRESSES = 52


@contextlib.asynccontextmanager
async def server_process(folder: Path, db: Path, name: str) -> AsyncIterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = Process(
        ["serve", "--port", str(port), "--db", str(db), "--seed-reports", "5"],
        folder / f"{name}.log",
    )
    try:
        await asyncio.to_thread(wait_http, url + "/healthz", process)
        yield url
    finally:
        process.close()


class Screenwatch:
    """When the app last sent the terminal an update (the headless driver drops the bytes)."""

    def __init__(self, app: QrmTuiApp) -> None:
        self.updates: list[float] = []
        display = app._display

        def recorded(screen: Any, renderable: Any) -> None:
            shown = renderable is not None and not app._batch_count  # else Textual drops it
            display(screen, renderable)
            if shown:
                self.updates.append(time.perf_counter())

        app._display = recorded  # type: ignore[method-assign]

    async def shown_after(self, moment: float, within: float = 5.0) -> float:
        deadline = moment + within
        while time.perf_counter() < deadline:
            if self.updates and self.updates[-1] >= moment:
                return next(t for t in self.updates if t >= moment)
            await asyncio.sleep(0.001)
        raise TimeoutError("the screen was not updated")


async def until(check: Callable[[], Any], within: float = 30.0) -> float:
    deadline = time.perf_counter() + within
    while not check():
        if time.perf_counter() > deadline:
            raise TimeoutError(f"timed out waiting for {check}")
        await asyncio.sleep(0.001)
    return time.perf_counter()


async def press(app: QrmTuiApp, watch: Screenwatch, key: str) -> float:
    """Send one key; seconds until the screen shows its effect."""
    table = app.screen.query_one(LiveTable) if isinstance(app.screen, DeliveriesScreen) else None
    check: Callable[[], bool]
    if key == "down":
        assert table is not None
        check = lambda: not table.follow and table.cursor_row > 0  # noqa: E731
    elif key == "f":
        assert table is not None
        check = lambda: table.follow and table.cursor_row == 0  # noqa: E731
    else:
        mode = {"1": "webhooks", "2": "deliveries"}[key]
        check = lambda: app.current_mode == mode  # noqa: E731
    started = time.perf_counter()
    app.post_message(events.Key(key, key if len(key) == 1 else None))
    try:
        changed = await until(check, 5.0)
    except TimeoutError:
        raise TimeoutError(f"no answer to {key!r} on {app.screen}") from None
    shown = await watch.shown_after(changed)
    return shown - started


KEYS = ("down", "f", "1", "2")
"""Down (pauses following), f (follows again), 1 (webhooks), 2 (back to deliveries)."""


async def presses(app: QrmTuiApp, watch: Screenwatch) -> dict[str, list[float]]:
    """Seconds each press took, by key, pressed in turn."""
    times: dict[str, list[float]] = {key: [] for key in KEYS}
    for n in range(PRESSES):
        key = KEYS[n % len(KEYS)]
        times[key].append(await press(app, watch, key))
        await asyncio.sleep(0.03 + (n % 7) * 0.011)  # land at every phase of the flush cycle
    return times


def _ms(times: list[float], q: float) -> float:
    return round(percentile(times, q) * 1000, 1)


async def emit(url: str, per_second: float, seconds: float) -> None:
    """The emitter process: `report.created` for one report, at a steady rate."""
    async with aiohttp.ClientSession() as http:
        async with http.get(url + "/_mock/reports", params={"limit": 1}) as response:
            report = (await response.json())["data"][0]["id"]
        body = {"eventCode": "report.created", "resourceId": report}
        started = time.perf_counter()
        count = int(per_second * seconds)
        pending: set[asyncio.Task[None]] = set()

        async def one() -> None:
            async with http.post(url + "/_mock/events", json=body) as response:
                await response.read()

        for n in range(count):
            await asyncio.sleep(max(0.0, started + n / per_second - time.perf_counter()))
            task = asyncio.create_task(one())
            pending.add(task)
            task.add_done_callback(pending.discard)
        await asyncio.gather(*pending)


def _count_frames(app: QrmTuiApp) -> list[float]:
    arrivals: list[float] = []
    store = app.store
    original = store.delivery_changed

    def counted(delivery: Delivery) -> None:
        arrivals.append(time.perf_counter())
        original(delivery)

    store.delivery_changed = counted  # type: ignore[method-assign]
    return arrivals


async def key_latency(folder: Path) -> Figure:
    async with (
        receiver_process(folder) as receiver,
        server_process(folder, folder / "tui-live.sqlite3", "tui-live") as url,
    ):
        async with QrmClient(url) as client:
            for n in range(WEBHOOKS):
                await client.create_webhook(f"bench {n}", receiver + "/ok", ["report.created"])
        app = QrmTuiApp(Target(server=url), start_mode="deliveries", settle_memory=True)
        app.animation_level = "none"
        watch = Screenwatch(app)
        arrivals = _count_frames(app)
        async with app.run_test(size=SIZE):
            await until(lambda: app.online and isinstance(app.screen, DeliveriesScreen))
            screen = app.screen
            assert isinstance(screen, DeliveriesScreen)
            await until(lambda: screen._loaded)
            await _prime(app, url, screen)
            quiet = await presses(app, watch)

            rate = UPDATES_PER_SECOND / FRAMES_PER_DELIVERY / WEBHOOKS
            seconds = 60.0
            emitter = await asyncio.create_subprocess_exec(
                *(sys.executable, "-m", "benchmarks.tui", "emit", url, str(rate), str(seconds)),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            try:
                await asyncio.sleep(3.0)  # the feed at full speed, the table at its cap
                window_start, count_before = time.perf_counter(), len(arrivals)
                loaded = await presses(app, watch)
                window = time.perf_counter() - window_start
                achieved = (len(arrivals) - count_before) / window
                rows = screen.table.row_count
            finally:
                emitter.kill()
                await emitter.wait()
    every = [t for times in loaded.values() for t in times]
    every_quiet = [t for times in quiet.values() for t in times]
    p99 = _ms(every, 99)
    return Figure(
        f"TUI key press -> screen, p99, feed at {UPDATES_PER_SECOND} updates/s",
        p99,
        "ms",
        _ms(every_quiet, 99),
        "the same presses with no feed traffic, p99",
        "< 100 ms",
        p99 < 100,
        {
            "p50_ms": _ms(every, 50),
            "max_ms": _ms(every, 100),
            "baseline_p50_ms": _ms(every_quiet, 50),
            "p50_p99_ms_by_key": {k: [_ms(v, 50), _ms(v, 99)] for k, v in loaded.items()},
            "baseline_p50_p99_ms_by_key": {k: [_ms(v, 50), _ms(v, 99)] for k, v in quiet.items()},
            "feed_updates_per_s": round(achieved),
            "presses": len(every),
            "rows_in_table": rows,
        },
    )


async def _prime(app: QrmTuiApp, url: str, screen: DeliveriesScreen) -> None:
    """A few rows to move the cursor over before the quiet presses."""
    async with QrmClient(url) as client:
        await client.upload_report()
    await until(lambda: screen.table.row_count >= WEBHOOKS)


async def start_up(url: str, empty: bool = False) -> float:
    """Seconds from creating the app to the first screen update that shows delivery rows
    (with an `empty` journal: that says there are none)."""
    started = time.perf_counter()
    app = QrmTuiApp(Target(server=url), start_mode="deliveries")
    app.animation_level = "none"
    watch = Screenwatch(app)
    async with app.run_test(size=SIZE):

        def rows() -> bool:
            screen = app.screen
            return (
                isinstance(screen, DeliveriesScreen)
                and screen._loaded
                and (empty or screen.table.row_count > 0)
            )

        seen = await until(rows)
        shown = await watch.shown_after(seen)
    return shown - started


def cold_import() -> float:
    """Seconds a fresh interpreter takes to import the app (part of every real start)."""
    code = (
        "import time; t = time.perf_counter(); import qrm_tui.app; print(time.perf_counter() - t)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


async def startup_time(folder: Path, rows: int, runs: int = 5) -> Figure:
    big, empty = folder / "million.sqlite3", folder / "tui-empty.sqlite3"
    if not big.exists():  # `big journal` built it earlier in this run
        await asyncio.to_thread(build_journal, big, rows)
    await asyncio.to_thread(build_journal, empty, 0)
    imports = statistics.median([await asyncio.to_thread(cold_import) for _ in range(3)])
    timings: dict[str, list[float]] = {}
    for name, db in (("big", big), ("empty", empty)):
        async with server_process(folder, db, f"tui-{name}") as url:
            await start_up(url, db == empty)  # warm: the server's caches, our imports
            timings[name] = [await start_up(url, db == empty) for _ in range(runs)]
    ours = imports + statistics.median(timings["big"])
    base = imports + statistics.median(timings["empty"])
    return Figure(
        f"TUI start-up to first delivery rows, {rows:,} deliveries",
        round(ours, 2),
        "s",
        round(base, 2),
        "the same start-up against an empty journal",
        "< 2 s",
        ours < 2,
        {
            "cold_import_s": round(imports, 2),
            "app_start_s": [round(t, 3) for t in timings["big"]],
            "baseline_app_start_s": [round(t, 3) for t in timings["empty"]],
        },
    )


async def _visits(url: str, key: str, mode: str) -> tuple[float, float]:
    """Seconds `key` takes to show its screen the first time after the start, and again."""
    app = QrmTuiApp(Target(server=url))
    app.animation_level = "none"
    watch = Screenwatch(app)

    async def shown() -> float:
        started = time.perf_counter()
        app.post_message(events.Key(key, key))
        changed = await until(lambda: app.current_mode == mode, 5.0)
        return await watch.shown_after(changed) - started

    async with app.run_test(size=SIZE):
        await until(lambda: app.loaded)
        await asyncio.sleep(SETTLE)  # a person reads the first screen before pressing a key
        first = await shown()
        await asyncio.sleep(0.2)
        app.post_message(events.Key("1", "1"))
        await until(lambda: app.current_mode == "webhooks", 5.0)
        await asyncio.sleep(0.2)
        again = await shown()
    return first, again


async def first_visits(folder: Path, runs: int = 5) -> Figure:
    """The first press of `2`, `3` and `4` after the start, beside the same press later."""
    firsts: dict[str, list[float]] = {}
    agains: list[float] = []
    async with server_process(folder, folder / "tui-visits.sqlite3", "tui-visits") as url:
        for key, mode in (("2", "deliveries"), ("3", "reports"), ("4", "faults")):
            for _ in range(runs):
                first, again = await _visits(url, key, mode)
                firsts.setdefault(mode, []).append(first)
                agains.append(again)
    every = [t for times in firsts.values() for t in times]
    worst = max(statistics.median(times) for times in firsts.values())
    return Figure(
        "TUI first visit to a screen after the start, worst median",
        round(worst * 1000, 1),
        "ms",
        round(statistics.median(agains) * 1000, 1),
        "the same key pressed again later, median",
        "<= 100 ms",
        worst <= 0.1,
        {
            "median_ms_by_screen": {m: _ms(t, 50) for m, t in firsts.items()},
            "max_ms": _ms(every, 100),
        },
    )


SETTLE = 1.5
"""Seconds after the first screen loaded before a screen is first visited."""


async def tui_figures(folder: Path, journal_rows: int) -> list[Figure]:
    return [
        await key_latency(folder),
        await first_visits(folder),
        await startup_time(folder, journal_rows),
    ]


if __name__ == "__main__" and sys.argv[1:2] == ["emit"]:
    asyncio.run(emit(sys.argv[2], float(sys.argv[3]), float(sys.argv[4])))
