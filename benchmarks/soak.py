"""`make soak`: thousands of events, flaky receivers, and a server killed with SIGKILL.

A real `mock-qrm serve` (time scale 600: retries 0.1 s apart) delivers every upload's
two events to five webhooks on a real `mock-qrm receiver`: /ok, /flaky/1, /flaky/3,
/status/500 (never succeeds) and /delay/0.05. Meanwhile the server is killed at random
moments (seeded) and restarted on the same database. Once every delivery is final the
journal and the receiver are checked against SPEC.md section 2 "Durability":

- every acknowledged upload is there, and each report's two events reached each of the
  five webhooks exactly once (one delivery per report, event and webhook);
- every delivery is `delivered` or `failed`; a failed one has exactly 4 attempts that
  were not interrupted, all failures; /status/500's are all `failed`;
- nothing stuck: no attempt without an outcome, `/healthz` shows an empty queue;
- the receiver got each message at least once per attempt that was not interrupted, and
  more only where an attempt was interrupted (at-least-once, never a ghost attempt).

Prints a table of counts and exits non-zero if any check fails. `--fuzz` also runs the
API fuzzer of tests/reliability/test_fuzz.py with many more examples.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from tests.e2e.processes import Process, free_port, wait_http

WEBHOOKS = {
    "ok": "/ok",
    "flaky-1": "/flaky/1",
    "flaky-3": "/flaky/3",
    "broken": "/status/500",
    "slow": "/delay/0.05",
}
ALWAYS_FAILS = {"broken"}
EVENT_CODES = ("report.created", "report.file_ready")
MAX_ATTEMPTS = 4
RECEIVER_LOG_CAP = 10_000
"""The receiver keeps this many requests: it is polled often enough never to lose one."""

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Run:
    """What happened, and what the checks found."""

    kills: int = 0
    uploads_acknowledged: set[int] = field(default_factory=set)
    upload_errors: int = 0
    failures: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def check(self, ok: bool, message: str) -> None:
        if not ok:
            self.failures.append(message)


class Server:
    """`mock-qrm serve` on a fixed port and database, killed and started again at will."""

    def __init__(self, folder: Path, args: argparse.Namespace) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = [
            "serve",
            "--port", str(self.port),
            "--db", str(folder / "qrm.sqlite3"),
            "--time-scale", str(args.time_scale),
            "--timeout", str(args.timeout),
            "--seed-reports", "0",
            "--seed", str(args.seed),
        ]  # fmt: skip
        self.starts = 0
        self.process: Process | None = None

    async def start(self) -> None:
        self.starts += 1
        self.process = Process(self.args, self.folder / f"server-{self.starts}.log")
        await asyncio.to_thread(wait_http, self.url + "/healthz", self.process, 30.0)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()  # SIGKILL: no clean-up of any kind
        self.process.close()
        self.process = None

    def stop(self) -> int | None:
        if self.process is None:
            return None
        code = self.process.terminate(30)
        self.process.close()
        return code

    def logs(self) -> str:
        return "".join(
            (self.folder / f"server-{n}.log").read_text(errors="replace")
            for n in range(1, self.starts + 1)
        )


class Receipts:
    """Every request the receiver got, gathered by polling its capped log."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.seen: set[tuple[str, str, str]] = set()
        self.by_message: Counter[str] = Counter()
        self.gap = False

    async def poll(self, session: aiohttp.ClientSession) -> None:
        async with session.get(self.url + "/_received") as response:
            entries = (await response.json())["data"]
        keys = [
            (e["receivedAt"], e["path"], (e["body"] or {}).get("messageId", ""))
            for e in entries
            if isinstance(e["body"], dict) or e["body"] is None
        ]
        if len(entries) >= RECEIVER_LOG_CAP and self.seen and keys and keys[0] not in self.seen:
            self.gap = True  # the oldest kept entry is new: older ones were dropped unseen
        for key in keys:
            if key not in self.seen:
                self.seen.add(key)
                self.by_message[key[2]] += 1


