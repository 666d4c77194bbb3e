"""What the command line writes when the data it shows is hostile (SPEC.md section 9.2).

A server that answers names, bodies and messages full of terminal control
characters and Rich markup (one stored before the text rule, a receiver's
answer, a fault's message): every command prints them as escapes, one table row
per row, markup as the text it is, and `--json` stays valid JSON that reads back
the same values. A stand-in server answers, so the test holds whatever a real one
would refuse to store.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.test_cli import clean_env, run

HOSTILE = "esc\x1b[31mred bel\x07 nul\x00 del\x7f csi\x9b2J line\nbreak sep\u2028 [/] [bold red]x[/bold red]"
"""Every kind: C0 (ESC, BEL, NUL, LF), DEL, C1 (CSI), a line separator, and markup."""
SHOWN = (
    "esc\\x1b[31mred bel\\x07 nul\\x00 del\\x7f csi\\x9b2J line\\nbreak sep\\u2028"
    " [/] [bold red]x[/bold red]"
)
"""How every human output shows it: escaped, and the markup as written."""
TIME = "2026-11-28T15:04:05.123Z"

WEBHOOK = {
    "id": 1,
    "name": HOSTILE,
    "url": "http://127.0.0.1:9/ok",
    "events": ["report.created"],
    "basicAuth": {"username": HOSTILE, "passwordSet": True},
    "active": True,
    "headers": {"X-Tenant": HOSTILE},
    "rateLimit": None,
    "createdAt": TIME,
    "updatedAt": TIME,
    "lastDelivery": None,
}
DELIVERY = {
    "id": 1,
    "messageId": HOSTILE,
    "webhookId": 1,
    "webhookName": HOSTILE,
    "eventCode": "report.created",
    "resourceId": 12301,
    "status": "failed",
    "attemptCount": 4,
    "attemptsTotal": 4,
    "nextAttemptAt": None,
    "createdAt": TIME,
    "completedAt": TIME,
    "lastResponseStatus": None,
    "lastError": HOSTILE,
    "lastDurationMs": 3,
}
ATTEMPT = {
    "number": 1,
    "trigger": "manual",
    "startedAt": TIME,
    "durationMs": 3,
    "url": "http://127.0.0.1:9/ok",
    "requestHeaders": {"X-Tenant": HOSTILE},
    "responseStatus": None,
    "responseHeaders": {"X-Echo": HOSTILE},
    "responseBody": HOSTILE,
    "responseTruncated": False,
    "error": HOSTILE,
    "outcome": "failure",
}
DETAIL = {
    **DELIVERY,
    "message": {
        "messageId": HOSTILE,
        "eventCode": "report.created",
        "eventName": HOSTILE,
        "payload": {"resourceId": 12301, "path": "/reports/12301"},
    },
    "attempts": [ATTEMPT],
}
REPORT = {
    "id": 12301,
    "inspectionId": HOSTILE,
    "caseNumber": HOSTILE,
    "inspectionType": HOSTILE,
    "result": "pass",
    "status": "completed",
    "createdAt": TIME,
    "fileReady": True,
}
FAULT = {"id": 1, "route": HOSTILE, "status": 503, "times": 2, "remaining": 2}
CALL = {"at": TIME, "method": "GET", "path": HOSTILE, "status": 503, "faultId": 1}


def page(item: dict[str, Any]) -> dict[str, Any]:
    return {"data": [item], "limit": 50, "offset": 0, "total": 1}


ANSWERS: dict[tuple[str, str], tuple[int, Any]] = {
    ("GET", "/healthz"): (200, {"status": "ok", "maxAttempts": 4}),
    ("GET", "/api/v1/webhooks"): (200, page(WEBHOOK)),
    ("GET", "/api/v1/webhooks/1"): (200, {"data": WEBHOOK}),
    ("GET", "/api/v1/webhook-deliveries"): (200, page(DELIVERY)),
    ("GET", "/api/v1/webhook-deliveries/1"): (200, {"data": DETAIL}),
    ("POST", "/api/v1/webhook-deliveries/1/redeliver"): (200, {"data": ATTEMPT}),
    ("GET", "/_mock/reports"): (200, page(REPORT)),
    ("GET", "/api/v1/reports/12301"): (200, {"data": {"inspectionGeneral": REPORT}}),
    ("GET", "/_mock/faults"): (200, {"data": [FAULT]}),
    ("GET", "/_mock/api-calls"): (200, {"data": [CALL]}),
    ("POST", "/_mock/reports"): (
        201,
        {"data": {"resourceId": 12302, "inspectionId": HOSTILE, "path": HOSTILE}},
    ),
    ("POST", "/_mock/events"): (
        201,
        {"data": {"eventCode": HOSTILE, "resourceId": 12301, "deliveries": 1}},
    ),
    ("GET", "/_mock/clock"): (200, {"data": {"now": HOSTILE, "manual": True, "timeScale": 1}}),
    ("POST", "/api/v1/webhooks"): (
        422,
        {"errorCode": "ValidationError", "message": HOSTILE, "errors": {"name": [HOSTILE]}},
    ),
}


@pytest.fixture(scope="module")
def hostile_server() -> Iterator[str]:
    class Answer(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            status, body = ANSWERS.get((self.command, urlsplit(self.path).path), (404, None))
            raw = json.dumps(body or {"errorCode": "NotFound", "message": "no"}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        do_GET = do_POST = _answer

        def log_message(self, *args: object) -> None:
            pass

    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answer) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        yield f"http://127.0.0.1:{server.server_address[1]}"
        server.shutdown()


def _raw(text: str) -> list[str]:
    """The characters in `text` a terminal would act on (a newline ends a line: not counted)."""
    return [ch for ch in text if (ord(ch) < 0x20 and ch != "\n") or 0x7F <= ord(ch) <= 0x9F]


COMMANDS = {
    "webhooks list": (["webhooks", "list"], 1),
    "webhooks show": (["webhooks", "show", "1"], 1),
    "deliveries": (["deliveries"], 1),
    "deliveries show": (["deliveries", "show", "1"], 1),
    "reports list": (["reports", "list"], 1),
    "faults list": (["faults", "list"], 1),
    "api-calls": (["api-calls"], 1),
}
"""Commands that print a table, and the rows it has."""


@pytest.mark.parametrize("name", list(COMMANDS))
def test_a_table_shows_hostile_data_escaped_one_row_per_row(hostile_server: str, name: str) -> None:
    argv, rows = COMMANDS[name]
    result = run(*argv, env=clean_env(MOCK_QRM_SERVER=hostile_server))
    assert result.returncode == 0, result.stderr
    assert _raw(result.stdout) == []
    assert SHOWN in result.stdout or name == "deliveries show"  # it cuts to fit, in the middle
    assert "[/]" in result.stdout and "[bold red]x[/bold red]" in result.stdout
    lines = result.stdout.splitlines()
    table = lines[1:] if name == "deliveries show" else lines  # its summary line comes first
    captioned = name not in ("deliveries show",)
    assert len(table) == 1 + rows + captioned, result.stdout


@pytest.mark.parametrize(
    "argv",
    [
        ["redeliver", "1"],
        ["upload-report"],
        ["trigger", "report.created", "--report", "12301"],
        ["clock"],
    ],
    ids=["redeliver", "upload-report", "trigger", "clock"],
)
def test_a_one_line_answer_with_hostile_data_is_one_escaped_line(
    hostile_server: str, argv: list[str]
) -> None:
    result = run(*argv, env=clean_env(MOCK_QRM_SERVER=hostile_server))
    assert result.returncode == 0, result.stderr
    assert _raw(result.stdout) == []
    assert len(result.stdout.splitlines()) == 1, result.stdout
    assert SHOWN in result.stdout


def test_a_refusal_with_a_hostile_message_is_one_escaped_error_line(hostile_server: str) -> None:
    flags = ["--name", "n", "--url", "http://127.0.0.1:9/ok", "--event", "report.created"]
    result = run("webhooks", "create", *flags, env=clean_env(MOCK_QRM_SERVER=hostile_server))
    assert result.returncode == 1, result
    assert _raw(result.stderr) == []
    [line] = result.stderr.splitlines()
    assert line == f"mock-qrm: error: {SHOWN} (name: {SHOWN}) [HTTP 422]"


@pytest.mark.parametrize(
    "argv",
    [["webhooks", "list"], ["deliveries", "show", "1"], ["reports", "show", "12301"]],
    ids=lambda argv: " ".join(argv),
)
def test_json_output_of_hostile_data_is_valid_json_in_ascii(
    hostile_server: str, argv: list[str]
) -> None:
    """Every --json goes through one writer (`print_json`): a list, a detail, a document."""
    result = run(*argv, "--json", env=clean_env(MOCK_QRM_SERVER=hostile_server))
    assert result.returncode == 0, result.stderr
    assert result.stdout.isascii() and _raw(result.stdout) == []
    assert HOSTILE in _strings(json.loads(result.stdout))  # the value, unchanged


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    return [text for item in value for text in _strings(item)] if isinstance(value, list) else []


# --- what --follow prints of a frame: one escaped line, or one line of ASCII JSON --------------


def _frame(action: str | None = "attempt_ended") -> Any:
    from mock_qrm.contract.models import FeedFrame

    return FeedFrame.model_validate(
        {
            "seq": 7,
            "type": "delivery",
            "action": action,
            "trigger": "automatic",
            "delivery": DELIVERY,
        }
    )


def test_a_follow_line_with_hostile_data_is_one_escaped_line() -> None:
    from mock_qrm.cli.deliveries import AttemptLines

    line = AttemptLines(4).line(_frame())
    assert line is not None
    assert _raw(line) == [] and "\n" not in line
    assert SHOWN in line  # the last error, as it is; the name too, as repr quotes it


def test_a_follow_json_line_is_one_line_of_ascii_json() -> None:
    from mock_qrm.cli.deliveries import frame_line

    line = frame_line(_frame())
    assert line.isascii() and _raw(line) == [] and "\n" not in line
    assert json.loads(line)["delivery"]["webhookName"] == HOSTILE
