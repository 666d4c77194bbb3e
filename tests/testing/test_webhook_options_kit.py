"""The kit's side of the newer webhook options: custom headers and a rate limit (SPEC 8.7)."""

from __future__ import annotations

from mock_qrm.contract.codes import DeliveryStatus
from mock_qrm.contract.models import RateLimit
from mock_qrm.testing import MockQrm, MockReceiver


def test_a_rate_limited_webhook_with_a_header(
    mock_qrm: MockQrm, qrm_receiver: MockReceiver
) -> None:
    hook = mock_qrm.create_webhook(
        qrm_receiver.url + "/ok", headers={"X-Tenant": "acme"}, rate_limit="2/minute"
    )
    assert hook.headers == {"X-Tenant": "acme"}
    assert hook.rate_limit == RateLimit(limit=2, period="minute")
    reports = [mock_qrm.upload_report() for _ in range(3)]
    mock_qrm.wait_for_deliveries(2)
    [waiting] = mock_qrm.deliveries(status="pending")
    assert waiting.resource_id == reports[2].resource_id and waiting.attempts_total == 0

    mock_qrm.advance(60)
    third = mock_qrm.wait_for_delivery(resource_id=reports[2].resource_id)
    assert third.status is DeliveryStatus.DELIVERED and len(third.attempts) == 1
    assert [r.headers["X-Tenant"] for r in qrm_receiver.received()] == ["acme"] * 3


def test_updating_the_options(mock_qrm: MockQrm) -> None:
    hook = mock_qrm.create_webhook("http://127.0.0.1:9/ok", rate_limit=RateLimit.parse("5/hour"))
    changed = mock_qrm.update_webhook(hook, headers={"X-A": "1"}, rate_limit=None)
    assert (changed.headers, changed.rate_limit) == ({"X-A": "1"}, None)
    kept = mock_qrm.update_webhook(hook, name="Renamed")
    assert kept.headers == {"X-A": "1"}
