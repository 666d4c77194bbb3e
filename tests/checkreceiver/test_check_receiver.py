"""`mock-qrm check-receiver URL` (SPEC 8.5) against small receivers, good and bad.

Each test serves a receiver on this test's loop and runs the real command
(`mock_qrm.cli.main`) in a thread, so the command's own mock and event loop are
its own, as from a shell. Timeouts are shortened with the command's own flags.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import re
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from xml.etree import ElementTree as ET

import aiohttp
import pytest
from aiohttp import web

from mock_qrm.app import Settings, create_app
from mock_qrm.cli import main
from mock_qrm.cli.check.checks import CHECKS
from mock_qrm.client import QrmClient
from mock_qrm.serving import Running, serve
from tests.e2e.processes import free_port

KEY = "k3y"
CREDENTIALS = ("qrm", "s3cret")
FAST = ("--callback-timeout", "0.5")
"""How long a receiver that never calls back keeps a test waiting."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture(autouse=True)
def no_server_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MOCK_QRM_SERVER", "QRM_TUI_SERVER", "MOCK_QRM_API_KEY", "QRM_TUI_API_KEY"):
        monkeypatch.delenv(name, raising=False)


@dataclass
class Outcome:
    status: int
    out: str
    err: str

    def results(self) -> dict[str, str]:
        """`{check name: "PASS" | "WARN" | "FAIL"}` from the lines printed."""
        found = {}
        for line in self.out.splitlines():
            result, _, rest = line.partition("  ")
            if result in ("PASS", "WARN", "FAIL"):
                found[rest.split()[0]] = result
        return found

    def line(self, name: str) -> str:
        [found] = [x for x in self.out.splitlines() if x[6:].startswith(name + " ")]
        return found


async def check_receiver(capsys: pytest.CaptureFixture[str], *argv: str) -> Outcome:
    """`mock-qrm check-receiver ARGV` in a thread of its own: its exit status and output."""

    def run() -> int:
        try:
            main(["check-receiver", *argv])
        except SystemExit as exc:
            return int(exc.code or 0)
        return 0

    status = await asyncio.to_thread(run)
    captured = capsys.readouterr()
    return Outcome(status, captured.out, captured.err)


@pytest.fixture
async def receiver() -> AsyncIterator[Callable[[Handler], Awaitable[str]]]:
    """`await receiver(handler)`: the handler served on a free port; its URL."""
    running: list[Running] = []

    async def start(handler: Handler) -> str:
        app = web.Application()
        app.router.add_post("/hook", handler)
        served = await serve(app, "127.0.0.1", 0, shutdown_timeout=0.1)
        running.append(served)
        return served.url + "/hook"

    yield start
    for served in running:
        await served.close()


async def answers_200(request: web.Request) -> web.Response:
    await request.read()
    return web.json_response({"ok": True})


