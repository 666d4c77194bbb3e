"""The client commands: a complete, scriptable client of the server, for any language's CI.

Every command takes `--server`, `--api-key` (or their environment variables)
and `--json`, which prints the API's `data` as one JSON document (`--follow
--json`: one feed frame per line). Exit status: 0 done, 1 failed (one line on
stderr), 2 usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import sys
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ValidationError
from rich.console import Console
from rich.table import Table

from mock_qrm.cli import CliError
from mock_qrm.client import (
    DEFAULT_SERVER,
    ClientSettings,
    FeedConnected,
    FeedFollower,
    FeedLost,
    QrmApiError,
    QrmClient,
    QrmUnavailable,
)
from mock_qrm.contract.errors import validation_messages
from mock_qrm.contract.models import (
    FAULT_ROUTES,
    Delivery,
    DeliveryDetail,
    DeliveryStatus,
    Fault,
    RateLimit,
    Webhook,
)

STATE = {
    DeliveryStatus.PENDING: "pending",
    DeliveryStatus.IN_FLIGHT: "in flight",
    DeliveryStatus.DELIVERED: "delivered",
    DeliveryStatus.RETRY_SCHEDULED: "retry scheduled",
    DeliveryStatus.FAILED: "failed",
    DeliveryStatus.CANCELLED: "cancelled",
}


Command = Callable[[QrmClient, argparse.Namespace], Awaitable[None]]


# --- the parsers ------------------------------------------------------------------


def _client_parent() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--server",
        metavar="URL",
        help=f"the mock-qrm server (env MOCK_QRM_SERVER or QRM_TUI_SERVER, default {DEFAULT_SERVER})",
    )
    parent.add_argument(
        "--api-key",
        metavar="KEY",
        help="the server's API key, if it has one (env MOCK_QRM_API_KEY or QRM_TUI_API_KEY)",
    )
    parent.add_argument(
        "--json", action="store_true", help="print the API's data as JSON instead of a table"
    )
    return parent


def _filters(parser: argparse.ArgumentParser, *, resource: bool = False) -> None:
    parser.add_argument(
        "--status", choices=[s.value for s in DeliveryStatus], help="only deliveries in this state"
    )
    parser.add_argument("--webhook", type=_positive_int, metavar="ID", help="only this webhook")
    parser.add_argument("--event", metavar="CODE", help="only this event code")
    if resource:
        parser.add_argument(
            "--resource-id", type=_positive_int, metavar="N", help="only this report"
        )
    else:
        parser.add_argument("--since", type=_moment, metavar="TIME", help="created at or after")
        parser.add_argument("--until", type=_moment, metavar="TIME", help="created at or before")


def add_client_commands(commands: Any) -> None:
    parent = _client_parent()

    def command(
        name: str, help_text: str, run: Command, *, grouped: bool = False, **kw: Any
    ) -> argparse.ArgumentParser:
        """A client command; a `grouped` one takes its flags after its action (`webhooks list`)."""
        parser: argparse.ArgumentParser = commands.add_parser(
            name,
            help=help_text,
            description=kw.pop("description", help_text),
            parents=[] if grouped else [parent],
        )
        parser.set_defaults(run=lambda a: _run(a, run))
        return parser

    webhooks = command(
        "webhooks",
        "list and manage webhooks (list, show, create, update, delete, activate, deactivate)",
        _webhooks,
        grouped=True,
    )
    actions = webhooks.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("list", help="every webhook", parents=[parent])
    for verb in ("show", "delete", "activate", "deactivate"):
        sub = actions.add_parser(verb, help=f"{verb} one webhook", parents=[parent])
        sub.add_argument("id", type=_positive_int, metavar="ID")
    create = actions.add_parser("create", help="add a webhook", parents=[parent])
    update = actions.add_parser("update", help="change a webhook's fields", parents=[parent])
    update.add_argument("id", type=_positive_int, metavar="ID")
    for parser, required in ((create, True), (update, False)):
        parser.add_argument("--name", required=required, help="1-100 characters")
        parser.add_argument("--url", required=required, help="absolute http or https URL")
        parser.add_argument(
            "--event",
            dest="events",
            action="append",
            required=required,
            metavar="CODE",
            help="an event code (report.created, report.file_ready); repeatable",
        )
        parser.add_argument(
            "--basic-auth", type=_user_password, metavar="USER:PASS", help="basic auth"
        )
        parser.add_argument(
            "--header",
            dest="headers",
            action="append",
            type=_header,
            metavar="NAME=VALUE",
            help="a custom header sent with every attempt; repeatable"
            + ("; replaces all the webhook's custom headers" if not required else ""),
        )
        parser.add_argument(
            "--rate-limit",
            type=_rate_limit,
            metavar="N/PERIOD",
            help="at most N attempts a minute or an hour (2/minute, 100/hour)",
        )
    create.add_argument("--inactive", action="store_true", help="create it deactivated")
    update.add_argument("--no-basic-auth", action="store_true", help="turn basic auth off")
    update.add_argument("--no-headers", action="store_true", help="remove every custom header")
    update.add_argument("--no-rate-limit", action="store_true", help="remove the rate limit")

    reports = command("reports", "list reports or show one (list, show)", _reports, grouped=True)
    report_actions = reports.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = report_actions.add_parser("list", help="newest first", parents=[parent])
    listing.add_argument("--limit", type=_limit, default=20, help="rows (1-200, default 20)")
    listing.add_argument("--offset", type=_non_negative_int, default=0, help="rows to skip")
    show = report_actions.add_parser(
        "show", help="the report as GET /api/v1/reports/{id}", parents=[parent]
    )
    show.add_argument("id", metavar="ID", help="numeric id or inspectionId")

    deliveries = command(
        "deliveries",
        "list the delivery journal, show one delivery, or tail it live with --follow",
        _deliveries,
        description="The delivery journal, newest first; `deliveries show ID` shows one with"
        " every attempt; --follow prints one line per attempt as it happens.",
    )
    deliveries.add_argument("show", nargs="?", choices=["show"], help=argparse.SUPPRESS)
    deliveries.add_argument("id", nargs="?", type=_positive_int, help=argparse.SUPPRESS)
    _filters(deliveries)
    deliveries.add_argument(
        "--limit", type=_limit, default=20, help="rows to list (1-200, default 20)"
    )
    deliveries.add_argument("--follow", "-f", action="store_true", help="tail the live feed")

    faults = command(
        "faults",
        "make QRM's own routes fail for the receiver's call back (add, list, remove, clear)",
        _faults,
        grouped=True,
    )
    fault_actions = faults.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = fault_actions.add_parser(
        "add",
        help="add a fault",
        description="Make a QRM route answer a status, answer late, or drop the connection,"
        " for its next --times calls (absent: until removed).",
        parents=[parent],
    )
    add.add_argument(
        "--route",
        default=FAULT_ROUTES[2],
        choices=FAULT_ROUTES,
        help=f"default {FAULT_ROUTES[2]!r}",
    )
    add.add_argument("--status", type=_positive_int, help="answer this status (400-599)")
    add.add_argument("--delay-ms", type=_non_negative_int, help="answer this much later")
    add.add_argument("--retry-after", type=_non_negative_int, help="seconds, as Retry-After")
    add.add_argument("--reset", action="store_true", help="drop the connection")
    add.add_argument("--times", type=_positive_int, help="for this many calls")
    fault_actions.add_parser(
        "list", help="active faults, in the order they apply", parents=[parent]
    )
    remove = fault_actions.add_parser("remove", help="remove one fault", parents=[parent])
    remove.add_argument("id", type=_positive_int, metavar="ID")
    fault_actions.add_parser("clear", help="remove every fault", parents=[parent])

    command(
        "api-calls",
        "the calls made to QRM's routes, oldest first: did the receiver call back?",
        _api_calls,
    )

    redeliver = command(
        "redeliver",
        "one manual attempt for a delivery, or for every delivery matching filters",
        _redeliver,
    )
    redeliver.add_argument("id", nargs="?", type=_positive_int, metavar="ID")
    _filters(redeliver)

    clock = command("clock", "show the server's clock, or `clock advance SECONDS`", _clock)
    clock.add_argument("advance", nargs="?", choices=["advance"], help=argparse.SUPPRESS)
    clock.add_argument("seconds", nargs="?", type=_seconds, help=argparse.SUPPRESS)

    command("reset", "back to the seeded state: no webhooks, no journal", _reset)

    wait = command(
        "wait",
        "wait on the live feed until a delivery matches; exit 1 on timeout",
        _wait,
        description="Wait until a delivery matches (default: status delivered), print it and"
        " exit 0; on timeout say what was expected and what the journal holds, and exit 1.",
    )
    _filters(wait, resource=True)
    wait.add_argument(
        "--attempts", type=_positive_int, metavar="N", help="with exactly N automatic attempts"
    )
    wait.add_argument(
        "--timeout", type=_seconds, default=30.0, metavar="SECONDS", help="default 30"
    )

    upload = command(
        "upload-report",
        "simulate an inspector uploading a report",
        _upload,
        description="Create a report: report.created now, report.file_ready after the delay.",
    )
    upload.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override an inspectionGeneral field (VALUE is JSON, else a string); repeatable",
    )

    trigger = command(
        "trigger",
        "emit a catalog event for an existing report",
        _trigger,
        description="Emit an event (report.created, report.file_ready) for a report.",
    )
    trigger.add_argument("event_code", metavar="EVENT_CODE", help="e.g. report.created")
    trigger.add_argument(
        "--report", type=_positive_int, metavar="ID", help="report id (default: the newest report)"
    )


# --- argument types -------------------------------------------------------------------


def _positive_int(value: str) -> int:
    if not (value.isascii() and value.isdigit()) or int(value) < 1 or len(value) > 18:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return int(value)


def _non_negative_int(value: str) -> int:
    if not (value.isascii() and value.isdigit()) or len(value) > 18:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}")
    return int(value)


def _limit(value: str) -> int:
    number = _positive_int(value)
    if number > 200:
        raise argparse.ArgumentTypeError("at most 200")
    return number


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {value!r}") from None
    if not 0 <= seconds <= 10**7:
        raise argparse.ArgumentTypeError(f"expected 0 to 10000000 seconds, got {value!r}")
    return seconds


def _moment(value: str) -> str:
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an ISO 8601 time like 2026-11-28T15:04:05Z, got {value!r}"
        ) from None
    return value


def _header(value: str) -> tuple[str, str]:
    name, sep, text = value.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError("expected NAME=VALUE, like X-Tenant=acme")
    return name.strip(), text.strip()


def _rate_limit(value: str) -> dict[str, Any]:
    try:
        return RateLimit.parse(value).model_dump()
    except ValidationError as exc:
        raise argparse.ArgumentTypeError(validation_messages(exc)[0][1]) from None
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _user_password(value: str) -> tuple[str, str]:
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise argparse.ArgumentTypeError("expected USER:PASSWORD")
    return user, password


# --- running a command ------------------------------------------------------------------


def client_settings(args: argparse.Namespace) -> ClientSettings:
    given = {k: v for k in ("server", "api_key") if (v := getattr(args, k, None)) is not None}
    try:
        return ClientSettings.resolve(given, os.environ)
    except ValidationError as exc:
        where = "--server" if "server" in given else "MOCK_QRM_SERVER (or QRM_TUI_SERVER)"
        reasons = "; ".join(message for _, message in validation_messages(exc))
        raise CliError(f"{where}: {reasons}", status=2) from None


def _run(args: argparse.Namespace, command: Command) -> None:
    settings = client_settings(args)

    async def main() -> None:
        async with QrmClient(settings.url, settings.api_key) as client:
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


def _usage(message: str) -> CliError:
    return CliError(message, status=2)


def _print_json(data: Any) -> None:
    if isinstance(data, BaseModel):
        text = data.model_dump_json(by_alias=True, indent=2)
    elif isinstance(data, list):
        items = [
            m.model_dump(mode="json", by_alias=True) if isinstance(m, BaseModel) else m
            for m in data
        ]
        text = json.dumps(items, indent=2)
    else:
        text = json.dumps(data, indent=2)
    print(text, flush=True)


def _console() -> Console:
    """Tables fit the terminal; piped, they are never wrapped or cut."""
    if sys.stdout.isatty():
        return Console()
    return Console(width=max(200, shutil.get_terminal_size().columns), no_color=True)


def _table(columns: Iterable[str], rows: Iterable[Iterable[object]], caption: str = "") -> None:
    table = Table(box=None, pad_edge=False, caption=caption or None, caption_justify="left")
    for column in columns:
        table.add_column(column, justify="right" if column in ("ID", "REPORT") else "left")
    for row in rows:
        table.add_row(*("" if cell is None else str(cell) for cell in row))
    console = _console()
    with console.capture() as captured:
        console.print(table)
    print("\n".join(line.rstrip() for line in captured.get().splitlines()), flush=True)


def _local(moment: datetime) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def attempts_label(delivery: Delivery, max_attempts: int) -> str:
    """`3/4`, and `3/4 +1` when manual attempts were made too (SPEC 8.1)."""
    label = f"{delivery.attempt_count}/{max_attempts}"
    manual = delivery.attempts_total - delivery.attempt_count
    if delivery.status is DeliveryStatus.IN_FLIGHT:
        manual -= 1  # the automatic attempt in flight is not counted in attemptCount yet
    return f"{label} +{manual}" if manual > 0 else label


def _answer(d: Delivery) -> str:
    if d.last_response_status is not None:
        return str(d.last_response_status)
    return d.last_error or "-"


# --- webhooks -------------------------------------------------------------------------


def _webhook_rows(webhooks: list[Webhook]) -> None:
    _table(
        ("ID", "", "NAME", "URL", "EVENTS", "BASIC AUTH", "HEADERS", "RATE LIMIT", "LAST DELIVERY"),
        (
            (
                w.id,
                "●" if w.active else "○",
                w.name,
                w.url,
                ", ".join(w.events),
                w.basic_auth.username if w.basic_auth else "-",
                ", ".join(f"{name}: {value}" for name, value in w.headers.items()) or "-",
                str(w.rate_limit) if w.rate_limit else "-",
                "-"
                if w.last_delivery is None
                else f"{w.last_delivery.status.value} {_local(w.last_delivery.at)}",
            )
            for w in webhooks
        ),
        caption=f"{len(webhooks)} webhook{'' if len(webhooks) == 1 else 's'}",
    )


async def _webhooks(client: QrmClient, args: argparse.Namespace) -> None:
    action = args.action
    if action == "list":
        found = await client.webhooks()
        _print_json(found) if args.json else _webhook_rows(found)
        return
    if action == "delete":
        await client.delete_webhook(args.id)
        if args.json:
            _print_json({"id": args.id, "deleted": True})
        else:
            print(f"webhook {args.id} removed (its delivery history stays)")
        return
    if action == "show":
        webhook = await client.webhook(args.id)
    elif action in ("activate", "deactivate"):
        webhook = await client.set_active(args.id, action == "activate")
    elif action == "create":
        webhook = await client.create_webhook(
            args.name,
            args.url,
            args.events,
            args.basic_auth,
            active=not args.inactive,
            headers=_header_map(args.headers),
            rate_limit=args.rate_limit,
        )
    else:
        webhook = await client.update_webhook(args.id, _changes(args))
    if args.json:
        _print_json(webhook)
    else:
        _webhook_rows([webhook])


def _changes(args: argparse.Namespace) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for name in ("name", "url", "events"):
        if getattr(args, name) is not None:
            changes[name] = getattr(args, name)
    if args.basic_auth is not None and args.no_basic_auth:
        raise _usage("pass --basic-auth or --no-basic-auth, not both")
    if args.basic_auth is not None:
        changes["basicAuth"] = {"username": args.basic_auth[0], "password": args.basic_auth[1]}
    if args.no_basic_auth:
        changes["basicAuth"] = None
    if args.headers is not None and args.no_headers:
        raise _usage("pass --header or --no-headers, not both")
    if args.rate_limit is not None and args.no_rate_limit:
        raise _usage("pass --rate-limit or --no-rate-limit, not both")
    if args.no_headers:
        changes["headers"] = {}
    if args.no_rate_limit:
        changes["rateLimit"] = None
    if args.headers is not None:
        changes["headers"] = _header_map(args.headers)
    if args.rate_limit is not None:
        changes["rateLimit"] = args.rate_limit
    if not changes:
        raise _usage(
            "nothing to change: pass --name, --url, --event, --basic-auth, --header or --rate-limit"
        )
    return changes


def _header_map(pairs: list[tuple[str, str]] | None) -> dict[str, str]:
    """`--header` flags as the API's `headers` object; a name given twice is a usage error."""
    headers: dict[str, str] = {}
    for name, value in pairs or ():
        if name.lower() in (known.lower() for known in headers):
            raise _usage(f"--header {name} is given twice")
        headers[name] = value
    return headers


