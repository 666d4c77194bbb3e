"""One mock QRM per settings and one receiver for a whole pytest session, renewed for each test.

Starting a server costs a test about 20 ms (a thread and its loop, a database
and its migrations, seeded reports, a socket, the feed), several times the test
itself. Renewing one (`MockQrm._renew_soon`, `MockReceiver._renew`) costs under
a millisecond and leaves nothing of the previous test visible (webhooks,
deliveries, reports uploaded, faults, API calls, the manual clock, what the
receiver received); `tests/testing/test_plugin.py` holds the proof.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
from collections import OrderedDict
from typing import Any

from mock_qrm.app import MEMORY
from mock_qrm.testing.qrm import DEFAULT_WAIT_TIMEOUT, MockQrm
from mock_qrm.testing.receiver import MockReceiver

MAX_SERVERS = 4
"""Servers kept at once (one per distinct marker settings); the least recently used goes."""
_RENEW_TIMEOUT = 30.0


def poolable(settings: dict[str, Any]) -> bool:
    """Only a server on a database of its own (`:memory:`) can be renewed as good as new."""
    return bool(settings.get("db", MEMORY) == MEMORY)


class SessionPool:
    """The servers and the receiver that the `mock_qrm` and `qrm_receiver` fixtures hand out.

    A server is renewed as soon as its test ends (`release`), so that what the
    test left running (a retry, a hung request) stops then, whichever fixture
    the next test takes first; the next test that takes it waits for that renewal.
    """

    def __init__(self) -> None:
        self._servers: OrderedDict[str, MockQrm] = OrderedDict()
        self._renewals: dict[str, concurrent.futures.Future[None]] = {}
        self._receiver: MockReceiver | None = None

    def server(self, settings: dict[str, Any]) -> MockQrm:
        """A running server with these settings, renewed if an earlier test used it."""
        __tracebackhide__ = True
        settings = dict(settings)
        wait_timeout = settings.pop("wait_timeout", DEFAULT_WAIT_TIMEOUT)
        key = repr(sorted(settings.items()))
        qrm = self._servers.pop(key, None)
        if qrm is not None and not self._renewed(key, qrm):
            qrm.close()  # closed by the test, or broken: a new one
            qrm = None
        if qrm is None:
            qrm = MockQrm(wait_timeout=wait_timeout, **settings).start()
        qrm.wait_timeout = wait_timeout
        self._servers[key] = qrm
        while len(self._servers) > MAX_SERVERS:
            self._close(*self._servers.popitem(last=False))
        return qrm

    def release(self, qrm: MockQrm) -> None:
        """A test is done with `qrm`: start renewing it now, in the background."""
        for key, pooled in self._servers.items():
            if pooled is qrm:
                with contextlib.suppress(RuntimeError):  # closed by the test: replaced when taken
                    self._renewals[key] = qrm._renew_soon()
                return

    def receiver(self) -> MockReceiver:
        """The running receiver, cleared if an earlier test used it.

        Servers finish renewing first: once they have stopped sending, nothing an
        earlier test caused can reach the receiver after it is cleared.
        """
        for key, qrm in list(self._servers.items()):
            if key in self._renewals and not self._renewed(key, qrm, keep=True):
                self._close(key, self._servers.pop(key))
        if self._receiver is not None:
            try:
                self._receiver._renew()
            except Exception:  # closed by the test: a new one
                self._receiver.close()
                self._receiver = None
        if self._receiver is None:
            self._receiver = MockReceiver().start()
        return self._receiver

    def close(self) -> None:
        while self._servers:
            self._close(*self._servers.popitem())
        if self._receiver is not None:
            self._receiver.close()
            self._receiver = None

    def _renewed(self, key: str, qrm: MockQrm, *, keep: bool = False) -> bool:
        """Wait for the renewal started when the server's last test ended (else renew it now)."""
        pending = self._renewals.get(key) if keep else self._renewals.pop(key, None)
        try:
            (pending or qrm._renew_soon()).result(_RENEW_TIMEOUT)
        except Exception:
            return False
        return True

    def _close(self, key: str, qrm: MockQrm) -> None:
        pending = self._renewals.pop(key, None)
        if pending is not None:  # let it finish: a reset and a shutdown must not overlap
            with contextlib.suppress(Exception):
                pending.result(_RENEW_TIMEOUT)
        qrm.close()
