"""Faults on QRM's own routes, and the calls receivers made to them (SPEC 8.4).

In memory only: they are test set-up, not state worth a restart. Faults apply
in the order they were added, each to its next `times` matching calls. A fault
removed (or cleared by a reset or shutdown) ends the delays it is holding.
"""

from __future__ import annotations

import asyncio
from collections import deque
from datetime import datetime

from mock_qrm.contract.errors import Conflict, NotFound
from mock_qrm.contract.models import ApiCall, Fault, FaultSpec

API_CALLS_KEPT = 1000
MAX_FAULTS = 1000
"""Faults active at once: each call to a QRM route looks through them (past it, 409)."""


class FaultBook:
    def __init__(self) -> None:
        self._faults: dict[int, Fault] = {}
        self._next_id = 1
        self.calls: deque[ApiCall] = deque(maxlen=API_CALLS_KEPT)
        self._lifted: set[int] = set()
        """Faults a user removed since the last clear: their delays end at once."""
        self._cleared_below = 1
        """Every fault with a smaller id was cleared (a reset, a shutdown): lifted too."""
        self.lifting = asyncio.Event()
        """Set (and replaced) whenever faults are lifted, to wake the delays they hold."""

    def add(self, spec: FaultSpec) -> Fault:
        if len(self._faults) >= MAX_FAULTS:
            raise Conflict(
                f"There are {MAX_FAULTS:,} faults already, the most the mock keeps: remove some"
                " (DELETE /_mock/faults/{id}) or clear them (DELETE /_mock/faults)"
            )
        fault = Fault(
            id=self._next_id,
            route=spec.route,
            status=spec.status,
            times=spec.times,
            remaining=spec.times,
            delay_ms=spec.delay_ms,
            retry_after=spec.retry_after,
            reset=spec.reset,
        )
        self._next_id += 1
        self._faults[fault.id] = fault
        return fault

    def list(self) -> list[Fault]:
        return list(self._faults.values())

    def remove(self, fault_id: int) -> None:
        if self._faults.pop(fault_id, None) is None:
            raise NotFound("Fault", fault_id)
        self._lifted.add(fault_id)
        self._wake()

    def clear_faults(self) -> None:
        """Every fault gone, and every delay they are holding ended."""
        self._cleared_below = self._next_id  # not a set of every id ever made: one number
        self._lifted.clear()
        self._faults.clear()
        self._wake()

    def _wake(self) -> None:
        self.lifting.set()
        self.lifting = asyncio.Event()

    def clear(self) -> None:
        """Back to none (a reset, a shutdown): no faults, no calls."""
        self.clear_faults()
        self.calls.clear()

    def lifted(self, fault: Fault) -> bool:
        """Whether `fault` was removed or cleared (not merely used up) since it applied."""
        return fault.id < self._cleared_below or fault.id in self._lifted

    def take(self, route: str) -> Fault | None:
        """The first fault on `route`, counted as applied (and gone once used up)."""
        for fault in self._faults.values():
            if fault.route != route:
                continue
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining == 0:
                    del self._faults[fault.id]
            return fault
        return None

    def record(
        self, at: datetime, method: str, path: str, status: int | None, fault: Fault | None
    ) -> None:
        self.calls.append(
            ApiCall(
                at=at,
                method=method,
                path=path,
                status=status,
                fault_id=None if fault is None else fault.id,
            )
        )