# --- reports ----------------------------------------------------------------------------


async def _reports(client: QrmClient, args: argparse.Namespace) -> None:
    if args.action == "show":
        report = await client.report(args.id)
        if args.json:
            _print_json(report)
            return
        general = report.get("inspectionGeneral", {})
        print(json.dumps(general, indent=2))
        return
    page = await client.report_rows(
        limit=getattr(args, "limit", 20), offset=getattr(args, "offset", 0)
    )
    if args.json:
        _print_json(page.data)
        return
    _table(
        ("ID", "CREATED", "CASE", "TYPE", "RESULT", "STATUS", "FILE"),
        (
            (
                r.id,
                _local(r.created_at),
                r.case_number,
                r.inspection_type,
                r.result,
                r.status,
                "ready" if r.file_ready else "-",
            )
            for r in page.data
        ),
        caption=f"{len(page.data)} of {page.total}",
    )


# --- deliveries -----------------------------------------------------------------------------


async def _deliveries(client: QrmClient, args: argparse.Namespace) -> None:
    if args.show:
        if args.id is None:
            raise _usage("deliveries show needs an ID")
        await _show_delivery(client, args.id, args.json)
        return
    if args.id is not None:
        raise _usage(f"unknown arguments: {args.id} (did you mean `deliveries show {args.id}`?)")
    if args.follow:
        await _follow(client, args)
        return
    page = await client.deliveries(
        webhook_id=args.webhook,
        status=args.status,
        event_code=args.event,
        since=args.since,
        until=args.until,
        limit=args.limit,
    )
    if args.json:
        _print_json(page.data)
        return
    max_attempts = (await client.health()).max_attempts
    _table(
        ("ID", "CREATED", "WEBHOOK", "EVENT", "REPORT", "TRY", "CODE", "STATE"),
        (
            (
                d.id,
                _local(d.created_at),
                d.webhook_name,
                d.event_code,
                d.resource_id,
                attempts_label(d, max_attempts),
                _answer(d),
                STATE[d.status],
            )
            for d in page.data
        ),
        caption=f"{len(page.data)} of {page.total}",
    )


