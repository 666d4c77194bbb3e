"""`mock-qrm deliveries [show ID] [--follow]`, `mock-qrm redeliver` and `mock-qrm wait`.

Listing, showing and redelivering make one or two calls with the blocking
client. `--follow` and `wait` ride the live feed, with the async client.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from mock_qrm.cli import args as types
from mock_qrm.cli.args import CliError, usage
from mock_qrm.cli.connect import blocking_client, client_command, client_settings
from mock_qrm.cli.output import local, plural, print_json, printable, say, table
from mock_qrm.client import calls, labels
from mock_qrm.contract.catalog import EventCatalog
from mock_qrm.contract.codes import DeliveryStatus
from mock_qrm.contract.errors import QrmApiError

if TYPE_CHECKING:
    from mock_qrm.client.blocking import BlockingClient
    from mock_qrm.contract.models import Delivery, FeedFrame

STATE = {
    "pending": "pending",
    "in_flight": "in flight",
    "delivered": "delivered",
    "retry_scheduled": "retry scheduled",
    "failed": "failed",
    "cancelled": "cancelled",
}
STATUSES = tuple(status.value for status in DeliveryStatus)


def _filters(parser: argparse.ArgumentParser, *, resource: bool = False) -> None:
    codes = sorted(EventCatalog.load().codes)
    parser.add_argument(
        "--status",
        type=types.one_of("status", STATUSES),
        metavar="STATUS",
        help=f"only deliveries in this state ({', '.join(STATUSES)})",
    )
    parser.add_argument(
        "--webhook", type=types.positive_int, metavar="ID", help="only this webhook"
    )
    parser.add_argument(
        "--event",
        type=types.one_of("event code", codes),
        metavar="CODE",
        help=f"only this event ({', '.join(codes)})",
    )
    if resource:
        parser.add_argument(
            "--resource-id", type=types.positive_int, metavar="N", help="only this report"
        )
    else:
        parser.add_argument(
            "--since", type=types.moment, metavar="TIME", help="created at or after"
        )
        parser.add_argument(
            "--until", type=types.moment, metavar="TIME", help="created at or before"
        )


def max_attempts(client: BlockingClient) -> int:
    """1 + retries, from the server's health (a degraded server still says)."""
    try:
        health = client.send(calls.health())
    except QrmApiError as exc:
        if not isinstance(exc.body, dict) or "maxAttempts" not in exc.body:
            raise
        health = exc.body
    return int(health["maxAttempts"])


def attempts(d: dict[str, Any], most: int) -> str:
    return labels.attempts_label(
        d["attemptCount"], d.get("attemptsTotal", 0), d["status"] == "in_flight", most
    )


def answer(d: dict[str, Any]) -> str:
    """The last answer in a table cell: a status, an error class, or `tls: cert`."""
    if d.get("lastResponseStatus") is not None:
        return str(d["lastResponseStatus"])
    if labels.is_certificate_failure(d.get("lastError"), d.get("lastErrorDetail")):
        return labels.CERTIFICATE_SHORT
    return d.get("lastError") or "-"


# --- deliveries -----------------------------------------------------------------------


def add_deliveries(commands: Any, name: str, help_text: str) -> None:
    deliveries = client_command(
        commands,
        name,
        help_text,
        run_deliveries,
        "The delivery journal, newest first; `deliveries show ID` shows one with every"
        " attempt; --follow prints one line per attempt as it happens.",
    )
    deliveries.add_argument("show", nargs="?", choices=["show"], help=argparse.SUPPRESS)
    deliveries.add_argument("id", nargs="?", type=types.positive_int, help=argparse.SUPPRESS)
    _filters(deliveries)
    deliveries.add_argument(
        "--limit", type=types.limit, default=20, help="rows to list (1-200, default 20)"
    )
    deliveries.add_argument("--follow", "-f", action="store_true", help="tail the live feed")


def run_deliveries(args: argparse.Namespace) -> None:
    if args.show and args.id is None:
        raise usage("deliveries show needs an ID")
    if not args.show and args.id is not None:
        raise usage(f"unknown arguments: {args.id} (did you mean `deliveries show {args.id}`?)")
    if args.follow:
        import asyncio

        settings = client_settings(args)
        asyncio.run(_follow(settings.url, settings.api_key, args))
        return
    with blocking_client(args) as client:
        if args.show:
            _show(client, args.id, args.json)
            return
        page = client.send(
            calls.deliveries(
                webhook_id=args.webhook,
                status=args.status,
                event_code=args.event,
                since=args.since,
                until=args.until,
                limit=args.limit,
            )
        )
        if args.json:
            print_json(page["data"])
            return
        most = max_attempts(client)
    table(
        ("ID", "CREATED", "WEBHOOK", "EVENT", "REPORT", "TRY", "CODE", "STATE"),
        (
            (
                d["id"],
                local(d["createdAt"]),
                d["webhookName"],
                d["eventCode"],
                d["resourceId"],
                attempts(d, most),
                answer(d),
                STATE.get(d["status"], d["status"]),
            )
            for d in page["data"]
        ),
        caption=f"{len(page['data'])} of {page['total']}",
    )


