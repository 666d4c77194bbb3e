"""The testing kit: the pytest plugin's fixtures and marker, and `MockQrm` outside pytest.

Tests of what a plugin user sees (collection, the marker, failure output) run an
inner pytest session with `pytester`; the rest use the fixtures directly, since
the plugin is installed in this very environment.
"""

from __future__ import annotations

import asyncio
import gc
import re
from pathlib import Path
from typing import Any

import pytest

from mock_qrm.contract.codes import DeliveryStatus
from mock_qrm.contract.models import DeliveryDetail
from mock_qrm.testing import (
    DeliveryWaitTimeout,
    MockQrm,
    MockQrmFactory,
    MockReceiver,
    QrmApiError,
    QrmUnavailable,
    ReceiverWaitTimeout,
)
from tests.e2e.processes import free_port, running

_COLLECTOR_AT_IMPORT = gc.get_threshold()

# --- the fixtures, from synchronous and async tests -------------------------------


def test_fixtures_work_in_a_synchronous_test(mock_qrm: MockQrm, qrm_receiver: MockReceiver) -> None:
    hook = mock_qrm.create_webhook(qrm_receiver.url + "/ok")
    report = mock_qrm.upload_report()

    delivery = mock_qrm.wait_for_delivery(webhook=hook, resource_id=report.resource_id)

    assert isinstance(delivery, DeliveryDetail)
    assert delivery.status is DeliveryStatus.DELIVERED
    assert [a.response_status for a in delivery.attempts] == [200]
    [request] = qrm_receiver.received()
    assert request.message_id == delivery.message_id
    assert request.body == delivery.message.model_dump(by_alias=True)


async def test_fixtures_work_in_an_async_test(
    mock_qrm: MockQrm, qrm_receiver: MockReceiver
) -> None:
    hook = await mock_qrm.acreate_webhook(qrm_receiver.url + "/ok")
    report = await mock_qrm.aupload_report()

    delivery = await mock_qrm.await_for_delivery(webhook=hook)

    assert delivery.resource_id == report.resource_id
    [request] = await qrm_receiver.await_for_requests(1)
    assert request.path == "/ok"


def test_the_kit_leaves_the_test_process_collector_alone(
    mock_qrm: MockQrm, qrm_receiver: MockReceiver
) -> None:
    # `mock-qrm serve` tunes its collector (`settle_heap`); a test process is the user's.
    hook = mock_qrm.create_webhook(qrm_receiver.url + "/ok")
    mock_qrm.upload_report()
    mock_qrm.wait_for_delivery(webhook=hook)

    assert gc.get_threshold() == _COLLECTOR_AT_IMPORT
    assert gc.get_freeze_count() == 0


async def test_a_blocking_helper_in_async_code_says_which_to_await(mock_qrm: MockQrm) -> None:
    with pytest.raises(RuntimeError, match=r"await its async twin, aupload_report\(\)"):
        mock_qrm.upload_report()


def test_the_fixture_gives_what_the_code_under_test_needs(mock_qrm: MockQrm) -> None:
    assert mock_qrm.base_url.startswith("http://127.0.0.1:")
    assert mock_qrm.api_url == mock_qrm.base_url + "/api/v1"
    assert mock_qrm.api_key
    assert mock_qrm.settings is not None
    assert mock_qrm.settings.db == ":memory:"
    assert mock_qrm.clock().manual


def test_the_api_key_is_enforced(mock_qrm: MockQrm) -> None:
    report = mock_qrm.upload_report()
    assert mock_qrm.report(report.resource_id)["inspectionGeneral"]["id"] == report.resource_id
    with pytest.raises(QrmApiError) as refused, MockQrm.connect(mock_qrm.base_url):
        pass
    assert refused.value.status == 401


