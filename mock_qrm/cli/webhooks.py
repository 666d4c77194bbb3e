"""`mock-qrm webhooks list | show | create | update | delete | activate | deactivate | stats`."""

from __future__ import annotations

import argparse
import math
from typing import Any

from mock_qrm.cli import args as types
from mock_qrm.cli.args import usage
from mock_qrm.cli.connect import blocking_client, client_options
from mock_qrm.cli.output import local, plural, print_json, printable, say, table
from mock_qrm.client import calls
from mock_qrm.contract.catalog import EventCatalog


def add(commands: Any, name: str, help_text: str) -> None:
    parent = client_options()
    webhooks = commands.add_parser(name, help=help_text, description=help_text)
    webhooks.set_defaults(run=run)
    actions = webhooks.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("list", help="every webhook", parents=[parent])
    for verb in ("show", "delete", "activate", "deactivate"):
        sub = actions.add_parser(verb, help=f"{verb} one webhook", parents=[parent])
        sub.add_argument("id", type=types.positive_int, metavar="ID")
    stats = actions.add_parser(
        "stats",
        help="a webhook's delivery figures from the journal (a removed webhook's too)",
        description="A webhook's delivery figures from the journal: attempts that ended, by"
        " status; success rate (attempts answered 200 over those that succeeded or failed);"
        " latency percentiles; deliveries delivered and failed. See docs/stats.md.",
        parents=[parent],
    )
    stats.add_argument("id", type=types.positive_int, metavar="ID")
    stats.add_argument(
        "--since",
        type=types.moment,
        metavar="TIME",
        help="count attempts started, and deliveries created, at or after TIME (ISO 8601)",
    )
    stats.add_argument(
        "--per-minute",
        type=types.minutes,
        default=0,
        metavar="N",
        help="also list the last N minutes of the server's clock one by one (up to 1440)",
    )
    create = actions.add_parser("create", help="add a webhook", parents=[parent])
    update = actions.add_parser("update", help="change a webhook's fields", parents=[parent])
    update.add_argument("id", type=types.positive_int, metavar="ID")
    codes = sorted(EventCatalog.load().codes)
    for parser, required in ((create, True), (update, False)):
        parser.add_argument("--name", required=required, help="1-100 characters")
        parser.add_argument("--url", required=required, help="absolute http or https URL")
        parser.add_argument(
            "--event",
            dest="events",
            action="append",
            required=required,
            type=types.one_of("event code", codes),
            metavar="CODE",
            help=f"an event code ({', '.join(codes)}); repeatable",
        )
        parser.add_argument(
            "--basic-auth", type=types.user_password, metavar="USER:PASS", help="basic auth"
        )
        parser.add_argument(
            "--header",
            dest="headers",
            action="append",
            type=types.header,
            metavar="NAME=VALUE",
            help="a custom header sent with every attempt; repeatable"
            + ("; replaces all the webhook's custom headers" if not required else ""),
        )
        parser.add_argument(
            "--rate-limit",
            type=types.rate_limit,
            metavar="N/PERIOD",
            help="at most N attempts a minute or an hour (2/minute, 100/hour)",
        )
    create.add_argument("--inactive", action="store_true", help="create it deactivated")
    update.add_argument("--no-basic-auth", action="store_true", help="turn basic auth off")
    update.add_argument("--no-headers", action="store_true", help="remove every custom header")
    update.add_argument("--no-rate-limit", action="store_true", help="remove the rate limit")


def run(args: argparse.Namespace) -> None:
    action = args.action
    if action == "update":
        changes = _changes(args)  # a usage error before the server is asked anything
    with blocking_client(args) as client:
        if action == "stats":
            figures = client.data(calls.webhook_stats(args.id, args.since, args.per_minute))
            print_json(figures) if args.json else stats_lines(figures)
            return
        if action == "list":
            found = client.data(calls.webhooks())
            print_json(found) if args.json else webhook_table(found)
            return
        if action == "delete":
            client.send(calls.delete_webhook(args.id))
            if args.json:
                print_json({"id": args.id, "deleted": True})
            else:
                say(f"webhook {args.id} removed (its delivery history stays)")
            return
        if action == "show":
            webhook = client.data(calls.webhook(args.id))
        elif action in ("activate", "deactivate"):
            webhook = client.data(calls.set_active(args.id, action == "activate"))
        elif action == "create":
            body = calls.webhook_body(
                args.name,
                args.url,
                args.events,
                args.basic_auth,
                not args.inactive,
                _header_map(args.headers),
                args.rate_limit,
            )
            webhook = client.data(calls.create_webhook(body))
        else:
            webhook = client.data(calls.update_webhook(args.id, changes))
    print_json(webhook) if args.json else webhook_table([webhook])