async def _show_delivery(client: QrmClient, delivery_id: int, as_json: bool) -> None:
    detail: DeliveryDetail = await client.delivery(delivery_id)
    if as_json:
        _print_json(detail)
        return
    max_attempts = (await client.health()).max_attempts
    print(
        f"delivery {detail.id} {detail.message_id}: {detail.event_code} for report"
        f" {detail.resource_id} to {detail.webhook_name!r} (webhook {detail.webhook_id}),"
        f" {STATE[detail.status]}, attempts {attempts_label(detail, max_attempts)}"
    )
    automatic = 0
    rows = []
    for attempt in detail.attempts:
        if attempt.trigger.value == "automatic":
            automatic += 1
            which = f"{automatic}/{max_attempts}"
        else:
            which = "manual"
        rows.append(
            (
                attempt.number,
                which,
                _local(attempt.started_at),
                attempt.url,
                attempt.response_status or attempt.error or "-",
                "" if attempt.duration_ms is None else f"{attempt.duration_ms} ms",
                attempt.outcome.value if attempt.outcome else "in flight",
            )
        )
    _table(("#", "TRY", "STARTED", "URL", "ANSWER", "TOOK", "OUTCOME"), rows)


async def _follow(client: QrmClient, args: argparse.Namespace) -> None:
    """Like `stripe listen`: one line per finished attempt, reconnecting without losing any.

    With --json, every matching delivery frame as it comes, one per line (NDJSON).
    """
    from mock_qrm.testing.journal import DeliveryMatch, parse_statuses

    max_attempts = (await client.health()).max_attempts
    wanted = DeliveryMatch(
        status=parse_statuses(args.status), webhook_id=args.webhook, event_code=args.event
    )
    lines = _AttemptLines(max_attempts)
    async for event in FeedFollower(client, backoff=(0.5, 1.0)).events():
        if isinstance(event, FeedConnected):
            if not args.json:
                verb = "reconnected to" if event.resumed else "following"
                print(f"{verb} deliveries on {client.base_url} (ctrl+c to stop)", flush=True)
        elif isinstance(event, FeedLost):
            print(f"feed lost ({event.reason}); reconnecting", file=sys.stderr, flush=True)
        elif (
            event.type != "delivery" or event.delivery is None or not wanted.matches(event.delivery)
        ):
            continue
        elif args.json:
            print(event.model_dump_json(by_alias=True, exclude_none=True), flush=True)
        elif line := lines.line(event.delivery):
            print(line, flush=True)