def _nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("call", "status", "field"),
    [
        (lambda q: q.create_webhook("ftp://example.com/hook"), 422, "url"),
        (lambda q: q.create_webhook(q.base_url + "/hook"), 422, "url"),  # the mock itself
        (lambda q: q.create_webhook("http://e.com/h", events=["report.nope"]), 422, "events"),
        (lambda q: q.create_webhook("http://e.com/h", headers={"Host": "x"}), 422, "headers.Host"),
        (lambda q: q.upload_report({"caseNumber": 5}), 422, "overrides.caseNumber"),
        (lambda q: q.upload_report({"caseNumber": "x" * 2_000_000}), 413, None),  # over 1 MiB
        (lambda q: q.upload_report({"caseNumber": _nested(70)}), 400, None),  # over 64 deep
    ],
)
def test_setup_calls_on_an_embedded_server_are_refused_as_over_http(
    mock_qrm: MockQrm, call: Any, status: int, field: str | None
) -> None:
    """The kit calls its own server's service without the HTTP trip: the refusal is the same."""
    with pytest.raises(QrmApiError) as embedded:
        call(mock_qrm)
    with (
        MockQrm.connect(mock_qrm.base_url, api_key=mock_qrm.api_key) as remote,
        pytest.raises(QrmApiError) as over_http,
    ):
        call(remote)

    assert embedded.value.status == over_http.value.status == status
    assert field is None or field in embedded.value.field_errors
    said = [(e.error_code, e.message, e.field_errors) for e in (embedded.value, over_http.value)]
    assert said[0] == said[1]
    assert mock_qrm.webhooks() == []


def test_the_environment_does_not_leak_into_the_fixture(
    monkeypatch: pytest.MonkeyPatch, mock_qrm_factory: MockQrmFactory
) -> None:
    monkeypatch.setenv("MOCK_QRM_RETRIES", "7")
    monkeypatch.setenv("MOCK_QRM_API_KEY", "from-the-shell")
    qrm = mock_qrm_factory()
    assert qrm.settings is not None
    assert qrm.settings.retries == 3
    assert qrm.api_key != "from-the-shell"


# --- the marker and the factory ---------------------------------------------------


@pytest.mark.mock_qrm(retries=1, time_scale=60)
def test_the_marker_overrides_settings(mock_qrm: MockQrm, qrm_receiver: MockReceiver) -> None:
    assert mock_qrm.settings is not None
    assert (mock_qrm.settings.retries, mock_qrm.settings.time_scale) == (1, 60)
    mock_qrm.create_webhook(qrm_receiver.url + "/status/500")
    mock_qrm.upload_report()
    mock_qrm.wait_for_delivery(status="retry_scheduled")

    mock_qrm.advance(1.01)  # 60 s at time scale 60

    failed = mock_qrm.wait_for_delivery(status="failed")
    assert failed.attempt_count == 2


@pytest.mark.mock_qrm(retries=0, timeout=9)
class TestMarkersNest:
    @pytest.mark.mock_qrm(retries=2)
    def test_the_closest_marker_wins_per_setting(self, mock_qrm: MockQrm) -> None:
        assert mock_qrm.settings is not None
        assert (mock_qrm.settings.retries, mock_qrm.settings.timeout) == (2, 9)


def test_the_factory_starts_servers_with_settings(mock_qrm_factory: MockQrmFactory) -> None:
    first, second = mock_qrm_factory(retries=0), mock_qrm_factory(api_key=None)
    assert first.base_url != second.base_url
    assert first.settings is not None
    assert first.settings.retries == 0
    assert second.api_key is None


def test_an_unknown_setting_is_refused_by_name(mock_qrm_factory: MockQrmFactory) -> None:
    with pytest.raises(TypeError, match=r"unknown mock_qrm setting.*retrys"):
        mock_qrm_factory(retrys=1)


# --- the helpers ------------------------------------------------------------------


