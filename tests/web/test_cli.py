"""`qrm-tui --web` flags: a password off loopback, refusals in one line."""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from qrm_tui.__main__ import build_parser
from qrm_tui.web import WebSettings, local_fonts, tab_command, tab_key


def run_tui(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("QRM_TUI_WEB_")}
    return subprocess.run(
        [sys.executable, "-m", "qrm_tui", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={**environ, **env},
    )


def test_web_off_loopback_without_a_password_refuses_in_one_line() -> None:
    result = run_tui("--web", "--web-host", "0.0.0.0")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("qrm-tui: error: refusing to serve the app on 0.0.0.0")
    assert "--web-password" in result.stderr and "QRM_TUI_WEB_PASSWORD" in result.stderr


def test_an_empty_password_from_the_environment_is_no_password() -> None:
    result = run_tui("--web", "--web-host", "0.0.0.0", QRM_TUI_WEB_PASSWORD="")
    assert result.returncode == 2
    assert "refusing to serve" in result.stderr


def test_web_demo_cannot_take_a_server() -> None:
    result = run_tui("--web", "--demo", "--server", "http://127.0.0.1:9")
    assert result.returncode == 2
    assert "--demo runs its own server" in result.stderr


def test_a_password_allows_any_host() -> None:
    settings = WebSettings(host="0.0.0.0", password="s3cret")  # type: ignore[arg-type]
    assert settings.password is not None


def test_loopback_needs_no_password() -> None:
    assert WebSettings(host="127.0.0.1").password is None


def test_a_bad_port_is_refused() -> None:
    with pytest.raises(ValidationError):
        WebSettings(port=70000)


def test_each_tab_runs_this_app_on_the_shared_server() -> None:
    argv = shlex.split(tab_command("http://127.0.0.1:9/"))
    assert argv == [sys.executable, "-m", "qrm_tui", "--server", "http://127.0.0.1:9/"]


def test_a_demo_tab_opens_on_the_deliveries_as_the_terminal_demo_does() -> None:
    argv = shlex.split(tab_command("http://127.0.0.1:9/", "deliveries"))
    assert argv[-2:] == ["--screen", "deliveries"]
    assert build_parser().parse_args(argv[3:]).screen == "deliveries"


def test_the_page_takes_its_font_from_the_app_not_a_font_service() -> None:
    import textual_serve

    template = Path(textual_serve.__file__).with_name("templates") / "app_index.html"
    page = template.read_text()
    assert "fonts.googleapis.com" in page  # what textual-serve's page asks for
    served = local_fonts(page, "http://127.0.0.1:8000/static/")
    assert "fonts.googleapis.com" not in served
    assert "http://127.0.0.1:8000/static/fonts/RobotoMono-VariableFont_wght.ttf" in served


def test_a_web_port_in_use_starts_nothing_and_writes_nothing(tmp_path: Path) -> None:
    """The app's port is taken first: the embedded server's database is never created."""
    db = tmp_path / "never.sqlite3"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "qrm_tui", "--web", "--web-port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "MOCK_QRM_DB": str(db)},
            check=False,
        )
    assert result.returncode == 1, result
    assert result.stderr.startswith(f"qrm-tui: error: cannot listen on 127.0.0.1:{port}:")
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_each_tab_gets_the_key_from_its_environment_not_its_command_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Anyone on the machine can read a process's arguments (`ps`); only its owner its environment."""
    monkeypatch.setenv("QRM_TUI_API_KEY", "the user's own")
    resolve = (
        "import os; from mock_qrm.client import ClientSettings;"
        " print(ClientSettings.resolve({}, os.environ).api_key)"
    )
    with tab_key("key with spaces"):
        child = subprocess.run(
            [sys.executable, "-c", resolve], capture_output=True, text=True, check=True
        )
    assert child.stdout.strip() == "key with spaces"
    assert os.environ["QRM_TUI_API_KEY"] == "the user's own"  # put back once serving ends
