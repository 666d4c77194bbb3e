"""`mock-qrm check-receiver URL`: flags → a mock (running, or started here) → the checks → output.

Exit status: 0 when no check failed (warnings are fine), 1 when one did (or the
mock could not be reached or started: one line on stderr), 2 for a usage error.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from mock_qrm.cli import args as types
from mock_qrm.cli.args import CliError, usage
from mock_qrm.cli.connect import API_KEY_HELP, client_settings, failure
from mock_qrm.cli.output import document, say
from mock_qrm.client.errors import QrmUnavailable
from mock_qrm.client.settings import DEFAULT_SERVER
from mock_qrm.contract.errors import QrmApiError

if TYPE_CHECKING:
    import asyncio

    from mock_qrm.cli.check.checks import CheckResult

DEFAULT_PORT = 8765
FEED_READY_TIMEOUT = 10.0


def add(commands: Any, name: str, help_text: str) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        name,
        help=help_text,
        description="Register URL as a webhook on a mock QRM, send it real QRM messages and say,"
        " check by check, what happened and how to fix it: acknowledges-200, within-timeout,"
        " duplicate-message, file-ready, basic-auth, calls-back, callback-retry, burst."
        " Without --server, a mock is started here on --port: point the receiver's call back"
        " at it (its URL and API key are printed first). Exit 0 when nothing failed, 1 when"
        " something did, 2 for a usage error.",
    )
    parser.add_argument("url", metavar="URL", help="the receiver's webhook URL (http or https)")
    parser.add_argument(
        "--server",
        metavar="URL",
        help="use this running mock-qrm instead of starting one (env MOCK_QRM_SERVER or"
        " QRM_TUI_SERVER); it is not reset, and what the check adds is removed after",
    )
    parser.add_argument(
        "--api-key",
        metavar="KEY",
        help=API_KEY_HELP.replace(
            ", if it has one", ", which the receiver sends when it calls back"
        )
        + "; a mock started here makes one up without it",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="where a mock started here listens (default 127.0.0.1)",
    )
    parser.add_argument(
        "--port",
        type=types.port,
        default=DEFAULT_PORT,
        help=f"where a mock started here listens (default {DEFAULT_PORT}; 0: any free port)",
    )
    parser.add_argument(
        "--timeout",
        type=_timeout,
        default=60.0,
        metavar="SECONDS",
        help="seconds a mock started here gives the receiver to answer (default 60, QRM's)",
    )
    parser.add_argument(
        "--ca-file",
        metavar="PEM",
        help="a mock started here also trusts these certificates for an https URL (mkcert's"
        " rootCA.pem, a self-signed certificate)",
    )
    parser.add_argument(
        "--insecure-receivers",
        action="store_true",
        help="a mock started here does not check an https URL's certificate at all",
    )
    parser.add_argument(
        "--basic-auth",
        type=types.user_password,
        metavar="USER:PASS",
        help="the basic auth the receiver expects; also checks that it refuses other credentials",
    )
    parser.add_argument(
        "--callback-timeout",
        type=types.seconds,
        default=30.0,
        metavar="SECONDS",
        help="how long to wait for the receiver's call back (default 30); callback-retry waits"
        " twice as long for its retry",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help='print {"checks": [{"name", "result", "detail"}]} instead of lines',
    )
    parser.add_argument(
        "--junit", type=Path, metavar="FILE", help="also write the results as JUnit XML, for CI"
    )
    parser.set_defaults(run=cmd_check_receiver)


def _timeout(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {value!r}") from None
    if not 0 < seconds <= 3600:
        raise argparse.ArgumentTypeError(f"expected more than 0 and at most 3600, got {value!r}")
    return seconds


def _receiver_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise usage(f"URL must be an absolute http or https URL, got {url!r}")
    if parts.username is not None or parts.password is not None:
        raise usage("put the receiver's credentials in --basic-auth USER:PASS, not in the URL")
    return url


def cmd_check_receiver(args: argparse.Namespace) -> None:
    from mock_qrm.cli.check.checks import Result
    from mock_qrm.cli.check.report import as_json, line, summary, write_junit

    url = _receiver_url(args.url)
    client = client_settings(args)
    server = client.server
    say: Callable[[str], None] = _stderr if args.json else _stdout

    def report(result: CheckResult) -> None:
        if not args.json:
            _stdout(line(result))

    try:
        import asyncio

        results = asyncio.run(_check(args, url, server, client.api_key, say, report))
    except QrmUnavailable as exc:
        where = "" if server is None else " (is `mock-qrm serve` running there?)"
        raise CliError(f"{exc}{where}") from None
    except QrmApiError as exc:
        error = failure(exc)
        raise CliError(str(error), 2 if exc.status == 422 else error.status) from None
    if args.json:
        document(as_json(results))
    else:
        _stdout(summary(results))
    if args.junit is not None:
        try:
            write_junit(args.junit, results, url)
        except OSError as exc:
            raise CliError(f"cannot write {args.junit}: {exc.strerror or exc}") from None
    if any(r.result is Result.FAIL for r in results):
        raise SystemExit(1)


async def _check(
    args: argparse.Namespace,
    url: str,
    server: str | None,
    api_key: str | None,
    say: Callable[[str], None],
    report: Callable[[CheckResult], None],
) -> list[CheckResult]:
    import asyncio
    import secrets

    from mock_qrm.cli.check.checks import JOURNAL_MARGIN, CheckOptions, ReceiverCheck
    from mock_qrm.client.http import QrmClient
    from mock_qrm.client.mirror import FeedMirror

    async with contextlib.AsyncExitStack() as stack:
        if server is None:
            api_key = api_key or secrets.token_urlsafe(12)
            base = await stack.enter_async_context(_embedded(args, api_key))
            say(f"mock QRM for this check on {base} (API key {api_key}): the receiver calls back")
            say(f"  GET {base}/api/v1/reports/{{resourceId}} with the header apiKey: {api_key}")
        else:
            base = server.rstrip("/").removesuffix("/api/v1") or DEFAULT_SERVER
            say(f"checking {url} with the mock QRM at {base}")
        async with QrmClient(base, api_key) as probe:
            health = await probe.health()
        timeout = health.timeout_seconds
        client = await stack.enter_async_context(
            QrmClient(base, api_key, timeout=timeout + JOURNAL_MARGIN)
        )
        mirror = FeedMirror(client)
        follower = asyncio.create_task(mirror.follow(), name="check-receiver-feed")
        stack.push_async_callback(_cancel, follower)
        try:
            await asyncio.wait_for(mirror.ready.wait(), FEED_READY_TIMEOUT)
        except TimeoutError:
            raise QrmUnavailable(
                base, f"opened no live feed within {FEED_READY_TIMEOUT:g} s", reached=True
            ) from None
        if mirror.error is not None:
            raise mirror.error
        options = CheckOptions(
            url=url,
            api_url=base + "/api/v1",
            api_key=api_key,
            basic_auth=args.basic_auth,
            callback_timeout=args.callback_timeout,
        )
        return await ReceiverCheck(client, mirror, options, timeout).run(report)
    raise AssertionError("unreachable")  # pragma: no cover - mypy cannot see the stack always exits


@contextlib.asynccontextmanager
async def _embedded(args: argparse.Namespace, api_key: str) -> AsyncIterator[str]:
    """A mock of this process's own, on QRM's real schedule, for as long as the check runs.

    Its `report.file_ready` follows an upload only when a check sends it, and each
    check deletes its webhooks (cancelling their retries), so neither arrives unasked.
    """
    from pydantic import ValidationError

    from mock_qrm.app import ServeError, Settings, create_app, serve
    from mock_qrm.contract.errors import validation_messages

    try:
        settings = Settings.isolated(
            host=args.host,
            port=args.port,
            api_key=api_key,
            manual_clock=False,
            timeout=args.timeout,
            file_ready_delay=86_400,
            seed_reports=0,
            ca_file=args.ca_file,
            insecure_receivers=args.insecure_receivers,
        )
    except ValidationError as exc:
        raise usage(
            "; ".join(
                f"--{'-'.join(str(p) for p in loc).replace('_', '-')}: {message}"
                for loc, message in validation_messages(exc)
            )
        ) from None
    try:
        running = await serve(create_app(settings), settings.host, settings.port)
    except ServeError as exc:
        raise CliError(f"{exc} (pass --port, or --server URL to use a running mock)") from None
    try:
        yield running.url
    finally:
        await running.close()


async def _cancel(task: asyncio.Task[None]) -> None:
    import asyncio

    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _stdout(text: str) -> None:
    say(text)


def _stderr(text: str) -> None:
    say(text, error=True)