class _AttemptLines:
    """One line per finished attempt; a manual one says `manual`, never another `3/4`."""

    def __init__(self, max_attempts: int) -> None:
        self.max_attempts = max_attempts
        self._seen: dict[int, Delivery] = {}
        self._manual: set[int] = set()

    def line(self, d: Delivery) -> str | None:
        before = self._seen.get(d.id)
        self._seen[d.id] = d
        started = before is None or d.attempts_total > before.attempts_total
        if d.status in (DeliveryStatus.PENDING, DeliveryStatus.IN_FLIGHT):
            return None
        if started and before is not None and d.attempt_count == before.attempt_count:
            self._manual.add(d.id)  # a manual attempt has started: its result comes next
            return None
        which = f"attempt {d.attempt_count}/{self.max_attempts}"
        if d.id in self._manual:
            self._manual.discard(d.id)
            which = "manual attempt"
        latency = f"{d.last_duration_ms} ms" if d.last_duration_ms is not None else ""
        outcome = STATE[d.status]
        if d.status is DeliveryStatus.RETRY_SCHEDULED and d.next_attempt_at is not None:
            outcome = f"retry at {_local(d.next_attempt_at)}"
        return (
            f"{_local(datetime.now().astimezone())}  --> {d.event_code} #{d.id} report"
            f" {d.resource_id} to {d.webhook_name!r} {which}  <-- {_answer(d)} {latency}  {outcome}"
        )


