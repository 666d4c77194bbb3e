"""`qrm-tui --demo`: a living system in one command.

An embedded server on its own database (`demo.sqlite3` beside the user's
default one, wiped at each start: the user's real state is never touched), an
embedded fault-injecting receiver, four webhooks named for what their receiver
does, a report upload every few seconds, and a time scale that turns QRM's
60-second rules into seconds. No Textual here: the app runs these steps.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from mock_qrm.app import Settings, default_db_path
from mock_qrm.client.errors import QrmUnavailable
from mock_qrm.client.http import QrmClient
from mock_qrm.contract.errors import QrmApiError
from mock_qrm.contract.models import EventComponent, Health, Webhook
from mock_qrm.receiver import ReceiverSettings, RunningReceiver, start_receiver

TIME_SCALE = 20.0
"""60 s becomes 3 s: a delivery that always fails is `failed` about 10 s after its event."""
UPLOAD_EVERY = 4.0
"""Seconds between simulated uploads (real seconds, not scaled)."""
CALL_BACK_AFTER = 0.2
"""Real seconds from an upload to the healthy receiver's call back for its report."""


@dataclass(frozen=True, slots=True)
class DemoOptions:
    upload_every: float = UPLOAD_EVERY


def demo_db_path() -> Path:
    """`demo.sqlite3` in the user's data folder, beside the default database."""
    return default_db_path().with_name("demo.sqlite3")


def demo_settings(base: Settings, db: Path, time_scale: float = TIME_SCALE) -> Settings:
    """The embedded server's settings in demo mode: its own database, scaled time."""
    return base.model_copy(
        update={
            "db": str(db),
            "time_scale": time_scale,
            "manual_clock": False,
            "shutdown_grace": 0.5,  # quitting does not wait for the slow receiver
        }
    )


class DemoBusy(Exception):
    """Another `qrm-tui --demo` uses the demo database."""


class DemoLock:
    """Held for the life of the demo: no second demo wipes the first one's database.

    (The server's own lock, `<db>.lock`, is only taken once the database is open,
    after the wipe: too late to protect a running demo from a second one.)
    """

    def __init__(self, db: Path) -> None:
        self.path = db.with_name(db.name + ".demo-lock")
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        try:
            import fcntl
        except ImportError:  # not on this platform: no guard
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise DemoBusy(
                f"another qrm-tui --demo is running (it holds {self.path}); quit it first"
            ) from None
        handle.write(str(os.getpid()))
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def wipe(db: Path) -> None:
    """Delete the demo database and its WAL files: every demo starts from the seeded state."""
    for path in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def demo_webhooks(receiver: str, health: Health) -> list[tuple[str, str]]:
    """Name and URL of each demo webhook: one healthy, one flaky, one slow, one broken."""
    slow = math.ceil(health.timeout_seconds) + 2  # real seconds, past the scaled timeout
    return [
        ("Healthy receiver", f"{receiver}/ok"),
        ("Flaky receiver: fails twice", f"{receiver}/flaky/2"),
        ("Slow receiver: times out", f"{receiver}/delay/{slow}"),
        ("Broken receiver: always 500", f"{receiver}/status/500"),
    ]


class Demo:
    """The demo's receiver, webhooks and uploads, in the app's event loop."""

    def __init__(self, options: DemoOptions) -> None:
        self.options = options
        self.receiver: RunningReceiver | None = None
        self.uploads = 0
        self.call_backs = 0

    async def start(
        self, client: QrmClient, health: Health, components: list[EventComponent]
    ) -> list[Webhook]:
        """Start the receiver and add the webhooks (unless a previous start did)."""
        if self.receiver is None:
            self.receiver = await start_receiver(ReceiverSettings(host="127.0.0.1", port=0))
        events = [event.event_code for component in components for event in component.events]
        existing = {webhook.name for webhook in await client.webhooks()}
        created = []
        for name, url in demo_webhooks(self.receiver.url, health):
            if name not in existing:
                created.append(await client.create_webhook(name, url, events))
        return created

    async def upload_forever(self, client: QrmClient) -> None:
        """An inspector uploading a report every `upload_every` seconds, the first one now;
        after each, the healthy receiver's call back for it (see `call_back`)."""
        while True:
            try:
                uploaded = await client.upload_report()
            except (QrmUnavailable, QrmApiError):
                pass  # the server is going away (quitting) or busy: the next one will do
            else:
                self.uploads += 1
                await self.call_back(client, uploaded.resource_id)
            await asyncio.sleep(self.options.upload_every)

    async def call_back(self, client: QrmClient, report_id: int) -> None:
        """What the healthy receiver's second half does with a `report.created` message:
        `GET /api/v1/reports/{id}`. The faults screen shows these calls, and what a
        fault on that route makes of them (a 503, a delay); no answer holds up the
        next upload."""
        with contextlib.suppress(QrmUnavailable, QrmApiError, TimeoutError):
            async with asyncio.timeout(self.options.upload_every):
                await asyncio.sleep(CALL_BACK_AFTER)  # the message reaches the receiver first
                await client.report(report_id)
                self.call_backs += 1

    async def stop(self) -> None:
        receiver, self.receiver = self.receiver, None
        if receiver is not None:
            await receiver.close()
