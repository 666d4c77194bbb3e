"""The fault-injecting webhook receiver that demos and tests point webhooks at."""

from mock_qrm.receiver.app import (
    RECEIVER_STATE,
    ReceivedLog,
    ReceivedRequest,
    ReceiverState,
    RunningReceiver,
    create_receiver_app,
    run_receiver,
    start_receiver,
)
from mock_qrm.receiver.settings import ReceiverSettings

__all__ = [
    "RECEIVER_STATE",
    "ReceivedLog",
    "ReceivedRequest",
    "ReceiverSettings",
    "ReceiverState",
    "RunningReceiver",
    "create_receiver_app",
    "run_receiver",
    "start_receiver",
]
