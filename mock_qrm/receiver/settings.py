"""Where the fault-injecting receiver listens, from flags or `MOCK_QRM_RECEIVER_*` variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ReceiverSettings(BaseSettings):
    """What each setting means is its line in `mock-qrm receiver --help` (`mock_qrm/cli/serve.py`)."""

    model_config = SettingsConfigDict(env_prefix="MOCK_QRM_RECEIVER_")

    host: str = Field(default="127.0.0.1", min_length=1)
    port: int = Field(default=8766, ge=0, le=65535)