def test_retries_are_driven_by_the_manual_clock(
    mock_qrm: MockQrm, qrm_receiver: MockReceiver
) -> None:
    hook = mock_qrm.create_webhook(qrm_receiver.url + "/flaky/1")
    report = mock_qrm.upload_report()
    first = mock_qrm.wait_for_delivery(status="retry_scheduled")
    assert first.last_response_status == 500

    mock_qrm.advance(61)

    delivered = mock_qrm.wait_for_delivery(resource_id=report.resource_id, attempts=2)
    assert [a.response_status for a in mock_qrm.attempts(delivered)] == [500, 200]
    assert [d.id for d in mock_qrm.deliveries(webhook=hook, status="delivered")] == [first.id]
    assert len(qrm_receiver.received(message_id=first.message_id)) == 2


def test_a_delivery_that_is_already_there_is_found_at_once(
    mock_qrm: MockQrm, qrm_receiver: MockReceiver
) -> None:
    mock_qrm.create_webhook(qrm_receiver.url + "/ok")
    report = mock_qrm.upload_report()
    qrm_receiver.wait_for_requests(1)
    mock_qrm.wait_for_delivery(resource_id=report.resource_id)

    again = mock_qrm.wait_for_delivery(resource_id=report.resource_id, timeout=0)

    assert again.resource_id == report.resource_id


def test_trigger_and_wait_for_several(mock_qrm: MockQrm, qrm_receiver: MockReceiver) -> None:
    mock_qrm.create_webhook(qrm_receiver.url + "/ok", events=["report.file_ready"])
    report = mock_qrm.upload_report()
    emitted = mock_qrm.trigger("report.file_ready", report.resource_id)
    assert emitted.deliveries == 1
    mock_qrm.trigger("report.file_ready", report.resource_id)

    both = mock_qrm.wait_for_deliveries(2, event_code="report.file_ready")

    assert len({d.message_id for d in both}) == 2
    assert mock_qrm.deliveries(event_code="report.created") == []


def test_wait_for_delivery_fails_with_the_expected_delivery_and_the_journal(
    mock_qrm: MockQrm, qrm_receiver: MockReceiver
) -> None:
    mock_qrm.create_webhook(qrm_receiver.url + "/status/503", name="Flaky ERP")
    report = mock_qrm.upload_report()
    mock_qrm.wait_for_delivery(status="retry_scheduled")

    with pytest.raises(DeliveryWaitTimeout) as failure:
        mock_qrm.wait_for_delivery(resource_id=report.resource_id, timeout=0.2)

    message = str(failure.value)
    assert f"Expected a delivery with status delivered, resource {report.resource_id}" in message
    assert "The journal holds 1 delivery:" in message
    assert "'Flaky ERP', report.created" in message
    assert "retry_scheduled, 1 attempt, last answer HTTP 503, next attempt at" in message
    assert [d.status for d in failure.value.journal] == ["retry_scheduled"]
    # The hint's wait is 60 s after the attempt ended: 61 once it took a millisecond or more.
    hint = re.search(r"call mock_qrm\.advance\((\d+)\)", message)
    assert hint is not None and hint[1] in ("60", "61"), message
    mock_qrm.advance(int(hint[1]))  # taking the hint is enough for the retry to go
    [delivery] = failure.value.journal
    assert len(mock_qrm.attempts(delivery)) == 2


def test_redeliver_and_reset(mock_qrm: MockQrm, qrm_receiver: MockReceiver) -> None:
    mock_qrm.create_webhook(qrm_receiver.url + "/ok")
    mock_qrm.upload_report()
    delivery = mock_qrm.wait_for_delivery()

    attempt = mock_qrm.redeliver(delivery)
    assert (attempt.trigger, attempt.response_status) == ("manual", 200)
    assert len(qrm_receiver.received(message_id=delivery.message_id)) == 2

    mock_qrm.reset()
    assert mock_qrm.deliveries() == []
    assert mock_qrm.webhooks() == []
    with pytest.raises(DeliveryWaitTimeout, match="The journal is empty"):
        mock_qrm.wait_for_delivery(timeout=0.05)