def _show(client: BlockingClient, delivery_id: int, as_json: bool) -> None:
    detail = client.data(calls.delivery(delivery_id))
    if as_json:
        print_json(detail)
        return
    most = max_attempts(client)
    say(
        printable(
            f"delivery {detail['id']} {detail['messageId']}: {detail['eventCode']} for report"
            f" {detail['resourceId']} to {detail['webhookName']!r} (webhook {detail['webhookId']}),"
            f" {STATE.get(detail['status'], detail['status'])}, attempts {attempts(detail, most)}"
        )
    )
    automatic = 0
    rows = []
    for attempt in detail["attempts"]:
        if attempt["trigger"] == "automatic":
            automatic += 1
            which = f"{automatic}/{most}"
        else:
            which = "manual"
        took = attempt.get("durationMs")
        rows.append(
            (
                attempt["number"],
                which,
                local(attempt["startedAt"]),
                attempt["url"],
                attempt.get("responseStatus")
                or labels.error_label(attempt.get("error"), attempt.get("errorDetail"))
                or "-",
                "" if took is None else f"{took} ms",
                attempt.get("outcome") or "in flight",
            )
        )
    table(("#", "TRY", "STARTED", "URL", "ANSWER", "TOOK", "OUTCOME"), rows)


# --- --follow -------------------------------------------------------------------------------


async def _follow(url: str, api_key: str | None, args: argparse.Namespace) -> None:
    """Like `stripe listen`: one line per finished attempt, reconnecting without losing any.

    With --json, every matching delivery frame as it comes, one per line (NDJSON).
    """
    from mock_qrm.client.feed import FeedConnected, FeedFollower, FeedLost
    from mock_qrm.client.http import QrmClient
    from mock_qrm.client.matching import DeliveryMatch, parse_statuses

    async with QrmClient(url, api_key) as client:
        most = (await client.health()).max_attempts
        wanted = DeliveryMatch(
            status=parse_statuses(args.status), webhook_id=args.webhook, event_code=args.event
        )
        lines = AttemptLines(most)
        async for event in FeedFollower(client.feed, url, backoff=(0.5, 1.0)).events():
            if isinstance(event, FeedConnected):
                verb = "reconnected to" if event.resumed else "following"
                # With --json, on stderr: stdout carries frames only.
                say(f"{verb} deliveries on {url} (ctrl+c to stop)", error=args.json)
            elif isinstance(event, FeedLost):
                say(f"feed lost ({printable(event.reason)}); reconnecting", error=True)
            elif (
                event.type != "delivery"
                or event.delivery is None
                or not wanted.matches(event.delivery)
            ):
                continue
            elif args.json:
                say(frame_line(event))
            elif line := lines.line(event):
                say(line)


def frame_line(frame: FeedFrame) -> str:
    """A feed frame as one line of `--follow --json`: ASCII JSON, every control escaped
    (pydantic's own JSON leaves C1 and U+2028 raw)."""
    import json

    return json.dumps(frame.model_dump(mode="json", by_alias=True, exclude_none=True))


class AttemptLines:
    """One line per finished attempt (a manual one says `manual`, never another `3/4`), and
    one when a delivery ends without one (cancelled): what the feed's frames say happened."""

    def __init__(self, max_attempts: int) -> None:
        self.max_attempts = max_attempts
        self._seen: dict[int, DeliveryStatus] = {}

    def line(self, frame: FeedFrame) -> str | None:
        d = frame.delivery
        if d is None:
            return None
        before = self._seen.get(d.id)
        self._seen[d.id] = d.status
        if frame.action == "attempt_ended":
            manual = frame.trigger == "manual"
            which = "manual attempt" if manual else f"attempt {d.attempt_count}/{self.max_attempts}"
        elif frame.action is None and d.status.is_final and d.status != before:
            which = ""  # no attempt: the webhook was deactivated or removed
        else:
            return None  # an attempt started, or the delivery waits on
        from datetime import datetime

        outcome = STATE[d.status]
        if d.status is DeliveryStatus.RETRY_SCHEDULED and d.next_attempt_at is not None:
            outcome = f"retry at {d.next_attempt_at.astimezone():%Y-%m-%d %H:%M:%S}"
        head = (
            f"{datetime.now().astimezone():%Y-%m-%d %H:%M:%S}  --> {d.event_code} #{d.id}"
            f" report {d.resource_id} to {d.webhook_name!r}"
        )
        if not which:
            return printable(f"{head}  {outcome}")
        latency = f"{d.last_duration_ms} ms" if d.last_duration_ms is not None else ""
        answered = (
            str(d.last_response_status)
            if d.last_response_status is not None
            else (labels.error_label(d.last_error, d.last_error_detail) or "-")
        )
        return printable(f"{head} {which}  <-- {answered} {latency}  {outcome}")


