"""The rows a live table shows: a window over a journal, newest first, keyed by id.

Rows come from REST pages (the newest page, then older pages on request) and
from feed changes. The window holds at most `cap` rows. While it follows the
newest rows, the oldest fall off the bottom (`has_older`: the API still has
them). While the reader has paused to look at something, the newest fall off
the top instead (`behind`: newer rows exist that are not shown) so what is
being looked at stays put; following again reloads the newest page. No Textual.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(slots=True)
class Change(Generic[T]):
    """What one batch did to the window: rows to draw (new or changed) and rows to drop."""

    upserted: dict[int, T] = field(default_factory=dict)
    removed: set[int] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.upserted or self.removed)

    def drop(self, key: int) -> None:
        self.upserted.pop(key, None)
        self.removed.add(key)


def _everything(_: object) -> bool:
    return True


class Window(Generic[T]):
    def __init__(
        self,
        key: Callable[[T], int],
        cap: int,
        matches: Callable[[T], bool] = _everything,
    ) -> None:
        self._key = key
        self.cap = cap
        self.matches = matches
        self.items: dict[int, T] = {}
        self._ascending: list[int] = []
        self.has_older = False
        """More matching rows exist below the oldest shown (load them with an older page)."""
        self.behind = False
        """Newer matching rows exist above the newest shown (reload the newest page)."""

    # --- reading --------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._ascending)

    def __contains__(self, key: int) -> bool:
        return key in self.items

    @property
    def keys(self) -> list[int]:
        """Newest first."""
        return self._ascending[::-1]

    @property
    def oldest(self) -> T | None:
        return self.items[self._ascending[0]] if self._ascending else None

    @property
    def newest(self) -> T | None:
        return self.items[self._ascending[-1]] if self._ascending else None

    # --- changing ---------------------------------------------------------------------

    def replace(self, page: Iterable[T], has_older: bool) -> Change[T]:
        """Show the newest page afresh (a load, a reload after resync, following again)."""
        change: Change[T] = Change(removed=set(self.items))
        self.items.clear()
        self._ascending.clear()
        self.behind = False
        for item in page:
            if self.matches(item):
                self._insert(item, change)
        change.removed -= set(self.items)
        self.has_older = has_older
        self._trim(following=True, change=change)
        return change

    def extend_older(self, page: Iterable[T], has_older: bool) -> Change[T]:
        """Add an older page below the oldest row; past the cap the newest rows make room."""
        change: Change[T] = Change()
        floor = self._ascending[0] if self._ascending else None
        for item in page:
            key = self._key(item)
            if (floor is None or key < floor) and key not in self.items and self.matches(item):
                self._insert(item, change)
        self.has_older = has_older
        self._trim(following=False, change=change)
        return change

    def apply(self, changes: Iterable[T], following: bool) -> Change[T]:
        """Feed changes: update rows shown, add new ones where they belong, drop non-matches."""
        change: Change[T] = Change()
        for item in changes:
            key = self._key(item)
            if key in self.items:
                if self.matches(item):
                    self.items[key] = item
                    change.upserted[key] = item
                else:
                    self._remove(key)
                    change.drop(key)
            elif self.matches(item) and self._within(key):
                self._insert(item, change)
        self._trim(following, change)
        return change

    def _within(self, key: int) -> bool:
        """Whether a row not shown belongs between the window's ends (else it is beyond one)."""
        if not self._ascending:
            return not (self.has_older and self.behind)
        if self.has_older and key < self._ascending[0]:
            return False
        return not (self.behind and key > self._ascending[-1])

    def _insert(self, item: T, change: Change[T]) -> None:
        key = self._key(item)
        self.items[key] = item
        bisect.insort(self._ascending, key)
        change.upserted[key] = item
        change.removed.discard(key)

    def _remove(self, key: int) -> None:
        del self.items[key]
        index = bisect.bisect_left(self._ascending, key)
        del self._ascending[index]

    def _trim(self, following: bool, change: Change[T]) -> None:
        excess = len(self._ascending) - self.cap
        if excess <= 0:
            return
        if following:
            dropped = self._ascending[:excess]
            del self._ascending[:excess]
            self.has_older = True
        else:
            dropped = self._ascending[-excess:]
            del self._ascending[-excess:]
            self.behind = True
        for key in dropped:
            del self.items[key]
            change.drop(key)