def test_update_and_delete_a_webhook(mock_qrm: MockQrm, qrm_receiver: MockReceiver) -> None:
    hook = mock_qrm.create_webhook(qrm_receiver.url + "/status/500")
    mock_qrm.upload_report()
    mock_qrm.wait_for_delivery(status="retry_scheduled")

    mock_qrm.update_webhook(hook, active=False)

    mock_qrm.wait_for_delivery(status="cancelled", webhook=hook)
    mock_qrm.delete_webhook(hook)
    assert mock_qrm.webhooks() == []


def test_the_receiver_wait_fails_with_what_it_received(qrm_receiver: MockReceiver) -> None:
    with pytest.raises(ReceiverWaitTimeout, match="It received nothing"):
        qrm_receiver.wait_for_requests(1, timeout=0.05)


# --- MockQrm outside pytest's fixtures --------------------------------------------


def test_mock_qrm_as_a_context_manager() -> None:
    with MockQrm(retries=0) as qrm, MockReceiver() as receiver:
        qrm.create_webhook(receiver.url + "/reset")
        qrm.upload_report()
        failed = qrm.wait_for_delivery(status="failed")
        assert failed.attempts[0].error == "connection_reset"
    with pytest.raises(RuntimeError, match="not running"):
        qrm.upload_report()


async def test_mock_qrm_as_an_async_context_manager() -> None:
    async with MockQrm() as qrm, MockReceiver() as receiver:
        await qrm.acreate_webhook(receiver.url + "/auth/qrm/pw", basic_auth=("qrm", "pw"))
        await qrm.aupload_report()
        delivered = await qrm.await_for_delivery()
        [request] = await receiver.areceived()
        assert request.headers["Authorization"].startswith("Basic ")
        assert delivered.attempts[0].request_headers["Authorization"] == "Basic [redacted]"


async def test_async_helpers_run_concurrently(mock_qrm: MockQrm) -> None:
    first, second = await asyncio.gather(mock_qrm.aupload_report(), mock_qrm.aupload_report())
    assert abs(first.resource_id - second.resource_id) == 1


def test_connect_to_a_running_server(tmp_path: Path, qrm_receiver: MockReceiver) -> None:
    port = free_port()
    args = ["serve", "--port", str(port), "--db", ":memory:", "--manual-clock"]
    args += ["--api-key", "k3y", "--seed-reports", "2"]
    url = f"http://127.0.0.1:{port}"
    with running(args, url + "/healthz", tmp_path / "serve.log"):
        with MockQrm.connect(url + "/api/v1/", api_key="k3y") as qrm:
            assert (qrm.base_url, qrm.api_url) == (url, url + "/api/v1")
            assert qrm.settings is None
            qrm.create_webhook(qrm_receiver.url + "/flaky/1")
            qrm.upload_report()
            qrm.wait_for_delivery(status="retry_scheduled")
            qrm.advance(61)
            assert qrm.wait_for_delivery().attempt_count == 2
        with pytest.raises(QrmApiError, match="401"), MockQrm.connect(url, api_key="wrong"):
            pass


def test_connect_to_nothing_says_so() -> None:
    with (
        pytest.raises(QrmUnavailable, match="cannot reach"),
        MockQrm.connect(f"http://127.0.0.1:{free_port()}"),
    ):
        pass


# --- what a plugin user sees ----------------------------------------------------------


