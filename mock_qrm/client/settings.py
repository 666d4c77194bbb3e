"""Where the server is and its key, for every client: the CLI, the TUI, check-receiver.

A named tuple read from flags and the environment by hand, not a settings
library (nor a dataclass, whose import takes longer than the rest of this):
a command that makes one call must start in milliseconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from mock_qrm.contract.rules import check_url, has_control

DEFAULT_SERVER = "http://127.0.0.1:8765"

SERVER_VARIABLES = ("QRM_TUI_SERVER", "MOCK_QRM_SERVER")
API_KEY_VARIABLES = ("QRM_TUI_API_KEY", "MOCK_QRM_API_KEY")
"""Read in this order: the TUI's own variable first."""


class ClientSettingsError(ValueError):
    """A setting that cannot be used; `source` names the flag or variable to fix."""

    def __init__(self, source: str, message: str) -> None:
        super().__init__(f"{source}: {message}")
        self.source = source
        self.message = message


class ClientSettings(NamedTuple):
    """No server anywhere is `None`: the CLI then uses the default address, the TUI
    embeds a server of its own."""

    server: str | None = None
    api_key: str | None = None

    @property
    def url(self) -> str:
        return self.server or DEFAULT_SERVER

    @classmethod
    def resolve(cls, given: Mapping[str, str | None], environ: Mapping[str, str]) -> ClientSettings:
        """Flags (`given`: `server`, `api_key`) over the environment (`QRM_TUI_*`, then `MOCK_QRM_*`).

        Blank values count as absent. Raises `ClientSettingsError` naming where a bad value came from.
        """
        server, server_from = _first(given.get("server"), "--server", SERVER_VARIABLES, environ)
        api_key, key_from = _first(given.get("api_key"), "--api-key", API_KEY_VARIABLES, environ)
        if api_key is not None and has_control(api_key):
            raise ClientSettingsError(
                key_from, "the API key must not contain control characters (a newline, a tab, ...)"
            )
        if server is not None:
            try:
                server = check_url(server).rstrip("/")
            except ValueError as exc:
                raise ClientSettingsError(server_from, str(exc)) from None
        return cls(server=server, api_key=api_key)


def _first(
    flag_value: str | None, flag: str, variables: tuple[str, ...], environ: Mapping[str, str]
) -> tuple[str | None, str]:
    """The value and where it came from: the flag, else the first variable that is set."""
    if flag_value:
        return flag_value, flag
    for name in variables:
        if environ.get(name):
            return environ[name], name
    return None, flag
