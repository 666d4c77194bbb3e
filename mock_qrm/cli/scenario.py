"""`mock-qrm export-config`: the running server's state as the scenario file `serve --config` reads.

One call (`GET /_mock/config`), written as TOML by `tomli_w`: serving the file on a
fresh database gives the same `webhooks list`. Passwords stay `${ENV}` placeholders
unless `--with-secrets`, which the server grants only to a caller with its API key
(or on loopback when it has none).
"""

from __future__ import annotations

import argparse
import contextlib
import os
from typing import Any

from mock_qrm.cli.args import CliError
from mock_qrm.cli.connect import blocking_client, client_command
from mock_qrm.cli.output import document, plural, print_json, printable, say
from mock_qrm.client import calls


def add_export(commands: Any, name: str, help_text: str) -> None:
    parser = client_command(
        commands,
        name,
        help_text,
        run_export,
        description="Print the running server's state as a scenario file: its settings, its"
        " webhooks (each password as a ${QRM_WEBHOOK_<NAME>_PASSWORD} placeholder) and its"
        " faults. `mock-qrm serve --config FILE` starts a mock in that state.",
    )
    parser.add_argument(
        "--with-secrets",
        action="store_true",
        help="write the webhooks' passwords instead of placeholders (the server shows them to"
        " a caller with its API key, or on loopback when it has none)",
    )
    parser.add_argument(
        "--output",
        "-o",
        metavar="FILE.toml",
        help="write the file there instead of printing it (readable by you alone with"
        " --with-secrets)",
    )


def run_export(args: argparse.Namespace) -> None:
    with blocking_client(args) as client:
        state = client.data(calls.scenario(args.with_secrets))
        server = client.base_url
    if args.json:
        print_json(state)
        return
    from mock_qrm.client.scenario import scenario_file

    text, variables = scenario_file(state, server)
    if args.output is None:
        document(text.rstrip("\n"))  # TOML escapes every control character in its strings
        return
    _write(args.output, text, private=args.with_secrets)
    webhooks = plural(len(state.get("webhooks") or ()), "webhook")
    faults = plural(len(state.get("faults") or ()), "fault")
    said = f"wrote {args.output}: {webhooks}, {faults}"
    if variables:
        said += f"; before serving it, set {', '.join(variables)}"
    say(printable(said))


def _write(path: str, text: str, *, private: bool) -> None:
    """The file, whole or not at all; with passwords in it, readable by its owner alone."""
    temporary = f"{path}.{os.getpid()}.tmp"
    try:
        descriptor = os.open(
            temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o666
        )
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise CliError(f"cannot write {path}: {exc.strerror or exc}") from None
