"""The mock's controls: `faults`, `api-calls`, `clock [advance SECONDS]` and `reset`."""

from __future__ import annotations

import argparse
from typing import Any

from mock_qrm.cli import args as types
from mock_qrm.cli.args import usage
from mock_qrm.cli.connect import blocking_client, client_command, client_options
from mock_qrm.cli.output import local, plural, print_json, say, table
from mock_qrm.client import calls
from mock_qrm.contract.codes import FAULT_ROUTES

REPORT_ROUTE = "GET /api/v1/reports/{id}"


# --- faults ------------------------------------------------------------------------------


def add_faults(commands: Any, name: str, help_text: str) -> None:
    parent = client_options()
    faults = commands.add_parser(name, help=help_text, description=help_text)
    faults.set_defaults(run=run_faults)
    actions = faults.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = actions.add_parser(
        "add",
        help="add a fault",
        description="Make a QRM route answer a status, answer late, or drop the connection,"
        " for its next --times calls (absent: until removed).",
        parents=[parent],
    )
    add.add_argument(
        "--route",
        default=REPORT_ROUTE,
        type=types.one_of("route", FAULT_ROUTES),
        metavar="ROUTE",
        help=f"one of {', '.join(repr(r) for r in FAULT_ROUTES)} (default {REPORT_ROUTE!r})",
    )
    add.add_argument("--status", type=types.positive_int, help="answer this status (400-599)")
    add.add_argument("--delay-ms", type=types.non_negative_int, help="answer this much later")
    add.add_argument("--retry-after", type=types.non_negative_int, help="seconds, as Retry-After")
    add.add_argument("--reset", action="store_true", help="drop the connection")
    add.add_argument("--times", type=types.positive_int, help="for this many calls")
    actions.add_parser("list", help="active faults, in the order they apply", parents=[parent])
    remove = actions.add_parser("remove", help="remove one fault", parents=[parent])
    remove.add_argument("id", type=types.positive_int, metavar="ID")
    actions.add_parser("clear", help="remove every fault", parents=[parent])


def run_faults(args: argparse.Namespace) -> None:
    with blocking_client(args) as client:
        if args.action == "add":
            fault = client.data(
                calls.add_fault(
                    args.route,
                    status=args.status,
                    delay_ms=args.delay_ms,
                    retry_after=args.retry_after,
                    reset=args.reset or None,
                    times=args.times,
                )
            )
            print_json(fault) if args.json else _fault_table([fault])
        elif args.action == "list":
            found = client.data(calls.faults())
            print_json(found) if args.json else _fault_table(found)
        else:
            if args.action == "remove":
                client.send(calls.remove_fault(args.id))
            else:
                client.send(calls.clear_faults())
            if args.json:
                print_json(client.data(calls.faults()))
            else:
                say("removed" if args.action == "remove" else "no faults")


def _fault_table(faults: list[dict[str, Any]]) -> None:
    table(
        ("ID", "ROUTE", "STATUS", "DELAY", "RETRY-AFTER", "RESET", "LEFT"),
        (
            (
                f["id"],
                f["route"],
                f.get("status") or "-",
                "-" if f.get("delayMs") is None else f"{f['delayMs']} ms",
                "-" if f.get("retryAfter") is None else f"{f['retryAfter']} s",
                "yes" if f.get("reset") else "-",
                "until removed" if f.get("remaining") is None else f["remaining"],
            )
            for f in faults
        ),
        caption=plural(len(faults), "fault"),
    )


def add_api_calls(commands: Any, name: str, help_text: str) -> None:
    client_command(commands, name, help_text, run_api_calls)


def run_api_calls(args: argparse.Namespace) -> None:
    with blocking_client(args) as client:
        found = client.data(calls.api_calls())
    if args.json:
        print_json(found)
        return
    table(
        ("AT", "METHOD", "PATH", "STATUS", "FAULT"),
        (
            (
                local(c["at"]),
                c["method"],
                c["path"],
                "dropped" if c.get("status") is None else c["status"],
                c.get("faultId") or "-",
            )
            for c in found
        ),
        caption=plural(len(found), "call"),
    )


# --- clock, reset -----------------------------------------------------------------------------


def add_clock(commands: Any, name: str, help_text: str) -> None:
    clock = client_command(commands, name, help_text, run_clock)
    clock.add_argument("advance", nargs="?", choices=["advance"], help=argparse.SUPPRESS)
    clock.add_argument("seconds", nargs="?", type=types.seconds, help=argparse.SUPPRESS)


def run_clock(args: argparse.Namespace) -> None:
    if args.advance and args.seconds is None:
        raise usage("clock advance needs SECONDS")
    if not args.advance and args.seconds is not None:
        raise usage("did you mean `clock advance SECONDS`?")
    with blocking_client(args) as client:
        state = client.data(calls.advance(args.seconds) if args.advance else calls.clock())
    if args.json:
        print_json(state)
    else:
        kind = "manual" if state["manual"] else "real"
        say(f"{state['now']} ({kind} clock, time scale {state['timeScale']:g})")


def add_reset(commands: Any, name: str, help_text: str) -> None:
    client_command(commands, name, help_text, run_reset)


def run_reset(args: argparse.Namespace) -> None:
    with blocking_client(args) as client:
        client.send(calls.reset())
    if args.json:
        print_json({"reset": True})
    else:
        say("reset: no webhooks, no journal, the seeded reports")