async def answers_204(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(status=204)


async def hangs(request: web.Request) -> web.Response:
    await asyncio.Event().wait()
    raise AssertionError("never")


def calls_back_once(api_url: str) -> Handler:
    """Answers 200 and fetches the report once, whatever QRM answers: no retry."""

    async def handler(request: web.Request) -> web.Response:
        message = await request.json()
        url = f"{api_url}/reports/{message['payload']['resourceId']}"
        async with (
            aiohttp.ClientSession() as session,
            session.get(url, headers={"apiKey": KEY}) as response,
        ):
            await response.read()
        return web.json_response({"ok": True})

    return handler


def example_receiver() -> ModuleType:
    path = Path(__file__).parents[2] / "examples" / "receiver" / "receiver.py"
    spec = importlib.util.spec_from_file_location("example_qrm_receiver", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


# --- the example receiver: ready ------------------------------------------------------------


async def test_the_example_receiver_passes_every_check(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    example = example_receiver()
    port = free_port()
    config = example.Config(
        api_url=f"http://127.0.0.1:{port}/api/v1",
        api_key=KEY,
        username=CREDENTIALS[0],
        password=CREDENTIALS[1],
        retry_delays=(0.05, 0.1),
    )
    served = await serve(example.create_app(config), "127.0.0.1", 0)
    try:
        junit = tmp_path / "checks.xml"
        url = served.url + example.WEBHOOK_PATH
        outcome = await check_receiver(
            capsys,
            url,
            *("--port", str(port), "--api-key", KEY, "--basic-auth", ":".join(CREDENTIALS)),
            *("--json", "--junit", str(junit)),
        )
    finally:
        await served.close()

    assert outcome.status == 0, outcome.out + outcome.err
    checks = json.loads(outcome.out)["checks"]
    assert [c["name"] for c in checks] == list(CHECKS)
    assert {c["result"] for c in checks} == {"PASS"}, checks
    assert f"http://127.0.0.1:{port}" in outcome.err  # where to call back, off stdout
    assert f"apiKey: {KEY}" in outcome.err
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    assert suite.get("tests") == "8"
    assert suite.get("failures") == "0"
    assert [case.get("name") for case in suite.iter("testcase")] == list(CHECKS)


# --- each check failing ------------------------------------------------------------------------


async def test_a_204_fails_acknowledges_200_and_junit_says_so(
    capsys: pytest.CaptureFixture[str],
    receiver: Callable[[Handler], Awaitable[str]],
    tmp_path: Path,
) -> None:
    url = await receiver(answers_204)
    junit = tmp_path / "checks.xml"

    outcome = await check_receiver(capsys, url, "--port", "0", *FAST, "--junit", str(junit))

    assert outcome.status == 1
    line = outcome.line("acknowledges-200")
    assert line.startswith("FAIL  acknowledges-200   report.created for report ")
    assert "answered 204" in line
    assert "only exactly 200" in line
    assert outcome.results() == {
        "acknowledges-200": "FAIL",
        "within-timeout": "PASS",
        "duplicate-message": "FAIL",
        "file-ready": "FAIL",
        "basic-auth": "WARN",
        "calls-back": "WARN",
        "callback-retry": "WARN",
        "burst": "FAIL",
    }
    assert "204 (20)" in outcome.line("burst")
    assert (
        outcome.out.splitlines()[-1] == "8 checks: 1 passed, 3 warned, 4 failed: not ready for QRM"
    )

    cases = {c.get("name"): c for c in ET.parse(junit).getroot().iter("testcase")}
    failure = cases["acknowledges-200"].find("failure")
    assert failure is not None and "answered 204" in (failure.get("message") or "")
    note = cases["calls-back"].find("system-out")
    assert note is not None and (note.text or "").startswith("WARN: ")
    passed = cases["within-timeout"]
    assert passed.find("failure") is None and passed.find("system-out") is None


async def test_a_receiver_slower_than_the_timeout_fails_within_timeout(
    capsys: pytest.CaptureFixture[str], receiver: Callable[[Handler], Awaitable[str]]
) -> None:
    url = await receiver(hangs)

    outcome = await check_receiver(capsys, url, "--port", "0", "--timeout", "0.3", *FAST)

    assert outcome.status == 1
    assert outcome.results()["within-timeout"] == "FAIL"
    assert "no answer within the 0.3 s timeout" in outcome.line("within-timeout")
    assert "did not answer within the 0.3 s timeout" in outcome.line("acknowledges-200")


async def test_a_slow_answer_inside_the_timeout_is_a_warning(
    capsys: pytest.CaptureFixture[str], receiver: Callable[[Handler], Awaitable[str]]
) -> None:
    async def slow(request: web.Request) -> web.Response:
        await request.read()
        await asyncio.sleep(0.3)  # the receiver's pace, not the test's
        return web.json_response({"ok": True})

    url = await receiver(slow)

    outcome = await check_receiver(capsys, url, "--port", "0", "--timeout", "1.2", *FAST)

    assert outcome.status == 0, outcome.out  # a warning is not a failure
    assert outcome.results()["within-timeout"] == "WARN"
    assert "inside the 1.2 s timeout" in outcome.line("within-timeout")
    assert outcome.results()["burst"] == "WARN"


async def test_duplicates_file_ready_and_bursts_each_fail_on_their_own(
    capsys: pytest.CaptureFixture[str], receiver: Callable[[Handler], Awaitable[str]]
) -> None:
    seen: set[str] = set()
    in_flight = 0

    async def picky(request: web.Request) -> web.Response:
        """Processes a messageId twice, knows no report.file_ready, and takes 5 at a time."""
        nonlocal in_flight
        message = await request.json()
        if message["eventCode"] == "report.file_ready":
            return web.json_response({"error": "unknown event"}, status=400)
        if message["messageId"] in seen:
            return web.json_response({"error": "duplicate key"}, status=500)
        if in_flight >= 5:
            return web.json_response({"error": "busy"}, status=503)
        in_flight += 1
        try:
            await asyncio.sleep(0.2)
        finally:
            in_flight -= 1
        seen.add(message["messageId"])
        return web.json_response({"ok": True})

    url = await receiver(picky)

    outcome = await check_receiver(capsys, url, "--port", "0", *FAST)

    assert outcome.status == 1
    results = outcome.results()
    assert [results[name] for name in CHECKS[:4]] == ["PASS", "PASS", "FAIL", "FAIL"]
    assert "answer 200 to a messageId you have already processed" in outcome.line(
        "duplicate-message"
    )
    assert "answered 400" in outcome.line("file-ready")
    assert "Answer 200 to every event" in outcome.line("file-ready")
    assert results["burst"] == "FAIL"
    burst = re.search(r"(\d+) of 20 messages sent at once were answered 200", outcome.line("burst"))
    assert burst is not None and 5 <= int(burst[1]) < 20, outcome.line("burst")
    assert "the others: 503 (" in outcome.line("burst")


async def test_a_receiver_that_never_calls_back_is_only_a_warning(
    capsys: pytest.CaptureFixture[str], receiver: Callable[[Handler], Awaitable[str]]
) -> None:
    url = await receiver(answers_200)

    outcome = await check_receiver(capsys, url, "--port", "0", *FAST)

    assert outcome.status == 0, outcome.out
    assert outcome.results() == {
        "acknowledges-200": "PASS",
        "within-timeout": "PASS",
        "duplicate-message": "PASS",
        "file-ready": "PASS",
        "basic-auth": "WARN",
        "calls-back": "WARN",
        "callback-retry": "WARN",
        "burst": "PASS",
    }
    assert "did not call GET http://127.0.0.1:" in outcome.line("calls-back")
    assert "within 0.5 s" in outcome.line("calls-back")


async def test_a_receiver_that_ignores_basic_auth_fails_it(
    capsys: pytest.CaptureFixture[str], receiver: Callable[[Handler], Awaitable[str]]
) -> None:
    url = await receiver(answers_200)

    outcome = await check_receiver(capsys, url, "--port", "0", *FAST, "--basic-auth", "qrm:pw")

    assert outcome.status == 1
    assert outcome.results()["basic-auth"] == "FAIL"
    line = outcome.line("basic-auth")
    assert "a message without credentials answered 200" in line
    assert "a message with a wrong password answered 200" in line


async def test_a_receiver_that_does_not_retry_a_503_fails_callback_retry(
    capsys: pytest.CaptureFixture[str], receiver: Callable[[Handler], Awaitable[str]]
) -> None:
    port = free_port()
    url = await receiver(calls_back_once(f"http://127.0.0.1:{port}/api/v1"))

    outcome = await check_receiver(
        capsys, url, "--port", str(port), "--api-key", KEY, "--callback-timeout", "0.5"
    )

    assert outcome.status == 1
    assert outcome.results()["calls-back"] == "PASS"
    assert outcome.results()["callback-retry"] == "FAIL"
    assert "got 503 and the receiver did not try again within 1 s" in outcome.line("callback-retry")


async def test_leaving_the_retry_to_qrm_fails_callback_retry(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The example receiver without its own retries: it answers 502 and waits for QRM's."""
    example = example_receiver()
    port = free_port()
    config = example.Config(
        api_url=f"http://127.0.0.1:{port}/api/v1",
        api_key=KEY,
        username=CREDENTIALS[0],
        password=CREDENTIALS[1],
        retry_delays=(),
    )
    served = await serve(example.create_app(config), "127.0.0.1", 0)
    try:
        outcome = await check_receiver(
            capsys,
            served.url + example.WEBHOOK_PATH,
            *("--port", str(port), "--api-key", KEY, "--basic-auth", ":".join(CREDENTIALS)),
            "--callback-timeout",
            "0.5",
        )
    finally:
        await served.close()

    assert outcome.status == 1
    assert outcome.results()["callback-retry"] == "FAIL"
    line = outcome.line("callback-retry")
    assert "It answered the message 502" in line
    assert "QRM would re-send it, but only a minute later" in line


async def test_an_unreachable_receiver_fails_every_check_at_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"http://127.0.0.1:{free_port()}/hook"

    outcome = await check_receiver(capsys, url, "--port", "0", "--json")

    assert outcome.status == 1
    checks = json.loads(outcome.out)["checks"]
    assert [(c["name"], c["result"]) for c in checks] == [(name, "FAIL") for name in CHECKS]
    assert "connection refused" in checks[0]["detail"]
    assert checks[-1]["detail"].startswith("not run: ")


# --- a running mock ---------------------------------------------------------------------------


async def test_a_running_mock_is_used_and_left_as_it_was(
    capsys: pytest.CaptureFixture[str],
    receiver: Callable[[Handler], Awaitable[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = Settings.isolated(
        api_key=KEY, seed_reports=1
    )  # a manual clock: first attempts go anyway
    server = await serve(create_app(settings), "127.0.0.1", 0)
    try:
        url = await receiver(calls_back_once(server.url + "/api/v1"))
        async with QrmClient(server.url, KEY) as client:
            kept = await client.create_webhook(
                "Someone's", "http://127.0.0.1:9/x", ["report.file_ready"]
            )
            monkeypatch.setenv("MOCK_QRM_SERVER", server.url)
            monkeypatch.setenv("MOCK_QRM_API_KEY", KEY)

            outcome = await check_receiver(capsys, url, *FAST)

            assert outcome.out.startswith(f"checking {url} with the mock QRM at {server.url}\n")
            assert outcome.results()["calls-back"] == "PASS"
            assert outcome.results()["callback-retry"] == "FAIL"  # it was run, with a fault
            assert [w.id for w in await client.webhooks()] == [kept.id]
            assert await client.faults() == []
            journal = await client.deliveries(limit=1)
            # The check's 23 messages, and the file_ready it emitted to the webhook kept: no reset.
            assert journal.total == 24
    finally:
        await server.close()


# --- usage ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["ftp://example.com/hook"],
        ["http://qrm:pw@example.com/hook"],
        ["http://example.com/hook", "--basic-auth", "no-colon"],
        ["http://example.com/hook", "--timeout", "0"],
        ["http://example.com/hook", "--port", "70000"],
        ["http://example.com/hook", "--no-such-flag"],
        [],
    ],
    ids=["scheme", "credentials-in-url", "basic-auth", "timeout", "port", "unknown-flag", "no-url"],
)
def test_usage_errors_exit_2_with_one_line(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["check-receiver", *argv])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err


# --- a receiver's answer is data: shown as it is, never acted on -------------------------------


async def test_a_hostile_answer_body_is_escaped_in_lines_json_and_junit(
    capsys: pytest.CaptureFixture[str],
    receiver: Callable[[Handler], Awaitable[str]],
    tmp_path: Path,
) -> None:
    """ESC, BEL, NUL, a C1 CSI and markup in a 500's body: escapes in every output (SPEC 9.2)."""
    body = "boom\x1b[2J\x07\x00\x9b31m [bold]x[/bold] [/]"

    async def answers_500(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=500, text=body)

    url = await receiver(answers_500)
    junit = tmp_path / "checks.xml"
    human = await check_receiver(capsys, url, "--port", "0", *FAST, "--junit", str(junit))
    shown = "boom\\x1b[2J\\x07\\x00\\x9b31m [bold]x[/bold] [/]"
    assert shown in human.line("acknowledges-200")
    raw = [ch for ch in human.out if (ord(ch) < 0x20 and ch != "\n") or 0x7F <= ord(ch) <= 0x9F]
    assert raw == []
    cases = {c.get("name"): c for c in ET.parse(junit).getroot().iter("testcase")}  # parses
    failure = cases["acknowledges-200"].find("failure")
    assert failure is not None and shown in (failure.get("message") or "")

    as_json = await check_receiver(capsys, url, "--port", "0", *FAST, "--json")
    checks = {c["name"]: c for c in json.loads(as_json.out)["checks"]}
    assert shown in checks["acknowledges-200"]["detail"]
