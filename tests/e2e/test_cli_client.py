"""The client commands against a real server: upload-report, trigger, deliveries [--follow]."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.processes import free_port, running


def mock_qrm(*args: str, server: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mock_qrm", *args, "--server", server],
        capture_output=True,
        text=True,
        timeout=30,
    )


def post_json(url: str, body: object) -> object:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A server (time scale 60: retries one second apart) and a receiver."""
    folder = tmp_path_factory.mktemp("cli")
    receiver_port, server_port = free_port(), free_port()
    receiver = f"http://127.0.0.1:{receiver_port}"
    server = f"http://127.0.0.1:{server_port}"
    with (
        running(
            ["receiver", "--port", str(receiver_port)], receiver + "/_received", folder / "r.log"
        ),
        running(
            ["serve", "--port", str(server_port), "--db", str(folder / "db"), "--time-scale", "60"],
            server + "/healthz",
            folder / "s.log",
        ),
    ):
        yield server, receiver


def test_upload_report_prints_the_new_report(system: tuple[str, str]) -> None:
    server, _ = system
    result = mock_qrm("upload-report", "--set", "status=completed", server=server)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("uploaded report ")
    assert "GET /api/v1/reports/" in result.stdout


def test_a_reader_that_stops_early_ends_the_command_quietly(system: tuple[str, str]) -> None:
    """`mock-qrm ... --json | head -1`: the pipe closes before the output is written."""
    server, _ = system
    reader, writer = os.pipe()
    os.close(reader)  # nobody will read: the first write fails with EPIPE
    try:
        result = subprocess.run(
            [sys.executable, "-m", "mock_qrm", "reports", "show", "12301", "--json"],
            stdout=writer,
            stderr=subprocess.PIPE,
            text=True,
            timeout=30,
            env={**os.environ, "MOCK_QRM_SERVER": server},
        )
    finally:
        os.close(writer)
    assert result.stderr == ""
    assert result.returncode == 141  # as a command killed by SIGPIPE would


def test_upload_report_with_a_bad_override_says_which_field(system: tuple[str, str]) -> None:
    server, _ = system
    result = mock_qrm("upload-report", "--set", "nope=1", server=server)
    assert result.returncode == 1
    assert "overrides.nope" in result.stderr
    assert "Traceback" not in result.stderr


def test_trigger_needs_a_known_event_and_report(system: tuple[str, str]) -> None:
    server, _ = system
    ok = mock_qrm("trigger", "report.created", "--report", "12301", server=server)
    assert ok.returncode == 0, ok.stderr
    assert "report.created for report 12301" in ok.stdout
    unknown = mock_qrm("trigger", "report.nope", "--report", "12301", server=server)
    assert unknown.returncode == 2  # refused before the server is asked
    assert "unknown event code 'report.nope'; known: report.created, report.file_ready" in (
        unknown.stderr
    )
    newest = mock_qrm("trigger", "report.file_ready", server=server)  # no --report: the newest
    assert newest.returncode == 0, newest.stderr
    assert "report.file_ready for report " in newest.stdout
    assert "for report 12301" not in newest.stdout


def test_deliveries_follow_prints_each_attempt_until_delivered(
    system: tuple[str, str], tmp_path: Path
) -> None:
    server, receiver = system
    post_json(
        server + "/api/v1/webhooks",
        {"name": "Flaky", "url": receiver + "/flaky/2", "events": ["report.created"]},
    )
    follow = subprocess.Popen(
        [sys.executable, "-m", "mock_qrm", "deliveries", "--follow", "--server", server],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert follow.stdout is not None
        assert "following deliveries" in follow.stdout.readline()  # printed once subscribed
        assert mock_qrm("upload-report", server=server).returncode == 0
        lines = []
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            line = follow.stdout.readline()
            if "'Flaky'" in line:
                lines.append(line)
            if "delivered" in line:
                break
        assert len(lines) == 3, lines
        assert "<-- 500" in lines[0] and "retry at" in lines[0]
        assert "<-- 500" in lines[1]
        assert "<-- 200" in lines[2] and lines[2].rstrip().endswith("delivered")
    finally:
        follow.kill()
        follow.wait()

    listing = mock_qrm("deliveries", "--status", "delivered", server=server)
    assert listing.returncode == 0
    assert "Flaky" in listing.stdout


def test_client_commands_explain_an_absent_server() -> None:
    result = mock_qrm("deliveries", server=f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 1
    assert "cannot reach" in result.stderr
    assert "Traceback" not in result.stderr


def once(stream: Any) -> str:
    """The next line about the webhook 'Once': the module's other webhooks (Flaky, retrying
    one second apart) may print lines of their own meanwhile."""
    line: str = stream.readline()
    while line and "'Once'" not in line:
        line = stream.readline()
    return line


def test_follow_says_manual_for_a_redelivery_it_first_sees_mid_flight(
    system: tuple[str, str],
) -> None:
    """A redelivery of a delivery that succeeded at its first attempt is one line, `manual`."""
    server, receiver = system
    post_json(
        server + "/api/v1/webhooks",
        {"name": "Once", "url": receiver + "/ok", "events": ["report.created"]},
    )
    uploaded = json.loads(mock_qrm("upload-report", "--json", server=server).stdout)
    waited = mock_qrm("wait", "--resource-id", str(uploaded["resourceId"]), "--json", server=server)
    assert waited.returncode == 0, waited.stderr
    delivery = json.loads(waited.stdout)
    follow = subprocess.Popen(
        [sys.executable, "-m", "mock_qrm", "deliveries", "--follow", "--server", server],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert follow.stdout is not None
        assert "following deliveries" in follow.stdout.readline()
        assert mock_qrm("redeliver", str(delivery["id"]), server=server).returncode == 0
        line = once(follow.stdout)
        assert f"#{delivery['id']} " in line and "'Once' manual attempt  <-- 200" in line, line
        assert line.rstrip().endswith("delivered")
        assert mock_qrm("upload-report", server=server).returncode == 0  # the next line
        nxt = once(follow.stdout)
        assert f"#{delivery['id']} " not in nxt, nxt  # no second line for the redelivery
        assert "attempt 1/4" in nxt
    finally:
        follow.kill()
        follow.wait()


def test_upload_report_with_a_number_too_long_to_read_is_one_line(system: tuple[str, str]) -> None:
    """`--set FIELD=<5,000 digits>` ended in a traceback (issue 28): the value goes as text,
    which the field refuses, and the command says so in one line."""
    server, _ = system
    result = mock_qrm("upload-report", "--set", "isReferenceSample=" + "9" * 5000, server=server)
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("mock-qrm: error: Validation error (overrides.isReferenceSample: ")
    assert line.endswith("[HTTP 422]")
    assert "Traceback" not in result.stderr