# --- faults ------------------------------------------------------------------------------


def _fault_rows(faults: list[Fault]) -> None:
    _table(
        ("ID", "ROUTE", "STATUS", "DELAY", "RETRY-AFTER", "RESET", "LEFT"),
        (
            (
                f.id,
                f.route,
                f.status or "-",
                "-" if f.delay_ms is None else f"{f.delay_ms} ms",
                "-" if f.retry_after is None else f"{f.retry_after} s",
                "yes" if f.reset else "-",
                "until removed" if f.remaining is None else f.remaining,
            )
            for f in faults
        ),
        caption=f"{len(faults)} fault{'' if len(faults) == 1 else 's'}",
    )


async def _faults(client: QrmClient, args: argparse.Namespace) -> None:
    if args.action == "add":
        fault = await client.add_fault(
            args.route,
            status=args.status,
            delay_ms=args.delay_ms,
            retry_after=args.retry_after,
            reset=args.reset or None,
            times=args.times,
        )
        _print_json(fault) if args.json else _fault_rows([fault])
    elif args.action == "list":
        found = await client.faults()
        _print_json(found) if args.json else _fault_rows(found)
    else:
        if args.action == "remove":
            await client.remove_fault(args.id)
        else:
            await client.clear_faults()
        if args.json:
            _print_json(await client.faults())
        else:
            print("removed" if args.action == "remove" else "no faults")


