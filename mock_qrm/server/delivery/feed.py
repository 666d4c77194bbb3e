"""The live feed: every change as a numbered frame, fanned out to subscribers.

Publishing never waits: each subscriber has a bounded queue, and one that
falls behind is dropped (it reconnects with `after_seq` and catches up from
the replay buffer, or is told to resync). A slow client never slows delivery.
A frame is built and serialised once, when someone first reads it, never when
nobody does: the dispatcher publishes a record and how to show it, not a model.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import deque
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel

from mock_qrm.contract.models import FeedFrame


class Deferred(Protocol):
    """How to make a resource from an immutable record (a `Named` delivery is one)."""

    def __call__(self) -> BaseModel: ...


Resource = BaseModel | Deferred


@dataclass(slots=True)
class Frame:
    """`{"seq", "type", "action"?, <type>: resource}` as one WebSocket text message."""

    seq: int
    type: str
    resource: Resource | None = None
    """The resource, or how to make it from an immutable record: made when first read."""
    action: str | None = None
    trigger: str | None = None
    """With an attempt's `action`: `automatic` or `manual`."""
    boot_id: str | None = None
    """Only on `hello`: which run of the server this is (a client resumes only within one)."""
    _text: str | None = None

    def model(self) -> BaseModel | None:
        """The resource, made (once) if it was published as how to make it."""
        if self.resource is not None and not isinstance(self.resource, BaseModel):
            self.resource = self.resource()
        return self.resource

    def as_model(self) -> FeedFrame:
        """This frame as `FeedFrame`, the model a client parses its text into."""
        fields: dict[str, Any] = {"seq": self.seq, "type": self.type}
        if self.action is not None:
            fields["action"] = self.action
        if self.trigger is not None:
            fields["trigger"] = self.trigger
        if self.boot_id is not None:
            fields["boot_id"] = self.boot_id
        resource = self.model()
        if resource is not None and self.type in ("delivery", "webhook", "report"):
            fields[self.type] = resource
        return FeedFrame.model_construct(**fields)

    def text(self) -> str:
        if self._text is None:
            head = f'{{"seq":{self.seq},"type":{json.dumps(self.type)}'
            if self.action is not None:
                head += f',"action":{json.dumps(self.action)}'
            if self.trigger is not None:
                head += f',"trigger":{json.dumps(self.trigger)}'
            if self.boot_id is not None:
                head += f',"bootId":{json.dumps(self.boot_id)}'
            model = self.model()
            if model is not None:
                head += f",{json.dumps(self.type)}:{model.model_dump_json(by_alias=True)}"
            self._text = head + "}"
        return self._text


SUBSCRIBER_QUEUE = 5000


class Subscription:
    def __init__(self, hub: FeedHub) -> None:
        self._hub = hub
        self.queue: asyncio.Queue[Frame | None] = asyncio.Queue(SUBSCRIBER_QUEUE)
        self.dropped = False

    def offer(self, frame: Frame) -> None:
        if self.dropped:
            return
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.drop()

    def drop(self) -> None:
        """Stop feeding this subscriber; its reader sees `None` next."""
        if self.dropped:
            return
        self.dropped = True
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(None)
        self._hub.unsubscribe(self)


@dataclass(frozen=True, slots=True)
class Connection:
    """One client's place in the feed: the frames it gets on connecting, then each one
    published (`next`) until it falls behind (`None`: it reconnects with `after_seq`)."""

    opening: list[Frame]
    subscription: Subscription

    async def next(self) -> Frame | None:
        return await self.subscription.queue.get()

    def close(self) -> None:
        self.subscription.drop()

    async def models(self) -> AsyncGenerator[FeedFrame, None]:
        """The frames as a client parses them, built from the resources, not their JSON
        (the server's in-process port); ends when this reader falls behind."""
        try:
            for opening in self.opening:
                yield opening.as_model()
            while (frame := await self.next()) is not None:
                yield frame.as_model()
        finally:
            self.close()


class FeedHub:
    def __init__(self, buffer_size: int = 10_000) -> None:
        self.boot_id = uuid.uuid4().hex
        self.seq = 0
        self._buffer: deque[Frame] = deque(maxlen=buffer_size)
        self._subscribers: set[Subscription] = set()

    def publish(
        self,
        frame_type: str,
        resource: Resource | None = None,
        action: str | None = None,
        trigger: str | None = None,
    ) -> int:
        self.seq += 1
        frame = Frame(self.seq, frame_type, resource, action, trigger)
        self._buffer.append(frame)
        for subscriber in tuple(self._subscribers):
            subscriber.offer(frame)
        return self.seq

    def subscribe(self, after_seq: int | None = None) -> tuple[Subscription, list[Frame] | None]:
        """A new subscription and the frames after `after_seq`; `None` means resync."""
        subscription = Subscription(self)
        self._subscribers.add(subscription)
        if after_seq is None:
            return subscription, []
        if after_seq > self.seq:
            return subscription, None
        missed = [frame for frame in self._buffer if frame.seq > after_seq]
        oldest = self._buffer[0].seq if self._buffer else self.seq + 1
        if after_seq < self.seq and oldest > after_seq + 1:
            return subscription, None
        return subscription, missed

    def connect(self, after_seq: int | None = None, boot_id: str | None = None) -> Connection:
        """A client connects: `hello`, then what it missed since `after_seq` in this run
        (`boot_id`), or `resync` when that is no longer kept, then live frames.

        The WebSocket route and the server's in-process port both connect this way.
        """
        subscription, missed = self.subscribe(after_seq)
        if boot_id is not None and boot_id != self.boot_id:
            missed = None
        opening = [Frame(self.seq, "hello", boot_id=self.boot_id)]
        opening.extend([Frame(self.seq, "resync")] if missed is None else missed)
        return Connection(opening, subscription)

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscribers.discard(subscription)

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def close(self) -> None:
        for subscriber in tuple(self._subscribers):
            subscriber.drop()
