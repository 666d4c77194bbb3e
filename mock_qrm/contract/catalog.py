"""The webhook event catalog: data from `fixtures/event_catalog.json`, not code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

from mock_qrm.fixtures import fixture_path

FILE_READY = "report.file_ready"
"""The event a report's file being ready emits (this project's code: QRM publishes only its name)."""


class EventType(NamedTuple):
    code: str
    name: str
    component: str


class EventCatalog(NamedTuple):
    """Named tuples, not dataclasses: the command line checks `--event` against the
    catalog, and importing `dataclasses` alone would take a third of its start."""

    events: tuple[EventType, ...]

    @classmethod
    def load(cls, path: Path | None = None) -> EventCatalog:
        raw = json.loads((path or fixture_path("event_catalog.json")).read_text("utf-8"))
        return cls(
            tuple(
                EventType(
                    code=event["eventCode"], name=event["eventName"], component=group["component"]
                )
                for group in raw["components"]
                for event in group["events"]
            )
        )

    @property
    def codes(self) -> frozenset[str]:
        return frozenset(event.code for event in self.events)

    def get(self, code: str) -> EventType | None:
        return next((event for event in self.events if event.code == code), None)

    def components(self) -> dict[str, list[EventType]]:
        grouped: dict[str, list[EventType]] = {}
        for event in self.events:
            grouped.setdefault(event.component, []).append(event)
        return grouped
