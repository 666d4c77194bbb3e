"""What the feed worker tells the app, as typed messages handled with `@on`."""

from __future__ import annotations

from typing import Literal

from textual.message import Message

from mock_qrm.contract.models import Health, Webhook

ConnectionState = Literal["starting", "connected", "reconnecting", "failed"]


class ConnectionChanged(Message):
    """The feed connected or broke; `detail` is the server address or why it broke."""

    def __init__(self, state: ConnectionState, detail: str = "") -> None:
        super().__init__()
        self.state: ConnectionState = state
        self.detail = detail


class WebhooksLoaded(Message):
    """The whole registry and the server's health, read over REST after a fresh
    connection or a `resync`: everything else a screen shows must be reloaded too."""

    def __init__(self, webhooks: list[Webhook], health: Health) -> None:
        super().__init__()
        self.webhooks = webhooks
        self.health = health


class WebhookChanged(Message):
    """A `webhook` frame: `action` is created, updated or deleted."""

    def __init__(self, action: str, webhook: Webhook) -> None:
        super().__init__()
        self.action = action
        self.webhook = webhook
