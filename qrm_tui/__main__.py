"""`qrm-tui`: flags and environment → where the data comes from → the app.

With no --server, the app embeds a mock QRM server (state in the user's data
folder, settings from the `MOCK_QRM_*` variables like `mock-qrm serve`), started
in the state of a scenario file with --config (or `MOCK_QRM_CONFIG`), as `mock-qrm
serve --config` starts; with --server, --config applies the file to that server.
With --demo, the embedded server gets its own database and a living workload.
With --web, browsers get the app instead of this terminal (see `qrm_tui.web`).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from mock_qrm import __version__
from mock_qrm.client.settings import ClientSettings, ClientSettingsError
from mock_qrm.contract.rules import check_url

if TYPE_CHECKING:
    from mock_qrm.app import Scenario
    from qrm_tui.app import Target
    from qrm_tui.demo import DemoLock
    from qrm_tui.web import WebSettings

PROG = "qrm-tui"
SCREENS = ("webhooks", "deliveries", "reports", "faults")
CONFIG_ENV = "MOCK_QRM_CONFIG"
"""Textual, the server and pydantic are imported once the flags are read: `qrm-tui
--version` and a bad flag answer at once."""


class _Parser(argparse.ArgumentParser):
    """A usage error is one line, `qrm-tui: error: ...`, pointing at --help."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{PROG}: error: {message} (see {PROG} --help)\n")


def _server_url(value: str) -> str:
    try:
        return check_url(value).rstrip("/")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r}: {exc}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="A terminal app for the mock QRM: manage webhooks, watch deliveries. "
        "With no --server it runs its own mock server.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--server",
        metavar="URL",
        type=_server_url,
        help="a running mock-qrm server, e.g. http://127.0.0.1:8765 "
        "(env QRM_TUI_SERVER or MOCK_QRM_SERVER; default: embed one)",
    )
    parser.add_argument(
        "--api-key",
        metavar="KEY",
        help="the server's API key, if it has one (env QRM_TUI_API_KEY or MOCK_QRM_API_KEY)",
    )
    parser.add_argument(
        "--config",
        metavar="FILE.toml",
        help="a scenario file (see docs/scenarios.md): the embedded server starts in the state it"
        " declares, as `mock-qrm serve --config` does (env MOCK_QRM_CONFIG); with --server, its"
        " webhooks and faults are applied to that server",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="a living demo: an embedded server on its own database (wiped at each start), "
        "a fault-injecting receiver, webhooks that succeed, flake, time out and fail, "
        "a report upload every few seconds, and time sped up 20 times",
    )
    parser.add_argument(
        "--screen",
        choices=SCREENS,
        help="open on this screen (default: webhooks; deliveries with --demo)",
    )
    web = parser.add_argument_group(
        "in a browser",
        "--web serves the app to browsers (textual-serve): every tab is its own session, "
        "all on the same server (one embedded server shared by every tab when --server is absent)",
    )
    web.add_argument("--web", action="store_true", help="serve the app to browsers")
    web.add_argument(
        "--web-host", metavar="HOST", default="127.0.0.1", help="address (default 127.0.0.1)"
    )
    web.add_argument("--web-port", metavar="PORT", type=int, default=8000, help="(default 8000)")
    web.add_argument(
        "--web-password",
        metavar="PASSWORD",
        help="asked by the browser (HTTP basic auth, any user name); required off loopback "
        "(env QRM_TUI_WEB_PASSWORD)",
    )
    return parser


def web_settings(
    parser: argparse.ArgumentParser, args: argparse.Namespace, environ: Mapping[str, str]
) -> WebSettings:
    """The --web flags as one object; a refusal (no password off loopback) is one line."""
    from pydantic import ValidationError

    from mock_qrm.contract.errors import validation_messages
    from qrm_tui.web import PASSWORD_ENV, WebSettings  # textual-serve: only with --web

    password = args.web_password or environ.get(PASSWORD_ENV) or None
    try:
        return WebSettings(host=args.web_host, port=args.web_port, password=password)
    except ValidationError as exc:
        reasons = "; ".join(
            f"--web-{loc[0]}: {msg}" if loc else msg for loc, msg in validation_messages(exc)
        )
        parser.exit(2, f"{PROG}: error: {reasons}\n")


def run_web_app(
    parser: argparse.ArgumentParser, args: argparse.Namespace, environ: Mapping[str, str]
) -> None:
    import asyncio

    from qrm_tui.web import WebError, run_web

    settings = web_settings(parser, args, environ)
    target = resolve_target(parser, args, environ)
    lock = prepare_demo(parser, target)  # --web --demo: one demo, watched from every tab
    try:
        asyncio.run(
            run_web(
                settings,
                server=target.server,
                api_key=target.api_key,
                embedded=target.embedded,
                demo=target.demo,
                scenario=target.scenario,
            )
        )
    except WebError as exc:
        parser.exit(1, f"{PROG}: error: {exc}\n")
    finally:
        if lock is not None:
            lock.release()


