"""A command imports what it uses (SPEC 9.3): each one run in a fresh interpreter, and
what it imported read from `sys.modules` once it is done.

The time a command takes lives in `make bench` (its CLI row); this guard fails CI the
day a stray import would slow every call.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mock_qrm.testing import MockQrm

HEAVY = (
    "pydantic",
    "pydantic_settings",
    "aiohttp",
    "textual",
    "mock_qrm.app",
    "mock_qrm.server",
    "mock_qrm.receiver",
    "mock_qrm.client.http",
    "mock_qrm.cli.check.checks",
)
"""Never imported by a command that only prints, nor by one that makes one or two calls."""

_RUN = """
import json, sys
from {module} import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
with open({out!r}, "w") as out:
    json.dump(sorted(sys.modules), out)
"""


def imported(tmp_path: Path, *argv: str, module: str = "mock_qrm.cli", **env: str) -> set[str]:
    """The modules loaded by running `argv` through `module`'s `main` in a new interpreter."""
    out = tmp_path / "modules.json"
    result = subprocess.run(
        [sys.executable, "-c", _RUN.format(module=module, out=str(out)), *argv],
        capture_output=True,
        text=True,
        timeout=60,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("MOCK_QRM_")}, **env},
        check=False,
    )
    assert out.exists(), result.stderr
    loaded: list[str] = json.loads(out.read_text())
    return set(loaded)


def heavy(loaded: set[str]) -> list[str]:
    return sorted(m for m in loaded if any(m == h or m.startswith(h + ".") for h in HEAVY))


@pytest.mark.parametrize(
    "argv",
    [
        ["--version"],
        ["--help"],
        ["completion", "bash"],
        ["completion", "--complete", "3", "mock-qrm", "webhooks", "create", "--ev"],
        ["deliveries", "--status", "nope"],  # a usage error, refused before anything is sent
    ],
    ids=["version", "help", "completion", "completing", "usage-error"],
)
def test_a_command_that_only_prints_imports_no_server_no_client_library(
    tmp_path: Path, argv: list[str]
) -> None:
    loaded = imported(tmp_path, *argv)
    assert "mock_qrm.cli" in loaded  # it ran
    assert heavy(loaded) == []
    assert "mock_qrm.client.blocking" not in loaded  # nor the connection it would not make


@pytest.mark.parametrize(
    "argv",
    [
        ["webhooks", "list"],
        ["webhooks", "stats", "1"],
        ["deliveries", "--json"],
        ["deliveries"],
        ["reports", "show", "12301"],
        ["reports", "list"],
        ["clock"],
        ["faults", "list"],
        ["export-config"],
        ["upload-report", "--set", "caseNumber=C-1"],
    ],
    ids=lambda argv: "-".join(argv[:2]),
)
def test_a_command_that_makes_a_call_imports_only_the_blocking_client(
    tmp_path: Path, mock_qrm: MockQrm, argv: list[str]
) -> None:
    loaded = imported(
        tmp_path,
        *argv,
        MOCK_QRM_SERVER=mock_qrm.base_url,
        MOCK_QRM_API_KEY=mock_qrm.api_key or "",
    )
    assert "mock_qrm.client.blocking" in loaded  # it made its call
    assert heavy(loaded) == []


def test_following_the_feed_loads_the_async_client_only_then(tmp_path: Path) -> None:
    """`--follow` and `wait` keep the live feed: they may load aiohttp, and only they."""
    loaded = imported(tmp_path, "wait", "--event", "report.created", "--timeout", "0")
    assert "aiohttp" in loaded and "mock_qrm.client.http" in loaded  # tried the feed
    assert not [m for m in loaded if m.startswith(("mock_qrm.server", "textual"))]


def test_qrm_tui_answers_its_version_without_textual_or_the_server(tmp_path: Path) -> None:
    loaded = imported(tmp_path, "--version", module="qrm_tui.__main__")
    assert "qrm_tui.__main__" in loaded
    assert heavy(loaded) == []
