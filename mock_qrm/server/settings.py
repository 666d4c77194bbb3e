"""Every server setting in one typed object, from flags and `MOCK_QRM_*` variables.

Nothing below the CLI reads the environment: it is handed a `Settings`. What each
setting means is its line in `mock-qrm serve --help` (`mock_qrm/cli/serve.py`, which
a test holds to the same names and defaults as this model).
"""

from __future__ import annotations

import secrets
import ssl
from pathlib import Path
from typing import Any, Self

from platformdirs import user_data_path
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from mock_qrm.contract.rules import has_control
from mock_qrm.server.delivery.tls import TrustError, check_ca_file, receiver_context
from mock_qrm.server.domain.policy import RetryPolicy
from mock_qrm.serving import is_loopback

MEMORY = ":memory:"


def default_db_path() -> Path:
    return user_data_path("mock-qrm", appauthor=False) / "mock-qrm.sqlite3"


class Settings(BaseSettings):
    """How the mock QRM server runs. Times are in seconds of the documented schedule."""

    model_config = SettingsConfigDict(env_prefix="MOCK_QRM_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8765, ge=0, le=65535)
    db: str = Field(default_factory=lambda: str(default_db_path()))
    api_key: SecretStr | None = None
    time_scale: float = Field(1.0, gt=0, le=10_000)
    timeout: float = Field(60.0, gt=0, le=3600)
    retries: int = Field(3, ge=0, le=100)
    retry_interval: float = Field(60.0, ge=0, le=86_400)
    file_ready_delay: float = Field(5.0, ge=0, le=86_400)
    concurrency: int = Field(256, ge=1, le=10_000)
    webhook_concurrency: int = Field(64, ge=1, le=10_000)
    manual_clock: bool = False
    seed: int = 0
    seed_reports: int = Field(40, ge=0, le=100_000)
    shutdown_grace: float = Field(5.0, ge=0, le=600)
    feed_buffer: int = Field(10_000, ge=10, le=1_000_000)
    ca_file: str | None = None
    """A PEM file of certificates to trust for `https` webhooks, besides the system's."""
    insecure_receivers: bool = False
    """Do not check `https` webhooks' certificates at all."""

    @field_validator("ca_file")
    @classmethod
    def _ca_file(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        try:
            return check_ca_file(value)
        except TrustError as exc:
            raise ValueError(f"{value}: {exc}") from None

    @model_validator(mode="after")
    def _key_off_loopback(self) -> Self:
        if self.api_key is None and not is_loopback(self.host):
            raise ValueError(
                f"refusing to listen on {self.host} without an API key: "
                "pass --api-key (or MOCK_QRM_API_KEY), or bind to 127.0.0.1"
            )
        if self.api_key is not None and not self.api_key.get_secret_value():
            raise ValueError("the API key must not be empty")
        if self.api_key is not None and has_control(self.api_key.get_secret_value()):
            raise ValueError(
                "--api-key (or MOCK_QRM_API_KEY) must not contain control characters"
                " (a newline, ...)"
            )
        return self

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            timeout=self.timeout / self.time_scale,
            retries=self.retries,
            retry_interval=self.retry_interval / self.time_scale,
            time_scale=self.time_scale,
        )

    @property
    def scaled_file_ready_delay(self) -> float:
        return self.file_ready_delay / self.time_scale

    def receiver_tls(self) -> ssl.SSLContext:
        """The context every `https` webhook is checked with (SPEC 9.7). Some 50 ms to make
        (the system's CAs): the sender makes it when it first meets an `https` URL."""
        return receiver_context(self.ca_file, insecure=self.insecure_receivers)

    @property
    def api_key_value(self) -> str | None:
        return None if self.api_key is None else self.api_key.get_secret_value()

    @classmethod
    def isolated(cls, **overrides: Any) -> Settings:
        """Settings for a throw-away server, from what is given only, never `MOCK_QRM_*`.

        Defaults: loopback, a free port, `:memory:`, a manual clock, 5 seeded reports,
        a random API key, no grace at shutdown. A test server must not change because
        the developer's shell exports MOCK_QRM_PORT, and a typo (`retrys=1`) must not
        pass unnoticed: unknown names are refused.
        """
        unknown = sorted(set(overrides) - set(cls.model_fields))
        if unknown:
            known = ", ".join(sorted(cls.model_fields))
            raise TypeError(f"unknown mock_qrm setting(s) {', '.join(unknown)}; known: {known}")
        values: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": 0,
            "db": MEMORY,
            "manual_clock": True,
            "seed_reports": 5,
            "api_key": secrets.token_urlsafe(16),
            "shutdown_grace": 0.0,  # a throw-away server: attempts in flight are of no interest
        }
        values.update(overrides)
        return _Isolated(**values)


class _Isolated(Settings):
    """`Settings` that read only what they are given (see `Settings.isolated`)."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)
