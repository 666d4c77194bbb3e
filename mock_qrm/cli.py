"""`mock-qrm`: flags and environment → settings → run.

Every start-up failure (a bad flag, a port in use, a database that cannot be
opened) is one clear line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from pydantic import ValidationError
from pydantic_settings import BaseSettings

from mock_qrm import __version__
from mock_qrm.contract.errors import validation_messages
from mock_qrm.server.settings import Settings

PROG = "mock-qrm"


class CliError(Exception):
    """A failure to report in one line and exit with status 1 (2 for usage)."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


# --- flags from settings ---------------------------------------------------------


def add_settings_flags(parser: argparse.ArgumentParser, model: type[BaseSettings]) -> None:
    """One flag per settings field, its help naming the environment variable and default."""
    prefix = str(model.model_config.get("env_prefix", ""))
    for name, info in model.model_fields.items():
        flag = "--" + name.replace("_", "-")
        env = f"{prefix}{name}".upper()
        default = info.get_default(call_default_factory=True)
        shown = "none" if default is None else default
        help_text = f"{info.description} (env {env}, default {shown})"
        if info.annotation is bool:
            parser.add_argument(flag, dest=name, action="store_true", default=None, help=help_text)
        else:
            parser.add_argument(flag, dest=name, metavar=name.upper(), default=None, help=help_text)


def settings_from(args: argparse.Namespace, model: type[BaseSettings]) -> Any:
    given = {
        name: getattr(args, name)
        for name in model.model_fields
        if getattr(args, name, None) is not None
    }
    try:
        return model(**given)
    except ValidationError as exc:
        raise CliError(_one_line(exc, model, given), status=2) from None


def _one_line(exc: ValidationError, model: type[BaseSettings], given: dict[str, Any]) -> str:
    """Each error named by where its value came from: the flag, or the environment variable."""
    prefix = str(model.model_config.get("env_prefix", ""))
    parts = []
    for loc, message in validation_messages(exc):
        field = ".".join(str(p) for p in loc)
        if not field:
            parts.append(message)
        elif field in given:
            parts.append(f"--{field.replace('_', '-')}: {message}")
        else:
            parts.append(f"{prefix}{field}".upper() + f": {message}")
    return "; ".join(parts)


# --- serve -----------------------------------------------------------------------


async def _serve(settings: Settings) -> None:
    from mock_qrm.app import create_app
    from mock_qrm.server.store.db import StoreError
    from mock_qrm.serving import ServeError, serve, settle_heap, stop_on_signals

    try:
        running = await serve(create_app(settings), settings.host, settings.port)
    except (StoreError, ServeError) as exc:
        raise CliError(str(exc)) from None
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
        try:
            await stop.wait()
        finally:
            _say("mock-qrm stopping: finishing attempts in flight")
    finally:
        await running.close()


def _say(line: str) -> None:
    """A line on stdout; a reader that has gone (`| head -1`) must not stop the server."""
    try:
        print(line, flush=True)
    except OSError:  # BrokenPipeError, or a terminal that has closed
        _silence_stdout()


def _silence_stdout() -> None:
    """What is still buffered, and every later line, goes nowhere instead of failing again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    with contextlib.suppress(OSError, ValueError):  # ValueError: stdout is not a file
        os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def cmd_serve(args: argparse.Namespace) -> None:
    settings: Settings = settings_from(args, Settings)
    asyncio.run(_serve(settings))


def cmd_receiver(args: argparse.Namespace) -> None:
    from mock_qrm.receiver import ReceiverSettings, run_receiver

    settings: ReceiverSettings = settings_from(args, ReceiverSettings)
    run_receiver(settings)


# --- the parser ---------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line pointing at --help, not the usage text."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def _parse_optional(self, arg_string: str) -> Any:
        # A dash and a digit is a value, never a flag (none of ours is one): `--rate-limit
        # -1/hour` gets the rate limit's own message, not "expected one argument".
        if len(arg_string) > 1 and arg_string[0] == "-" and arg_string[1].isdigit():
            return None
        return super()._parse_optional(arg_string)


def build_parser() -> argparse.ArgumentParser:
    from mock_qrm.checkreceiver.command import add_check_receiver_command
    from mock_qrm.clientcli import add_client_commands
    from mock_qrm.receiver import ReceiverSettings

    parser = _Parser(
        prog=PROG,
        description="A local stand-in for Inspectorio QRM's reports API and webhooks.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = commands.add_parser(
        "serve", help="run the mock QRM server", description="Run the mock QRM server."
    )
    add_settings_flags(serve, Settings)
    serve.set_defaults(run=cmd_serve)

    receiver = commands.add_parser(
        "receiver",
        help="run the fault-injecting webhook receiver",
        description="Run a webhook receiver whose behaviour is chosen by path: /ok, "
        "/status/{code}, /delay/{seconds}, /flaky/{n}, /reset, /hang, /redirect, "
        "/auth/{user}/{password}; GET /_received lists what arrived.",
    )
    add_settings_flags(receiver, ReceiverSettings)
    receiver.set_defaults(run=cmd_receiver)

    add_client_commands(commands)
    add_check_receiver_command(commands)

    completion = commands.add_parser(
        "completion",
        help="print shell completion for bash or zsh",
        description='Shell completion: eval "$(mock-qrm completion bash)" in ~/.bashrc'
        " (or zsh in ~/.zshrc).",
    )
    completion.add_argument("shell", choices=["bash", "zsh"])
    completion.set_defaults(run=lambda a: print(_completion(parser, a.shell), end=""))
    return parser


def _completion(parser: argparse.ArgumentParser, shell: str) -> str:
    from mock_qrm.completion import script

    return script(parser, shell)


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    parser = build_parser()
    given = list(sys.argv[1:] if argv is None else argv)
    if given and given[0].split("=", 1)[0] in ("--server", "--api-key", "--json"):
        flag = given[0].split("=", 1)[0]
        parser.error(f"{flag} goes after the command, e.g. mock-qrm webhooks list {flag} ...")
    args = parser.parse_args(given)
    run: Callable[[argparse.Namespace], None] = args.run
    try:
        run(args)
    except CliError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        sys.exit(exc.status)
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:  # the reader stopped early (`| head`): nothing more to say
        _silence_stdout()
        sys.exit(141)  # as if killed by SIGPIPE, like any other command in a pipe
