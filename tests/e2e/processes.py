"""Real `mock-qrm serve` and `mock-qrm receiver` processes on free loopback ports."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Process:
    """A child `python -m mock_qrm ...`, its output in a file for the failure message."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.args = args
        self.log_path = log
        self._log = log.open("ab")
        env = {**(os.environ if env is None else env), "PYTHONUNBUFFERED": "1"}
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "mock_qrm", *args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
        )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(10)

    def terminate(self, timeout: float = 15.0) -> int:
        self.popen.send_signal(signal.SIGTERM)
        return self.popen.wait(timeout)

    def close(self) -> None:
        if self.popen.poll() is None:
            self.kill()
        self._log.close()


def wait_http(url: str, process: Process, timeout: float = 15.0) -> None:
    """Block until `url` answers (the process is up), or fail with its output."""
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise AssertionError(f"{process.args} exited early:\n{process.output()}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"{url} did not come up:\n{process.output()}")


@contextmanager
def running(args: list[str], health_url: str, log: Path) -> Iterator[Process]:
    process = Process(args, log)
    try:
        wait_http(health_url, process)
        yield process
    finally:
        process.close()


async def get_json(url: str) -> object:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return await response.json()