async def call(
    session: aiohttp.ClientSession, method: str, url: str, **kwargs: Any
) -> dict[str, Any]:
    async with session.request(method, url, **kwargs) as response:
        if response.status >= 400:
            raise RuntimeError(f"{method} {url}: {response.status} {await response.text()}")
        result: dict[str, Any] = await response.json()
        return result


async def every_page(session: aiohttp.ClientSession, url: str, **params: Any) -> list[Any]:
    rows: list[Any] = []
    while True:
        page = await call(session, "GET", url, params={**params, "limit": 200, "offset": len(rows)})
        rows.extend(page["data"])
        if len(rows) >= page["total"] or not page["data"]:
            return rows


async def retrying(action: Callable[[], Awaitable[Any]], deadline: float) -> Any:
    """Do `action` until the server (restarting after a kill) answers it."""
    while True:
        try:
            return await action()
        except (aiohttp.ClientError, OSError, TimeoutError, RuntimeError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


# --- the run -----------------------------------------------------------------------------


async def upload_all(
    session: aiohttp.ClientSession, server: Server, args: argparse.Namespace, run: Run
) -> None:
    """`--events` acknowledged uploads; one whose answer a kill swallowed is sent again."""
    todo = iter(range(args.events))

    async def worker() -> None:
        for _ in todo:
            while True:
                try:
                    body = await call(
                        session, "POST", server.url + "/_mock/reports", json={},
                        timeout=aiohttp.ClientTimeout(total=10),
                    )  # fmt: skip
                    run.uploads_acknowledged.add(body["data"]["resourceId"])
                    break
                except (aiohttp.ClientError, OSError, TimeoutError, RuntimeError):
                    run.upload_errors += 1
                    await asyncio.sleep(0.05)

    await asyncio.gather(*(worker() for _ in range(args.workers)))


async def kill_at_random(server: Server, args: argparse.Namespace, run: Run) -> None:
    rng = random.Random(args.seed)
    for _ in range(args.kills):
        await asyncio.sleep(rng.uniform(0.2, 2 * args.kill_gap))
        server.kill()
        run.kills += 1
        print(f"... kill {run.kills} of {args.kills}", file=sys.stderr, flush=True)
        await server.start()


async def poll_receiver(
    receipts: Receipts, session: aiohttp.ClientSession, stop: asyncio.Event
) -> None:
    while not stop.is_set():
        await receipts.poll(session)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)
    await receipts.poll(session)


async def until_all_final(session: aiohttp.ClientSession, server: Server, deadline: float) -> None:
    async def unfinished() -> int:
        total = 0
        for status in ("pending", "in_flight", "retry_scheduled"):
            page = await call(
                session, "GET", server.url + "/api/v1/webhook-deliveries",
                params={"status": status, "limit": 1},
            )  # fmt: skip
            total += page["total"]
        return total

    while (left := await retrying(unfinished, deadline)) > 0:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{left} deliveries still not final")
        await asyncio.sleep(0.25)


async def soak(args: argparse.Namespace, folder: Path) -> Run:
    run = Run()
    started = time.monotonic()
    deadline = started + args.seconds
    receiver_port = free_port()
    receiver_url = f"http://127.0.0.1:{receiver_port}"
    receiver = Process(["receiver", "--port", str(receiver_port)], folder / "receiver.log")
    server = Server(folder, args)
    try:
        await asyncio.to_thread(wait_http, receiver_url + "/_received", receiver)
        await server.start()
        connector = aiohttp.TCPConnector(limit=64)
        async with aiohttp.ClientSession(connector=connector) as session:
            hooks = {}
            for name, path in WEBHOOKS.items():
                body = {"name": name, "url": receiver_url + path, "events": list(EVENT_CODES)}
                created = await call(session, "POST", server.url + "/api/v1/webhooks", json=body)
                hooks[created["data"]["id"]] = name
            receipts = Receipts(receiver_url)
            stop = asyncio.Event()
            poller = asyncio.create_task(poll_receiver(receipts, session, stop))
            try:
                await asyncio.gather(
                    upload_all(session, server, args, run), kill_at_random(server, args, run)
                )
                print("... every upload sent, every kill done", file=sys.stderr, flush=True)
                await until_all_final(session, server, deadline)
            finally:
                stop.set()
                await poller
            await verify(session, server, hooks, receipts, run)
        run.counts["seconds"] = round(time.monotonic() - started)
    finally:
        code = server.stop()
        receiver.close()
    run.check(code == 0, f"the last server did not stop cleanly on SIGTERM (exit {code})")
    run.check("Traceback" not in server.logs(), "a server log holds a traceback")
    return run


