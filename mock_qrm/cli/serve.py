"""`mock-qrm serve` and `mock-qrm receiver`: flags and environment → settings → run.

Each setting's flag, help and default are declared here as data, so `--help`
and shell completion list them without importing the server; the server's
`Settings` validates them (a test holds the two to the same names and defaults).
A start that fails (a bad value, a port in use, a database that cannot be
opened) is one line on stderr naming the flag or variable to fix.

`serve --config FILE.toml` starts in the state a scenario file declares: its
`[server]` settings under the flags (and over the environment), its webhooks and
faults applied before the server listens. A file that does not validate stops the
start before anything is opened: every problem, one line each, `FILE:LINE: field: message`.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any, NamedTuple

from mock_qrm import __version__
from mock_qrm.cli.args import CliError, usage
from mock_qrm.cli.output import say, silence_stdout

if TYPE_CHECKING:
    from pydantic import BaseModel, ValidationError

    from mock_qrm.app import Scenario, ScenarioError, Settings


class Flag(NamedTuple):
    name: str
    """The setting's name: `--time-scale` sets `time_scale`, and so does `MOCK_QRM_TIME_SCALE`."""
    help: str
    default: object
    switch: bool = False
    """A flag without a value (`--manual-clock`)."""


SERVE_PREFIX = "MOCK_QRM_"
SERVE_FLAGS = (
    Flag("host", "address to listen on", "127.0.0.1"),
    Flag("port", "port to listen on (0: any free port)", 8765),
    Flag("db", "SQLite database file, or :memory:", "mock-qrm.sqlite3 in your data folder"),
    Flag("api_key", "require this key in the apiKey header (or a login token)", None),
    Flag("time_scale", "divide every interval and timeout by this", 1.0),
    Flag("timeout", "seconds a receiver has to answer", 60.0),
    Flag("retries", "automatic retries after a failure", 3),
    Flag("retry_interval", "seconds from a failed attempt's end to its retry", 60.0),
    Flag("file_ready_delay", "seconds from upload to report.file_ready", 5.0),
    Flag("concurrency", "deliveries in flight at once", 256),
    Flag("webhook_concurrency", "deliveries in flight at once to one webhook", 64),
    Flag("manual_clock", "freeze time; move it with POST /_mock/clock/advance", False, True),
    Flag("seed", "seed of the generated reports", 0),
    Flag("seed_reports", "reports created at first start", 40),
    Flag("shutdown_grace", "seconds attempts in flight get to finish at shutdown", 5.0),
    Flag("feed_buffer", "feed frames kept for reconnecting clients", 10_000),
    Flag(
        "ca_file",
        "PEM file of certificates to trust for https webhooks, besides the system's"
        " (mkcert's rootCA.pem, a self-signed certificate)",
        None,
    ),
    Flag(
        "insecure_receivers",
        "do not check https webhooks' certificates at all (said at start and in /healthz)",
        False,
        True,
    ),
)

RECEIVER_PREFIX = "MOCK_QRM_RECEIVER_"
RECEIVER_FLAGS = (
    Flag(
        "host",
        "address to listen on; loopback by default, any other with a warning (anyone who can"
        " reach it can read what it received)",
        "127.0.0.1",
    ),
    Flag("port", "port to listen on; 0 picks a free port and prints it", 8766),
)


def add_flags(parser: argparse.ArgumentParser, flags: tuple[Flag, ...], prefix: str) -> None:
    """One flag per setting, its help naming the environment variable and the default."""
    for flag in flags:
        option = "--" + flag.name.replace("_", "-")
        shown = "none" if flag.default is None else flag.default
        help_text = f"{flag.help} (env {prefix}{flag.name.upper()}, default {shown})"
        if flag.switch:
            parser.add_argument(
                option, dest=flag.name, action="store_true", default=None, help=help_text
            )
        else:
            parser.add_argument(
                option, dest=flag.name, metavar=flag.name.upper(), default=None, help=help_text
            )


def given(args: argparse.Namespace, flags: tuple[Flag, ...]) -> dict[str, Any]:
    return {f.name: getattr(args, f.name) for f in flags if getattr(args, f.name, None) is not None}


def settings_from(
    model: type[BaseModel],
    values: dict[str, Any],
    prefix: str,
    scenario: Scenario | None = None,
) -> Any:
    """`model(**values)`, its refusal one line naming each flag (or variable) to fix.

    With a `scenario`, `values` are its settings under the flags: one that came from
    the file is named by its line.
    """
    from pydantic import ValidationError

    try:
        return model(**values)
    except ValidationError as exc:
        raise usage(one_line(exc, values, prefix, scenario)) from None


def one_line(
    exc: ValidationError, values: dict[str, Any], prefix: str, scenario: Scenario | None = None
) -> str:
    """Each error named by where its value came from: the flag, the scenario file's line, or
    the environment variable."""
    from mock_qrm.contract.errors import validation_messages

    from_file = {} if scenario is None else scenario.server
    parts = []
    for loc, message in validation_messages(exc):
        field = ".".join(str(p) for p in loc)
        if not field:
            parts.append(message)
        elif field in from_file and values.get(field) is from_file[field]:  # no flag over it
            assert scenario is not None
            parts.append(
                f"{scenario.source}:{scenario.line('server.' + field)}: server.{field}: {message}"
            )
        elif field in values:
            parts.append(f"--{field.replace('_', '-')}: {message}")
        else:
            parts.append(f"{prefix}{field}".upper() + f": {message}")
    return "; ".join(parts)


