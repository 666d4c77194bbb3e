"""The webhook registry: QRM's Configuration > Webhooks page, owned in one place.

Each change is one store transaction that reads the webhook as committed and
writes the result; memory, the dispatcher and the feed follow from what
committed, in commit order. So a DELETE and a PATCH racing on one webhook end
as one of them, then the other, would: never a removed webhook brought back.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from types import MappingProxyType

from mock_qrm.contract.errors import NotFound
from mock_qrm.contract.models import Webhook, WebhookCreate, WebhookPatch
from mock_qrm.server.delivery.clock import Clock
from mock_qrm.server.delivery.dispatcher import Dispatcher
from mock_qrm.server.delivery.feed import FeedHub
from mock_qrm.server.domain.records import WebhookRecord
from mock_qrm.server.domain.webhooks import check_patch
from mock_qrm.server.store import webhooks as store
from mock_qrm.server.store.db import Database


class WebhookRegistry:
    def __init__(self, db: Database, clock: Clock, feed: FeedHub, dispatcher: Dispatcher) -> None:
        self.db = db
        self.clock = clock
        self.feed = feed
        self.dispatcher = dispatcher
        self._webhooks: dict[int, WebhookRecord] = {}

    @property
    def webhooks(self) -> Mapping[int, WebhookRecord]:
        """Every webhook not removed, as last committed (read-only)."""
        return MappingProxyType(self._webhooks)

    async def load(self) -> None:
        self.replace(await store.load_webhooks(self.db))

    def replace(self, webhooks: list[WebhookRecord]) -> None:
        self._webhooks = {w.id: w for w in webhooks}

    def get(self, webhook_id: int) -> WebhookRecord:
        webhook = self._webhooks.get(webhook_id)
        if webhook is None:
            raise NotFound("Webhook", webhook_id)
        return webhook

    async def public(self, webhook: WebhookRecord) -> Webhook:
        return webhook.public(await store.last_delivery(self.db, webhook.id))

    async def page(self, limit: int, offset: int) -> tuple[list[Webhook], int]:
        """A page of webhooks, oldest first, and how many there are: only the page's last
        deliveries are read (one query), so a page costs the same at 10 or 10,000 webhooks."""
        webhooks = self._webhooks  # in id order: loaded so, and each new one has the next id
        start = min(offset, len(webhooks))  # islice takes no index past sys.maxsize
        chosen = list(itertools.islice(webhooks.values(), start, start + limit))
        last = await store.last_deliveries(self.db, [w.id for w in chosen])
        return [w.public(last.get(w.id)) for w in chosen], len(webhooks)

    # --- changes ------------------------------------------------------------------

    def _now_ms(self) -> int:
        return round(self.clock.now() * 1000)

    async def create(self, spec: WebhookCreate) -> WebhookRecord:
        now = self._now_ms()
        return await self.db.writer.run(lambda c: store.create(c, spec, now), self._created)

    async def update(self, webhook_id: int, patch: WebhookPatch) -> WebhookRecord:
        check_patch(patch)  # a 422 that needs no transaction
        now = self._now_ms()
        changed = await self.db.writer.run(
            lambda c: store.update(
                c, webhook_id, patch, now, self.dispatcher.policy.retry_interval
            ),
            self._updated,
        )
        return changed.webhook

    async def delete(self, webhook_id: int) -> None:
        now = self._now_ms()
        await self.db.writer.run(lambda c: store.delete(c, webhook_id, now), self._deleted)

    def _created(self, webhook: WebhookRecord) -> None:
        self._webhooks[webhook.id] = webhook
        self.feed.publish("webhook", webhook.public(), action="created")

    def _updated(self, changed: store.Changed) -> None:
        self._webhooks[changed.webhook.id] = changed.webhook
        self.dispatcher.track(changed.deliveries)
        self.dispatcher.webhook_changed()
        self.feed.publish("webhook", changed.webhook.public(changed.last), action="updated")

    def _deleted(self, changed: store.Changed) -> None:
        self._webhooks.pop(changed.webhook.id, None)
        self.dispatcher.track(changed.deliveries)
        self.dispatcher.webhook_changed()
        self.feed.publish("webhook", changed.webhook.public(changed.last), action="deleted")
