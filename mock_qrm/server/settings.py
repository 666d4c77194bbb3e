"""Every server setting in one typed object, from flags and `MOCK_QRM_*` variables.

Nothing below the CLI reads the environment: it is handed a `Settings`.
"""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path
from typing import Self

from platformdirs import user_data_path
from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from mock_qrm.server.domain.policy import RetryPolicy

MEMORY = ":memory:"


def default_db_path() -> Path:
    return user_data_path("mock-qrm", appauthor=False) / "mock-qrm.sqlite3"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return all(
                ipaddress.ip_address(info[4][0]).is_loopback
                for info in socket.getaddrinfo(host, None)
            )
        except (OSError, ValueError):
            return False


class Settings(BaseSettings):
    """How the mock QRM server runs. Times are in seconds of the documented schedule."""

    model_config = SettingsConfigDict(env_prefix="MOCK_QRM_", extra="ignore")

    host: str = Field("127.0.0.1", description="address to listen on")
    port: int = Field(8765, ge=0, le=65535, description="port to listen on (0: any free port)")
    db: str = Field(
        default_factory=lambda: str(default_db_path()),
        description="SQLite database file, or :memory:",
    )
    api_key: SecretStr | None = Field(
        None, description="require this key in the apiKey header (or a login token)"
    )
    time_scale: float = Field(
        1.0, gt=0, le=10_000, description="divide every interval and timeout by this"
    )
    timeout: float = Field(60.0, gt=0, le=3600, description="seconds a receiver has to answer")
    retries: int = Field(3, ge=0, le=100, description="automatic retries after a failure")
    retry_interval: float = Field(
        60.0, ge=0, le=86_400, description="seconds from a failed attempt's end to its retry"
    )
    file_ready_delay: float = Field(
        5.0, ge=0, le=86_400, description="seconds from upload to report.file_ready"
    )
    concurrency: int = Field(256, ge=1, le=10_000, description="deliveries in flight at once")
    webhook_concurrency: int = Field(
        64, ge=1, le=10_000, description="deliveries in flight at once to one webhook"
    )
    manual_clock: bool = Field(
        False, description="freeze time; move it with POST /_mock/clock/advance"
    )
    seed: int = Field(0, description="seed of the generated reports")
    seed_reports: int = Field(40, ge=0, le=100_000, description="reports created at first start")
    shutdown_grace: float = Field(
        5.0, ge=0, le=600, description="seconds attempts in flight get to finish at shutdown"
    )
    feed_buffer: int = Field(
        10_000, ge=10, le=1_000_000, description="feed frames kept for reconnecting clients"
    )

    @model_validator(mode="after")
    def _key_off_loopback(self) -> Self:
        if self.api_key is None and not is_loopback(self.host):
            raise ValueError(
                f"refusing to listen on {self.host} without an API key: "
                "pass --api-key (or MOCK_QRM_API_KEY), or bind to 127.0.0.1"
            )
        if self.api_key is not None and not self.api_key.get_secret_value():
            raise ValueError("the API key must not be empty")
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

    @property
    def api_key_value(self) -> str | None:
        return None if self.api_key is None else self.api_key.get_secret_value()