def scenario_problems(exc: ScenarioError) -> CliError:
    """A scenario's problems: one error line each, and a last one saying nothing was done."""
    count = len(exc.lines)
    said = (
        f"{exc.source}: {count} problem{'' if count == 1 else 's'}; nothing was started or changed"
    )
    return usage(exc.lines[0], more=[*exc.lines[1:], said])


# --- serve -----------------------------------------------------------------------


CONFIG_ENV = SERVE_PREFIX + "CONFIG"
CONFIG_HELP = (
    "start in the state this scenario file declares: [server] settings (flags beat them),"
    " [[webhooks]] created or updated to match by name, [[faults]]; values may read ${ENV}"
    f" (env {CONFIG_ENV}; see docs/scenarios.md)"
)


def add_serve(commands: Any, name: str, help_text: str) -> None:
    parser = commands.add_parser(name, help=help_text, description="Run the mock QRM server.")
    parser.add_argument("--config", metavar="FILE.toml", help=CONFIG_HELP)
    add_flags(parser, SERVE_FLAGS, SERVE_PREFIX)
    parser.set_defaults(run=run_serve)


def load_scenario(path: str | None, environ: Any) -> Scenario | None:
    """The scenario file at `path`, if one is named; its problems, all at once, as a usage error."""
    if not path:
        return None
    from mock_qrm.app import ScenarioError, read_scenario

    try:
        return read_scenario(path, environ)
    except ScenarioError as exc:
        raise scenario_problems(exc) from None


def run_serve(args: argparse.Namespace) -> None:
    import asyncio
    import os

    from mock_qrm.app import Settings

    scenario = load_scenario(args.config or os.environ.get(CONFIG_ENV), os.environ)
    values = {**(scenario.server if scenario else {}), **given(args, SERVE_FLAGS)}
    settings: Settings = settings_from(Settings, values, SERVE_PREFIX, scenario)
    asyncio.run(_serve(settings, scenario))


async def _serve(settings: Settings, scenario: Scenario | None = None) -> None:
    from mock_qrm.app import (
        ScenarioError,
        ServeError,
        applied_scenario,
        create_app,
        serve,
        settle_heap,
        stop_on_signals,
    )
    from mock_qrm.contract.errors import StorageError

    try:
        running = await serve(create_app(settings, scenario=scenario), settings.host, settings.port)
    except StorageError as exc:
        raise CliError(f"{exc} (choose it with --db FILE or MOCK_QRM_DB)") from None
    except ServeError as exc:
        raise CliError(f"{exc} (choose another with --port or MOCK_QRM_PORT)") from None
    except ScenarioError as exc:
        raise scenario_problems(exc) from None
    settle_heap()
    try:  # whatever happens from here, the service closes and the database lock is released
        stop = stop_on_signals()  # before the banner: a signal sent on reading it stops cleanly
        extras = []
        if settings.time_scale != 1:
            extras.append(f"time scale {settings.time_scale:g}")
        if settings.manual_clock:
            extras.append("manual clock")
        if settings.api_key is not None:
            extras.append("API key required")
        suffix = f" ({', '.join(extras)})" if extras else ""
        _say(f"mock-qrm {__version__} listening on {running.url}{suffix}")
        _say(f"database: {settings.db}")
        if settings.insecure_receivers:
            _say("warning: https webhooks' certificates are NOT checked (--insecure-receivers)")
        elif settings.ca_file is not None:
            _say(f"https webhooks: trusting {settings.ca_file} besides the system's CAs")
        applied = applied_scenario(running.app)
        if scenario is not None and applied is not None:
            _say(f"scenario {scenario.source}: {applied.summary()}")
        try:
            await stop.wait()
        finally:
            _say("mock-qrm stopping: finishing attempts in flight")
    finally:
        await running.close()


def _say(line: str) -> None:
    """A line on stdout; a reader that has gone (`| head -1`) must not stop the server."""
    try:
        say(line)
    except OSError:  # BrokenPipeError, or a terminal that has closed
        silence_stdout()


# --- receiver ----------------------------------------------------------------------


def add_receiver(commands: Any, name: str, help_text: str) -> None:
    parser = commands.add_parser(
        name,
        help=help_text,
        description="Run a webhook receiver whose behaviour is chosen by path: /ok, "
        "/status/{code}, /delay/{seconds}, /flaky/{n}, /reset, /hang, /redirect, "
        "/auth/{user}/{password}; GET /_received lists what arrived (the latest 10,000"
        " requests and 64 MiB; it says how many it dropped).",
    )
    add_flags(parser, RECEIVER_FLAGS, RECEIVER_PREFIX)
    parser.set_defaults(run=run_receiver)


def run_receiver(args: argparse.Namespace) -> None:
    from mock_qrm.receiver import ReceiverSettings, run_receiver

    settings = settings_from(ReceiverSettings, given(args, RECEIVER_FLAGS), RECEIVER_PREFIX)
    run_receiver(settings)