async def _api_calls(client: QrmClient, args: argparse.Namespace) -> None:
    found = await client.api_calls()
    if args.json:
        _print_json(found)
        return
    _table(
        ("AT", "METHOD", "PATH", "STATUS", "FAULT"),
        (
            (
                _local(c.at),
                c.method,
                c.path,
                "dropped" if c.status is None else c.status,
                c.fault_id or "-",
            )
            for c in found
        ),
        caption=f"{len(found)} call{'' if len(found) == 1 else 's'}",
    )


# --- redeliver, clock, reset, wait ------------------------------------------------------------


async def _redeliver(client: QrmClient, args: argparse.Namespace) -> None:
    filters = {
        "status": args.status,
        "webhook_id": args.webhook,
        "event_code": args.event,
        "since": args.since,
        "until": args.until,
    }
    chosen = {k: v for k, v in filters.items() if v is not None}
    if args.id is not None:
        if chosen:
            raise _usage("pass a delivery ID or filters, not both")
        attempt = await client.redeliver(args.id)
        if args.json:
            _print_json(attempt)
            return
        answer = attempt.response_status or attempt.error or "-"
        print(
            f"delivery {args.id}: manual attempt {attempt.number} -> {answer} ({attempt.outcome})"
        )
        return
    if not chosen:
        raise _usage("pass a delivery ID, or filters (--status failed, --webhook ID, ...)")
    count = await client.redeliver_matching(**chosen)
    if args.json:
        _print_json({"count": count})
    else:
        print(f"{count} manual attempt{'' if count == 1 else 's'} queued")


