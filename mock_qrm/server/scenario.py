"""Scenario files (SPEC 9.4): the mock's starting state declared in TOML, not scripted.

    [server]                      # any serve setting, by its name
    time_scale = 60

    [[webhooks]]                  # created, or updated to match, by name
    name = "orders"
    url = "http://127.0.0.1:9000/qrm"
    events = ["report.created"]
    basic_auth = { username = "qrm", password = "${ORDERS_PASSWORD}" }

    [[faults]]                    # the fields of POST /_mock/faults
    route = "GET /api/v1/reports/{id}"
    status = 503

A file is read whole and checked whole before anything is written: every problem
is reported at once, each as `FILE:LINE: field: message` (`read_scenario` raises a
`ScenarioError` listing them). What passes is a `Scenario`: its server settings (for
`Settings`, under the flags) and its webhooks and faults as the API's own request
models, which `QrmService.apply_scenario` applies through the registry, as the
routes do.

String values may read `${NAME}` from the environment (an unset NAME is an error
naming it); `$$` is a literal `$`. Relative paths of `db` and `ca_file` are read
from the file's folder.
"""

from __future__ import annotations

import difflib
import inspect
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, get_args

from pydantic import BaseModel, ValidationError
from pydantic.alias_generators import to_snake

from mock_qrm.contract.catalog import EventCatalog
from mock_qrm.contract.errors import validation_messages, worded
from mock_qrm.contract.models import (
    BasicAuthIn,
    FaultSpec,
    RateLimit,
    ScenarioApply,
    WebhookCreate,
)
from mock_qrm.contract.rules import header_problems
from mock_qrm.server.settings import MEMORY, Settings
from mock_qrm.server.toml_lines import Path as KeyPath
from mock_qrm.server.toml_lines import key_lines, line_of

SECTIONS = {"server": "a table: [server]", "webhooks": "[[webhooks]]", "faults": "[[faults]]"}
"""The file's sections, and how each is written."""
PATH_SETTINGS = frozenset({"db", "ca_file"})
"""Settings that name a file: relative to the scenario file's folder."""
NOT_EXPORTED = ("host", "port", "db", "api_key")
"""Where and how a server listens: the export leaves them to whoever serves it."""
_ALIASES = {
    field.alias: name
    for model in (WebhookCreate, FaultSpec, BasicAuthIn, RateLimit)
    for name, field in model.model_fields.items()
    if field.alias and field.alias != name
}
"""The API's camelCase names (`basicAuth`) and the file's (`basic_auth`)."""
M = TypeVar("M", bound=BaseModel)
_VARIABLE = re.compile(r"\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)\}|(\{))")


@dataclass(frozen=True, slots=True)
class Problem:
    line: int | None
    field: str
    message: str


class ScenarioError(Exception):
    """A scenario that does not validate, or cannot apply: every problem, one per line,
    each `FILE:LINE: field: message`."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        self.lines = [_said(source, problem) for problem in problems]
        super().__init__("\n".join(self.lines))


_CONTROL = {code: f"\\x{code:02x}" for code in (*range(0x00, 0x20), *range(0x7F, 0xA0))}
"""A file's keys and text reach a terminal in these lines: their control characters escaped."""


def _said(source: str, problem: Problem) -> str:
    where = source if problem.line is None else f"{source}:{problem.line}"
    field = f"{problem.field}: " if problem.field else ""
    return f"{where}: {field}{problem.message}".translate(_CONTROL)


@dataclass(frozen=True, slots=True)
class Scenario:
    """A scenario file that validated: what `serve --config` starts with."""

    source: str
    """How to name the file in a message: its path as given."""
    server: dict[str, Any]
    """Settings by name, as the file gives them (paths made absolute): flags beat them."""
    webhooks: tuple[WebhookCreate, ...] = ()
    faults: tuple[FaultSpec, ...] = ()
    lines: Mapping[KeyPath, int] = field(default_factory=dict)

    def body(self, *, with_server: bool = True) -> ScenarioApply:
        """As the body of `POST /_mock/config` (and what the in-process port applies)."""
        return ScenarioApply(
            server=dict(self.server) if with_server else {},
            webhooks=list(self.webhooks),
            faults=list(self.faults),
        )

    def line(self, dotted: str) -> int | None:
        """The line of an API error's field (`webhooks.1.url`, `server.time_scale`), or of
        the nearest thing above it in the file."""
        return line_of(self.lines, _path(dotted))

    def refused(self, errors: Mapping[str, list[str]]) -> ScenarioError:
        """A refusal of this scenario (a 422's `errors`) as the file's lines."""
        return ScenarioError(
            self.source,
            [
                Problem(self.line(dotted), _field(_path(dotted)), message)
                for dotted, messages in errors.items()
                for message in messages
            ],
        )


