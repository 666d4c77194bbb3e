"""The CLI as a client for any language's CI (SPEC 8.3): every command, `--json`, exit codes.

Real `mock-qrm serve` and `mock-qrm receiver` processes; the CLI runs as a subprocess,
as a Java or Node pipeline would run it.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.processes import free_port, running

ROOT = Path(__file__).parents[2]
CI_SCRIPT = ROOT / "examples" / "ci" / "ci.sh"


def cli(*args: str, server: str | None = None, env: dict[str, str] | None = None) -> Any:
    """`mock-qrm ARGS`, told where the server is as a CI job would: in the environment."""
    extra = {"MOCK_QRM_SERVER": server} if server is not None else {}
    return subprocess.run(
        [sys.executable, "-m", "mock_qrm", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **extra, **(env or {})},
    )


def data(*args: str, server: str) -> Any:
    """The `--json` output of a command that must succeed."""
    result = cli(*args, "--json", server=server)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A server on a manual clock and a receiver."""
    folder = tmp_path_factory.mktemp("cli-commands")
    receiver_port, server_port = free_port(), free_port()
    receiver = f"http://127.0.0.1:{receiver_port}"
    server = f"http://127.0.0.1:{server_port}"
    with (
        running(["receiver", "--port", str(receiver_port)], receiver + "/_received", folder / "r"),
        running(
            ["serve", "--port", str(server_port), "--db", str(folder / "db"), "--manual-clock"],
            server + "/healthz",
            folder / "s",
        ),
    ):
        yield server, receiver


@pytest.fixture
def server(system: tuple[str, str]) -> str:
    url = system[0]
    assert cli("reset", server=url).returncode == 0
    return url


def test_webhook_commands_print_the_apis_data(server: str, system: tuple[str, str]) -> None:
    receiver = system[1]
    made = data(
        "webhooks", "create", "--name", "Orders", "--url", receiver + "/ok",
        "--event", "report.created", "--basic-auth", "qrm:s3cret", "--header", "X-Tenant=acme",
        "--header", "X-Empty=", "--rate-limit", "2/minute", server=server,
    )  # fmt: skip
    assert made["name"] == "Orders"
    assert made["basicAuth"] == {"username": "qrm", "passwordSet": True}
    assert made["headers"] == {"X-Tenant": "acme", "X-Empty": ""}
    assert made["rateLimit"] == {"limit": 2, "period": "minute"}
    webhook_id = str(made["id"])
    assert [w["id"] for w in data("webhooks", "list", server=server)] == [made["id"]]
    assert data("webhooks", "show", webhook_id, server=server)["url"] == receiver + "/ok"
    table = cli("webhooks", "show", webhook_id, server=server).stdout
    assert "X-Tenant: acme" in table and "2/minute" in table
    renamed = data(
        "webhooks", "update", webhook_id, "--name", "Renamed", "--no-basic-auth", "--no-headers",
        "--rate-limit", "100/hour", server=server,
    )  # fmt: skip
    assert (renamed["name"], renamed["basicAuth"]) == ("Renamed", None)
    assert (renamed["headers"], renamed["rateLimit"]) == ({}, {"limit": 100, "period": "hour"})
    assert data("webhooks", "deactivate", webhook_id, server=server)["active"] is False
    assert data("webhooks", "activate", webhook_id, server=server)["active"] is True
    assert data("webhooks", "delete", webhook_id, server=server) == {
        "id": made["id"],
        "deleted": True,
    }
    assert data("webhooks", "list", server=server) == []
    table = cli("webhooks", "list", server=server)
    assert table.returncode == 0 and "0 webhooks" in table.stdout


