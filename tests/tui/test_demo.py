"""`qrm-tui --demo`: its own wiped database, a receiver, four webhooks named for what they do,
uploads every few seconds, sped-up time, and the Deliveries screen first."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from qrm_tui.__main__ import build_parser, prepare_demo, resolve_target
from qrm_tui.app import QrmTuiApp, Target
from qrm_tui.demo import DemoOptions, demo_settings
from qrm_tui.screens.deliveries import DeliveriesScreen
from tests.conftest import make_settings
from tests.tui.conftest import LABEL, SIZE, delivery_rows, ready, until


async def test_the_demo_adds_its_webhooks_and_uploads_and_opens_on_deliveries(
    tmp_path: Path,
) -> None:
    base = make_settings(host="127.0.0.1", port=0, timeout=60.0)
    settings = demo_settings(base, tmp_path / "demo.sqlite3", time_scale=300)
    app = QrmTuiApp(
        Target(embedded=settings, demo=DemoOptions(upload_every=0.3)), server_label=LABEL
    )
    app.animation_level = "none"
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        assert isinstance(app.screen, DeliveriesScreen)
        assert str(app.screen.query_one("#time-scale").render()) == "×300 time"  # noqa: RUF001
        assert app.demo is not None and app.demo.receiver is not None
        receiver = app.demo.receiver.url
        hooks = {w.name: w.url for w in app.webhooks.values()}
        assert hooks == {
            "Healthy receiver": f"{receiver}/ok",
            "Flaky receiver: fails twice": f"{receiver}/flaky/2",
            "Slow receiver: times out": f"{receiver}/delay/3",
            "Broken receiver: always 500": f"{receiver}/status/500",
        }
        await until(pilot, lambda: app.demo is not None and app.demo.uploads >= 2, "uploads")
        # The healthy receiver's second half: it reads each report back (the faults screen's calls).
        await until(pilot, lambda: app.demo is not None and app.demo.call_backs >= 1, "call-backs")
        calls = await app.client.api_calls()
        assert any(c.method == "GET" and c.path.startswith("/api/v1/reports/") for c in calls)
        assert all(c.status == 200 for c in calls)

        def seen(webhook: str, state: str) -> bool:
            return any(r["webhook"] == webhook and r["state"] == state for r in delivery_rows(app))

        await until(
            pilot,
            lambda: (
                seen("Healthy receiver", "✓ delivered")
                and seen("Flaky receiver: fails twice", "✓ delivered")
                and seen("Broken receiver: always 500", "✗ failed")
                and seen("Slow receiver: times out", "✗ failed")
            ),
            "every kind of outcome",
            within=10,
        )


def test_demo_uses_its_own_database_in_the_user_data_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    monkeypatch.delenv("MOCK_QRM_DB", raising=False)
    parser = build_parser()
    target = resolve_target(parser, parser.parse_args(["--demo"]), {})
    assert target.demo == DemoOptions()
    assert target.embedded is not None
    assert Path(target.embedded.db) == tmp_path / "mock-qrm" / "demo.sqlite3"
    assert target.embedded.time_scale == 20
    assert target.embedded.port == 0 and target.embedded.host == "127.0.0.1"


def test_each_demo_starts_from_a_wiped_database_and_a_second_one_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "demo.sqlite3"
    for name in ("demo.sqlite3", "demo.sqlite3-wal", "demo.sqlite3-shm"):
        (tmp_path / name).write_text("old state")
    real = tmp_path / "mock-qrm.sqlite3"
    real.write_text("the user's own state")
    parser = build_parser()
    target = Target(embedded=demo_settings(make_settings(db=str(db)), db), demo=DemoOptions())
    lock = prepare_demo(parser, target)
    try:
        assert not db.exists() and not (tmp_path / "demo.sqlite3-wal").exists()
        assert real.read_text() == "the user's own state"
        with pytest.raises(SystemExit) as exit_info:
            prepare_demo(parser, target)
        assert exit_info.value.code == 1
        error = capsys.readouterr().err.strip()
        assert error.startswith("qrm-tui: error: another qrm-tui --demo is running")
    finally:
        assert lock is not None
        lock.release()
    again = prepare_demo(parser, target)  # released: the next demo may start
    assert again is not None
    again.release()


def test_demo_without_demo_prepares_nothing() -> None:
    parser: argparse.ArgumentParser = build_parser()
    assert prepare_demo(parser, Target(server="http://127.0.0.1:1")) is None