def run_inner(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """An inner session in this process (fast), without plugins that keep global state.

    pytest-textual-snapshot keeps one temporary folder per process and removes it
    when a session ends, which would break this outer session's end.
    """
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    return pytester.runpytest("-p", "no:textual-snapshot", *args)


INNER_PASSING = """
import pytest

def test_sync(mock_qrm, qrm_receiver):
    mock_qrm.create_webhook(qrm_receiver.url + "/ok")
    report = mock_qrm.upload_report()
    assert mock_qrm.wait_for_delivery().resource_id == report.resource_id

@pytest.mark.asyncio
async def test_pytest_asyncio(mock_qrm, qrm_receiver):
    await mock_qrm.acreate_webhook(qrm_receiver.url + "/ok")
    await mock_qrm.aupload_report()
    await mock_qrm.await_for_delivery()

@pytest.mark.asyncio
async def test_pytest_aiohttp(mock_qrm, aiohttp_client):
    from aiohttp import web
    seen = []

    async def hook(request):
        seen.append(await request.json())
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", hook)
    client = await aiohttp_client(app)
    await mock_qrm.acreate_webhook(str(client.make_url("/hook")))
    await mock_qrm.aupload_report()
    delivery = await mock_qrm.await_for_delivery()
    assert seen[0]["messageId"] == delivery.message_id

@pytest.mark.mock_qrm(retries=0)
def test_marker(mock_qrm):
    assert mock_qrm.settings.retries == 0
"""


def test_inner_session_uses_the_plugin_sync_and_async(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_inner=INNER_PASSING)

    result = run_inner(pytester, "--strict-markers", "-q")

    result.assert_outcomes(passed=4)


INNER_FAILING = """
import pytest

def test_waits_for_a_retry_that_the_clock_never_reaches(mock_qrm, qrm_receiver):
    mock_qrm.create_webhook(qrm_receiver.url + "/status/500", name="ERP")
    report = mock_qrm.upload_report()
    mock_qrm.wait_for_delivery(resource_id=report.resource_id, timeout=0.3)

def test_an_ordinary_assertion(mock_qrm, qrm_receiver):
    mock_qrm.create_webhook(qrm_receiver.url + "/ok", name="Shop")
    mock_qrm.upload_report()
    mock_qrm.wait_for_delivery()
    assert False, "the receiver stored nothing"
"""


def test_a_failing_wait_says_what_was_expected_and_lists_the_journal(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_inner=INNER_FAILING)

    result = run_inner(pytester, "-q")

    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "*DeliveryWaitTimeout: Expected a delivery with status delivered, resource 123* "
            "within 0.3 s, but none matched.",
            "*The journal holds 1 delivery:",
            "*#1 webhook 1 'ERP', report.created, resource 123*: retry_scheduled, 1 attempt, "
            "last answer HTTP 500, next attempt at *Z",
            "*Hint: the server's clock is manual*mock_qrm.advance(61)*",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*mock_qrm journal at http://127.0.0.1:*",
            "#1 webhook 1 'Shop', report.created, resource *: delivered, 1 attempt, "
            "last answer HTTP 200",
        ]
    )
    assert "_bridge.py" not in result.stdout.str()  # the user's line, not the kit's plumbing


def test_the_marker_is_registered(pytester: pytest.Pytester) -> None:
    result = run_inner(pytester, "--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.mock_qrm(**settings)*"])


def test_the_marker_takes_settings_by_name_only(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_inner="""
        import pytest

        @pytest.mark.mock_qrm(1)
        def test_positional(mock_qrm):
            pass
        """
    )
    result = run_inner(pytester, "-q")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*takes settings by name*"])


# --- faults on QRM's routes (SPEC 8.4) ---------------------------------------------------


def test_the_kit_puts_a_fault_on_the_report_route_and_records_the_calls(
    mock_qrm: MockQrm,
) -> None:
    import urllib.error
    import urllib.request

    fault = mock_qrm.add_fault(status=503, times=1)
    assert (fault.route, fault.remaining) == ("GET /api/v1/reports/{id}", 1)
    url = f"{mock_qrm.api_url}/reports/12301"
    headers = {"apiKey": mock_qrm.api_key or ""}
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5)
    assert refused.value.code == 503
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as ok:
        assert ok.status == 200
    assert [(c.path, c.status) for c in mock_qrm.api_calls()] == [
        ("/api/v1/reports/12301", 503),
        ("/api/v1/reports/12301", 200),
    ]
    mock_qrm.add_fault(status=500)
    mock_qrm.clear_faults()
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as ok:
        assert ok.status == 200