def test_reports_commands(server: str) -> None:
    rows = data("reports", "list", "--limit", "3", server=server)
    assert len(rows) == 3
    report = data("reports", "show", str(rows[0]["id"]), server=server)
    assert report["inspectionGeneral"]["inspectionId"] == rows[0]["inspectionId"]
    uploaded = data("upload-report", server=server)
    assert uploaded["path"] == f"/reports/{uploaded['resourceId']}"
    emitted = data(
        "trigger", "report.created", "--report", str(uploaded["resourceId"]), server=server
    )
    assert emitted["resourceId"] == uploaded["resourceId"]


def test_deliveries_wait_redeliver_and_clock(server: str, system: tuple[str, str]) -> None:
    receiver = system[1]
    data("webhooks", "create", "--name", "Flaky", "--url", receiver + "/flaky/1",
         "--event", "report.created", server=server)  # fmt: skip
    resource = data("upload-report", server=server)["resourceId"]
    scheduled = data("wait", "--status", "retry_scheduled", "--resource-id", str(resource),
                     server=server)  # fmt: skip
    assert scheduled["attemptCount"] == 1

    timed_out = cli("wait", "--resource-id", str(resource), "--timeout", "0.5", server=server)
    assert timed_out.returncode == 1
    assert "Expected a delivery with status delivered" in timed_out.stderr
    assert "retry_scheduled" in timed_out.stderr
    assert "mock-qrm clock advance" in timed_out.stderr  # the manual clock hint

    before = data("clock", server=server)
    assert before["manual"] is True
    after = data("clock", "advance", "61", server=server)
    assert after["now"] > before["now"]
    delivered = data("wait", "--resource-id", str(resource), server=server)
    assert (delivered["status"], delivered["attemptCount"]) == ("delivered", 2)

    attempt = data("redeliver", str(delivered["id"]), server=server)
    assert (attempt["trigger"], attempt["number"]) == ("manual", 3)
    assert data("redeliver", "--status", "delivered", server=server) == {"count": 1}
    [row] = data("deliveries", server=server)
    assert (row["attemptCount"], row["attemptsTotal"]) == (2, 4)
    listing = cli("deliveries", server=server)
    assert re.search(r"2/4 \+2\s+200\s+delivered", listing.stdout), listing.stdout
    detail = data("deliveries", "show", str(row["id"]), server=server)
    assert [a["trigger"] for a in detail["attempts"]][:3] == ["automatic", "automatic", "manual"]
    shown = cli("deliveries", "show", str(row["id"]), server=server)
    assert "manual" in shown.stdout and "2/4" in shown.stdout


def test_webhooks_stats_agree_with_the_journal(server: str, system: tuple[str, str]) -> None:
    """A receiver that fails once then answers 200: what `webhooks stats` says, in JSON and in
    words, is what `deliveries show` lists."""
    receiver = system[1]
    made = data("webhooks", "create", "--name", "Flaky", "--url", receiver + "/flaky/1",
                "--event", "report.created", server=server)  # fmt: skip
    hook = str(made["id"])
    resource = str(data("upload-report", server=server)["resourceId"])
    data("wait", "--status", "retry_scheduled", "--resource-id", resource, server=server)
    data("clock", "advance", "61", server=server)
    delivered = data("wait", "--resource-id", resource, server=server)
    attempts = data("deliveries", "show", str(delivered["id"]), server=server)["attempts"]

    figures = data("webhooks", "stats", hook, server=server)
    assert figures["attempts"] == len(attempts) == 2
    assert figures["byStatus"] == {"200": 1, "500": 1}
    assert figures["successRate"] == 0.5
    assert (figures["delivered"], figures["failed"]) == (1, 0)
    assert (figures["lastFailureAt"], figures["lastSuccessAt"]) == tuple(
        a["startedAt"] for a in attempts
    )
    short, long = sorted(a["durationMs"] for a in attempts)
    assert figures["latencyMs"] == {"p50": short, "p95": long, "p99": long}  # nearest rank
    later = data("webhooks", "stats", hook, "--since", attempts[1]["startedAt"], server=server)
    assert (later["attempts"], later["byStatus"], later["delivered"]) == (1, {"200": 1}, 0)

    shown = cli("webhooks", "stats", hook, "--per-minute", "3", server=server)
    assert shown.returncode == 0, shown.stderr
    assert re.search(r"attempts +2 \(200: 1, 500: 1\)", shown.stdout), shown.stdout
    assert re.search(r"success rate +50 % of attempts answered 200", shown.stdout)
    assert re.search(r"delivered +1 delivery\n", shown.stdout)
    assert re.search(r"failed +0 deliveries", shown.stdout)
    assert re.search(r"MINUTE +ATTEMPTS +FAILURES +P95", shown.stdout)
    assert (
        len(data("webhooks", "stats", hook, "--per-minute", "3", server=server)["perMinute"]) == 3
    )