async def _clock(client: QrmClient, args: argparse.Namespace) -> None:
    if args.advance:
        if args.seconds is None:
            raise _usage("clock advance needs SECONDS")
        state = await client.advance(args.seconds)
    elif args.seconds is not None:
        raise _usage("did you mean `clock advance SECONDS`?")
    else:
        state = await client.clock()
    if args.json:
        _print_json(state)
    else:
        kind = "manual" if state.manual else "real"
        print(
            f"{state.now:%Y-%m-%dT%H:%M:%S.%f}"[:-3]
            + f"Z ({kind} clock, time scale {state.time_scale:g})"
        )


async def _reset(client: QrmClient, args: argparse.Namespace) -> None:
    await client.reset()
    if args.json:
        _print_json({"reset": True})
    else:
        print("reset: no webhooks, no journal, the seeded reports")


async def _wait(client: QrmClient, args: argparse.Namespace) -> None:
    """The CLI twin of the kit's `wait_for_delivery`: on the live feed, never polling."""
    from mock_qrm.testing.journal import DeliveryMatch, FeedMirror, parse_statuses, timeout_message

    expected = DeliveryMatch(
        status=parse_statuses(args.status or "delivered"),
        webhook_id=args.webhook,
        event_code=args.event,
        resource_id=args.resource_id,
        attempts=args.attempts,
    )
    mirror = FeedMirror(client)
    follower = asyncio.create_task(mirror.follow())
    try:
        try:
            async with asyncio.timeout(10):
                await mirror.ready.wait()
        except TimeoutError:
            raise CliError(f"{client.base_url} opened no live feed within 10 s") from None
        if mirror.error is not None:
            raise mirror.error
        try:
            [found] = await mirror.wait(expected, 1, args.timeout)
        except TimeoutError:
            clock = await client.clock()
            message = (
                timeout_message(
                    expected,
                    1,
                    args.timeout,
                    mirror.matching(expected),
                    list(mirror.deliveries.values()),
                    manual_now=clock.now if clock.manual else None,
                )
                .replace("call qrm.advance(", "run `mock-qrm clock advance ")
                .replace(") (or await qrm.aadvance(", "` (the kit: qrm.advance(")
            )
            raise CliError(message) from None
    finally:
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower
    if args.json:
        _print_json(found)
    else:
        print(
            f"delivery {found.id} {STATE[found.status]}: {found.event_code} for report"
            f" {found.resource_id} to {found.webhook_name!r}, {found.attempt_count} attempt"
            f"{'' if found.attempt_count == 1 else 's'}, last answer {_answer(found)}"
        )


# --- upload, trigger ----------------------------------------------------------------------------


def _parse_override(item: str) -> tuple[str, Any]:
    field, sep, raw = item.partition("=")
    if not sep or not field:
        raise _usage(f"--set expects FIELD=VALUE, got {item!r}")
    try:
        return field, json.loads(raw)
    except json.JSONDecodeError:
        return field, raw


async def _upload(client: QrmClient, args: argparse.Namespace) -> None:
    overrides = dict(_parse_override(item) for item in args.overrides)
    uploaded = await client.upload_report(overrides)
    if args.json:
        _print_json(uploaded)
        return
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
    if args.json:
        _print_json(emitted)
        return
    print(f"{emitted.event_code} for report {emitted.resource_id}: {emitted.deliveries} deliveries")
