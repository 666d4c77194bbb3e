"""Every way a receiver can fail (SPEC.md section 2 "Delivery outcome"), one row each.

For each fault: the attempt's error class (or status), its outcome, QRM's retry
schedule to the fourth attempt, a healthy webhook on the same events that keeps
getting every message at once, and server memory that stays flat when the fault
repeats 200 times. Time is the manual clock's; the receiver is the real one.
"""

from __future__ import annotations

import asyncio
import gc
import socket
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

import aiohttp
import pytest

from mock_qrm.receiver import RunningReceiver
from tests.delivery.helpers import Client, add_webhook, advance, delivery, until, upload
from tests.e2e.processes import free_port, running

Http = Client | aiohttp.ClientSession

TIMEOUT = 0.3
"""The receiver's time to answer: short, so hangs and slow bodies cost little real time."""

RETRY_INTERVAL = 60.0
ATTEMPTS = 4
PROMPTLY = 2.0
"""Real seconds a healthy webhook may take to get a message while its neighbour misbehaves."""


@dataclass(frozen=True, slots=True)
class Fault:
    name: str
    path: str | None
    """The receiver path; `None` is a port nobody listens on."""
    error: str | None = None
    status: int | None = None

    @property
    def delivered(self) -> bool:
        return self.status == 200

    def url(self, receiver: str) -> str:
        if self.path is None:
            return f"http://127.0.0.1:{_closed_port()}/ok"
        return receiver + self.path


