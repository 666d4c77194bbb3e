"""The integration-testing kit: a mock QRM and a fault-injecting receiver for any test suite.

    from mock_qrm.testing import MockQrm

    with MockQrm(retries=1) as qrm:          # or: async with ..., MockQrm.connect(url)
        hook = qrm.create_webhook(my_receiver_url, basic_auth=("qrm", "s3cret"))
        report = qrm.upload_report()
        delivery = qrm.wait_for_delivery(resource_id=report.resource_id)

Under pytest the same objects come as fixtures (`mock_qrm`, `mock_qrm_factory`,
`qrm_receiver`) from the plugin in `mock_qrm.testing.plugin`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from mock_qrm.client.errors import QrmUnavailable
from mock_qrm.client.matching import DeliveryMatch
from mock_qrm.contract.codes import DeliveryStatus
from mock_qrm.contract.errors import QrmApiError
from mock_qrm.contract.models import (
    Attempt,
    ClockState,
    Delivery,
    DeliveryDetail,
    EmittedEvent,
    ScenarioApplied,
    UploadedReport,
    Webhook,
    WebhookStats,
)

if TYPE_CHECKING:
    from mock_qrm.app import ScenarioError
    from mock_qrm.receiver import ReceivedRequest
    from mock_qrm.testing.qrm import DeliveryWaitTimeout, MockQrm, MockQrmFactory
    from mock_qrm.testing.receiver import MockReceiver, ReceiverWaitTimeout

_LAZY = {
    "DeliveryWaitTimeout": "mock_qrm.testing.qrm",
    "MockQrm": "mock_qrm.testing.qrm",
    "MockQrmFactory": "mock_qrm.testing.qrm",
    "MockReceiver": "mock_qrm.testing.receiver",
    "ReceiverWaitTimeout": "mock_qrm.testing.receiver",
    "ReceivedRequest": "mock_qrm.receiver",
    "ScenarioError": "mock_qrm.app",
}
"""Imported when first used: `import mock_qrm.testing` must not start the server's imports."""


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "Attempt",
    "ClockState",
    "Delivery",
    "DeliveryDetail",
    "DeliveryMatch",
    "DeliveryStatus",
    "DeliveryWaitTimeout",
    "EmittedEvent",
    "MockQrm",
    "MockQrmFactory",
    "MockReceiver",
    "QrmApiError",
    "QrmUnavailable",
    "ReceivedRequest",
    "ReceiverWaitTimeout",
    "ScenarioApplied",
    "ScenarioError",
    "UploadedReport",
    "Webhook",
    "WebhookStats",
]
