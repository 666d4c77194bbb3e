"""How a client command reaches the server: `--server`/`--api-key` (or their variables) →
a client; and a failure to reach it, or a refusal, → one line naming what to fix.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mock_qrm.cli.args import CliError, usage
from mock_qrm.client.errors import QrmUnavailable
from mock_qrm.client.settings import DEFAULT_SERVER, ClientSettings, ClientSettingsError
from mock_qrm.contract.errors import QrmApiError

if TYPE_CHECKING:
    from mock_qrm.client.blocking import BlockingClient

SERVER_HELP = (
    f"the mock-qrm server (env MOCK_QRM_SERVER or QRM_TUI_SERVER, default {DEFAULT_SERVER})"
)
API_KEY_HELP = "the server's API key, if it has one (env MOCK_QRM_API_KEY or QRM_TUI_API_KEY)"


def client_options() -> argparse.ArgumentParser:
    """`--server`, `--api-key` and `--json`: the flags every client command takes."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--server", metavar="URL", help=SERVER_HELP)
    parent.add_argument("--api-key", metavar="KEY", help=API_KEY_HELP)
    parent.add_argument(
        "--json", action="store_true", help="print the API's data as JSON instead of a table"
    )
    return parent


def client_command(
    commands: Any,
    name: str,
    help_text: str,
    run: Callable[[argparse.Namespace], None],
    description: str | None = None,
) -> argparse.ArgumentParser:
    """A client command (its flags after its name) that `run`s when chosen."""
    parser: argparse.ArgumentParser = commands.add_parser(
        name, help=help_text, description=description or help_text, parents=[client_options()]
    )
    parser.set_defaults(run=run)
    return parser


def client_settings(args: argparse.Namespace) -> ClientSettings:
    given = {name: getattr(args, name, None) for name in ("server", "api_key")}
    try:
        return ClientSettings.resolve(given, os.environ)
    except ClientSettingsError as exc:
        raise usage(str(exc)) from None


def blocking_client(args: argparse.Namespace) -> BlockingClient:
    from mock_qrm.client.blocking import BlockingClient

    settings = client_settings(args)
    return BlockingClient(settings.url, settings.api_key)


def failure(exc: QrmUnavailable | QrmApiError) -> CliError:
    """A server that cannot be reached, or refused the call, as one line that says what to fix."""
    if isinstance(exc, QrmUnavailable):
        return CliError(f"{exc} (is `mock-qrm serve` running? pass --server URL)")
    if exc.status == 401:
        return CliError(
            f"{exc.message.split(':')[0]} [HTTP 401]: pass the key the server was started with"
            " in --api-key (or MOCK_QRM_API_KEY)"
        )
    return CliError(f"{exc.describe()} [HTTP {exc.status}]")