def _path(dotted: str) -> KeyPath:
    """`webhooks.1.basicAuth.password` as the file's path `("webhooks", 1, "basic_auth", ...)`."""
    return tuple(
        int(part) if part.isdigit() else _ALIASES.get(part, part) for part in dotted.split(".")
    )


def _field(path: KeyPath) -> str:
    """A path as a person reads it: `webhooks[1].basic_auth.password`."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


# --- reading a file ------------------------------------------------------------------------


def read_scenario(path: str | Path, environ: Mapping[str, str]) -> Scenario:
    """The scenario in the file at `path`; a `ScenarioError` with every problem if it has any."""
    source = str(path)
    try:
        raw = Path(path).expanduser().read_bytes()
    except OSError as exc:
        raise ScenarioError(
            source, [Problem(None, "", f"cannot read it: {exc.strerror or exc}")]
        ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ScenarioError(source, [Problem(line, "toml", "not UTF-8 text")]) from None
    return parse_scenario(text, source, environ, folder=Path(path).expanduser().resolve().parent)


def parse_scenario(
    text: str, source: str, environ: Mapping[str, str], *, folder: Path | None = None
) -> Scenario:
    """A scenario from TOML text (`source` names it in messages; `folder` anchors relative paths)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(source, [_syntax(exc)]) from None
    reader = _Reader(key_lines(text), environ, folder)
    scenario = reader.scenario(source, data)
    if reader.problems:
        raise ScenarioError(source, sorted(reader.problems, key=lambda p: p.line or 0))
    return scenario


def _syntax(exc: tomllib.TOMLDecodeError) -> Problem:
    """tomllib's message, `Invalid value (at line 4, column 9)`, as a problem on line 4."""
    message = str(exc)
    found = re.search(r"\s*\(at line (\d+), column (\d+)\)$", message)
    if found is None:
        return Problem(None, "toml", message)
    return Problem(int(found[1]), "toml", f"{message[: found.start()]} (column {found[2]})")