# --- one server per session, renewed for every test -----------------------------------------

INNER_ISOLATION = """
import urllib.error
import urllib.request

import pytest

from mock_qrm.testing import DeliveryWaitTimeout

FIRST = {}


def get_report(qrm, report_id):
    request = urllib.request.Request(
        f"{qrm.api_url}/reports/{report_id}", headers={"apiKey": qrm.api_key}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status
    except urllib.error.HTTPError as refused:
        return refused.code


def test_one_leaves_everything_behind(mock_qrm, qrm_receiver):
    FIRST["server"], FIRST["receiver"] = mock_qrm.base_url, qrm_receiver.url
    mock_qrm.create_webhook(qrm_receiver.url + "/ok", name="Delivered")
    mock_qrm.create_webhook(qrm_receiver.url + "/status/500", name="Retrying")
    mock_qrm.create_webhook(qrm_receiver.url + "/hang", name="Hanging")
    report = mock_qrm.upload_report()
    mock_qrm.wait_for_delivery(status="retry_scheduled")
    mock_qrm.wait_for_delivery()
    qrm_receiver.wait_for_requests(3)
    mock_qrm.add_fault(status=503)  # until removed
    assert get_report(mock_qrm, 12301) == 503
    FIRST["report"] = report.resource_id
    FIRST["clock"] = mock_qrm.advance(3600).now
    mock_qrm.upload_report()  # its deliveries are still in flight when the test ends


def test_two_sees_nothing_of_it(qrm_receiver, mock_qrm, mock_qrm_factory):  # receiver first
    with pytest.raises(DeliveryWaitTimeout, match="The journal is empty"):
        mock_qrm.wait_for_delivery(status=None, timeout=0)  # the live copy is empty at once
    assert (mock_qrm.base_url, qrm_receiver.url) == (FIRST["server"], FIRST["receiver"])
    assert mock_qrm.webhooks() == []
    assert mock_qrm.deliveries() == []
    with pytest.raises(DeliveryWaitTimeout, match="The journal is empty"):
        mock_qrm.wait_for_delivery(status=None, timeout=0.2)
    assert qrm_receiver.received() == []
    assert mock_qrm.api_calls() == []
    assert get_report(mock_qrm, 12301) == 200  # the fault is gone
    assert get_report(mock_qrm, FIRST["report"]) == 404  # so is the uploaded report
    fresh = mock_qrm_factory()
    assert mock_qrm.clock().now < FIRST["clock"]
    assert abs((mock_qrm.clock().now - fresh.clock().now).total_seconds()) < 60
    assert mock_qrm.add_fault(status=500).id == fresh.add_fault(status=500).id
    mock_qrm.clear_faults()
    hook = mock_qrm.create_webhook(qrm_receiver.url + "/ok")
    assert hook.id == fresh.create_webhook(qrm_receiver.url + "/ok", active=False).id
    report = mock_qrm.upload_report()
    assert report.resource_id == fresh.upload_report().resource_id == FIRST["report"]
    delivery = mock_qrm.wait_for_delivery()
    assert (delivery.id, delivery.webhook_id) == (1, hook.id)
    [request] = qrm_receiver.received()
    assert request.message_id == delivery.message_id


def test_three_closes_what_it_was_given(mock_qrm, qrm_receiver):
    mock_qrm.close()
    qrm_receiver.close()


def test_four_gets_running_ones(mock_qrm, qrm_receiver):
    mock_qrm.create_webhook(qrm_receiver.url + "/ok")
    mock_qrm.upload_report()
    mock_qrm.wait_for_delivery()
"""


