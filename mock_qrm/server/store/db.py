"""The database: migrations, a reader, and one group-committing writer.

Reads go through aiosqlite. Writes are plain functions of a `sqlite3`
connection, queued to one writer thread that runs everything queued so far in a
single transaction (group commit): under load, a thousand attempt results cost
one commit, and no coroutine ever blocks the event loop on SQLite.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from mock_qrm.contract.errors import StorageError
from mock_qrm.server.store.schema import MIGRATIONS, SCHEMA_VERSION

log = logging.getLogger(__name__)

OnCommit = Callable[[Any], None]
_Queued = tuple["Job", "asyncio.Future[Any]", "OnCommit | None"]
_Outcome = tuple["asyncio.Future[Any]", "OnCommit | None", Any, BaseException | None]

T = TypeVar("T")
Job = Callable[[sqlite3.Connection], Any]

MAX_BATCH = 2000


def _settle(outcomes: list[_Outcome]) -> None:
    """Back on the event loop, in commit order: apply each commit to memory, then wake its waiter.

    The `on_commit` callbacks run here, not in the waiters, so memory follows
    the commits in the order they happened, even if a waiter was cancelled.
    """
    for future, on_commit, value, error in outcomes:
        if error is None and on_commit is not None:
            try:
                on_commit(value)
            except Exception:
                log.exception("applying a committed change failed")
        if future.done():  # the waiter was cancelled
            continue
        if error is None:
            future.set_result(value)
        else:
            future.set_exception(error)


class _JobFailed(Exception):
    """A job raised; its exception is the cause."""


def _connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA busy_timeout = 5000")
    conn.execute("PRAGMA journal_mode = WAL")
    # WAL + NORMAL: a commit survives a killed process; only power loss can drop the last few.
    conn.execute("PRAGMA synchronous = NORMAL")
    return conn


def _prepare_path(path: str) -> tuple[Path | None, Path]:
    """The file to open, and the scratch folder to delete at close for `:memory:`.

    Reader and writer must share one database, so `:memory:` is a private
    temporary file, with the same WAL behaviour as the real thing.
    """
    if path == ":memory:":
        scratch = Path(tempfile.mkdtemp(prefix="mock-qrm-"))
        return scratch, scratch / "db.sqlite3"
    target = Path(path).expanduser()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create the folder for {target}: {exc.strerror}") from None
    with contextlib.suppress(OSError):  # exists already, or the open below will say why
        # Webhook passwords live here in clear (the sender needs them): owner only.
        # SQLite gives its -wal and -shm files the database file's mode.
        os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    return None, target


class _Lock:
    """One server per database file: a second one would run a second dispatcher on it."""

    def __init__(self, target: Path) -> None:
        self.path = target.with_name(target.name + ".lock")
        self._file = open(  # noqa: SIM115 - held open for the life of the lock
            os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600), "r+", encoding="utf-8"
        )
        try:
            import fcntl
        except ImportError:  # not POSIX: no advisory locks, no check
            return
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._file.seek(0)
            holder = self._file.read().strip() or "unknown"
            self._file.close()
            raise StorageError(
                f"database {target} is in use by another mock-qrm (pid {holder}):"
                " stop it, or use another database file"
            ) from None
        self._file.seek(0)
        self._file.truncate()
        self._file.write(str(os.getpid()))
        self._file.flush()

    def release(self) -> None:
        self._file.close()


def _migrate(conn: sqlite3.Connection) -> None:
    version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise StorageError(
            f"database schema {version} is newer than this mock-qrm understands ({SCHEMA_VERSION})"
        )
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        conn.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")


def _check_usable(target: Path) -> None:
    """Refuse, at start-up and in one line, a database that is damaged or cannot be written.

    Either would otherwise start fine, then fail request after request. A plain
    connection: the checks come before anything else reads the schema.
    """
    with contextlib.closing(sqlite3.connect(target, isolation_level=None)) as conn:
        _check_intact(conn, target)
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(f"PRAGMA user_version = {version}")  # a write, rolled back
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_READONLY:
                raise
            raise StorageError(
                f"database {target} is read-only ({exc}): make it writable or use another database file"
            ) from None
        finally:
            conn.execute("ROLLBACK")


def _check_intact(conn: sqlite3.Connection, target: Path) -> None:
    try:
        problems = [
            line
            for (row,) in conn.execute("PRAGMA quick_check")
            for line in str(row).splitlines()
            if line.strip() and not line.startswith("*** ")
        ]
    except sqlite3.DatabaseError as exc:  # too damaged even to list what is wrong
        if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_CORRUPT:
            raise
        problems = [str(exc)]
    if problems != ["ok"]:
        more = f"; {len(problems) - 1} more" if len(problems) > 1 else ""
        raise StorageError(
            f"database {target} is damaged (quick_check: {problems[0]}{more}):"
            " restore it or use another database file"
        )


class Writer:
    """One thread, one connection, one transaction per batch of queued jobs.

    Jobs are queued from the event loop; once a batch commits, its results go
    back to the loop in one call, so a batch of a thousand costs one wake-up.
    Jobs commit in the order they were queued, and their `on_commit`
    callbacks run in that order too.
    """

    def __init__(self, conn: sqlite3.Connection, loop: asyncio.AbstractEventLoop) -> None:
        self._conn = conn
        self._loop = loop
        self._jobs: list[_Queued] = []
        self._cond = threading.Condition()
        self._closed = False
        self.batches = 0
        self.jobs_done = 0
        self.cpu_seconds = 0.0
        """CPU time the writer thread has spent on batches (`make bench` reports it per delivery)."""
        self.failing: str | None = None
        """Why the last batch could not be written, until one is."""
        self._on_writable: list[Callable[[], None]] = []
        self._thread = threading.Thread(
            target=self._loop_forever, name="mock-qrm-writer", daemon=True
        )
        self._thread.start()

    def submit(
        self, job: Callable[[sqlite3.Connection], T], on_commit: Callable[[T], None] | None = None
    ) -> asyncio.Future[T]:
        """Queue a job (from the event loop); the future resolves once its transaction commits.

        `on_commit(result)` runs on the loop as soon as it has committed, before
        any later job's, whether or not anyone still awaits the future.
        """
        future: asyncio.Future[T] = self._loop.create_future()
        with self._cond:
            if self._closed:
                raise StorageError("the database is closed")
            self._jobs.append((job, future, on_commit))
            self._cond.notify()
        return future

    @property
    def backlog(self) -> int:
        """Jobs queued and not yet begun."""
        with self._cond:
            return len(self._jobs)

    def on_writable(self, callback: Callable[[], None]) -> None:
        """`callback()` on the loop whenever a write commits after writes had failed."""
        self._on_writable.append(callback)

    def _writable_again(self) -> None:
        for callback in self._on_writable:
            try:
                callback()
            except Exception:
                log.exception("telling that the store takes writes again failed")

    run = submit
    """`await writer.run(job)`: the future itself, with no coroutine around it (it runs per attempt)."""

    def _loop_forever(self) -> None:
        while True:
            with self._cond:
                while not self._jobs and not self._closed:
                    self._cond.wait()
                if not self._jobs and self._closed:
                    return
                batch, self._jobs = self._jobs[:MAX_BATCH], self._jobs[MAX_BATCH:]
            began = time.thread_time()
            was_failing = self.failing is not None
            outcomes = self._run_batch(batch)
            self.cpu_seconds += time.thread_time() - began
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
                self._loop.call_soon_threadsafe(_settle, outcomes)
                if was_failing and self.failing is None:  # after the commits are applied
                    self._loop.call_soon_threadsafe(self._writable_again)

    def _run_batch(self, batch: list[_Queued]) -> list[_Outcome]:
        """All jobs in one transaction; if one raises, each job gets a transaction of its own."""
        try:
            values = self._transaction([job for job, _, _ in batch])
        except _JobFailed:
            return [self._alone(queued) for queued in batch]
        except sqlite3.Error as exc:
            failure = self._failed(exc)
            return [(future, on_commit, None, failure) for _, future, on_commit in batch]
        self._succeeded(len(batch))
        return [
            (future, on_commit, value, None)
            for (_, future, on_commit), value in zip(batch, values, strict=True)
        ]

    def _alone(self, queued: _Queued) -> _Outcome:
        job, future, on_commit = queued
        try:
            [value] = self._transaction([job])
        except _JobFailed as failed:
            cause = failed.__cause__
            if isinstance(cause, sqlite3.Error):
                return future, on_commit, None, self._failed(cause)
            return future, on_commit, None, cause
        except sqlite3.Error as exc:
            return future, on_commit, None, self._failed(exc)
        self._succeeded(1)
        return future, on_commit, value, None

    def _failed(self, exc: sqlite3.Error) -> StorageError:
        self.failing = f"database write failed: {exc}"
        log.error("%s", self.failing)
        return StorageError(self.failing)

    def _succeeded(self, jobs: int) -> None:
        self.failing = None
        self.batches += 1
        self.jobs_done += jobs

    def _transaction(self, jobs: list[Job]) -> list[Any]:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            values = []
            for job in jobs:
                try:
                    values.append(job(conn))
                except Exception as exc:
                    raise _JobFailed from exc
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        return values

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join()
        self._conn.close()


class Database:
    """An open store: `reader` for queries, `writer` for changes."""

    def __init__(self, path: str, reader: aiosqlite.Connection, writer: Writer) -> None:
        self.path = path
        self.reader = reader
        self.writer = writer
        self._read_failing: str | None = None
        self._scratch: Path | None = None
        self._lock: _Lock | None = None

    @classmethod
    async def open(cls, path: str) -> Database:
        """Open (creating and migrating) the database; `:memory:` is a throw-away file."""
        scratch, target = await asyncio.to_thread(_prepare_path, path)
        try:
            lock = _Lock(target)
        except OSError as exc:
            raise StorageError(f"cannot open database {target}: {exc.strerror}") from None
        try:
            await asyncio.to_thread(_check_usable, target)
            write_conn = await asyncio.to_thread(_connect, str(target))
            await asyncio.to_thread(_migrate, write_conn)
            reader = await aiosqlite.connect(str(target), isolation_level=None)
            await reader.execute("PRAGMA busy_timeout = 5000")
        except sqlite3.Error as exc:
            lock.release()
            raise StorageError(f"cannot open database {target}: {exc}") from None
        except BaseException:
            lock.release()
            raise
        reader.row_factory = sqlite3.Row
        db = cls(str(target), reader, Writer(write_conn, asyncio.get_running_loop()))
        db._scratch = scratch
        db._lock = lock
        return db

    @property
    def failing(self) -> str | None:
        """Why the store cannot be used right now (a write or a read failed), or `None`."""
        return self.writer.failing or self._read_failing

    async def probe(self, within: float) -> None:
        """Try the store again where it last failed (a write that changes nothing, a read),
        for at most `within` seconds: if it works now, `failing` clears at once."""
        with contextlib.suppress(StorageError, TimeoutError):
            async with asyncio.timeout(within):
                if self.writer.failing is not None:
                    await self.writer.run(lambda conn: None)
                if self._read_failing is not None:
                    await self.fetchall("SELECT 1")

    async def fetchall(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        """The rows, in one trip to the reader's thread (not three: execute, fetch, close)."""
        try:
            rows = list(await self.reader.execute_fetchall(sql, params))
        except sqlite3.DatabaseError as exc:
            raise self._read_failed(exc) from None
        self._read_failing = None
        return rows

    async def fetchone(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Row | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    def _read_failed(self, exc: sqlite3.DatabaseError) -> StorageError:
        """A damaged or unreadable database is the server's trouble: 503, and health says so."""
        self._read_failing = f"database read failed: {exc}"
        log.error("%s", self._read_failing)
        return StorageError(self._read_failing)

    async def close(self) -> None:
        await asyncio.to_thread(self.writer.close)
        await self.reader.close()
        if self._lock is not None:
            self._lock.release()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