def test_follow_json_prints_one_frame_per_line_as_it_comes(
    server: str, system: tuple[str, str]
) -> None:
    receiver = system[1]
    data("webhooks", "create", "--name", "Ok", "--url", receiver + "/ok",
         "--event", "report.created", server=server)  # fmt: skip
    follow = subprocess.Popen(
        [sys.executable, "-m", "mock_qrm", "deliveries", "--follow", "--json", "--server", server],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert follow.stdout is not None and follow.stderr is not None
        # Frames before it subscribes are not its to print: it says (on stderr) once it has.
        assert follow.stderr.readline().startswith("following deliveries on ")
        data("upload-report", server=server)
        frames = []
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            frame = json.loads(follow.stdout.readline())
            frames.append(frame)
            if frame["delivery"]["status"] == "delivered":
                break
        assert [f["type"] for f in frames] == ["delivery"] * len(frames)
        assert [f["delivery"]["status"] for f in frames][-1] == "delivered"
        assert all(isinstance(f["seq"], int) for f in frames)
    finally:
        follow.kill()
        follow.wait()


@pytest.mark.parametrize(
    ("args", "status", "said"),
    [
        (("webhooks",), 2, "required: ACTION"),
        (("webhooks", "show", "abc"), 2, "expected a positive integer"),
        (("deliveries", "--limit", "500"), 2, "at most 200"),
        (("redeliver",), 2, "pass a delivery ID, or filters"),
        (("clock", "advance"), 2, "needs SECONDS"),
        (("webhooks", "update", "1"), 2, "nothing to change"),
        (("webhooks", "update", "1", "--header", "X-Tenant"), 2, "expected NAME=VALUE"),
        (("webhooks", "update", "1", "--rate-limit", "2/day"), 2, "expected N/minute or N/hour"),
        (("webhooks", "show", "999"), 1, "Webhook 999 was not found [HTTP 404]"),
        (("deliveries", "show", "999"), 1, "Delivery 999 was not found"),
        (("webhooks", "stats", "999"), 1, "Webhook 999 was not found [HTTP 404]"),
        (("webhooks", "stats", "1", "--since", "today"), 2, "expected an ISO 8601 time"),
        (("webhooks", "stats", "1", "--per-minute", "2000"), 2, "at most 1440"),
        (("webhooks", "create", "--name", "x", "--url", "ftp://x", "--event", "report.created"),
         1, "url"),
    ],
)  # fmt: skip
def test_exit_status_and_one_line_on_stderr(
    server: str, args: tuple[str, ...], status: int, said: str
) -> None:
    result = cli(*args, server=server)
    assert result.returncode == status, result.stderr
    assert said in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stdout == ""


def test_unreachable_server_is_exit_1() -> None:
    result = cli("webhooks", "list", server=f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 1
    assert "cannot reach" in result.stderr and "connection refused" in result.stderr


def test_server_and_key_come_from_either_environment_name(server: str) -> None:
    for name in ("MOCK_QRM_SERVER", "QRM_TUI_SERVER"):
        result = cli("clock", "--json", env={name: server})
        assert result.returncode == 0, (name, result.stderr)


def _complete(script: str, *words: str) -> list[str]:
    """What bash offers after `words` (the last one being typed), with the script loaded."""
    quoted = " ".join(shlex.quote(word) for word in words)
    probe = (
        f"{script}\nCOMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}; _mock_qrm;"
        ' printf "%s\\n" "${COMPREPLY[@]}"'
    )
    completed = subprocess.run(["bash", "-c", probe], text=True, capture_output=True)
    return [line for line in completed.stdout.splitlines() if line]


def test_bash_completion_lists_commands_actions_flags_and_values() -> None:
    result = cli("completion", "bash")
    assert result.returncode == 0
    script = result.stdout
    assert "complete -o default -F _mock_qrm mock-qrm" in script
    checked = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True)
    assert checked.returncode == 0, checked.stderr
    assert _complete(script, "mock-qrm", "webh") == ["webhooks"]
    assert "create" in _complete(script, "mock-qrm", "webhooks", "")
    assert _complete(script, "mock-qrm", "webhooks", "create", "--ev") == ["--event"]
    assert _complete(script, "mock-qrm", "webhooks", "create", "--event", "") == [
        "report.created",
        "report.file_ready",
    ]
    assert _complete(script, "mock-qrm", "deliveries", "--status", "re") == ["retry_scheduled"]
    assert "--time-scale" in _complete(script, "mock-qrm", "serve", "--ti")
    assert "'GET /api/v1/reports/{id}'" in _complete(
        script, "mock-qrm", "faults", "add", "--route", ""
    )
    assert "compinit" in cli("completion", "zsh").stdout


# --- the README's CI script, run as CI would run it ------------------------------------


def _readme_script() -> str:
    readme = (ROOT / "README.md").read_text()
    found = re.search(r"```sh\n(#!/bin/sh\n# A CI job.*?)```", readme, re.S)
    assert found, "the README shows the CI script"
    return found.group(1)


def test_the_readme_shows_the_ci_script_as_it_is() -> None:
    assert _readme_script() == CI_SCRIPT.read_text()


@pytest.mark.parametrize(("path", "passes"), [("/ok", True), ("/status/204", False)])
def test_the_ci_script_passes_a_good_receiver_and_fails_a_bad_one(
    system: tuple[str, str], path: str, passes: bool
) -> None:
    receiver = system[1]
    bin_dir = str(Path(sys.executable).parent)
    assert shutil.which("mock-qrm", path=bin_dir), "mock-qrm is installed beside python"
    result = subprocess.run(
        ["sh", str(CI_SCRIPT)],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            **os.environ,
            "PATH": bin_dir + os.pathsep + os.environ["PATH"],
            "MOCK_QRM_PORT": str(free_port()),
            "RECEIVER_URL": receiver + path,
            "WAIT_TIMEOUT": "3",
        },
    )
    if passes:
        assert result.returncode == 0, result.stderr
        assert "delivered" in result.stdout
    else:
        assert result.returncode == 1
        assert "Expected a delivery with status delivered" in result.stderr
        assert "last answer HTTP 204" in result.stderr


def test_faults_and_api_calls(server: str) -> None:
    import urllib.error
    import urllib.request

    fault = data("faults", "add", "--status", "503", "--times", "1", "--retry-after", "5",
                 server=server)  # fmt: skip
    assert (fault["route"], fault["status"], fault["remaining"]) == (
        "GET /api/v1/reports/{id}",
        503,
        1,
    )
    assert [f["id"] for f in data("faults", "list", server=server)] == [fault["id"]]
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(server + "/api/v1/reports/12301", timeout=5)
    assert refused.value.code == 503 and refused.value.headers["Retry-After"] == "5"
    assert [(c["path"], c["status"]) for c in data("api-calls", server=server)] == [
        ("/api/v1/reports/12301", 503)
    ]
    data("faults", "add", "--route", "GET /api/v1/reports", "--reset", server=server)
    assert data("faults", "clear", server=server) == []
    table = cli("faults", "list", server=server)
    assert table.returncode == 0 and "0 faults" in table.stdout
