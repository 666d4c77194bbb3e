"""The pytest plugin: `mock_qrm`, `mock_qrm_factory` and `qrm_receiver` fixtures.

Registered through the `pytest11` entry point, so installing qrm-tui is enough.
The fixtures are synchronous and their objects run on a loop of their own, so
they serve synchronous tests, pytest-asyncio and pytest-aiohttp tests alike.

This module imports nothing of mock_qrm at load time: pytest loads entry-point
plugins before coverage starts measuring, and an eager import would hide
mock_qrm's module-level lines from the coverage of projects that measure it
(and slow every pytest start, even of tests that never use the fixtures).
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from mock_qrm.testing.pool import SessionPool
    from mock_qrm.testing.qrm import MockQrm, MockQrmFactory
    from mock_qrm.testing.receiver import MockReceiver

MARKER = "mock_qrm"

_USED = pytest.StashKey[list["MockQrm"]]()
"""The servers a test used, whose journals its failure report shows."""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(**settings): settings of the `mock_qrm` fixture's server, e.g. "
        f"@pytest.mark.{MARKER}(retries=1, timeout=0.5); any mock_qrm Settings field, "
        "and wait_timeout. On a module or class too; the closest marker wins per setting.",
    )


@pytest.fixture
def mock_qrm_factory(request: pytest.FixtureRequest) -> Iterator[MockQrmFactory]:
    """Start mock QRM servers with the given settings: `mock_qrm_factory(retries=0)`.

    For tests that need two servers, or settings computed in the test. Every
    server it started is closed after the test.
    """
    from mock_qrm.testing.qrm import MockQrm

    started: list[MockQrm] = []

    def start(**settings: Any) -> MockQrm:
        qrm = MockQrm(**settings).start()
        started.append(qrm)
        request.node.stash.setdefault(_USED, []).append(qrm)
        return qrm

    yield start
    for qrm in reversed(started):
        qrm.close()


@pytest.fixture(scope="session")
def _mock_qrm_pool() -> Iterator[SessionPool]:
    """The session's servers and receiver, renewed for each test (see `mock_qrm.testing.pool`)."""
    from mock_qrm.testing.pool import SessionPool

    pool = SessionPool()
    yield pool
    pool.close()


@pytest.fixture
def mock_qrm(request: pytest.FixtureRequest, _mock_qrm_pool: SessionPool) -> Iterator[MockQrm]:
    """A mock QRM server on a free loopback port: fresh `:memory:` database, manual clock.

    Hand `mock_qrm.api_url` and `mock_qrm.api_key` to the code under test;
    change settings with `@pytest.mark.mock_qrm(retries=1, timeout=0.5, ...)`.
    One server per settings serves the whole session, reset as each test ends
    (nothing of an earlier test is visible); with a `db` file, each test gets its own.
    """
    from mock_qrm.testing.pool import poolable

    settings: dict[str, Any] = {}
    # iter_markers yields the closest first: apply the farthest first so the closest wins.
    for marker in reversed(list(request.node.iter_markers(MARKER))):
        if marker.args:
            raise pytest.UsageError(
                f"@pytest.mark.{MARKER} takes settings by name, e.g. "
                f"@pytest.mark.{MARKER}(retries=1); got positional {marker.args!r}"
            )
        settings.update(marker.kwargs)
    if not poolable(settings):
        factory: MockQrmFactory = request.getfixturevalue("mock_qrm_factory")
        yield factory(**settings)
        return
    qrm = _mock_qrm_pool.server(settings)
    request.node.stash.setdefault(_USED, []).append(qrm)
    yield qrm
    _mock_qrm_pool.release(qrm)


@pytest.fixture
def qrm_receiver(_mock_qrm_pool: SessionPool) -> MockReceiver:
    """The fault-injecting webhook receiver on a free loopback port (`qrm_receiver.url`).

    One per session, cleared before each test: it shows only what this test sent.
    """
    return _mock_qrm_pool.receiver()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """When a test that used a mock QRM fails, add its delivery journal to the report."""
    report = yield
    started = item.stash.get(_USED, None)
    if report.when != "call" or not report.failed or not started:
        return report
    from mock_qrm.client.matching import describe_delivery
    from mock_qrm.testing.qrm import DeliveryWaitTimeout

    if call.excinfo is not None and call.excinfo.errisinstance(DeliveryWaitTimeout):
        return report  # its message lists the journal already
    for qrm in started:
        try:
            rows = qrm.deliveries()
        except Exception as exc:  # the report must not fail because the server is gone
            text = f"(could not read the journal: {exc})"
        else:
            text = "\n".join(describe_delivery(d) for d in rows) or "(no deliveries)"
        report.sections.append((f"mock_qrm journal at {qrm.base_url}", text))
    return report
