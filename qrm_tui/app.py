"""The App: modes, global bindings, connection state and the live feed. Thin on purpose.

Screens read the registry from `QrmTuiApp.webhooks` (a reactive the feed keeps
current) and call the server through `QrmTuiApp.client`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from textual import on, work
from textual.app import App
from textual.binding import Binding
from textual.reactive import reactive, var
from textual.screen import ModalScreen
from textual.worker import Worker

from mock_qrm.domain.models import EventComponent, Webhook
from mock_qrm.settings import Settings
from qrm_tui.client import (
    BACKOFF,
    FeedConnected,
    FeedLost,
    LiveFeed,
    QrmApiError,
    QrmUnavailable,
    StartupProblem,
    TuiClient,
    describe_error,
    with_delivery,
)
from qrm_tui.commands import QrmCommands
from qrm_tui.embedded import EmbeddedError, EmbeddedServer
from qrm_tui.failures import report_worker_failure
from qrm_tui.messages import (
    ConnectionChanged,
    ConnectionState,
    DeliveryChanged,
    WebhookChanged,
    WebhooksLoaded,
)
from qrm_tui.screens.deliveries import DeliveriesScreen
from qrm_tui.screens.errors import StartupErrorScreen
from qrm_tui.screens.help import HelpScreen, help_rows
from qrm_tui.screens.reports import ReportsScreen
from qrm_tui.screens.webhooks import WebhooksScreen


@dataclass(frozen=True, slots=True)
class Target:
    """Where the data comes from: a running server, or one to embed (`embedded` settings)."""

    server: str | None = None
    api_key: str | None = None
    embedded: Settings | None = None


class QrmTuiApp(App[None]):
    CSS_PATH = Path(__file__).with_name("qrm.tcss")
    TITLE = "qrm-tui"
    MODES = {"webhooks": WebhooksScreen, "deliveries": DeliveriesScreen, "reports": ReportsScreen}
    DEFAULT_MODE = "webhooks"
    COMMANDS = App.COMMANDS | {QrmCommands}
    BINDINGS = [
        Binding("1", "switch_mode('webhooks')", "Webhooks", show=False, tooltip="Show webhooks"),
        Binding(
            "2", "switch_mode('deliveries')", "Deliveries", show=False, tooltip="Show deliveries"
        ),
        Binding("3", "switch_mode('reports')", "Reports", show=False, tooltip="Show reports"),
        Binding("question_mark", "help", "Help", key_display="?", tooltip="List every key"),
        Binding("q", "quit", "Quit", tooltip="Quit qrm-tui"),
    ]

    connection: reactive[ConnectionState] = reactive("starting")
    connection_detail = reactive("")
    server_label = reactive("")
    time_scale = reactive(1.0)
    webhooks: var[dict[int, Webhook]] = var(dict, always_update=True)
    """The registry as last read or announced, by id; screens render it."""
    loaded = var(False)
    """True once the registry was read at least once."""

    def __init__(
        self,
        target: Target,
        *,
        server_label: str | None = None,
        feed_backoff: Sequence[float] = BACKOFF,
    ) -> None:
        super().__init__()
        self.target = target
        self.embedded = None if target.embedded is None else EmbeddedServer(target.embedded)
        api_key = target.api_key
        if target.embedded is not None:
            api_key = target.embedded.api_key_value
        # For an embedded server the address is known once it listens (see `start`).
        self.client = TuiClient(target.server or "http://127.0.0.1", api_key)
        self.components: list[EventComponent] = []
        self._fixed_label = server_label
        self._feed_backoff = tuple(feed_backoff)
        self.server_label = server_label or target.server or "embedded server"

    # --- start-up and shutdown ----------------------------------------------------

    def on_mount(self) -> None:
        self.start()

    @work(group="startup", exclusive=True, exit_on_error=False)
    async def start(self) -> None:
        """Start the embedded server if any, check the server, then follow its feed."""
        self.connection = "starting"
        try:
            if self.embedded is not None:
                try:
                    self.client.base_url = await self.embedded.start()
                except EmbeddedError as exc:
                    raise StartupProblem(
                        f"The embedded server could not start: {exc}.",
                        "Point MOCK_QRM_DB at a writable file, or connect to a running "
                        "server with --server URL.",
                    ) from None
                self.server_label = self._fixed_label or f"{self.client.base_url} (embedded)"
            info = await self.client.probe(embedded=self.embedded is not None)
        except StartupProblem as problem:
            self.connection = "failed"
            self.connection_detail = problem.message
            await self.push_screen(StartupErrorScreen(problem))
            return
        self.components = info.components
        self.time_scale = info.health.time_scale
        self.follow_feed()

    def retry_start(self) -> None:
        if isinstance(self.screen, StartupErrorScreen):
            self.pop_screen()
        self.start()

    async def on_unmount(self) -> None:
        self.workers.cancel_group(self, "feed")
        await self.client.close()
        if self.embedded is not None:
            await self.embedded.stop()

    # --- the live feed ------------------------------------------------------------

    @work(group="feed", exclusive=True, exit_on_error=False)
    async def follow_feed(self) -> None:
        """One long-lived worker: feed frames become messages; a fresh start reloads over REST."""
        try:
            await self._follow(self.client.live_feed(self._feed_backoff))
        except QrmApiError as exc:  # the key stopped working: nothing to retry
            self.post_message(ConnectionChanged("failed", describe_error(exc)))
            raise

    async def _follow(self, feed: LiveFeed) -> None:
        async for event in feed.events():
            if isinstance(event, FeedLost):
                self.post_message(ConnectionChanged("reconnecting", event.reason))
                continue
            if isinstance(event, FeedConnected):
                self.post_message(ConnectionChanged("connected", event.server))
                if event.resumed:
                    continue
            elif event.type == "webhook" and event.webhook is not None:
                self.post_message(WebhookChanged(event.action or "updated", event.webhook))
                continue
            elif event.type == "delivery" and event.delivery is not None:
                self.post_message(DeliveryChanged(event.delivery))
                continue
            elif event.type != "resync":
                continue
            try:
                webhooks = await self.client.webhooks()
                health = await self.client.health()
            except QrmUnavailable:
                feed.forget()  # the next connection starts afresh, and reloads
                continue
            self.post_message(WebhooksLoaded(webhooks, health.time_scale))

    @on(ConnectionChanged)
    def _connection_changed(self, message: ConnectionChanged) -> None:
        was = self.connection
        self.connection = message.state
        self.connection_detail = message.detail
        if message.state == "reconnecting" and was == "connected":
            self.notify(
                f"Lost the server: {message.detail}. Reconnecting…",
                title="Connection lost",
                severity="warning",
                markup=False,
            )
        elif message.state == "connected" and was == "reconnecting":
            self.notify(f"Reconnected to {self.server_label}.", title="Connected", markup=False)

    @on(WebhooksLoaded)
    def _webhooks_loaded(self, message: WebhooksLoaded) -> None:
        self.time_scale = message.time_scale
        self.webhooks = {webhook.id: webhook for webhook in message.webhooks}
        self.loaded = True

    @on(WebhookChanged)
    def _webhook_changed(self, message: WebhookChanged) -> None:
        if message.action == "deleted":
            self.forget_webhook(message.webhook.id)
        else:
            self.apply_webhook(message.webhook)

    @on(DeliveryChanged)
    def _delivery_changed(self, message: DeliveryChanged) -> None:
        webhook = self.webhooks.get(message.delivery.webhook_id)
        if webhook is None:
            return
        updated = with_delivery(webhook, message.delivery)
        if updated is not webhook:
            self.webhooks = {**self.webhooks, webhook.id: updated}

    def apply_webhook(self, webhook: Webhook) -> None:
        """Show a webhook as the server returned it (a feed frame, or our own call's answer)."""
        current = self.webhooks.get(webhook.id)
        if current is not None:
            if current.updated_at > webhook.updated_at:
                return
            known, told = current.last_delivery, webhook.last_delivery
            # Delivery frames are fresher than a webhook's summary of the same delivery.
            if known is not None and (told is None or told.delivery_id <= known.delivery_id):
                webhook = webhook.model_copy(update={"last_delivery": known})
        self.webhooks = {**self.webhooks, webhook.id: webhook}

    def forget_webhook(self, webhook_id: int) -> None:
        if webhook_id in self.webhooks:
            self.webhooks = {k: v for k, v in self.webhooks.items() if k != webhook_id}

    # --- connection state ---------------------------------------------------------

    @property
    def online(self) -> bool:
        return self.connection == "connected"

    def require_online(self) -> bool:
        """True when the server is there; else say why an action cannot run."""
        if self.online:
            return True
        reason = self.connection_detail or "not connected yet"
        self.notify(
            f"Server unreachable: {reason}, retrying",
            title="Server unreachable",
            severity="error",
            markup=False,
        )
        return False

    # --- actions ------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("switch_mode", "quit", "help") and isinstance(self.screen, ModalScreen):
            return False
        return not (action == "switch_mode" and isinstance(self.screen, StartupErrorScreen))

    def action_help(self) -> None:
        self.push_screen(HelpScreen(help_rows(self.screen)))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        report_worker_failure(self, event)
