"""The command table, and a parser that loads only the command being run.

`mock-qrm --help` lists every command from the table below without importing
any of them; `mock-qrm webhooks list` imports `mock_qrm.cli.webhooks` alone.
Completion, which needs every flag, builds them all (still without the server).
"""

from __future__ import annotations

import argparse
import importlib
from typing import Any, NoReturn

from mock_qrm import __version__
from mock_qrm.cli.args import EXIT_USAGE, PROG

COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("serve:add_serve", "run the mock QRM server"),
    "receiver": ("serve:add_receiver", "run the fault-injecting webhook receiver"),
    "webhooks": (
        "webhooks:add",
        "list and manage webhooks (list, show, create, update, delete, activate, deactivate,"
        " stats)",
    ),
    "reports": ("reports:add_reports", "list reports or show one (list, show)"),
    "deliveries": (
        "deliveries:add_deliveries",
        "list the delivery journal, show one delivery, or tail it live with --follow",
    ),
    "faults": (
        "control:add_faults",
        "make QRM's own routes fail for the receiver's call back (add, list, remove, clear)",
    ),
    "api-calls": (
        "control:add_api_calls",
        "the calls made to QRM's routes, oldest first: did the receiver call back?",
    ),
    "redeliver": (
        "deliveries:add_redeliver",
        "one manual attempt for a delivery, or for every delivery matching filters",
    ),
    "clock": ("control:add_clock", "show the server's clock, or `clock advance SECONDS`"),
    "reset": ("control:add_reset", "back to the seeded state: no webhooks, no journal"),
    "wait": (
        "deliveries:add_wait",
        "wait on the live feed until a delivery matches; exit 1 on timeout",
    ),
    "export-config": (
        "scenario:add_export",
        "print the running state as a scenario file (TOML) that `serve --config` starts from",
    ),
    "upload-report": ("reports:add_upload", "simulate an inspector uploading a report"),
    "trigger": ("reports:add_trigger", "emit a catalog event for an existing report"),
    "check-receiver": (
        "check.command:add",
        "is a webhook receiver ready for QRM? real messages, one PASS/WARN/FAIL line per check",
    ),
    "completion": ("completion:add", "print shell completion for bash or zsh"),
}
"""Each command: where its parser is built (`module:function` under `mock_qrm.cli`), its help."""


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line in the CLI's voice, pointing at --help."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix(PROG).strip()
        where = f"{command}: " if command else ""
        self.exit(EXIT_USAGE, f"{PROG}: error: {where}{message} (see {self.prog} --help)\n")

    def _parse_optional(self, arg_string: str) -> Any:
        # A dash and a digit is a value, never a flag (none of ours is one): `--rate-limit
        # -1/hour` gets the rate limit's own message, not "expected one argument".
        if len(arg_string) > 1 and arg_string[0] == "-" and arg_string[1].isdigit():
            return None
        return super()._parse_optional(arg_string)


def build_parser(only: str | None = None, *, every: bool = False) -> argparse.ArgumentParser:
    """The parser; with `only`, that command's whole, the others listed by name and help.

    `every` builds every command whole (for completion).
    """
    parser = Parser(
        prog=PROG,
        description="A local stand-in for Inspectorio QRM's reports API and webhooks.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (where, help_text) in COMMANDS.items():
        if every or name == only:
            module, function = where.split(":")
            add = getattr(importlib.import_module(f"mock_qrm.cli.{module}"), function)
            add(commands, name, help_text)
        else:
            commands.add_parser(name, help=help_text, add_help=False)
    return parser


def chosen(argv: list[str]) -> str | None:
    """The command named in `argv`, if any: its first word that is not a flag."""
    for word in argv:
        if not word.startswith("-"):
            return word if word in COMMANDS else None
    return None
