"""The testing kit's figure (SPEC 7): a receiver test with the kit beside a bare pytest-aiohttp test.

Generated test files run in pytest subprocesses, as a user's suite would: 30
kit tests (`mock_qrm` + `qrm_receiver`: create a webhook, upload a report, wait
for the delivery), the same written async, and 30 bare tests (`aiohttp_client`
for a one-route app, one POST), each kind in a session of its own. A conftest
records each test's setup + call + teardown, and when each test started. The
figure is the median over every round of every test but a session's first,
which pays the session's start-up (`kit_first_test_ms`). `start_to_start_ms`
is what the suite's wall clock sees per test, pytest's own work included.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import statistics
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.__main__ import Figure

TARGET_RATIO = 3.0

CONFTEST = '''
"""Records each test's setup + call + teardown, and when it started, in seconds, by node id."""
import json
import os
import time

durations = {}
starts = {}


def pytest_runtest_logstart(nodeid, location):
    starts[nodeid] = time.perf_counter()


def pytest_runtest_logreport(report):
    durations[report.nodeid] = durations.get(report.nodeid, 0.0) + report.duration


def pytest_sessionfinish(session):
    with open(os.environ["KIT_BENCH_OUT"], "w") as out:
        json.dump({"durations": durations, "starts": starts}, out)
'''

INI = """
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
"""

TESTS = {
    "kit": """
def test_{n:03d}(mock_qrm, qrm_receiver):
    mock_qrm.create_webhook(qrm_receiver.url + "/ok")
    report = mock_qrm.upload_report()
    assert mock_qrm.wait_for_delivery(resource_id=report.resource_id).attempt_count == 1
""",
    "kit_async": """
async def test_{n:03d}(mock_qrm, qrm_receiver):
    await mock_qrm.acreate_webhook(qrm_receiver.url + "/ok")
    report = await mock_qrm.aupload_report()
    delivery = await mock_qrm.await_for_delivery(resource_id=report.resource_id)
    assert delivery.attempt_count == 1
""",
    "bare": """
async def test_{n:03d}(aiohttp_client):
    async def hook(request):
        await request.read()
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", hook)
    client = await aiohttp_client(app)
    response = await client.post("/hook", data=BODY)
    assert response.status == 200
""",
}

HEADER = """
from aiohttp import web

BODY = b'{"messageId": "wh-1", "eventCode": "report.created", "payload": {"resourceId": 12301}}'
"""


def write_suite(folder: Path, tests: int) -> dict[str, Path]:
    """One test file per kind, each of `tests` tests, with the timing conftest."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "conftest.py").write_text(CONFTEST)
    (folder / "pytest.ini").write_text(INI)
    paths = {}
    for kind, test in TESTS.items():
        paths[kind] = folder / f"test_{kind}.py"
        body = HEADER + "".join("\n" + test.format(n=n) for n in range(tests))
        paths[kind].write_text(textwrap.dedent(body))
    return paths


@dataclass
class Session:
    """One pytest session's tests, in the order they ran."""

    durations: list[float]
    """Setup + call + teardown of each test, ms."""
    intervals: list[float]
    """From each test's start to the next one's, ms: what the suite's wall clock sees."""


def run_session(folder: Path, path: Path) -> Session:
    out = folder / f"{path.stem}.json"
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", str(path)]
    env = {**os.environ, "KIT_BENCH_OUT": str(out)}
    done = subprocess.run(
        command, cwd=folder, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"the kit benchmark's tests failed:\n{done.stdout}\n{done.stderr}")
    recorded = json.loads(out.read_text())
    order = sorted(recorded["starts"], key=recorded["starts"].get)
    starts = [recorded["starts"][nodeid] for nodeid in order]
    return Session(
        [recorded["durations"][nodeid] * 1000 for nodeid in order],
        [(b - a) * 1000 for a, b in itertools.pairwise(starts)],
    )


async def kit_figure(folder: Path, tests: int = 30, rounds: int = 3) -> Figure:
    """Rounds of three sessions (kit, kit async, bare), one after the other, never at once:
    whatever a kit session leaves running cannot slow a bare test down."""
    paths = write_suite(folder / "kit", tests)
    sessions: dict[str, list[Session]] = {kind: [] for kind in TESTS}
    for _ in range(rounds):
        for kind, path in paths.items():
            sessions[kind].append(await asyncio.to_thread(run_session, folder / "kit", path))

    def median(kind: str, field: str = "durations") -> float:
        """Every test but each session's first, which pays the session's start-up."""
        values: list[float] = [
            value for session in sessions[kind] for value in getattr(session, field)[1:]
        ]
        return statistics.median(values)

    kit, bare = median("kit"), median("bare")
    ratio = kit / bare
    detail: dict[str, Any] = {
        "ratio": round(ratio, 2),
        "tests_per_kind": tests * rounds,
        "kit_async_ms": round(median("kit_async"), 2),
        "kit_first_test_ms": [round(s.durations[0], 1) for s in sessions["kit"]],
        "bare_first_test_ms": [round(s.durations[0], 1) for s in sessions["bare"]],
        "start_to_start_ms": {kind: round(median(kind, "intervals"), 2) for kind in TESTS},
        "round_medians_ms": {
            kind: [round(statistics.median(s.durations[1:]), 2) for s in sessions[kind]]
            for kind in TESTS
        },
        "command": f"make bench ARGS='--only kit --kit-tests {tests} --kit-rounds {rounds}'",
    }
    return Figure(
        "testing kit: upload + wait for delivery, per test (median)",
        round(kit, 2),
        "ms",
        round(bare, 2),
        "pytest-aiohttp aiohttp_client test, one POST (median)",
        f"<= {TARGET_RATIO:g}x baseline",
        ratio <= TARGET_RATIO,
        detail,
    )
