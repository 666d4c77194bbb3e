"""Scenario files from the command line (SPEC 9.4): `serve --config`, `export-config`, and a
file with typos, as a CI job or a demo room meets them. Real `mock-qrm` processes."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tomllib
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.e2e.processes import Process, free_port, wait_http

SCENARIO = """\
# The demo room's starting state.
[server]
time_scale = 60
retries = 5

[[webhooks]]
name = "orders"
url = "http://127.0.0.1:9000/qrm"
events = ["report.created", "report.file_ready"]
basic_auth = { username = "qrm", password = "${ORDERS_PASSWORD}" }
headers = { X-Env = "demo" }
rate_limit = { limit = 60, period = "minute" }

[[webhooks]]
name = "archive"
url = "http://127.0.0.1:9001/${ARCHIVE_PATH}"
events = ["report.file_ready"]
active = false

[[faults]]
route = "GET /api/v1/reports/{id}"
status = 503
times = 2
"""
ENV = {"ORDERS_PASSWORD": "pa$word", "ARCHIVE_PATH": "archive"}

TYPOS = """\
[server]
time_scale = 60
retrys = 1

[[webhooks]]
name = "orders"
url = "htp://127.0.0.1:9000/qrm"
evnets = ["report.created"]

[[webhooks]]
name = "archive"
url = "http://127.0.0.1:9001/archive"
events = ["report.file_ready"]
active = "no"
"""


def environment(**extra: str) -> dict[str, str]:
    """This process's environment without MOCK_QRM_* settings or scenario variables, plus `extra`."""
    scrubbed = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MOCK_QRM_", "QRM_WEBHOOK_")) and k not in ENV
    }
    return {**scrubbed, **extra}


def mock_qrm(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mock_qrm", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=env or environment(),
        check=False,
    )


@contextmanager
def served(folder: Path, *args: str, env: dict[str, str]) -> Iterator[tuple[str, Process]]:
    """`mock-qrm serve ARGS` on a free port, its environment `env` (the log in `folder`)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = Process(["serve", "--port", str(port), *args], folder / f"serve-{port}.log", env)
    try:
        wait_http(url + "/healthz", process)
        yield url, process
    finally:
        process.close()


def json_of(*args: str, server: str) -> Any:
    result = mock_qrm(*args, "--json", "--server", server)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def declared(webhooks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What a scenario declares of each webhook: not its id, times or history."""
    kept = ("name", "url", "events", "active", "basicAuth", "headers", "rateLimit")
    return [{key: w[key] for key in kept} for w in webhooks]


def health(server: str) -> dict[str, Any]:
    with urllib.request.urlopen(server + "/healthz", timeout=5) as response:
        answer: dict[str, Any] = json.load(response)
        return answer


# --- a file that does not validate --------------------------------------------------------


def test_a_config_file_with_typos_fails_the_start_with_every_error_and_writes_nothing(
    tmp_path: Path,
) -> None:
    config = tmp_path / "ci.toml"
    config.write_text(TYPOS)
    db = tmp_path / "qrm.sqlite3"
    result = mock_qrm("serve", "--config", str(config), "--db", str(db), "--port", "0")
    assert result.returncode == 2
    assert result.stdout == ""  # no banner: nothing started
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        f"mock-qrm: error: {config}:3: server.retrys: unknown setting (did you mean retries?)",
        f"mock-qrm: error: {config}:5: webhooks[0].events: Field required",
        f"mock-qrm: error: {config}:7: webhooks[0].url: URL must start with http:// or https://",
        f"mock-qrm: error: {config}:8: webhooks[0].evnets: unknown field (did you mean events?)",
        f"mock-qrm: error: {config}:14: webhooks[1].active: Input should be a valid boolean",
        f"mock-qrm: error: {config}: 5 problems; nothing was started or changed",
    ]
    assert not db.exists()


def test_a_bad_file_leaves_an_existing_database_as_it_was(tmp_path: Path) -> None:
    db = tmp_path / "qrm.sqlite3"
    good, bad = tmp_path / "good.toml", tmp_path / "bad.toml"
    good.write_text(SCENARIO)
    with served(tmp_path, "--config", str(good), "--db", str(db), env=environment(**ENV)) as (
        _,
        process,
    ):
        assert process.terminate() == 0
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    bad.write_text(SCENARIO.replace('url = "http://127.0.0.1:9001', 'url = "http//127.0.0.1:9001'))
    result = mock_qrm("serve", "--config", str(bad), "--db", str(db), env=environment(**ENV))
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"mock-qrm: error: {bad}:16: webhooks[1].url: "), result.stderr
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before


def test_the_file_can_come_from_the_environment(tmp_path: Path) -> None:
    config = tmp_path / "demo.toml"
    config.write_text(TYPOS)
    result = mock_qrm("serve", "--port", "0", env=environment(MOCK_QRM_CONFIG=str(config)))
    assert result.returncode == 2
    assert f"{config}:3: server.retrys" in result.stderr


# --- a file that does ----------------------------------------------------------------------