async def verify(
    session: aiohttp.ClientSession,
    server: Server,
    hooks: dict[int, str],
    receipts: Receipts,
    run: Run,
) -> None:
    base = server.url
    reports = {r["id"] for r in await every_page(session, base + "/api/v1/reports")}
    deliveries = await every_page(session, base + "/api/v1/webhook-deliveries")
    semaphore = asyncio.Semaphore(32)

    async def detail(delivery_id: int) -> dict[str, Any]:
        async with semaphore:
            url = f"{base}/api/v1/webhook-deliveries/{delivery_id}"
            found: dict[str, Any] = (await call(session, "GET", url))["data"]
            return found

    details = await asyncio.gather(*(detail(d["id"]) for d in deliveries))
    health = await call(session, "GET", base + "/healthz")

    lost = run.uploads_acknowledged - reports
    run.check(not lost, f"{len(lost)} acknowledged uploads are missing: {sorted(lost)[:10]}")
    fan_out = Counter((d["resourceId"], d["eventCode"], d["webhookId"]) for d in details)
    expected = {(r, c, w) for r in reports for c in EVENT_CODES for w in hooks}
    missing = expected - fan_out.keys()
    doubled = [key for key, n in fan_out.items() if n != 1]
    stray = fan_out.keys() - expected
    run.check(
        not missing,
        f"{len(missing)} (report, event, webhook) never delivered: {sorted(missing)[:5]}",
    )
    run.check(
        not doubled, f"{len(doubled)} (report, event, webhook) delivered twice: {doubled[:5]}"
    )
    run.check(
        not stray, f"{len(stray)} deliveries for reports or webhooks unknown: {sorted(stray)[:5]}"
    )

    statuses: Counter[str] = Counter()
    interrupted = duplicates = unfinished_attempts = 0
    journaled_ids = set()
    for d in details:
        name = hooks[d["webhookId"]]
        journaled_ids.add(d["messageId"])
        statuses[d["status"]] += 1
        attempts = d["attempts"]
        cut = [a for a in attempts if a["outcome"] == "interrupted"]
        kept = [a for a in attempts if a["outcome"] not in ("interrupted", None)]
        interrupted += len(cut)
        unfinished_attempts += sum(1 for a in attempts if a["outcome"] is None)
        where = f"delivery {d['id']} ({name}, {d['eventCode']})"
        run.check(d["status"] in ("delivered", "failed"), f"{where} is {d['status']}")
        run.check(
            d["attemptCount"] == len(kept),
            f"{where} counts {d['attemptCount']}, journal {len(kept)}",
        )
        if name in ALWAYS_FAILS:
            run.check(d["status"] == "failed", f"{where} to /status/500 is {d['status']}")
        if d["status"] == "failed":
            run.check(
                len(kept) == MAX_ATTEMPTS and all(a["outcome"] == "failure" for a in kept),
                f"{where} failed after {[a['outcome'] for a in kept]}",
            )
        if d["status"] == "delivered":
            run.check(
                bool(kept) and kept[-1]["outcome"] == "success" and len(kept) <= MAX_ATTEMPTS,
                f"{where} delivered after {[a['outcome'] for a in kept]}",
            )
        received = receipts.by_message[d["messageId"]]
        run.check(
            len(kept) <= received <= len(attempts),
            f"{where}: {received} receipts for {len(kept)} attempts and {len(cut)} interrupted",
        )
        extra = max(0, received - len(kept))
        duplicates += extra
        run.check(
            extra == 0 or bool(cut), f"{where}: a duplicate receipt with no interrupted attempt"
        )
    ghosts = set(receipts.by_message) - journaled_ids
    run.check(not ghosts, f"the receiver got {len(ghosts)} messages the journal never sent")
    run.check(not receipts.gap, "the receiver's log overflowed between polls: receipts incomplete")
    run.check(unfinished_attempts == 0, f"{unfinished_attempts} attempts have no outcome")
    run.check(
        health["queueDepth"] == 0 and health["inFlight"] == 0 and health["oldestOverdueMs"] is None,
        f"/healthz is not idle: {health}",
    )
    run.counts.update(
        {
            "uploads acknowledged": len(run.uploads_acknowledged),
            "upload retries": run.upload_errors,
            "reports": len(reports),
            "events": len(reports) * len(EVENT_CODES),
            "deliveries": len(details),
            "delivered": statuses["delivered"],
            "failed": statuses["failed"],
            "attempts": sum(len(d["attempts"]) for d in details),
            "interrupted attempts": interrupted,
            "receipts": sum(receipts.by_message.values()),
            "duplicate receipts": duplicates,
            "kills": run.kills,
        }
    )