def test_one_server_serves_the_session_and_no_test_sees_another_s_state(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_inner=INNER_ISOLATION)

    result = run_inner(pytester, "-q", "-p", "no:randomly")

    result.assert_outcomes(passed=4)


def test_a_server_on_a_database_file_is_each_test_s_own(pytester: pytest.Pytester) -> None:
    db = pytester.path / "qrm.sqlite3"
    pytester.makepyfile(
        test_inner=f"""
        import pytest

        pytestmark = pytest.mark.mock_qrm(db={str(db)!r})
        FIRST = []

        def test_one(mock_qrm):
            FIRST.append(mock_qrm)
            assert mock_qrm.upload_report().resource_id == 12306

        def test_two(mock_qrm):
            with pytest.raises(RuntimeError, match="not running"):
                FIRST[0].clock()  # closed when its test ended
            assert mock_qrm.upload_report().resource_id == 12307  # the same file
        """
    )
    result = run_inner(pytester, "-q", "-p", "no:randomly")
    result.assert_outcomes(passed=2)


# --- the wait mirror, when it lags behind the server -----------------------------------


def test_a_wait_passes_over_deliveries_the_server_no_longer_has(
    mock_qrm: MockQrm, qrm_receiver: MockReceiver
) -> None:
    """A mirror that missed a wipe (it fell behind a burst) must not hand back what is gone."""
    mock_qrm.create_webhook(qrm_receiver.url + "/ok")
    mock_qrm.upload_report()
    real = mock_qrm.wait_for_delivery()
    stale = real.model_copy(update={"id": 999})
    mock_qrm._feed.deliveries[999] = stale  # as if left over from before a reset

    with pytest.raises(DeliveryWaitTimeout):
        mock_qrm.wait_for_delivery(message_id=real.message_id, delivery_id=999, timeout=0.2)
    assert 999 not in mock_qrm._feed.deliveries
    assert mock_qrm.wait_for_delivery(message_id=real.message_id).id == real.id


async def test_a_snapshot_read_across_a_wipe_is_read_again() -> None:
    """The mirror's journal snapshot is paged; a wipe between the pages must not leave old rows."""
    from mock_qrm.client.mirror import FeedMirror
    from mock_qrm.contract.models import Delivery, Page

    old = Delivery.model_validate(
        {"id": 1, "messageId": "wh-1", "webhookId": 1, "webhookName": "Hook",
         "eventCode": "report.created", "resourceId": 12301, "status": "delivered",
         "attemptCount": 1, "attemptsTotal": 1, "createdAt": "2026-12-01T00:00:00Z"}
    )  # fmt: skip
    journals = [[old], []]  # before the wipe, and after it

    class Client:
        async def deliveries(self, limit: int, offset: int) -> Page[Delivery]:
            rows = journals[0]
            if len(journals) > 1:
                mirror.forget_through(7)  # the wipe lands while this page is read
                journals.pop(0)
            return Page[Delivery](data=rows, limit=limit, offset=offset, total=len(rows))

    mirror = FeedMirror(Client())  # type: ignore[arg-type]
    await mirror._load_snapshot()
    assert mirror.deliveries == {}


def test_dropping_a_stale_delivery_keeps_a_new_one_under_its_id(
    mock_qrm: MockQrm, qrm_receiver: MockReceiver
) -> None:
    """The 404 for a stale row and a frame reusing its id can cross: the new row stays."""
    mock_qrm.create_webhook(qrm_receiver.url + "/ok")
    mock_qrm.upload_report()
    current = mock_qrm.wait_for_delivery()
    mirror = mock_qrm._feed
    stale = current.model_copy(update={"status": "failed"})

    mirror.drop([stale])  # the mirror already holds a newer object under this id
    assert mirror.deliveries[current.id].status == "delivered"
    mirror.drop([mirror.deliveries[current.id]])
    assert current.id not in mirror.deliveries
