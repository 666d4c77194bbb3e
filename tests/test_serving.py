"""`serving`: the collector settings of a process that serves (`mock-qrm serve`, `receiver`),
and the answers of the HTTP server itself to what its parser refuses."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from mock_qrm.receiver import create_receiver_app

_PROBE = """
import gc, json
import mock_qrm.app  # what `mock-qrm serve` has loaded by the time it listens
from mock_qrm.serving import YOUNG_OBJECTS, settle_heap

before = gc.get_threshold()
settle_heap()
after = gc.get_threshold()
frozen = gc.get_freeze_count()

class Node:
    pass

a, b = Node(), Node()
a.other, b.other = b, a  # a cycle, made after the freeze
del a, b
print(json.dumps({"before": before, "after": after, "young": YOUNG_OBJECTS,
                  "frozen": frozen, "collected": gc.collect()}))
"""


def test_a_serving_process_freezes_its_start_up_and_collects_young_objects_less_often() -> None:
    # In a process of its own: the settings are process-wide, and this one is pytest's.
    probe = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=60, check=True
    )
    seen = json.loads(probe.stdout)

    assert seen["before"][0] < seen["young"]  # Python's default (700 on 3.11-3.13) is lower
    assert seen["after"] == [seen["young"], *seen["before"][1:]]
    assert seen["frozen"] > 10_000  # modules, schemas: what start-up made
    assert seen["collected"] >= 2  # what is made afterwards is still collected


# --- what the HTTP server itself refuses: 400 in QRM's shape, quoting nothing back -------------

LONG = b"a" * 9000
MALFORMED = {
    "header-line-over-8190": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Long: " + LONG + b"\r\n\r\n",
    "200-headers": b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
    + b"".join(b"X-H%d: v\r\n" % n for n in range(200))
    + b"\r\n",
    "content-length-abc": b"POST /api/v1/webhooks HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    "method-foo": b"FOO /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
    "bad-chunk-size": b"POST /api/v1/webhooks HTTP/1.1\r\nHost: x\r\n"
    b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    "request-line-over-8190": b"GET /" + LONG + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    "not-http": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",  # a TLS hello
    "control-in-header": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
}


async def _exchange(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    import asyncio

    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 10)  # the server closes: read to the end
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (x.partition(":") for x in lines)}
    return int(status_line.split()[1]), headers, body


def _app(which: str) -> Any:
    from mock_qrm.app import Settings, create_app

    if which == "server":
        return create_app(Settings.isolated(manual_clock=True, seed_reports=0))
    return create_receiver_app()


@pytest.mark.parametrize("which", ["server", "receiver"])
@pytest.mark.parametrize("request_bytes", list(MALFORMED.values()), ids=list(MALFORMED))
async def test_a_request_the_parser_refuses_is_400_in_qrms_shape(
    which: str, request_bytes: bytes
) -> None:
    from mock_qrm.serving import serve

    running = await serve(_app(which), "127.0.0.1", 0)
    try:
        status, headers, body = await _exchange(running.port, request_bytes)
    finally:
        await running.close()
    assert status == 400
    assert headers["content-type"].startswith("application/json")
    error = json.loads(body)
    assert set(error) == {"errorCode", "message"}
    assert error["errorCode"] == "BadRequest"
    assert error["message"].startswith("Malformed HTTP request: ")
    assert b"aaaaaaaa" not in body and b"FOO" not in body and b"abc" not in body  # no echo
    assert error["message"].isprintable()
