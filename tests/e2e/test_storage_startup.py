"""A database the server cannot trust refuses the start in one line; a closed stdout does not
keep a stopping server alive (SPEC.md section 5)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.processes import free_port, running
from tests.test_cli import TIMEOUT, clean_env, one_clear_line

SERVE = [sys.executable, "-m", "mock_qrm", "serve"]
"""As `tests.e2e.processes` runs it: the code of the current directory, a worktree too."""


def serve(*args: str) -> subprocess.CompletedProcess[str]:
    """A server that should refuse to start: its exit status and what it printed."""
    return subprocess.run(
        [*SERVE, *args], capture_output=True, text=True, timeout=TIMEOUT, env=clean_env()
    )


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database a real server made, seeded and then stopped cleanly (no -wal left)."""
    folder = tmp_path_factory.mktemp("seeded")
    db = folder / "qrm.sqlite3"
    port = free_port()
    args = ["serve", "--port", str(port), "--db", str(db), "--seed-reports", "40"]
    with running(args, f"http://127.0.0.1:{port}/healthz", folder / "server.log") as server:
        assert server.terminate() == 0, server.output()
    assert not db.with_name(db.name + "-wal").exists()
    return db


def _copy(seeded: Path, tmp_path: Path) -> Path:
    db = tmp_path / "qrm.sqlite3"
    shutil.copyfile(seeded, db)
    return db


def _overwrite_pages(db: Path, offset: int, length: int) -> None:
    """`length` bytes of garbage at `offset` in every page but the first (the file header)."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        page = int(conn.execute("PRAGMA page_size").fetchone()[0])
    garbage = (bytes(range(256)) * (length // 256 + 1))[:length]
    with db.open("r+b") as fh:
        size = fh.seek(0, os.SEEK_END)
        for start in range(page, size, page):
            fh.seek(start + offset)
            fh.write(garbage)


def _quick_check(db: Path) -> str:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        try:
            return str(conn.execute("PRAGMA quick_check").fetchone()[0])
        except sqlite3.DatabaseError as exc:
            return str(exc)


# -- a damaged database


@pytest.mark.parametrize(
    ("offset", "length"),
    [(100, 200), (1024, 512)],
    ids=["cells-out-of-order", "malformed"],
)
def test_a_damaged_database_refuses_to_start_in_one_line(
    seeded: Path, tmp_path: Path, offset: int, length: int
) -> None:
    db = _copy(seeded, tmp_path)
    _overwrite_pages(db, offset, length)
    assert _quick_check(db) != "ok"  # the damage is real, and SQLite sees it

    result = serve("--db", str(db), "--port", "0")
    line = one_clear_line(result)
    assert result.returncode == 1
    assert f"database {db} is damaged (quick_check:" in line
    assert "restore it or use another database file (choose it with --db FILE" in line


def test_an_intact_copy_still_starts(seeded: Path, tmp_path: Path) -> None:
    db = _copy(seeded, tmp_path)
    port = free_port()
    args = ["serve", "--port", str(port), "--db", str(db)]
    with running(args, f"http://127.0.0.1:{port}/healthz", tmp_path / "server.log") as server:
        assert server.terminate() == 0, server.output()


# -- a database that cannot be written


@contextlib.contextmanager
def _read_only(path: Path) -> Iterator[None]:
    """`path` unwritable, even to root (who ignores file modes): immutable where possible."""
    if os.geteuid() != 0:
        mode = path.stat().st_mode
        path.chmod(0o555 if path.is_dir() else 0o444)
        try:
            yield
        finally:
            path.chmod(mode)
        return
    if shutil.which("chattr") is None:
        pytest.skip("running as root without chattr: nothing can be made read-only")
    made = subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=False)
    if made.returncode != 0:
        pytest.skip(f"chattr +i refused here: {made.stderr.decode().strip()}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def test_a_read_only_database_refuses_to_start_in_one_line(seeded: Path, tmp_path: Path) -> None:
    db = _copy(seeded, tmp_path)
    with _read_only(db):
        result = serve("--db", str(db), "--port", "0")
    line = one_clear_line(result)
    assert result.returncode == 1
    assert f"database {db} is read-only" in line


def test_a_database_in_a_read_only_folder_refuses_to_start_in_one_line(
    seeded: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()
    db = _copy(seeded, folder)
    with _read_only(folder):
        result = serve("--db", str(db), "--port", "0")
    line = one_clear_line(result)
    assert result.returncode == 1
    assert str(db) in line


# -- stdout that goes away: `mock-qrm serve | head -1`, then SIGTERM


def test_sigterm_exits_and_frees_the_database_after_stdout_is_closed(tmp_path: Path) -> None:
    db = tmp_path / "qrm.sqlite3"
    log = tmp_path / "stderr.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [*SERVE, "--port", "0", "--db", str(db), "--seed-reports", "2"],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=clean_env(),
        )
    watchdog = threading.Timer(TIMEOUT, process.kill)  # readline below must not block forever
    watchdog.start()
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        found = re.search(r"listening on (http://\S+)", banner)
        assert found, banner + log.read_text()
        process.stdout.close()  # what `head -1` does once it has its line
        _wait_up(f"{found[1]}/healthz", process, log)
        _stop(process, log)
    finally:
        watchdog.cancel()
        _kill(process)

    port = free_port()
    args = ["serve", "--port", str(port), "--db", str(db)]
    with running(args, f"http://127.0.0.1:{port}/healthz", tmp_path / "second.log") as second:
        assert second.terminate() == 0, second.output()


def test_sigterm_exits_when_stdout_has_no_reader_from_the_start(tmp_path: Path) -> None:
    """`| head -0`: not even the first line finds a reader."""
    db = tmp_path / "qrm.sqlite3"
    port = free_port()
    read_end, write_end = os.pipe()
    os.close(read_end)
    log = tmp_path / "stderr.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [*SERVE, "--port", str(port), "--db", str(db), "--seed-reports", "2"],
            stdout=write_end,
            stderr=stderr,
            env=clean_env(),
        )
    os.close(write_end)
    try:
        _wait_up(f"http://127.0.0.1:{port}/healthz", process, log)
        _stop(process, log)
    finally:
        _kill(process)


def _wait_up(url: str, process: subprocess.Popen[Any], log: Path) -> None:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"mock-qrm exited ({process.returncode}):\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"{url} did not come up:\n{log.read_text()}")


def _stop(process: subprocess.Popen[Any], log: Path) -> None:
    """SIGTERM, then a clean exit within 10 s: status 0 and no traceback."""
    process.send_signal(signal.SIGTERM)
    try:
        status = process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pytest.fail(f"mock-qrm did not exit within 10 s of SIGTERM:\n{log.read_text()}")
    assert status == 0, log.read_text()
    assert "Traceback" not in log.read_text()


def _kill(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait()
    if process.stdout is not None:
        process.stdout.close()
