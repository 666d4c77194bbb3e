"""The client commands: `upload-report`, `trigger`, `deliveries [--follow]`."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from mock_qrm.cli import CliError
from mock_qrm.client import DEFAULT_SERVER, QrmApiError, QrmClient, QrmUnavailable
from mock_qrm.domain.models import Delivery, DeliveryStatus

T = TypeVar("T")

STATE = {
    DeliveryStatus.PENDING: "pending",
    DeliveryStatus.IN_FLIGHT: "in flight",
    DeliveryStatus.DELIVERED: "delivered",
    DeliveryStatus.RETRY_SCHEDULED: "retry scheduled",
    DeliveryStatus.FAILED: "failed",
    DeliveryStatus.CANCELLED: "cancelled",
}


def _client_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--server",
        default=os.environ.get("MOCK_QRM_SERVER", DEFAULT_SERVER),
        help=f"the mock-qrm server (env MOCK_QRM_SERVER, default {DEFAULT_SERVER})",
    )
    parser.add_argument(
        "--api-key",
        default=os.environ.get("MOCK_QRM_API_KEY"),
        help="the server's API key, if it has one (env MOCK_QRM_API_KEY)",
    )


def add_client_commands(commands: Any) -> None:
    upload = commands.add_parser(
        "upload-report",
        help="simulate an inspector uploading a report",
        description="Create a report: report.created now, report.file_ready after the delay.",
    )
    _client_flags(upload)
    upload.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override an inspectionGeneral field (VALUE is JSON, else a string); repeatable",
    )
    upload.set_defaults(run=lambda a: _run(a, _upload))

    trigger = commands.add_parser(
        "trigger",
        help="emit a catalog event for an existing report",
        description="Emit an event (report.created, report.file_ready) for a report.",
    )
    _client_flags(trigger)
    trigger.add_argument("event_code", metavar="EVENT_CODE", help="e.g. report.created")
    trigger.add_argument(
        "--report", type=_positive_int, metavar="ID", help="report id (default: the newest report)"
    )
    trigger.set_defaults(run=lambda a: _run(a, _trigger))

    deliveries = commands.add_parser(
        "deliveries",
        help="list the delivery journal, or tail it live with --follow",
        description="The delivery journal, newest first; --follow prints one line per attempt as it happens.",
    )
    _client_flags(deliveries)
    deliveries.add_argument(
        "--status", choices=[s.value for s in DeliveryStatus], help="only this state"
    )
    deliveries.add_argument("--webhook", type=_positive_int, metavar="ID", help="only this webhook")
    deliveries.add_argument("--event", metavar="CODE", help="only this event code")
    deliveries.add_argument(
        "--limit", type=_limit, default=20, help="rows to list (1-200, default 20)"
    )
    deliveries.add_argument("--follow", "-f", action="store_true", help="tail the live feed")
    deliveries.add_argument("--json", action="store_true", help="print JSON instead of a table")
    deliveries.set_defaults(run=lambda a: _run(a, _deliveries))


def _positive_int(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return int(value)


def _limit(value: str) -> int:
    number = _positive_int(value)
    if number > 200:
        raise argparse.ArgumentTypeError("at most 200")
    return number


def _run(
    args: argparse.Namespace, command: Callable[[QrmClient, argparse.Namespace], Awaitable[None]]
) -> None:
    async def main() -> None:
        async with QrmClient(args.server, args.api_key) as client:
            await command(client, args)

    try:
        asyncio.run(main())
    except QrmUnavailable as exc:
        raise CliError(f"{exc} (is `mock-qrm serve` running? pass --server URL)") from None
    except QrmApiError as exc:
        details = "; ".join(
            f"{field}: {', '.join(msgs)}" for field, msgs in exc.field_errors.items()
        )
        raise CliError(
            f"{exc.error.message}{' (' + details + ')' if details else ''} [HTTP {exc.status}]"
        ) from None


def _parse_override(item: str) -> tuple[str, Any]:
    field, sep, raw = item.partition("=")
    if not sep or not field:
        raise CliError(f"--set expects FIELD=VALUE, got {item!r}", status=2)
    try:
        return field, json.loads(raw)
    except json.JSONDecodeError:
        return field, raw


async def _upload(client: QrmClient, args: argparse.Namespace) -> None:
    overrides = dict(_parse_override(item) for item in args.overrides)
    uploaded = await client.upload_report(overrides)
    print(
        f"uploaded report {uploaded.resource_id} ({uploaded.inspection_id}): GET /api/v1{uploaded.path}"
    )


async def _trigger(client: QrmClient, args: argparse.Namespace) -> None:
    report = args.report
    if report is None:
        newest = await client.report_rows(limit=1)
        if not newest.data:
            raise CliError("there are no reports yet: run `mock-qrm upload-report` first")
        report = newest.data[0].id
    emitted = await client.emit_event(args.event_code, report)
    print(f"{emitted.event_code} for report {emitted.resource_id}: {emitted.deliveries} deliveries")


async def _deliveries(client: QrmClient, args: argparse.Namespace) -> None:
    if args.follow:
        await _follow(client, args)
        return
    page = await client.deliveries(
        webhook_id=args.webhook, status=args.status, event_code=args.event, limit=args.limit
    )
    if args.json:
        print(page.model_dump_json(by_alias=True, indent=2))
        return
    print(
        f"{'ID':>6}  {'CREATED':19}  {'WEBHOOK':20}  {'EVENT':17}  {'REPORT':>7}  {'TRY':>3}  {'CODE':>4}  STATE"
    )
    for d in page.data:
        code = str(d.last_response_status) if d.last_response_status else (d.last_error or "-")
        print(
            f"{d.id:>6}  {_local(d.created_at):19}  {d.webhook_name[:20]:20}  {d.event_code[:17]:17}"
            f"  {d.resource_id:>7}  {d.attempt_count:>3}  {code[:4]:>4}  {STATE[d.status]}"
        )
    print(f"{len(page.data)} of {page.total}")


async def _follow(client: QrmClient, args: argparse.Namespace) -> None:
    """Like `stripe listen`: one line per finished attempt, reconnecting without losing any."""
    after: int | None = None
    boot: str | None = None
    max_attempts = (await client.health()).max_attempts
    while True:
        try:
            async for frame in client.feed(after_seq=after, boot_id=boot):
                if frame.type == "hello":
                    verb = "following" if boot is None else "reconnected to"
                    print(f"{verb} deliveries on {client.base_url} (ctrl+c to stop)", flush=True)
                    boot = frame.boot_id
                if frame.seq is not None and frame.type != "heartbeat":
                    after = frame.seq
                if (
                    frame.type == "delivery"
                    and frame.delivery is not None
                    and _wanted(frame.delivery, args)
                ):
                    line = _attempt_line(frame.delivery, max_attempts)
                    if line:
                        print(line, flush=True)
        except QrmUnavailable as exc:
            print(f"feed lost ({exc}); reconnecting", file=sys.stderr, flush=True)
        await asyncio.sleep(1.0)


def _wanted(d: Delivery, args: argparse.Namespace) -> bool:
    return (
        (args.status is None or d.status.value == args.status)
        and (args.webhook is None or d.webhook_id == args.webhook)
        and (args.event is None or d.event_code == args.event)
    )


def _attempt_line(d: Delivery, max_attempts: int) -> str | None:
    if d.status in (DeliveryStatus.PENDING, DeliveryStatus.IN_FLIGHT):
        return None
    answer = (
        str(d.last_response_status) if d.last_response_status is not None else (d.last_error or "-")
    )
    latency = f"{d.last_duration_ms} ms" if d.last_duration_ms is not None else ""
    outcome = STATE[d.status]
    if d.status is DeliveryStatus.RETRY_SCHEDULED and d.next_attempt_at is not None:
        outcome = f"retry at {_local(d.next_attempt_at)}"
    return (
        f"{_local(datetime.now().astimezone())}  --> {d.event_code} #{d.id} report {d.resource_id}"
        f" to {d.webhook_name!r} attempt {d.attempt_count}/{max_attempts}  <-- {answer} {latency}  {outcome}"
    )


def _local(moment: datetime) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")
