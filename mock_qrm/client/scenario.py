"""A scenario document (`GET /_mock/config`'s data) as the TOML file `serve --config` reads.

Standard library and `tomli_w` only: `mock-qrm export-config` makes one call and must
start in milliseconds. The file's names are the settings' and the API's fields in
snake_case (`basic_auth`, `delay_ms`); every `$` is written `$$`, as the file reads it
back; a password the server did not show becomes a `${QRM_WEBHOOK_<NAME>_PASSWORD}`
placeholder, and the header lists the variables to set.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import tomli_w

PASSWORD_PREFIX = "QRM_WEBHOOK_"
PASSWORD_SUFFIX = "_PASSWORD"
_SNAKE = re.compile(r"(?<!^)(?=[A-Z])")
_NOT_WORD = re.compile(r"[^A-Z0-9]+")
WEBHOOK_FIELDS = ("name", "url", "events", "active", "basic_auth", "headers", "rate_limit")
FAULT_FIELDS = ("route", "status", "delay_ms", "retry_after", "reset", "times")


def snake(name: str) -> str:
    return _SNAKE.sub("_", name).lower()


def password_variable(name: str, taken: set[str]) -> str:
    """`QRM_WEBHOOK_ORDERS_PASSWORD` for a webhook named `orders`: distinct for each webhook."""
    word = _NOT_WORD.sub("_", name.upper()).strip("_") or "WEBHOOK"
    variable = f"{PASSWORD_PREFIX}{word}{PASSWORD_SUFFIX}"
    number = 2
    while variable in taken:
        variable = f"{PASSWORD_PREFIX}{word}_{number}{PASSWORD_SUFFIX}"
        number += 1
    taken.add(variable)
    return variable


def _escaped(value: Any) -> Any:
    """Every string as the file must write it for `${...}` to read it back: `$` as `$$`."""
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, Mapping):
        return {key: _escaped(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_escaped(item) for item in value]
    return value


def scenario_file(document: Mapping[str, Any], exported_from: str = "") -> tuple[str, list[str]]:
    """The document as a scenario file's text, and the variables it reads passwords from."""
    variables: list[str] = []
    taken: set[str] = set()
    data: dict[str, Any] = {}
    server = {
        name: value for name, value in (document.get("server") or {}).items() if value is not None
    }
    if server:
        data["server"] = _escaped(server)
    webhooks = []
    for webhook in document.get("webhooks") or ():
        fields = {snake(name): value for name, value in webhook.items()}
        table: dict[str, Any] = {}
        for name in WEBHOOK_FIELDS:
            value = fields.get(name)
            if value is None or (name == "headers" and not value):
                continue
            if name == "basic_auth":
                password = value.get("password")
                if password is None:
                    variable = password_variable(fields["name"], taken)
                    variables.append(variable)
                    placeholder = "${" + variable + "}"
                else:
                    placeholder = _escaped(password)
                table[name] = {"username": _escaped(value["username"]), "password": placeholder}
            elif name == "rate_limit":
                table[name] = {"limit": value["limit"], "period": value["period"]}
            else:
                table[name] = _escaped(value)
        webhooks.append(table)
    if webhooks:
        data["webhooks"] = webhooks
    faults = []
    for fault in document.get("faults") or ():
        fields = {snake(name): value for name, value in fault.items()}
        faults.append(
            {
                name: _escaped(fields[name])
                for name in FAULT_FIELDS
                if fields.get(name) is not None and not (name == "reset" and fields[name] is False)
            }
        )
    if faults:
        data["faults"] = faults
    return _header(exported_from, variables) + tomli_w.dumps(data), variables


def _header(exported_from: str, variables: list[str]) -> str:
    lines = [
        "# A mock-qrm scenario" + (f", exported from {exported_from}" if exported_from else "")
    ]
    lines.append(
        "# Start a mock in this state: mock-qrm serve --config THIS_FILE (docs/scenarios.md)"
    )
    if variables:
        lines.append("# Passwords are read from the environment; set " + ", ".join(variables))
    return "\n".join(lines) + "\n\n"
