"""`mock-qrm` as a user runs it: real processes, their exit codes and what they print (SPEC.md section 5)."""

from __future__ import annotations

import http.server
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from mock_qrm.receiver import ReceiverSettings
from mock_qrm.server.settings import Settings

_SCRIPT = Path(sys.executable).with_name("mock-qrm")
MOCK_QRM = (
    [str(_SCRIPT)]
    if _SCRIPT.is_file()
    else [sys.executable, "-c", "from mock_qrm.cli import main; main()"]
)
TIMEOUT = 20.0


def clean_env(**extra: str) -> dict[str, str]:
    """The caller's environment without any `MOCK_QRM_*` setting, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOCK_QRM_")}
    env.update(extra)
    return env


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MOCK_QRM, *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=env or clean_env(),
        check=False,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def one_clear_line(result: subprocess.CompletedProcess[str]) -> str:
    """A start-up failure: non-zero exit, one line on stderr, no traceback."""
    assert result.returncode != 0, result
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("mock-qrm"), lines[0]
    return lines[0]


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "qrm.sqlite3")


@pytest.fixture
def listening() -> Iterator[int]:
    """A port some other program is already listening on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


# -- help


def test_serve_help_lists_every_setting_with_its_env_var() -> None:
    result = run("serve", "--help")
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    for name in Settings.model_fields:
        assert f"--{name.replace('_', '-')}" in text, name
        assert f"env MOCK_QRM_{name.upper()}" in text, name


def test_receiver_help_lists_its_settings_with_their_env_vars() -> None:
    result = run("receiver", "--help")
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    for name in ReceiverSettings.model_fields:
        assert f"--{name.replace('_', '-')}" in text, name
        assert f"env MOCK_QRM_RECEIVER_{name.upper()}" in text, name


@pytest.mark.parametrize("command", ["upload-report", "trigger", "deliveries"])
def test_client_commands_have_help_naming_server_and_api_key(command: str) -> None:
    result = run(command, "--help")
    assert result.returncode == 0, result.stderr
    assert "--server" in result.stdout
    assert "--api-key" in result.stdout


# -- start-up failures: one clear line, never a traceback


@pytest.mark.parametrize(
    ("flags", "flag"),
    [
        (["--port", "abc"], "--port"),
        (["--port", "70000"], "--port"),
        (["--time-scale", "0"], "--time-scale"),
        (["--timeout", "soon"], "--timeout"),
        (["--retries", "-1"], "--retries"),
    ],
    ids=["port-abc", "port-70000", "time-scale-0", "timeout-soon", "retries-negative"],
)
def test_a_bad_value_is_one_clear_line(db: str, flags: list[str], flag: str) -> None:
    line = one_clear_line(run("serve", "--db", db, *flags))
    assert flag in line


def test_a_bad_value_from_the_environment_is_one_clear_line(db: str) -> None:
    one_clear_line(run("serve", "--db", db, env=clean_env(MOCK_QRM_PORT="abc")))


def test_an_unknown_flag_is_one_clear_line(db: str) -> None:
    line = one_clear_line(run("serve", "--db", db, "--no-such-flag"))
    assert "--no-such-flag" in line


def test_port_in_use_is_one_clear_line(db: str, listening: int) -> None:
    line = one_clear_line(run("serve", "--db", db, "--port", str(listening)))
    assert f"127.0.0.1:{listening}" in line
    assert "in use" in line


def test_receiver_port_in_use_is_one_clear_line(listening: int) -> None:
    line = one_clear_line(run("receiver", "--port", str(listening)))
    assert f"127.0.0.1:{listening}" in line
    assert "in use" in line


def test_unwritable_db_path_is_one_clear_line() -> None:
    line = one_clear_line(run("serve", "--db", "/proc/nope/x.db", "--port", "0"))
    assert "/proc/nope/x.db" in line


def test_a_file_that_is_not_a_database_is_one_clear_line(tmp_path: Path) -> None:
    garbage = tmp_path / "notes.txt"
    garbage.write_text("these are not the tables you are looking for\n" * 100)
    line = one_clear_line(run("serve", "--db", str(garbage), "--port", "0"))
    assert str(garbage) in line


def test_non_loopback_host_without_a_key_refuses_to_start(db: str) -> None:
    line = one_clear_line(run("serve", "--db", db, "--host", "0.0.0.0", "--port", "0"))
    assert "0.0.0.0" in line
    assert "API key" in line


# -- a real server: the environment is honoured, SIGTERM is a clean exit