class _Reader:
    """Walks the parsed file, collecting every problem rather than stopping at the first."""

    def __init__(
        self, lines: dict[KeyPath, int], environ: Mapping[str, str], folder: Path | None
    ) -> None:
        self.lines = lines
        self.environ = environ
        self.folder = folder
        self.problems: list[Problem] = []
        self._unset: set[KeyPath] = set()
        """Values whose ${NAME} is not set: what they would have been is not judged."""
        self.context = {"event_codes": EventCatalog.load().codes}

    def problem(self, path: KeyPath, message: str) -> None:
        self.problems.append(Problem(line_of(self.lines, path), _field(path), message))

    def invalid(self, path: KeyPath, message: str) -> None:
        """A validation problem, unless it follows from a variable that is not set."""
        if not any(path[: len(unset)] == unset for unset in self._unset):
            self.problem(path, message)

    def scenario(self, source: str, data: dict[str, Any]) -> Scenario:
        data = self.substituted(data, ())
        for name in data:
            if name not in SECTIONS:
                self.problem((name,), unknown_name("section", name, SECTIONS))
        server = data.get("server", {})
        if not isinstance(server, dict):
            self.problem(("server",), f"must be {SECTIONS['server']}")
            server = {}
        webhooks = self.tables("webhooks", data, WebhookCreate)
        self.names_once(webhooks)
        return Scenario(
            source=source,
            server=self.server(server),
            webhooks=tuple(webhook for _, webhook in webhooks),
            faults=tuple(fault for _, fault in self.tables("faults", data, FaultSpec)),
            lines=self.lines,
        )

    # --- ${NAME} -------------------------------------------------------------------------

    def substituted(self, value: Any, path: KeyPath) -> Any:
        if isinstance(value, str):
            return self.variables(value, path)
        if isinstance(value, dict):
            return {key: self.substituted(item, (*path, key)) for key, item in value.items()}
        if isinstance(value, list):
            return [self.substituted(item, (*path, i)) for i, item in enumerate(value)]
        return value

    def variables(self, value: str, path: KeyPath) -> str:
        def one(match: re.Match[str]) -> str:
            dollar, name, brace = match.groups()
            if dollar:
                return "$"
            if brace:
                self.problem(path, "`${` must start ${NAME} (write $${ for a literal ${)")
                return match[0]
            if name not in self.environ:
                self.problem(path, f"${{{name}}} is not set in the environment")
                self._unset.add(path)
                return ""
            return self.environ[name]

        return _VARIABLE.sub(one, value)

    # --- [server] ------------------------------------------------------------------------

    def server(self, table: dict[str, Any]) -> dict[str, Any]:
        known = Settings.model_fields
        values: dict[str, Any] = {}
        for name, value in table.items():
            if name not in known:
                self.problem(("server", name), unknown_name("setting", name, known))
            elif name in PATH_SETTINGS and isinstance(value, str):
                values[name] = self.anchored(name, value)
            else:
                values[name] = value
        try:  # each value as `Settings` takes it; how they combine is checked with the flags
            Settings.isolated(**values)
        except ValidationError as exc:
            for loc, message in validation_messages(exc):
                if loc and loc[0] in values:
                    self.invalid(("server", *loc), message)
        return values

    def anchored(self, name: str, value: str) -> str:
        if self.folder is None or not value or (name == "db" and value == MEMORY):
            return value
        path = Path(value).expanduser()
        return str(path if path.is_absolute() else self.folder / path)

    # --- [[webhooks]] and [[faults]] -------------------------------------------------------

    def tables(self, section: str, data: dict[str, Any], model: type[M]) -> list[tuple[int, M]]:
        """Each table of the section that validates as `model`, with its index."""
        tables = data.get(section, [])
        if not isinstance(tables, list):
            self.problem((section,), f"must be an array of tables: write {SECTIONS[section]}")
            return []
        made: list[tuple[int, M]] = []
        for index, table in enumerate(tables):
            path: KeyPath = (section, index)
            if not isinstance(table, dict):
                self.problem(path, f"must be a table: write {SECTIONS[section]}")
                continue
            known = set(model.model_fields)
            for name in table:
                if name not in known:
                    self.problem((*path, name), unknown_name("field", name, known))
            given = {name: value for name, value in table.items() if name in known}
            try:
                made.append((index, model.model_validate(given, context=self.context)))
            except ValidationError as exc:
                for loc, message in validation_messages(exc, _worded_for(model)):
                    where = tuple(_ALIASES.get(p, p) if isinstance(p, str) else p for p in loc)
                    self.invalid((*path, *where), _file_words(message))
                continue
            if isinstance(made[-1][1], WebhookCreate):
                webhook = made[-1][1]
                names = webhook.headers
                for key, messages in header_problems(names, webhook.basic_auth is not None).items():
                    for message in messages:
                        self.problem((*path, "headers", key.removeprefix("headers.")), message)
        return made

    def names_once(self, webhooks: list[tuple[int, WebhookCreate]]) -> None:
        """A name says which webhook to create or update: one table per name."""
        first: dict[str, int] = {}
        for index, webhook in webhooks:
            earlier = first.setdefault(webhook.name, index)
            if earlier != index:
                line = line_of(self.lines, ("webhooks", earlier, "name"))
                self.problem(
                    ("webhooks", index, "name"),
                    f"{webhook.name!r} is declared twice (first at line {line}): a name says"
                    " which webhook to create or update",
                )


def unknown_name(kind: str, name: str, known: Mapping[str, Any] | set[str]) -> str:
    """`unknown field (did you mean events?)`, or the known names when nothing is close."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    camel = to_snake(name)
    if not close and camel in known:
        close = [camel]
    if close:
        return f"unknown {kind} (did you mean {close[0]}?)"
    return f"unknown {kind}; known: {', '.join(sorted(known))}"


def _worded_for(model: type[BaseModel]) -> Any:
    """Pydantic's words, but an unknown nested field named like a top-level one."""

    def word(error: Any) -> str:
        if error["type"] == "extra_forbidden":
            fields = _fields_at(model, tuple(error["loc"]))
            name = str(error["loc"][-1])
            return unknown_name("field", name, set(fields)) if fields else "unknown field"
        return worded(error)

    return word


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The field names of the model that holds `loc`'s last part (`basic_auth.user`: BasicAuthIn's)."""
    current = model
    for part in loc[:-1]:
        name = _ALIASES.get(part, part)
        info = current.model_fields.get(name)
        if info is None:
            return []
        inner = [
            arg
            for arg in (info.annotation, *get_args(info.annotation))
            if inspect.isclass(arg) and issubclass(arg, BaseModel)
        ]
        if not inner:
            return []
        current = inner[0]
    return list(current.model_fields)


def _file_words(message: str) -> str:
    """A message in the file's words: `delay_ms`, not the API's `delayMs`."""
    for alias, name in _ALIASES.items():
        message = message.replace(alias, name)
    return message


def exported_settings(settings: Settings) -> dict[str, Any]:
    """The settings an export declares: all but where and how the server listens; none unset."""
    values = settings.model_dump(exclude=set(NOT_EXPORTED))
    return {name: value for name, value in values.items() if value is not None}