FAULTS = [
    Fault("refused", None, error="connection_refused"),
    Fault("reset", "/reset", error="connection_reset"),
    Fault("hang", "/hang", error="timeout"),
    Fault("slow_body", "/slow-body/2", error="timeout"),
    Fault("201", "/status/201", status=201),
    Fault("204", "/status/204", status=204),
    Fault("301", "/status/301", status=301),
    Fault("401", "/status/401", status=401),
    Fault("500", "/status/500", status=500),
    Fault("huge_body", "/huge/2048", status=200),
    Fault("malformed", "/malformed", error="protocol"),
]
FAULT_IDS = [fault.name for fault in FAULTS]


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _time(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


async def _rows(http: Http, webhook: dict[str, Any], **params: Any) -> tuple[list[Any], int]:
    async with http.get(
        "/api/v1/webhook-deliveries",
        params={"webhook_id": webhook["id"], "limit": 200, **params},
    ) as response:
        assert response.status == 200
        page = await response.json()
    return page["data"], page["total"]


async def _attempted(api: Client, delivery_id: int, number: int) -> dict[str, Any] | None:
    """The delivery once its attempt `number` has ended (it has an outcome)."""
    detail = await delivery(api, delivery_id)
    attempts = detail["attempts"]
    done = len(attempts) >= number and attempts[number - 1]["outcome"] is not None
    return detail if done and detail["status"] != "in_flight" else None


def assert_classed(fault: Fault, attempt: dict[str, Any]) -> None:
    """What the journal says about one attempt against `fault`."""
    assert attempt["trigger"] == "automatic"
    assert attempt["error"] == fault.error, attempt
    assert attempt["responseStatus"] == fault.status, attempt
    assert attempt["outcome"] == ("success" if fault.delivered else "failure"), attempt
    assert attempt["durationMs"] is not None
    if fault.error == "timeout":
        assert attempt["durationMs"] >= TIMEOUT * 1000 - 50, attempt


async def assert_healthy_got_everything(api: Client, healthy: dict[str, Any], count: int) -> None:
    async def all_delivered() -> bool:
        rows, total = await _rows(api, healthy)
        return total == count and all(r["status"] == "delivered" for r in rows)

    await until(all_delivered, PROMPTLY, f"the healthy webhook's {count} deliveries")
    rows, _ = await _rows(api, healthy)
    assert [r["attemptCount"] for r in rows] == [1] * count  # never retried, never failed


@pytest.mark.parametrize("fault", FAULTS, ids=FAULT_IDS)
async def test_a_receiver_fault_is_journaled_with_its_class_and_retried_on_qrms_schedule(
    server: Any, receiver: RunningReceiver, fault: Fault
) -> None:
    api = await server(timeout=TIMEOUT)
    faulty = await add_webhook(api, fault.url(receiver.url), name="Faulty")
    healthy = await add_webhook(api, receiver.url + "/ok", name="Healthy")
    await upload(api)
    [first], _ = await _rows(api, faulty)  # the upload's answer comes once it is fanned out
    tracked: int = first["id"]

    for number in range(1, ATTEMPTS + 1):
        if number > 1:
            await advance(api, RETRY_INTERVAL + 1)
            await upload(api)  # the healthy webhook keeps getting messages meanwhile
        detail = await until(
            partial(_attempted, api, tracked, number), PROMPTLY, f"attempt {number}"
        )
        attempts = detail["attempts"]
        assert len(attempts) == number  # 61 s of clock fires exactly one more attempt
        attempt = attempts[-1]
        assert attempt["number"] == number
        assert_classed(fault, attempt)
        await assert_healthy_got_everything(api, healthy, number)
        if fault.delivered:
            assert detail["status"] == "delivered"
            assert attempt["responseTruncated"] is True
            assert len(attempt["responseBody"]) == 16 * 1024
            assert detail["nextAttemptAt"] is None
            await advance(api, RETRY_INTERVAL + 1)
            assert len((await delivery(api, tracked))["attempts"]) == 1  # success: no retry
            return
        assert detail["attemptCount"] == number
        if number < ATTEMPTS:
            assert detail["status"] == "retry_scheduled"
            ended = _time(attempt["startedAt"]) + attempt["durationMs"] / 1000
            due = _time(detail["nextAttemptAt"])
            assert abs(due - (ended + RETRY_INTERVAL)) < 0.003, (attempt, detail["nextAttemptAt"])
        else:
            assert detail["status"] == "failed"
            assert detail["nextAttemptAt"] is None
            assert detail["completedAt"] is not None

    await advance(api, 10 * RETRY_INTERVAL)
    assert len((await delivery(api, tracked))["attempts"]) == ATTEMPTS  # failed is final


# --- memory ---------------------------------------------------------------------------
#
# Every fault 200 times, then the question: did the server keep anything per attempt?
# Faults that wait out the timeout run on a server with the short one; the others on
# a server whose timeout is long enough that a loaded machine never turns their answer
# into a timeout. A success ends after one attempt, so four webhooks on /huge make its
# 200. The receiver runs in a process of its own, so the heap measured is the server's.

REPEATS = 200
"""Attempts of each fault in the measured run."""

EVENTS = REPEATS // ATTEMPTS
"""Events in the measured run: each fails four times against every failing fault."""

WARM_UP = EVENTS
"""Events sent through every attempt before measuring: pools, caches and lazily built
validators reach their steady size here, not in the measured run."""

WAVE = 25
"""Events emitted at once: the measured run's peak concurrency is the warm-up's."""

MEMORY_BOUND = 256 * 1024
"""Python heap the process may have grown by across the measured run, all attempts ended.

Traced from before the server starts, so what the run frees counts as much as what it
allocates: the figure is the net growth. The measured run makes 1,850 attempts on one
server and 400 on the other, so anything kept per attempt over 142 bytes (a heap
entry, a headers dict, a task, a response: each is more) fails the first, and over
656 bytes (the attempt record with its journaled request and response) fails both.
What may stay without being a leak is bounded and not per attempt: pooled keep-alive
connections, interned strings, free lists, the writer's last batch; measured at -40 to
+60 KiB. The feed's replay ring keeps recent frames on purpose: it is set to its minimum.
"""

HEALTHY = Fault("healthy", "/ok", status=200)

GROUPS = {
    "timing": (TIMEOUT, 256, [f for f in FAULTS if f.error == "timeout"]),
    "answering": (5.0, 16, [*(f for f in FAULTS if f.error != "timeout"), HEALTHY]),
}
"""Per group: the timeout, the concurrency cap (which also caps the connection pool,
whose idle size would otherwise be the largest noise), the webhooks. The healthy one
is on the server whose timeout a busy machine cannot make it miss."""


@pytest.fixture(scope="module")
def receiver_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A receiver in its own process: the measured heap is the server's alone."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("receiver") / "receiver.log"
    with running(["receiver", "--port", str(port)], f"{url}/_received", log):
        yield url


async def _emit(http: Http, events: int) -> None:
    async def one() -> None:
        async with http.post(
            "/_mock/events", json={"eventCode": "report.created", "resourceId": 12301}
        ) as response:
            assert response.status == 201, await response.text()

    for start in range(0, events, WAVE):
        await asyncio.gather(*(one() for _ in range(min(WAVE, events - start))))


async def _states(http: Http) -> dict[str, int]:
    """How many deliveries are in each state, and how many the dispatcher still holds."""
    counts = {}
    for status in ("pending", "in_flight", "retry_scheduled", "delivered", "failed"):
        async with http.get(
            "/api/v1/webhook-deliveries", params={"status": status, "limit": 1}
        ) as response:
            counts[status] = (await response.json())["total"]
    async with http.get("/healthz") as response:
        counts["held"] = (await response.json())["queueDepth"]
    return counts


async def _drive(http: Http, faults: list[Fault], events: int) -> None:
    """Send `events` events to the webhooks (one per fault); move the clock until every
    delivery is final.

    `held` (the dispatcher's queue) leaves out attempts under way, so it reaches the
    number of retrying deliveries only once every attempt of the round has ended.
    """
    before = await _states(http)
    failing = events * sum(1 for f in faults if not f.delivered)
    delivered = before["delivered"] + events * sum(1 for f in faults if f.delivered)
    await _emit(http, events)
    for number in range(1, ATTEMPTS + 1):
        if number > 1:
            async with http.post(
                "/_mock/clock/advance", json={"seconds": RETRY_INTERVAL + 1}
            ) as response:
                assert response.status == 200
        retrying = failing if number < ATTEMPTS else 0
        wanted = {
            "pending": 0,
            "in_flight": 0,
            "retry_scheduled": retrying,
            "failed": before["failed"] + failing - retrying,
            "held": retrying,
        }

        async def settled(wanted: dict[str, int] = wanted) -> bool:
            states = await _states(http)
            return all(states[k] == v for k, v in wanted.items()) and (
                states["delivered"] == delivered
            )

        await until(settled, 10, f"every attempt {number} to end ({wanted})")


@pytest.mark.parametrize("group", GROUPS)
async def test_every_fault_repeated_200_times_leaves_server_memory_flat(
    server: Any, receiver_process: str, group: str, request: pytest.FixtureRequest
) -> None:
    timeout, concurrency, faults = GROUPS[group]
    tracemalloc.start()  # before the server starts, so what it frees later counts too
    request.addfinalizer(tracemalloc.stop)
    api = await server(timeout=timeout, concurrency=concurrency, db=":memory:", feed_buffer=10)
    webhooks = [
        (fault, await add_webhook(api, fault.url(receiver_process), name=f"{fault.name} {n}"))
        for fault in faults
        for n in range(ATTEMPTS if fault.delivered and fault is not HEALTHY else 1)
    ]
    per_webhook = [fault for fault, _ in webhooks]
    # Not the test client, which keeps every response until the test ends; and no
    # keep-alive, whose server side holds its connection's last response until the next.
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(base_url=api.make_url(""), connector=connector) as http:
        await _drive(http, per_webhook, WARM_UP)
        gc.collect()
        before = tracemalloc.take_snapshot()
        await _drive(http, per_webhook, EVENTS)
        gc.collect()
        after = tracemalloc.take_snapshot()

    for fault, webhook in webhooks:
        [last], _ = await _rows(api, webhook, limit=1)
        assert_classed(fault, (await delivery(api, last["id"]))["attempts"][-1])
    health = await (await api.get("/healthz")).json()
    assert (health["queueDepth"], health["inFlight"]) == (0, 0), health
    growth = after.compare_to(before, "lineno")
    kept = sum(stat.size_diff for stat in growth)
    assert kept < MEMORY_BOUND, (
        f"the heap grew by {kept / 1024:.0f} KiB over {REPEATS} attempts of each of "
        f"{[f.name for f in faults]}; most from:\n" + "\n".join(str(s) for s in growth[:10])
    )