# --- entry ---------------------------------------------------------------------------------


def table(run: Run) -> str:
    width = max(len(k) for k in run.counts)
    lines = [f"{'what':<{width}}  {'count':>8}", f"{'-' * width}  {'-' * 8}"]
    lines += [f"{k:<{width}}  {v:>8}" for k, v in run.counts.items()]
    verdict = "PASS" if not run.failures else f"FAIL ({len(run.failures)} checks)"
    return "\n".join([*lines, "", verdict, *(f"  - {f}" for f in run.failures[:30])])


def fuzz(examples: int) -> int:
    """The schemathesis run of tests/reliability/test_fuzz.py with `examples` per operation.

    Without pytest's per-test timeout: every operation runs in one test, which at this
    count outlasts it.
    """
    env = {**os.environ, "QRM_FUZZ_EXAMPLES": str(examples)}
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "--timeout=0",
        "tests/reliability/test_fuzz.py",
    ]
    return subprocess.run(command, cwd=ROOT, env=env, check=False).returncode


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="make soak", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=2000, help="report uploads (default 2000)")
    parser.add_argument("--kills", type=int, default=6, help="SIGKILLs of the server (default 6)")
    parser.add_argument(
        "--kill-gap", type=float, default=2.0,
        help="mean seconds between kills, drawn uniformly from 0.2 to twice it (default 2)",
    )  # fmt: skip
    parser.add_argument(
        "--seconds", type=int, default=900,
        help="give up, and fail, if deliveries are not all final by then (default 900)",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=7, help="seed of the kill moments (default 7)")
    parser.add_argument("--workers", type=int, default=4, help="concurrent uploaders (default 4)")
    parser.add_argument(
        "--time-scale", type=float, default=600,
        help="the server's time scale: 600 makes the 60 s retry interval 0.1 s (default 600)",
    )  # fmt: skip
    parser.add_argument(
        "--timeout", type=float, default=1200,
        help="receiver timeout in documented seconds; 1200 is 2 s at scale 600, so a busy "
        "two-core machine does not turn /ok into timeouts (default 1200)",
    )  # fmt: skip
    parser.add_argument(
        "--fuzz", action="store_true", help="also fuzz the API (tests/reliability/test_fuzz.py)"
    )
    parser.add_argument(
        "--fuzz-examples", type=int, default=500, help="examples per operation (default 500)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    status = 0
    if args.fuzz:
        print(f"fuzzing the API, {args.fuzz_examples} examples per operation", flush=True)
        status = fuzz(args.fuzz_examples)
    with tempfile.TemporaryDirectory(prefix="mock-qrm-soak-") as scratch:
        folder = Path(scratch)
        try:
            run = asyncio.run(soak(args, folder))
        except (TimeoutError, RuntimeError, AssertionError) as exc:
            print(f"soak: error: {exc}", file=sys.stderr)
            for log in sorted(folder.glob("*.log")):
                print(
                    f"--- {log.name} (tail)\n{log.read_text(errors='replace')[-2000:]}",
                    file=sys.stderr,
                )
            return 1
    print(table(run))
    return 1 if run.failures or status else 0


if __name__ == "__main__":
    sys.exit(main())
