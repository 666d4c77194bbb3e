"""The terminal app's side of scenario files and HTTPS receivers (SPEC 9.4, 9.7):
`qrm-tui --config`, ctrl+e to save the state as a scenario, a certificate failure shown as
such, and a header that says when receivers' certificates are not checked."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
import trustme
from aiohttp.test_utils import TestServer

from mock_qrm.client import QrmClient
from mock_qrm.testing import MockQrm
from qrm_tui.__main__ import build_parser, resolve_target
from qrm_tui.app import QrmTuiApp
from qrm_tui.screens.inspector import DeliveryInspector
from tests.tls import https_receiver
from tests.tui.conftest import (
    SIZE,
    ServerFactory,
    column,
    delivery_rows,
    notifications,
    ready,
    text_of,
    tui,
    until,
)

SCENARIO = """\
[server]
time_scale = 60

[[webhooks]]
name = "orders"
url = "http://127.0.0.1:9000/qrm"
events = ["report.created"]
basic_auth = { username = "qrm", password = "${TUI_ORDERS_PASSWORD}" }
"""
ENV = {"TUI_ORDERS_PASSWORD": "s3cret"}


def _config(tmp_path: Path, text: str = SCENARIO) -> str:
    path = tmp_path / "demo.toml"
    path.write_text(text)
    return str(path)


# --- qrm-tui --config -------------------------------------------------------------------


def test_qrm_tui_config_reads_the_same_file_as_serve(tmp_path: Path) -> None:
    parser = build_parser()
    path = _config(tmp_path)
    target = resolve_target(parser, parser.parse_args(["--config", path]), ENV)
    assert target.embedded is not None and target.scenario is not None
    assert target.embedded.time_scale == 60 and target.embedded.port == 0
    assert [w.name for w in target.scenario.webhooks] == ["orders"]


def test_qrm_tui_config_with_a_typo_is_every_error_then_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = build_parser()
    path = _config(tmp_path, SCENARIO.replace("events", "evnets").replace("60", '"fast"'))
    with pytest.raises(SystemExit) as exited:
        resolve_target(parser, parser.parse_args(["--config", path]), ENV)
    assert exited.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        f"qrm-tui: error: {path}:2: server.time_scale: Input should be a valid number, unable"
        " to parse string as a number",
        f"qrm-tui: error: {path}:4: webhooks[0].events: Field required",
        f"qrm-tui: error: {path}:7: webhooks[0].evnets: unknown field (did you mean events?)",
        f"qrm-tui: error: {path}: 3 problems; nothing was changed",
    ]


def test_qrm_tui_config_with_server_applies_the_file_to_that_server(tmp_path: Path) -> None:
    parser = build_parser()
    path = _config(tmp_path, SCENARIO.replace("time_scale = 60", "manual_clock = true"))
    with MockQrm() as qrm:
        argv = ["--server", qrm.base_url, "--api-key", qrm.api_key or "", "--config", path]
        target = resolve_target(parser, parser.parse_args(argv), ENV)
        assert target.server == qrm.base_url and target.embedded is None
        assert [w.name for w in qrm.webhooks()] == ["orders"]


def test_demo_and_config_do_not_mix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    with pytest.raises(SystemExit) as exited:
        resolve_target(parser, parser.parse_args(["--demo", "--config", _config(tmp_path)]), ENV)
    assert exited.value.code == 2
    assert "--demo declares its own webhooks: it cannot be combined with --config" in (
        capsys.readouterr().err
    )


async def test_the_embedded_server_starts_in_the_scenarios_state(tmp_path: Path) -> None:
    parser = build_parser()
    target = resolve_target(parser, parser.parse_args(["--config", _config(tmp_path)]), ENV)
    assert target.embedded is not None
    target = type(target)(
        embedded=target.embedded.model_copy(update={"db": ":memory:"}), scenario=target.scenario
    )
    app = QrmTuiApp(target)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        assert column(app, "name") == ["orders"]
        assert str(app.screen.query_one("#time-scale").render()) == "×60 time"  # noqa: RUF001


# --- ctrl+e: the state as a scenario file -------------------------------------------------


async def test_ctrl_e_saves_the_state_as_a_scenario_file(
    server: TestServer, other: QrmClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "qrm-scenario.toml").write_text("# someone else's\n")
    await other.create_webhook(
        "orders", "http://127.0.0.1:9000/qrm", ["report.created"], ("qrm", "s3cret")
    )
    app = tui(server)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("ctrl+e")
        saved = tmp_path / "qrm-scenario-2.toml"
        await until(pilot, saved.exists, "the file")
        await until(pilot, lambda: any("Saved" in n for n in notifications(app)), "the notice")
    assert (tmp_path / "qrm-scenario.toml").read_text() == "# someone else's\n"  # kept
    document = tomllib.loads(saved.read_text())
    assert document["webhooks"][0]["name"] == "orders"
    assert document["webhooks"][0]["basic_auth"]["password"] == "${QRM_WEBHOOK_ORDERS_PASSWORD}"
    [notice] = [n for n in notifications(app) if "Saved" in n]
    assert notice == (
        f"Saved {saved}: 1 webhook, 0 faults. Set QRM_WEBHOOK_ORDERS_PASSWORD before"
        " `mock-qrm serve --config qrm-scenario-2.toml`."
    )


# --- HTTPS receivers ----------------------------------------------------------------------


async def test_a_certificate_failure_reads_as_such_in_the_table_and_the_inspector(
    server: TestServer, other: QrmClient
) -> None:
    with https_receiver(trustme.CA()) as (url, _):
        await other.create_webhook("TLS receiver", url, ["report.created"])
        await other.upload_report()
        app = tui(server, start_mode="deliveries")
        async with app.run_test(size=SIZE) as pilot:
            await ready(pilot)
            await until(
                pilot, lambda: [r["code"] for r in delivery_rows(app)] == ["tls: cert"], "the row"
            )
            await pilot.press("enter")
            inspector = await until(
                pilot, lambda: isinstance(app.screen, DeliveryInspector) and app.screen
            )
            await until(pilot, lambda: inspector.query(".attempt"), "the attempt")
            body = text_of(inspector.query(".attempt").first())
    assert "✗ failure · error tls: certificate verify failed for localhost: " in body
    assert "The mock does not trust the receiver's certificate: start it with --ca-file" in body


async def test_the_header_says_when_receivers_certificates_are_not_checked(
    qrm_server: ServerFactory,
) -> None:
    for insecure in (False, True):
        app = tui(await qrm_server(insecure_receivers=insecure))
        async with app.run_test(size=SIZE) as pilot:
            await ready(pilot)
            badge = app.screen.query_one("#insecure-tls")
            assert badge.display is insecure
            assert str(badge.render()) == "⚠ TLS unchecked"
