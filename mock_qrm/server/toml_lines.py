"""Where each key and array item of a TOML document is written: the line numbers that
`tomllib` reads past, so a scenario file's errors can say `FILE:LINE: field: message`.

`key_lines(text)` scans a document `tomllib` has already accepted and maps each value's
path (`("webhooks", 0, "basic_auth", "password")`) to the line its key (or, in an array,
the item) starts on. Tables of an array of tables (`[[webhooks]]`) are numbered as
`tomllib` numbers them. A scan that meets something it does not expect stops there and
keeps what it found: a line is a help, never a reason to fail.
"""

from __future__ import annotations

import contextlib
import tomllib
from collections.abc import Mapping

Path = tuple[str | int, ...]

_BARE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_VALUE_END = frozenset(",]}\n#\r")


class _Stop(Exception):
    """The text is not what the scanner expects: keep the lines found so far."""


def key_lines(text: str) -> dict[Path, int]:
    scanner = _Scanner(text)
    with contextlib.suppress(_Stop, IndexError, tomllib.TOMLDecodeError):
        scanner.document()
    return scanner.lines


def line_of(lines: Mapping[Path, int], path: Path) -> int | None:
    """The line of `path`, or of its nearest ancestor that has one (a missing key: its table)."""
    for end in range(len(path), 0, -1):
        line = lines.get(path[:end])
        if line is not None:
            return line
    return None


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0
        self.line = 1
        self.lines: dict[Path, int] = {}
        self._tables: dict[Path, int] = {}
        """Each array of tables (a concrete path) and how many tables it has so far."""

    # --- characters ------------------------------------------------------------------

    def _peek(self, offset: int = 0) -> str:
        at = self.i + offset
        return self.text[at] if at < len(self.text) else ""

    def _advance(self, count: int = 1) -> None:
        for _ in range(count):
            if self.text[self.i] == "\n":
                self.line += 1
            self.i += 1

    def _blank(self, *, newlines: bool) -> None:
        """Skip spaces and comments (and newlines, where the grammar allows them)."""
        while self.i < len(self.text):
            char = self.text[self.i]
            if char in " \t" or (newlines and char in "\r\n"):
                self._advance()
            elif char == "#":
                while self.i < len(self.text) and self.text[self.i] != "\n":
                    self.i += 1
            else:
                return

    def _record(self, path: Path, line: int) -> None:
        self.lines.setdefault(path, line)

    # --- the document --------------------------------------------------------------------

    def document(self) -> None:
        current: Path = ()
        while True:
            self._blank(newlines=True)
            if self.i >= len(self.text):
                return
            line = self.line
            if self.text.startswith("[[", self.i):
                self._advance(2)
                name = self._key()
                self._expect("]]")
                array = self._resolve(name[:-1]) + name[-1:]
                count = self._tables.get(array, 0)
                self._tables[array] = count + 1
                current = (*array, count)
                self._record(array, line)
                self._record(current, line)
            elif self._peek() == "[":
                self._advance()
                name = self._key()
                self._expect("]")
                current = self._resolve(name)
                self._record(current, line)
            else:
                self._pair(current)

    def _resolve(self, name: Path) -> Path:
        """A header's name as a path: each array of tables on the way means its last table."""
        concrete: Path = ()
        for part in name:
            concrete = (*concrete, part)
            count = self._tables.get(concrete)
            if count:
                concrete = (*concrete, count - 1)
        return concrete

    def _expect(self, token: str) -> None:
        self._blank(newlines=False)
        if not self.text.startswith(token, self.i):
            raise _Stop
        self._advance(len(token))

    def _pair(self, table: Path) -> None:
        """`key = value`: the key's line for the value's path (and for each dotted prefix)."""
        line = self.line
        key = self._key()
        for end in range(1, len(key) + 1):
            self._record((*table, *key[:end]), line)
        self._expect("=")
        self._value((*table, *key))

    def _key(self) -> Path:
        """A dotted key (`a.b."c d"`) as its parts."""
        parts: list[str | int] = []
        while True:
            self._blank(newlines=False)
            char = self._peek()
            if char in "\"'":
                start = self.i
                self._string()
                parts.append(_decoded(self.text[start : self.i]))
            else:
                start = self.i
                while self._peek() and self._peek() in _BARE:
                    self.i += 1
                if self.i == start:
                    raise _Stop
                parts.append(self.text[start : self.i])
            self._blank(newlines=False)
            if self._peek() != ".":
                return tuple(parts)
            self._advance()

    # --- values ---------------------------------------------------------------------------

    def _value(self, path: Path) -> None:
        self._blank(newlines=False)
        char = self._peek()
        if char in "\"'":
            self._string()
        elif char == "[":
            self._array(path)
        elif char == "{":
            self._inline_table(path)
        else:  # a number, a boolean, a date-time (which may hold a space)
            start = self.i
            while self._peek() and self._peek() not in _VALUE_END:
                self.i += 1
            if self.i == start:
                raise _Stop

    def _array(self, path: Path) -> None:
        self._advance()  # [
        index = 0
        while True:
            self._blank(newlines=True)
            if self._peek() == "]":
                self._advance()
                return
            self._record((*path, index), self.line)
            self._value((*path, index))
            index += 1
            self._blank(newlines=True)
            if self._peek() == ",":
                self._advance()
            elif self._peek() != "]":
                raise _Stop

    def _inline_table(self, path: Path) -> None:
        self._advance()  # {
        while True:
            self._blank(newlines=True)
            if self._peek() == "}":
                self._advance()
                return
            self._pair(path)
            self._blank(newlines=True)
            if self._peek() == ",":
                self._advance()
            elif self._peek() != "}":
                raise _Stop

    def _string(self) -> None:
        """Past one string of any of TOML's four kinds, counting the lines it spans."""
        quote = self._peek()
        if self.text.startswith(quote * 3, self.i):
            self._advance(3)
            while not self.text.startswith(quote * 3, self.i):
                if self.i >= len(self.text):
                    raise _Stop
                self._advance(2 if quote == '"' and self._peek() == "\\" else 1)
            self._advance(3)
            extra = 0  # up to two quotes of the content may stand before the closing three
            while extra < 2 and self._peek() == quote:
                self._advance()
                extra += 1
            return
        self._advance()
        while self._peek() != quote:
            if not self._peek() or self._peek() == "\n":
                raise _Stop
            self._advance(2 if quote == '"' and self._peek() == "\\" else 1)
        self._advance()


def _decoded(token: str) -> str:
    """A quoted key as `tomllib` reads it (escapes and all)."""
    value = tomllib.loads(f"k = {token}")["k"]
    if not isinstance(value, str):
        raise _Stop
    return value
