"""HTTPS receivers behind mkcert or a self-signed certificate (SPEC 9.7).

A CA made in the test (`trustme`) signs a certificate for `localhost`; an aiohttp
receiver serves it. The mock does not trust that CA until it is given `--ca-file`
(or told not to check, `--insecure-receivers`), and says so in the journal: the
error class `tls`, its detail `certificate verify failed for localhost: ...`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import trustme

from mock_qrm.contract.codes import DeliveryStatus
from mock_qrm.testing import MockQrm
from tests.e2e.processes import Process, free_port, wait_http
from tests.tls import https_receiver


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA(organization_name="qrm-tui tests")


@pytest.fixture(scope="module")
def ca_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The CA's certificate as `mkcert -CAROOT`'s rootCA.pem would hold it."""
    path = tmp_path_factory.mktemp("ca") / "rootCA.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def health(qrm: MockQrm) -> dict[str, Any]:
    with urllib.request.urlopen(qrm.base_url + "/healthz", timeout=5) as response:
        answer: dict[str, Any] = json.load(response)
        return answer


# --- the kit --------------------------------------------------------------------------


def test_an_untrusted_certificate_fails_as_tls_naming_certificate_verification(
    ca: trustme.CA,
) -> None:
    with https_receiver(ca) as (url, received), MockQrm() as qrm:
        hook = qrm.create_webhook(url)
        qrm.upload_report()
        failed = qrm.wait_for_delivery(status="retry_scheduled", webhook=hook)
    [attempt] = failed.attempts
    assert attempt.response_status is None
    assert attempt.error == "tls"
    assert attempt.error_detail is not None
    assert attempt.error_detail.startswith("certificate verify failed for localhost: "), attempt
    assert failed.last_error == "tls" and failed.last_error_detail == attempt.error_detail
    assert received == []  # the handshake failed: no request was sent


def test_the_same_receiver_is_delivered_to_once_its_ca_is_trusted(
    ca: trustme.CA, ca_file: str
) -> None:
    with https_receiver(ca) as (url, received), MockQrm(ca_file=ca_file) as qrm:
        hook = qrm.create_webhook(url)
        report = qrm.upload_report()
        delivered = qrm.wait_for_delivery(webhook=hook)
        assert health(qrm)["insecureReceivers"] is False
    assert delivered.attempts[0].response_status == 200
    assert delivered.attempts[0].error is None and delivered.attempts[0].error_detail is None
    assert [m["payload"]["resourceId"] for m in received] == [report.resource_id]


def test_insecure_receivers_takes_any_certificate_and_healthz_says_so(ca: trustme.CA) -> None:
    with https_receiver(ca) as (url, received), MockQrm(insecure_receivers=True) as qrm:
        assert health(qrm)["insecureReceivers"] is True
        qrm.create_webhook(url)
        qrm.upload_report()
        assert qrm.wait_for_delivery().status is DeliveryStatus.DELIVERED
    assert len(received) == 1


def test_a_ca_file_that_holds_no_certificate_is_refused_naming_it(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not a certificate\n")
    with pytest.raises(ValueError, match=r"ca_file[\s\S]*notes\.txt: holds no PEM certificate"):
        MockQrm(ca_file=str(notes))


# --- the command line, as a user restarts the server with --ca-file --------------------------


def cli(*args: str, server: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mock_qrm", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "MOCK_QRM_SERVER": server},
        check=False,
    )


@contextmanager
def served(tmp_path: Path, *flags: str) -> Iterator[tuple[str, Process]]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = Process(
        ["serve", "--port", str(port), "--db", str(tmp_path / "qrm.sqlite3"), *flags],
        tmp_path / f"serve-{port}.log",
    )
    try:
        wait_http(url + "/healthz", process)
        yield url, process
    finally:
        process.close()


def test_from_the_cli_a_delivery_fails_without_ca_file_and_succeeds_after_a_restart_with_it(
    ca: trustme.CA, ca_file: str, tmp_path: Path
) -> None:
    with https_receiver(ca) as (url, received):
        with served(tmp_path, "--manual-clock") as (server, process):
            flags = ("--name", "tls", "--url", url, "--event", "report.created")
            created = cli("webhooks", "create", *flags, server=server)
            assert created.returncode == 0, created.stderr
            assert cli("upload-report", server=server).returncode == 0
            waited = cli("wait", "--status", "retry_scheduled", "--json", server=server)
            assert waited.returncode == 0, waited.stderr
            delivery_id = json.loads(waited.stdout)["id"]
            shown = cli("deliveries", "show", str(delivery_id), server=server)
            listed = cli("deliveries", server=server)
            assert process.terminate() == 0
        assert "tls: certificate verify failed for localhost: " in shown.stdout, shown.stdout
        assert "tls: cert" in listed.stdout, listed.stdout

        with served(tmp_path, "--manual-clock", "--ca-file", ca_file) as (server, process):
            again = cli("redeliver", str(delivery_id), server=server)
            banner = process.output()
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == f"delivery {delivery_id}: manual attempt 2 -> 200 (success)"
    assert f"https webhooks: trusting {ca_file} besides the system's CAs" in banner
    assert len(received) == 1


def test_serve_with_insecure_receivers_says_so_in_its_banner_and_healthz(tmp_path: Path) -> None:
    with served(tmp_path, "--insecure-receivers") as (server, process):
        with urllib.request.urlopen(server + "/healthz", timeout=5) as response:
            assert json.load(response)["insecureReceivers"] is True
        banner = process.output()
    assert "warning: https webhooks' certificates are NOT checked (--insecure-receivers)" in banner


def test_serve_with_a_missing_ca_file_is_one_line_naming_the_flag(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mock_qrm", "serve", "--ca-file", str(tmp_path / "nope.pem")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"mock-qrm: error: --ca-file: {tmp_path / 'nope.pem'}: no such file"
    ), result.stderr


async def test_a_ca_file_gone_since_the_start_fails_as_tls_saying_so(tmp_path: Path) -> None:
    from mock_qrm.server.delivery.sender import Sender
    from mock_qrm.server.delivery.tls import receiver_context

    gone = str(tmp_path / "rootCA.pem")
    sender = Sender(5.0, pool_size=4, tls=lambda: receiver_context(gone))
    try:
        result = await sender.send("https://localhost:9/qrm", b"{}", {})
    finally:
        await sender.close()
    assert (result.status, result.error) == (None, "tls")
    assert result.error_detail == "cannot check localhost's certificate: the CA file no such file"
