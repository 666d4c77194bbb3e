"""`mock-qrm reports list | show`, `mock-qrm upload-report` and `mock-qrm trigger`."""

from __future__ import annotations

import argparse
from typing import Any

from mock_qrm.cli import args as types
from mock_qrm.cli.args import CliError, usage
from mock_qrm.cli.connect import blocking_client, client_command, client_options
from mock_qrm.cli.output import local, print_json, say, table
from mock_qrm.client import calls
from mock_qrm.contract.catalog import EventCatalog


def add_reports(commands: Any, name: str, help_text: str) -> None:
    parent = client_options()
    reports = commands.add_parser(name, help=help_text, description=help_text)
    reports.set_defaults(run=run_reports)
    actions = reports.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="newest first", parents=[parent])
    listing.add_argument("--limit", type=types.limit, default=20, help="rows (1-200, default 20)")
    listing.add_argument("--offset", type=types.non_negative_int, default=0, help="rows to skip")
    show = actions.add_parser(
        "show",
        help="the report: `data` of GET /api/v1/reports/{id} (--json), or its inspectionGeneral",
        parents=[parent],
    )
    show.add_argument("id", metavar="ID", help="numeric id or inspectionId")


def run_reports(args: argparse.Namespace) -> None:
    with blocking_client(args) as client:
        if args.action == "show":
            report = client.data(calls.report(args.id))
            print_json(report if args.json else report.get("inspectionGeneral", {}))
            return
        page = client.send(calls.report_rows(args.limit, args.offset))
    if args.json:
        print_json(page["data"])
        return
    table(
        ("ID", "CREATED", "CASE", "TYPE", "RESULT", "STATUS", "FILE"),
        (
            (
                r["id"],
                local(r["createdAt"]),
                r["caseNumber"],
                r["inspectionType"],
                r["result"],
                r["status"],
                "ready" if r["fileReady"] else "-",
            )
            for r in page["data"]
        ),
        caption=f"{len(page['data'])} of {page['total']}",
    )


def add_upload(commands: Any, name: str, help_text: str) -> None:
    upload = client_command(
        commands,
        name,
        help_text,
        run_upload,
        "Create a report: report.created now, report.file_ready after the delay.",
    )
    upload.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override an inspectionGeneral field (VALUE is JSON, else a string); repeatable",
    )


def _override(item: str) -> tuple[str, Any]:
    field, sep, raw = item.partition("=")
    if not sep or not field:
        raise usage(f"--set expects FIELD=VALUE, got {item!r}")
    return field, types.json_value(raw)


def run_upload(args: argparse.Namespace) -> None:
    overrides = dict(_override(item) for item in args.overrides)
    with blocking_client(args) as client:
        uploaded = client.data(calls.upload_report(overrides))
    if args.json:
        print_json(uploaded)
        return
    say(
        f"uploaded report {uploaded['resourceId']} ({uploaded['inspectionId']}):"
        f" GET /api/v1{uploaded['path']}"
    )


def add_trigger(commands: Any, name: str, help_text: str) -> None:
    codes = sorted(EventCatalog.load().codes)
    trigger = client_command(
        commands, name, help_text, run_trigger, f"Emit an event ({', '.join(codes)}) for a report."
    )
    trigger.add_argument(
        "event_code",
        metavar="EVENT_CODE",
        type=types.one_of("event code", codes),
        help=f"one of {', '.join(codes)}",
    )
    trigger.add_argument(
        "--report",
        type=types.positive_int,
        metavar="ID",
        help="report id (default: the newest report)",
    )


def run_trigger(args: argparse.Namespace) -> None:
    with blocking_client(args) as client:
        report = args.report
        if report is None:
            newest = client.data(calls.report_rows(limit=1))
            if not newest:
                raise CliError("there are no reports yet: run `mock-qrm upload-report` first")
            report = newest[0]["id"]
        emitted = client.data(calls.emit_event(args.event_code, report))
    if args.json:
        print_json(emitted)
        return
    say(
        f"{emitted['eventCode']} for report {emitted['resourceId']}:"
        f" {emitted['deliveries']} deliveries"
    )