def test_serve_config_starts_in_the_declared_state_with_env_values(tmp_path: Path) -> None:
    config = tmp_path / "demo.toml"
    config.write_text(SCENARIO)
    with served(tmp_path, "--config", str(config), "--db", ":memory:", env=environment(**ENV)) as (
        server,
        process,
    ):
        webhooks = json_of("webhooks", "list", server=server)
        faults = json_of("faults", "list", server=server)
        secrets = json_of("export-config", "--with-secrets", server=server)
        banner = process.output()
    assert f"scenario {config}: 2 webhooks created, 0 updated, 0 unchanged; 1 fault added" in banner
    assert declared(webhooks) == [
        {
            "name": "orders",
            "url": "http://127.0.0.1:9000/qrm",
            "events": ["report.created", "report.file_ready"],
            "active": True,
            "basicAuth": {"username": "qrm", "passwordSet": True},
            "headers": {"X-Env": "demo"},
            "rateLimit": {"limit": 60, "period": "minute"},
        },
        {
            "name": "archive",
            "url": "http://127.0.0.1:9001/archive",
            "events": ["report.file_ready"],
            "active": False,
            "basicAuth": None,
            "headers": {},
            "rateLimit": None,
        },
    ]
    assert [(f["route"], f["status"], f["remaining"]) for f in faults] == [
        ("GET /api/v1/reports/{id}", 503, 2)
    ]
    assert secrets["webhooks"][0]["basicAuth"] == {"username": "qrm", "password": "pa$word"}


def test_flags_beat_the_file_and_the_file_beats_the_environment(tmp_path: Path) -> None:
    config = tmp_path / "demo.toml"
    config.write_text(SCENARIO)
    env = environment(**ENV, MOCK_QRM_TIME_SCALE="2", MOCK_QRM_RETRIES="1", MOCK_QRM_TIMEOUT="30")
    with served(tmp_path, "--config", str(config), "--time-scale", "10", env=env) as (server, _):
        seen = health(server)
    assert seen["timeScale"] == 10  # the flag, over the file's 60 and the environment's 2
    assert seen["maxAttempts"] == 6  # the file's 5 retries, over the environment's 1
    assert seen["timeoutSeconds"] == 3  # the environment's 30 s (the file says nothing), / 10


def test_serving_the_file_again_updates_each_webhook_by_name(tmp_path: Path) -> None:
    db = tmp_path / "qrm.sqlite3"
    config = tmp_path / "demo.toml"
    config.write_text(SCENARIO)
    with served(tmp_path, "--config", str(config), "--db", str(db), env=environment(**ENV)) as (
        _,
        process,
    ):
        assert process.terminate() == 0
    config.write_text(SCENARIO.replace("9001/${ARCHIVE_PATH}", "9002/${ARCHIVE_PATH}"))
    with served(tmp_path, "--config", str(config), "--db", str(db), env=environment(**ENV)) as (
        server,
        process,
    ):
        webhooks = json_of("webhooks", "list", server=server)
        banner = process.output()
    assert "0 webhooks created, 1 updated, 1 unchanged; 1 fault added" in banner
    assert [(w["id"], w["name"], w["url"]) for w in webhooks] == [
        (1, "orders", "http://127.0.0.1:9000/qrm"),
        (2, "archive", "http://127.0.0.1:9002/archive"),
    ]


def test_export_config_then_serving_the_export_on_a_fresh_database_gives_the_same_webhooks(
    tmp_path: Path,
) -> None:
    config, exported = tmp_path / "demo.toml", tmp_path / "exported.toml"
    config.write_text(SCENARIO)
    with served(tmp_path, "--config", str(config), "--db", ":memory:", env=environment(**ENV)) as (
        server,
        _,
    ):
        before = json_of("webhooks", "list", server=server)
        faults_before = json_of("faults", "list", server=server)
        written = mock_qrm("export-config", "-o", str(exported), "--server", server)
        printed = mock_qrm("export-config", "--server", server)
        secret = tmp_path / "secret.toml"
        with_secrets = mock_qrm(
            "export-config", "--with-secrets", "-o", str(secret), "--server", server
        )
    assert with_secrets.returncode == 0, with_secrets.stderr
    assert secret.stat().st_mode & 0o777 == 0o600  # it holds a password
    assert 'password = "pa$$word"' in secret.read_text()  # `$` written `$$`, read back as `$`
    assert written.returncode == 0, written.stderr
    assert written.stdout.strip() == (
        f"wrote {exported}: 2 webhooks, 1 fault; before serving it, set QRM_WEBHOOK_ORDERS_PASSWORD"
    )
    assert printed.stdout.strip() == exported.read_text().strip()
    document = tomllib.loads(exported.read_text())
    assert document["webhooks"][0]["basic_auth"]["password"] == "${QRM_WEBHOOK_ORDERS_PASSWORD}"
    assert document["server"]["time_scale"] == 60 and "db" not in document["server"]

    env = environment(QRM_WEBHOOK_ORDERS_PASSWORD="pa$word")
    with served(
        tmp_path, "--config", str(exported), "--db", str(tmp_path / "fresh.db"), env=env
    ) as (
        server,
        _,
    ):
        after = json_of("webhooks", "list", server=server)
        faults_after = json_of("faults", "list", server=server)
        secrets = json_of("export-config", "--with-secrets", server=server)
    assert declared(after) == declared(before)
    assert [{k: v for k, v in f.items() if k != "id"} for f in faults_after] == [
        {k: v for k, v in f.items() if k != "id"} for f in faults_before
    ]
    assert secrets["webhooks"][0]["basicAuth"]["password"] == "pa$word"