def resolve_target(
    parser: argparse.ArgumentParser, args: argparse.Namespace, environ: Mapping[str, str]
) -> Target:
    """Flags win over the environment; no server anywhere means an embedded one."""
    from pydantic import SecretStr, ValidationError

    from mock_qrm.app import Settings
    from mock_qrm.contract.errors import validation_messages
    from qrm_tui.app import Target
    from qrm_tui.demo import DemoOptions, demo_db_path, demo_settings

    if args.demo and args.server is not None:
        parser.error("--demo runs its own server: it cannot be combined with --server")
    if args.demo and args.config is not None:
        parser.error("--demo declares its own webhooks: it cannot be combined with --config")
    given = {k: v for k in ("server", "api_key") if (v := getattr(args, k)) is not None}
    try:
        client = ClientSettings.resolve(given, environ)
    except ClientSettingsError as exc:
        parser.error(str(exc))
    server, api_key = client.server, client.api_key
    if server is not None and not args.demo:
        if args.config is not None:
            apply_to_server(parser, load_scenario(parser, args.config, environ), server, api_key)
        return Target(server=server, api_key=api_key)
    scenario = None
    if not args.demo:
        scenario = load_scenario(parser, args.config or environ.get(CONFIG_ENV), environ)
    # Loopback and any free port; every other setting from the scenario, then MOCK_QRM_*,
    # like `mock-qrm serve`.
    values: dict[str, Any] = {**(scenario.server if scenario else {})}
    values.update(host="127.0.0.1", port=0)
    if args.api_key is not None:
        values["api_key"] = SecretStr(args.api_key)
    try:
        settings = Settings(**values)
    except ValidationError as exc:
        details = "; ".join(
            _where_from(scenario, values, loc) + f": {message}"
            for loc, message in validation_messages(exc)
        )
        parser.error(f"the embedded server's settings are not valid: {details}")
    if args.demo:
        return Target(embedded=demo_settings(settings, demo_db_path()), demo=DemoOptions())
    return Target(embedded=settings, scenario=scenario)


def _where_from(
    scenario: Scenario | None, values: dict[str, object], loc: tuple[int | str, ...]
) -> str:
    """A setting's source: the scenario file's line, the flag, or the environment variable."""
    name = "_".join(str(p) for p in loc)
    if (
        scenario is not None
        and name in scenario.server
        and values.get(name) is scenario.server[name]
    ):
        return f"{scenario.source}:{scenario.line('server.' + name)}: server.{name}"
    if name == "api_key" and name in values:
        return "--api-key"
    return f"MOCK_QRM_{name.upper()}"


def load_scenario(
    parser: argparse.ArgumentParser, path: str | None, environ: Mapping[str, str]
) -> Scenario | None:
    """The scenario file, if one is named; its problems, every one, each a usage error line."""
    if not path:
        return None
    from mock_qrm.app import ScenarioError, read_scenario

    try:
        return read_scenario(path, environ)
    except ScenarioError as exc:
        _problems(parser, exc.source, exc.lines)


def _problems(parser: argparse.ArgumentParser, source: str, lines: list[str]) -> NoReturn:
    said = f"{source}: {len(lines)} problem{'' if len(lines) == 1 else 's'}; nothing was changed"
    parser.exit(2, "".join(f"{PROG}: error: {line}\n" for line in (*lines, said)))


def apply_to_server(
    parser: argparse.ArgumentParser, scenario: Scenario | None, server: str, api_key: str | None
) -> None:
    """`POST /_mock/config` with the scenario, before the app starts: refused, nothing runs."""
    if scenario is None:
        return
    from mock_qrm.client import calls
    from mock_qrm.client.blocking import BlockingClient
    from mock_qrm.client.errors import QrmUnavailable
    from mock_qrm.contract.errors import QrmApiError

    body = scenario.body().model_dump(mode="json", by_alias=True)
    try:
        with BlockingClient(server, api_key) as client:
            client.data(calls.apply_scenario(body))
    except QrmApiError as exc:
        if exc.status in (409, 422) and exc.errors:
            _problems(parser, scenario.source, scenario.refused(exc.errors).lines)
        parser.exit(1, f"{PROG}: error: {server} refused the scenario: {exc.describe()}\n")
    except QrmUnavailable as exc:
        parser.exit(1, f"{PROG}: error: {exc}\n")


def prepare_demo(parser: argparse.ArgumentParser, target: Target) -> DemoLock | None:
    """Take the demo database for this process and wipe it; a second demo is a usage error."""
    from pathlib import Path

    from qrm_tui.demo import DemoBusy, DemoLock, wipe

    if target.demo is None or target.embedded is None:
        return None
    db = Path(target.embedded.db)
    lock = DemoLock(db)
    try:
        lock.acquire()
        wipe(db)
    except DemoBusy as exc:
        parser.exit(1, f"{PROG}: error: {exc}\n")
    except OSError as exc:
        parser.exit(1, f"{PROG}: error: cannot prepare the demo database {db}: {exc.strerror}\n")
    return lock


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.web:
        run_web_app(parser, args, os.environ)
        return
    import logging

    from textual.logging import TextualHandler

    from qrm_tui.app import QrmTuiApp

    target = resolve_target(parser, args, os.environ)
    lock = prepare_demo(parser, target)
    logging.basicConfig(level=logging.WARNING, handlers=[TextualHandler()], force=True)
    app = QrmTuiApp(target, settle_memory=True, start_mode=args.screen)
    try:
        app.run()
    finally:
        if lock is not None:
            lock.release()
    if app.return_code:
        raise SystemExit(app.return_code)


if __name__ == "__main__":
    main()