def test_port_from_env_is_honoured_and_sigterm_exits_cleanly(db: str) -> None:
    port = free_port()
    env = clean_env(MOCK_QRM_PORT=str(port), MOCK_QRM_DB=db, MOCK_QRM_SEED_REPORTS="2")
    process = subprocess.Popen(
        [*MOCK_QRM, "serve"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    watchdog = threading.Timer(TIMEOUT, process.kill)
    watchdog.start()
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        assert f"listening on http://127.0.0.1:{port}" in banner, banner
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            assert response.status == 200
            health = json.load(response)
        assert health["status"] == "ok"
        assert health["dispatcherAlive"] is True

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 0
        assert process.stderr is not None
        assert "Traceback" not in process.stderr.read()
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


# -- client commands


@pytest.mark.parametrize("flag", ["--server=http://127.0.0.1:9", "--api-key"])
def test_a_client_flag_before_the_command_says_where_it_goes(flag: str) -> None:
    line = one_clear_line(run(flag, "webhooks", "list"))
    assert "goes after the command, e.g. mock-qrm webhooks list" in line, line


def test_a_value_starting_with_a_dash_gets_its_own_message() -> None:
    flags = ["--name", "x", "--url", "http://127.0.0.1:9/ok", "--rate-limit", "-1/hour"]
    line = one_clear_line(run("webhooks", "create", *flags))
    assert "--rate-limit: expected N/minute or N/hour" in line and "'-1/hour'" in line, line


def test_a_server_that_is_not_a_mock_qrm_is_named_so() -> None:
    """An address where something else answers (a proxy's empty 404, an HTML page)."""

    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_error(404)

        def log_message(self, *args: object) -> None:
            pass

    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotFound) as other:
        threading.Thread(target=other.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{other.server_address[1]}"
        line = one_clear_line(run("webhooks", "list", "--server", url))
        other.shutdown()
    assert "the server answered HTTP 404 (is it a mock-qrm server?)" in line, line
    assert "<" not in line  # not the page's HTML


def test_upload_report_without_a_server_is_one_line_naming_its_url() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = run("upload-report", "--server", url)
    line = one_clear_line(result)
    assert url in line
    assert re.search(r"cannot reach|did not answer", line), line


def test_the_flag_tables_match_the_settings_they_fill() -> None:
    """`--help` and completion read the flags from a table, not the settings model: same
    names, same switches, same defaults."""
    from mock_qrm.cli.serve import RECEIVER_FLAGS, SERVE_FLAGS

    for flags, model in ((SERVE_FLAGS, Settings), (RECEIVER_FLAGS, ReceiverSettings)):
        assert [flag.name for flag in flags] == list(model.model_fields)
        for flag in flags:
            field = model.model_fields[flag.name]
            assert flag.switch == (field.annotation is bool), flag.name
            if flag.name != "db":  # the data folder's path, shown in words
                assert flag.default == field.get_default(), flag.name


# -- arguments checked before anything is sent or waited for (SPEC 9.3)


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["wait", "--event", "report.uploaded", "--timeout", "600"], "event code"),
        (["wait", "--status", "sent"], "status"),
        (["deliveries", "--event", "report.uploaded"], "event code"),
        (["redeliver", "--event", "report.uploaded"], "event code"),
        (["trigger", "report.uploaded"], "event code"),
        (
            ["webhooks", "create", "--name", "n", "--url", "http://e.com/h", "--event", "x"],
            "event code",
        ),
    ],
    ids=["wait-event", "wait-status", "deliveries", "redeliver", "trigger", "create"],
)
def test_an_unknown_code_is_a_usage_error_at_once_naming_the_known_ones(
    argv: list[str], named: str
) -> None:
    # No server listens at the default address's neighbour: a request would fail with 1.
    result = run(*argv, env=clean_env(MOCK_QRM_SERVER=f"http://127.0.0.1:{free_port()}"))
    assert result.returncode == 2, result
    line = one_clear_line(result)
    assert line.startswith("mock-qrm: error: "), line
    assert f"unknown {named}" in line and "; known: " in line, line
    if named == "event code":
        assert "report.created, report.file_ready" in line


@pytest.mark.parametrize(
    ("argv", "env", "named"),
    [
        (["webhooks", "list", "--api-key", "a\r\nb"], {}, "--api-key"),
        (["webhooks", "list", "--api-key", "a\x01b"], {}, "--api-key"),
        (["webhooks", "list"], {"MOCK_QRM_API_KEY": "a\nb"}, "MOCK_QRM_API_KEY"),
        (["webhooks", "list", "--server", "ftp://x"], {}, "--server"),
        (["webhooks", "list"], {"QRM_TUI_SERVER": "nope"}, "QRM_TUI_SERVER"),
    ],
    ids=["crlf", "control", "env-newline", "server-scheme", "server-env"],
)
def test_a_bad_key_or_server_is_one_line_naming_the_flag_or_variable(
    argv: list[str], env: dict[str, str], named: str
) -> None:
    result = run(*argv, env=clean_env(**env))
    assert result.returncode == 2, result
    line = one_clear_line(result)
    assert line.startswith(f"mock-qrm: error: {named}: "), line


def test_a_wrong_key_says_which_flag_and_variable_carry_it(tmp_path: Path) -> None:
    """The user's words: --api-key and MOCK_QRM_API_KEY, not the HTTP header."""
    from mock_qrm.testing import MockQrm

    with MockQrm(api_key="right-key") as qrm:
        for given in ([], ["--api-key", "wrong-key"]):
            result = run("webhooks", "list", *given, env=clean_env(MOCK_QRM_SERVER=qrm.base_url))
            assert result.returncode == 1, result
            line = one_clear_line(result)
            assert line.startswith("mock-qrm: error: Missing or wrong API key [HTTP 401]"), line
            assert "--api-key (or MOCK_QRM_API_KEY)" in line


def test_a_port_in_use_writes_no_database(tmp_path: Path, listening: int) -> None:
    """The socket is taken first: a start that cannot listen opens (and seeds) nothing."""
    db = tmp_path / "never.sqlite3"
    result = run("serve", "--port", str(listening), "--db", str(db))
    line = one_clear_line(result)
    assert f"cannot listen on 127.0.0.1:{listening}:" in line
    assert "--port or MOCK_QRM_PORT" in line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("flags", "env"),
    [
        (["--api-key", "a\nb"], {}),
        (["--api-key", "a\x01b"], {}),
        ([], {"MOCK_QRM_API_KEY": "a\rb"}),
    ],
    ids=["flag-newline", "flag-control", "env-cr"],
)
def test_serve_with_a_key_holding_a_control_character_is_one_line_naming_it(
    db: str, flags: list[str], env: dict[str, str]
) -> None:
    result = run("serve", "--db", db, *flags, env=clean_env(**env))
    assert result.returncode == 2, result
    line = one_clear_line(result)
    assert line == (
        "mock-qrm: error: --api-key (or MOCK_QRM_API_KEY) must not contain control characters"
        " (a newline, ...)"
    )
