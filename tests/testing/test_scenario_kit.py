"""The kit's side of scenario files (SPEC 9.4): `mock_qrm.load_config`, and `MockQrm(config=...)`."""

from __future__ import annotations

from pathlib import Path

import pytest

from mock_qrm.testing import MockQrm, ScenarioError

SCENARIO = """\
[[webhooks]]
name = "orders"
url = "http://127.0.0.1:9000/qrm"
events = ["report.created"]
basic_auth = { username = "qrm", password = "${KIT_ORDERS_PASSWORD}" }

[[faults]]
route = "GET /api/v1/reports/{id}"
status = 503
"""


@pytest.fixture
def orders_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KIT_ORDERS_PASSWORD", "s3cret")


def test_load_config_applies_a_scenario_to_the_fixtures_server(
    mock_qrm: MockQrm, orders_password: None
) -> None:
    applied = mock_qrm.load_config(SCENARIO)
    assert [w.name for w in applied.created] == ["orders"]
    assert [(f.route, f.status) for f in applied.faults] == [("GET /api/v1/reports/{id}", 503)]
    [hook] = mock_qrm.webhooks()
    assert hook.basic_auth is not None and hook.basic_auth.username == "qrm"
    again = mock_qrm.load_config(SCENARIO.replace("9000", "9001"))
    assert [(w.id, w.url) for w in again.updated] == [(hook.id, "http://127.0.0.1:9001/qrm")]
    assert len(mock_qrm.webhooks()) == 1


def test_load_config_reads_a_file_and_refuses_a_typo_with_every_line(
    mock_qrm: MockQrm, tmp_path: Path, orders_password: None
) -> None:
    path = tmp_path / "kit.toml"
    path.write_text(SCENARIO.replace("events", "evnets") + "[server]\ntime_scale = 60\n")
    with pytest.raises(ScenarioError) as caught:
        mock_qrm.load_config(path)
    assert caught.value.lines == [
        f"{path}:1: webhooks[0].events: Field required",
        f"{path}:4: webhooks[0].evnets: unknown field (did you mean events?)",
    ]
    assert mock_qrm.webhooks() == []

    path.write_text(SCENARIO + "[server]\ntime_scale = 60\n")
    with pytest.raises(ScenarioError) as caught:
        mock_qrm.load_config(str(path))
    assert caught.value.lines == [
        f"{path}:11: server.time_scale: cannot change while the server runs (it runs with"
        " 1.0): start it with this setting instead"
    ]
    assert mock_qrm.webhooks() == []  # refused whole


def test_a_kit_server_starts_in_a_scenario_and_is_renewed_to_it(
    tmp_path: Path, orders_password: None
) -> None:
    path = tmp_path / "kit.toml"
    path.write_text(SCENARIO + "[server]\ntime_scale = 60\nretries = 5\n")
    with MockQrm(config=path, retries=1) as qrm:
        clock = qrm.clock()
        assert clock.time_scale == 60 and clock.manual  # the file's; the kit's manual clock
        assert qrm.settings is not None and qrm.settings.retries == 1  # given here: beats the file
        [hook] = qrm.webhooks()
        qrm.delete_webhook(hook)
        qrm.create_webhook("http://127.0.0.1:9/other")
        qrm._renew_soon().result(10)  # as the pytest plugin renews it for the next test
        assert [w.name for w in qrm.webhooks()] == ["orders"]


def test_a_connected_kit_sends_the_scenario_and_maps_a_refusal_to_its_lines(
    mock_qrm: MockQrm, orders_password: None
) -> None:
    mock_qrm.create_webhook("http://127.0.0.1:9/a", name="orders")
    mock_qrm.create_webhook("http://127.0.0.1:9/b", name="orders")
    with MockQrm.connect(mock_qrm.base_url, api_key=mock_qrm.api_key) as remote:
        with pytest.raises(ScenarioError) as caught:
            remote.load_config(SCENARIO)
        assert caught.value.lines == [
            "<scenario>:2: webhooks[0].name: 2 webhooks are named 'orders' (ids 1, 2): remove or"
            " rename all but one, so the scenario knows which to update"
        ]
        mock_qrm.delete_webhook(2)
        applied = remote.load_config(SCENARIO)
    assert [w.id for w in applied.updated] == [1]
