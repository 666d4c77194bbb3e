"""Start-up: the embedded server, `--server`/`--api-key` and their environment variables,
and a clear screen (never a traceback) when the server is wrong."""

from __future__ import annotations

import socket

import pytest

from qrm_tui.__main__ import build_parser, main, resolve_target
from qrm_tui.app import QrmTuiApp, Target
from qrm_tui.screens.errors import StartupErrorScreen
from qrm_tui.screens.webhooks import WebhooksScreen
from tests.conftest import make_settings
from tests.tui.conftest import SIZE, ServerFactory, column, ready, tui, until, url_of


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_no_server_flag_embeds_a_server_in_the_app() -> None:
    app = QrmTuiApp(Target(embedded=make_settings(host="127.0.0.1", port=0, time_scale=60)))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        assert app.embedded is not None and app.embedded.url == app.client.base_url
        assert app.server_label == f"{app.client.base_url} (embedded)"
        assert str(app.screen.query_one("#time-scale").render()) == "×60 time"  # noqa: RUF001
        created = await app.client.create_webhook(
            "Embedded", "http://127.0.0.1:1/ok", ["report.created"]
        )
        await until(pilot, lambda: column(app, "name") == ["Embedded"], "the new row")
        assert (await app.client.webhook(created.id)).name == "Embedded"
    assert app.embedded.url is None  # stopped with the app


async def test_a_wrong_url_says_it_cannot_reach_the_server_and_how_to_fix_it() -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    app = tui(url)
    async with app.run_test(size=SIZE) as pilot:
        screen = await until(
            pilot, lambda: isinstance(app.screen, StartupErrorScreen) and app.screen, "error"
        )
        assert screen.text == (
            f"Cannot reach {url}: connection refused. Start it with `mock-qrm serve` "
            "or run `qrm-tui` with no --server to embed one."
        )
        assert app.connection == "failed"
        await pilot.press("2")  # no way around the error screen
        assert isinstance(app.screen, StartupErrorScreen)
        await pilot.press("q")
    assert app.return_code == 1  # a script that starts qrm-tui sees the failure


async def test_a_wrong_api_key_says_the_server_rejected_it(qrm_server: ServerFactory) -> None:
    server = await qrm_server(api_key="right")
    app = tui(server, api_key="wrong")
    async with app.run_test(size=SIZE) as pilot:
        screen = await until(
            pilot, lambda: isinstance(app.screen, StartupErrorScreen) and app.screen, "error"
        )
        assert screen.text.startswith("The server rejected the API key.")
        assert "--api-key" in screen.text


async def test_a_missing_api_key_says_to_pass_one(qrm_server: ServerFactory) -> None:
    server = await qrm_server(api_key="right")
    app = tui(server)
    async with app.run_test(size=SIZE) as pilot:
        screen = await until(
            pilot, lambda: isinstance(app.screen, StartupErrorScreen) and app.screen, "error"
        )
        assert screen.text.startswith("The server needs an API key.")


async def test_the_right_api_key_connects(qrm_server: ServerFactory) -> None:
    server = await qrm_server(api_key="right")
    app = tui(server, api_key="right")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        assert isinstance(app.screen, WebhooksScreen)


async def test_retry_on_the_error_screen_connects_once_the_server_is_there(
    qrm_server: ServerFactory,
) -> None:
    server = await qrm_server(api_key="right")
    app = tui(server, api_key="wrong")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, StartupErrorScreen), "error")
        app.client.api_key = "right"
        await app.client.close()  # the key is a session header
        await pilot.press("r")
        await ready(pilot)
        assert isinstance(app.screen, WebhooksScreen)


def test_flags_and_environment_choose_the_server() -> None:
    parser = build_parser()

    def target(argv: list[str], env: dict[str, str]) -> Target:
        return resolve_target(parser, parser.parse_args(argv), env)

    assert target(["--server", "http://h:1/"], {}) == Target(server="http://h:1")
    assert target([], {"QRM_TUI_SERVER": "http://a:1", "MOCK_QRM_SERVER": "http://b:2"}).server == (
        "http://a:1"
    )
    assert target([], {"MOCK_QRM_SERVER": "http://b:2", "MOCK_QRM_API_KEY": "k"}) == Target(
        server="http://b:2", api_key="k"
    )
    assert target(["--api-key", "x"], {"QRM_TUI_API_KEY": "y", "QRM_TUI_SERVER": "http://a:1"}) == (
        Target(server="http://a:1", api_key="x")
    )
    embedded = target([], {}).embedded
    assert embedded is not None and embedded.port == 0 and embedded.host == "127.0.0.1"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--bogus"], "unrecognized arguments: --bogus"),
        (["--server", "127.0.0.1:8765"], "URL must start with http:// or https://"),
        (["--demo", "--server", "http://127.0.0.1:1"], "cannot be combined with --server"),
    ],
)
def test_bad_flags_are_one_line_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("qrm-tui: error:") and message in error


def test_a_bad_server_variable_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    with pytest.raises(SystemExit):
        resolve_target(parser, parser.parse_args([]), {"QRM_TUI_SERVER": "nope"})
    assert "QRM_TUI_SERVER" in capsys.readouterr().err


async def test_the_server_address_is_shown_until_a_label_is_fixed(
    qrm_server: ServerFactory,
) -> None:
    server = await qrm_server()
    app = QrmTuiApp(Target(server=url_of(server)))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        assert str(app.screen.query_one("#server").render()) == url_of(server)
        assert str(app.screen.query_one("#connection").render()) == "● connected"
        assert not app.screen.query_one("#time-scale").display


async def test_an_embedded_server_that_cannot_start_says_why() -> None:
    settings = make_settings(host="127.0.0.1", port=0, db="/proc/qrm-tui/none/qrm.sqlite3")
    app = QrmTuiApp(Target(embedded=settings))
    async with app.run_test(size=SIZE) as pilot:
        screen = await until(
            pilot, lambda: isinstance(app.screen, StartupErrorScreen) and app.screen, "error"
        )
        assert screen.text.startswith("The embedded server could not start: ")
        assert "MOCK_QRM_DB" in screen.text