# --- redeliver ----------------------------------------------------------------------------


def add_redeliver(commands: Any, name: str, help_text: str) -> None:
    redeliver = client_command(commands, name, help_text, run_redeliver)
    redeliver.add_argument("id", nargs="?", type=types.positive_int, metavar="ID")
    _filters(redeliver)


def run_redeliver(args: argparse.Namespace) -> None:
    filters = {
        "status": args.status,
        "webhook_id": args.webhook,
        "event_code": args.event,
        "since": args.since,
        "until": args.until,
    }
    chosen = {k: v for k, v in filters.items() if v is not None}
    if args.id is not None and chosen:
        raise usage("pass a delivery ID or filters, not both")
    if args.id is None and not chosen:
        raise usage("pass a delivery ID, or filters (--status failed, --webhook ID, ...)")
    with blocking_client(args) as client:
        if args.id is not None:
            attempt = client.data(calls.redeliver(args.id))
        else:
            count = client.data(calls.redeliver_matching(**chosen))["count"]
    if args.id is not None:
        if args.json:
            print_json(attempt)
            return
        answered = (
            attempt.get("responseStatus")
            or labels.error_label(attempt.get("error"), attempt.get("errorDetail"))
            or "-"
        )
        say(
            f"delivery {args.id}: manual attempt {attempt['number']} -> {answered}"
            f" ({attempt.get('outcome')})"
        )
    elif args.json:
        print_json({"count": count})
    else:
        say(f"{plural(count, 'manual attempt')} queued")


# --- wait -----------------------------------------------------------------------------------


def add_wait(commands: Any, name: str, help_text: str) -> None:
    wait = client_command(
        commands,
        name,
        help_text,
        run_wait,
        "Wait until a delivery matches (default: status delivered), print it and exit 0; on"
        " timeout say what was expected and what the journal holds, and exit 1.",
    )
    _filters(wait, resource=True)
    wait.add_argument(
        "--attempts",
        type=types.positive_int,
        metavar="N",
        help="with exactly N automatic attempts",
    )
    wait.add_argument(
        "--timeout", type=types.seconds, default=30.0, metavar="SECONDS", help="default 30"
    )


def run_wait(args: argparse.Namespace) -> None:
    import asyncio

    settings = client_settings(args)
    found = asyncio.run(_wait(settings.url, settings.api_key, args))
    if args.json:
        print_json(found.model_dump(mode="json", by_alias=True))
        return
    count = found.attempt_count
    say(
        printable(
            f"delivery {found.id} {STATE[found.status]}: {found.event_code} for report"
            f" {found.resource_id} to {found.webhook_name!r}, {plural(count, 'attempt')},"
            f" last answer {answer(found.model_dump(mode='json', by_alias=True))}"
        )
    )


async def _wait(url: str, api_key: str | None, args: argparse.Namespace) -> Delivery:
    """The CLI twin of the kit's `wait_for_delivery`: on the live feed, never polling."""
    import asyncio
    import contextlib

    from mock_qrm.client.http import QrmClient
    from mock_qrm.client.matching import DeliveryMatch, parse_statuses, timeout_message
    from mock_qrm.client.mirror import FeedMirror

    expected = DeliveryMatch(
        status=parse_statuses(args.status or "delivered"),
        webhook_id=args.webhook,
        event_code=args.event,
        resource_id=args.resource_id,
        attempts=args.attempts,
    )
    async with QrmClient(url, api_key) as client:
        mirror = FeedMirror(client)
        follower = asyncio.create_task(mirror.follow())
        try:
            try:
                async with asyncio.timeout(10):
                    await mirror.ready.wait()
            except TimeoutError:
                raise CliError(f"{url} opened no live feed within 10 s") from None
            if mirror.error is not None:
                raise mirror.error
            try:
                [found] = await mirror.wait(expected, 1, args.timeout)
            except TimeoutError:
                clock = await client.clock()
                message = timeout_message(
                    expected,
                    1,
                    args.timeout,
                    mirror.matching(expected),
                    list(mirror.deliveries.values()),
                    manual_now=clock.now if clock.manual else None,
                    advance=lambda seconds: f"run `mock-qrm clock advance {seconds}`",
                )
                raise CliError(message) from None
        finally:
            follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follower
    return found
