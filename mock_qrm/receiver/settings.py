"""Where the fault-injecting receiver listens, from flags or `MOCK_QRM_RECEIVER_*` variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ReceiverSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MOCK_QRM_RECEIVER_")

    host: str = Field(
        default="127.0.0.1",
        min_length=1,
        description=(
            "Address to listen on. Loopback by default; any other address is allowed "
            "(with a warning), since anyone who can reach it can read what it received."
        ),
    )
    port: int = Field(
        default=8766,
        ge=0,
        le=65535,
        description="TCP port to listen on; 0 picks a free port and prints it.",
    )