def webhook_table(webhooks: list[dict[str, Any]]) -> None:
    table(
        ("ID", "", "NAME", "URL", "EVENTS", "BASIC AUTH", "HEADERS", "RATE LIMIT", "LAST DELIVERY"),
        (
            (
                w["id"],
                "●" if w["active"] else "○",
                w["name"],
                w["url"],
                ", ".join(w["events"]),
                w["basicAuth"]["username"] if w.get("basicAuth") else "-",
                ", ".join(f"{name}: {value}" for name, value in (w.get("headers") or {}).items())
                or "-",
                _rate(w.get("rateLimit")),
                _last(w.get("lastDelivery")),
            )
            for w in webhooks
        ),
        caption=plural(len(webhooks), "webhook"),
    )


def stats_lines(stats: dict[str, Any]) -> None:
    """The figures one to a line, then the minutes asked for as a table."""
    latency = stats["latencyMs"]
    rate = stats["successRate"]
    by_status = ", ".join(f"{key}: {count:,}" for key, count in stats["byStatus"].items())
    head = f"webhook {stats['webhookId']}"
    if stats.get("removed"):
        head += " (removed: its history stays)"
    head += f", since {local(stats['since'])}" if stats.get("since") else ", whole journal"
    rows = [
        ("attempts", f"{stats['attempts']:,}" + (f" ({by_status})" if by_status else "")),
        (
            "success rate",
            "-"
            if rate is None
            else f"{math.floor(rate * 10_000) / 100:g} % of attempts answered 200",
        ),
        ("latency", "   ".join(f"{p} {_ms(latency[p])}" for p in ("p50", "p95", "p99"))),
        ("delivered", _deliveries(stats["delivered"])),
        ("failed", _deliveries(stats["failed"]) + " (every attempt used up)"),
        ("last success", local(stats["lastSuccessAt"]) or "-"),
        ("last failure", local(stats["lastFailureAt"]) or "-"),
    ]
    say(printable(head))
    for name, value in rows:
        say(printable(f"  {name:<13} {value}"))
    if stats.get("perMinute"):
        say()
        table(
            ("MINUTE", "ATTEMPTS", "FAILURES", "P95"),
            (
                (local(m["at"])[:-3], m["attempts"], m["failures"], _ms(m["p95"]))
                for m in stats["perMinute"]
            ),
        )


def _deliveries(count: int) -> str:
    return f"{count:,} {'delivery' if count == 1 else 'deliveries'}"


def _ms(value: int | None) -> str:
    if value is None:
        return "-"
    return f"{value} ms" if value < 1000 else f"{value / 1000:.1f} s"


def _rate(limit: dict[str, Any] | None) -> str:
    return "-" if not limit else f"{limit['limit']}/{limit['period']}"


def _last(last: dict[str, Any] | None) -> str:
    return "-" if not last else f"{last['status']} {local(last['at'])}"


def _changes(args: argparse.Namespace) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for name in ("name", "url", "events"):
        if getattr(args, name) is not None:
            changes[name] = getattr(args, name)
    if args.basic_auth is not None and args.no_basic_auth:
        raise usage("pass --basic-auth or --no-basic-auth, not both")
    if args.basic_auth is not None:
        changes["basicAuth"] = {"username": args.basic_auth[0], "password": args.basic_auth[1]}
    if args.no_basic_auth:
        changes["basicAuth"] = None
    if args.headers is not None and args.no_headers:
        raise usage("pass --header or --no-headers, not both")
    if args.rate_limit is not None and args.no_rate_limit:
        raise usage("pass --rate-limit or --no-rate-limit, not both")
    if args.no_headers:
        changes["headers"] = {}
    if args.no_rate_limit:
        changes["rateLimit"] = None
    if args.headers is not None:
        changes["headers"] = _header_map(args.headers)
    if args.rate_limit is not None:
        changes["rateLimit"] = args.rate_limit
    if not changes:
        raise usage(
            "nothing to change: pass --name, --url, --event, --basic-auth, --header or --rate-limit"
        )
    return changes


def _header_map(pairs: list[tuple[str, str]] | None) -> dict[str, str]:
    """`--header` flags as the API's `headers` object; a name given twice is a usage error."""
    headers: dict[str, str] = {}
    for name, value in pairs or ():
        if name.lower() in (known.lower() for known in headers):
            raise usage(f"--header {name} is given twice")
        headers[name] = value
    return headers
